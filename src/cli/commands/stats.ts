/**
 * `metaq stats [item]`: a broker's `stats` answer as an aligned two-column table (`--json`: one
 * JSON object). `stats config` prints the broker's server.ini as it is.
 */
import { formatStatsJson, formatStatsTable } from '../output/format.js';
import { painterFor } from '../output/style.js';
import { COMMON_OPTIONS, COMMON_OPTIONS_HELP, UsageError, formatOptionsHelp, parseCommandLine, resolveCommonOptions, type CommonOptions } from './args.js';
import { write, type CliContext } from './context.js';
import { openSession } from './session.js';

export const STATS_USAGE = `Usage: metaq stats [item] [options]

Prints a broker's statistics as a two-column table (--json: one JSON object, a key
that repeats, as in "stats offsets", has its values joined with "\\n").

Items:
  (none)      broker: pid, uptime, version, connections, command counters, …
  topics      one row per topic: partitions, message count, bytes, accept flags
  offsets     one row per partition: min and max offset
  realtime    recent put/get rates and latencies
  <topic>     one topic's counters
  config      the broker's server.ini, printed as it is (--json: {"config": "<text>"})
  help        the items the broker knows
  reset       resets the realtime counters

Options:
${formatOptionsHelp(COMMON_OPTIONS_HELP)}

Examples:
  metaq stats
  metaq stats offsets --json
  metaq stats config -s meta://10.0.0.5:8123`;

/** `metaq stats`'s options, resolved. */
export interface StatsOptions extends CommonOptions {
  /** The stats item; `undefined` for the broker's own. */
  readonly item: string | undefined;
}

/**
 * Parses `metaq stats`'s arguments; `'help'` for `--help`.
 *
 * @throws {UsageError} for anything wrong.
 */
export function parseStatsArgs(args: readonly string[], env: NodeJS.ProcessEnv): StatsOptions | 'help' {
  const { values, positionals } = parseCommandLine('stats', { args: [...args], options: COMMON_OPTIONS }, STATS_USAGE);
  if (values.help === true) return 'help';
  const common = resolveCommonOptions('stats', values, env, STATS_USAGE);
  if (positionals.length > 1) throw new UsageError(`stats: expected at most one item, got ${positionals.join(' ')}`, STATS_USAGE);
  const item = positionals[0];
  if (item !== undefined && (item === '' || /\s/.test(item))) throw new UsageError(`stats: invalid item ${JSON.stringify(item)}`, STATS_USAGE);
  return { ...common, item };
}

/** Runs `metaq stats`. */
export async function runStats(options: StatsOptions, ctx: CliContext): Promise<number> {
  const session = openSession(options.server, { requestTimeoutMs: options.timeoutMs });
  try {
    if (options.item === 'config') {
      const text = await session.guard(session.factory.getStats('config'));
      await write(ctx.stdout, options.json ? `${JSON.stringify({ config: text })}\n` : text.endsWith('\n') ? text : `${text}\n`);
      return 0;
    }
    const stats = await session.guard(session.factory.getStats(options.item));
    const out = options.json ? formatStatsJson(stats) : formatStatsTable(stats, painterFor(ctx.stdout, ctx.env));
    if (out !== '') await write(ctx.stdout, `${out}\n`);
    return 0;
  } finally {
    await session.close();
  }
}
