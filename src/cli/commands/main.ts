/**
 * The `metaq` command line: the subcommand table, top-level options (`--help`, `--version`),
 * dispatch, and turning errors into one friendly line and an exit status.
 *
 * Exit status: 0 success (also after Ctrl-C in `sub`); 1 the command failed (broker
 * unreachable, broker error answer, …); 2 the command line is wrong; 130 `pub -` interrupted.
 */
import { closestMatch } from '../../common/config/levenshtein.js';
import { metaqVersion } from '../../common/version.js';
import { reportError } from '../output/errors.js';
import { painterFor } from '../output/style.js';
import { UsageError } from './args.js';
import { write, type CliContext } from './context.js';
import { parsePubArgs, PUB_USAGE, runPub } from './pub.js';
import { parseStatsArgs, runStats, STATS_USAGE } from './stats.js';
import { parseSubArgs, runSub, SUB_USAGE } from './sub.js';
import { parseTxArgs, runTx, TX_USAGE } from './tx.js';

/** One subcommand: how to parse its arguments and run it. */
export interface CliCommand {
  readonly name: string;
  /** One line for `metaq --help`. */
  readonly summary: string;
  readonly usage: string;
  /** Parses the arguments after the command name (`'help'` for `--help`); throws {@link UsageError}. */
  readonly run: (args: readonly string[], ctx: CliContext) => Promise<number>;
}

function command<O>(
  name: string,
  summary: string,
  usage: string,
  parse: (args: readonly string[], env: NodeJS.ProcessEnv) => O | 'help',
  run: (options: O, ctx: CliContext) => Promise<number>,
): CliCommand {
  return {
    name,
    summary,
    usage,
    async run(args, ctx) {
      const options = parse(args, ctx.env);
      if (options === 'help') {
        await write(ctx.stdout, `${usage}\n`);
        return 0;
      }
      return run(options, ctx);
    },
  };
}

/** The subcommands, in the order `metaq --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [
  command('pub', 'send messages to a topic (text argument, or one per stdin line)', PUB_USAGE, parsePubArgs, runPub),
  command('sub', 'consume a topic as a consumer group and print the messages', SUB_USAGE, parseSubArgs, runSub),
  command('stats', "show a broker's statistics (stats [item]) or its configuration", STATS_USAGE, parseStatsArgs, runStats),
  command('tx', "list prepared XA branches; heuristic commit, rollback, forget; the transaction engine's counters (operators)", TX_USAGE, parseTxArgs, runTx),
];

const width = Math.max(...COMMANDS.map((c) => c.name.length));

export const USAGE = `Usage: metaq <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`).join('\n')}

Options:
  -h, --help      show this help; metaq <command> --help shows a command's options
  -v, --version   print the version

Environment:
  METAQ_SERVER     default broker for -s/--server (default: meta://127.0.0.1:8123)
  METAQ_ADMIN      the broker's HTTP gateway for metaq tx (default: http://127.0.0.1:8080)
  METAQ_HOME       where sub keeps offsets and recovered messages (default: ~/.metaq)
  METAQ_LOG_LEVEL  client log level, JSON lines on stderr (default: error)
  NO_COLOR         no colours (colours are only used on a terminal anyway)

Examples:
  metaq pub -t test "hello"
  metaq sub -t test -g readers --from-beginning --max 1
  metaq stats topics`;

/** Finds a command by name. */
export function findCommand(name: string): CliCommand | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Runs `metaq <argv>`; resolves with the exit status. Errors are printed, never thrown. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  try {
    return await dispatch(argv, ctx);
  } catch (error) {
    const report = reportError(error);
    const paint = painterFor(ctx.stderr, ctx.env);
    const [first, ...rest] = report.text.split('\n');
    await write(ctx.stderr, `${[paint('red', first ?? ''), ...rest].join('\n')}\n`);
    return report.exitCode;
  }
}

async function dispatch(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('missing command', USAGE);
  if (first === '-h' || first === '--help') {
    await write(ctx.stdout, `${USAGE}\n`);
    return 0;
  }
  if (first === '-v' || first === '--version' || first === 'version') {
    await write(ctx.stdout, `${metaqVersion()}\n`);
    return 0;
  }
  if (first === 'help') {
    const topic = rest[0];
    const target = topic === undefined ? undefined : findCommand(topic);
    if (topic !== undefined && target === undefined) throw unknownCommand(topic);
    await write(ctx.stdout, `${target?.usage ?? USAGE}\n`);
    return 0;
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' (options go after the command: metaq <command> [options])`, USAGE);
  const found = findCommand(first);
  if (found === undefined) throw unknownCommand(first);
  return found.run(rest, ctx);
}

function unknownCommand(name: string): UsageError {
  const suggestion = closestMatch(name, COMMANDS.map((c) => c.name));
  return new UsageError(`unknown command '${name}'${suggestion === undefined ? '' : `; did you mean '${suggestion}'?`}`, USAGE);
}
