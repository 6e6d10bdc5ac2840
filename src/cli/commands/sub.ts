/**
 * `metaq sub`: consumes a topic as a consumer group and prints each message.
 *
 *   metaq sub -t test -g readers --from-beginning --max 10
 *
 * Where a group starts (Kafka console-consumer semantics): a group with committed offsets always
 * resumes after them; a group without any starts at the end of each partition (only new
 * messages), or at offset 0 with `--from-beginning`.
 *
 * Offsets are committed periodically, and always before exiting: after `--max N` messages,
 * Ctrl-C or SIGTERM (exit status 0). With `--max N` exactly N messages are printed and
 * committed; a message another partition delivers meanwhile is left for the next run.
 */
import { createLocalOffsetStorage, groupNameError, type ConsumedMessage, type MessageConsumer, type MessageSessionFactory } from '../../client/index.js';
import { topicNameError } from '../../common/config/topic-lookup.js';
import { BrokerError } from '../../common/errors.js';
import { formatMessage } from '../output/format.js';
import { painterFor } from '../output/style.js';
import {
  COMMON_OPTIONS,
  COMMON_OPTIONS_HELP,
  UsageError,
  formatOptionsHelp,
  defaultOffsetsFile,
  defaultRecoverPath,
  parseCommandLine,
  parseInteger,
  resolveCommonOptions,
  type CommonOptions,
} from './args.js';
import { deferred, write, type CliContext } from './context.js';
import { openSession } from './session.js';

/** Bytes asked for per fetch (grows by itself for larger messages). */
const FETCH_MAX_SIZE = 1024 * 1024;
/** Longest pause between fetches of an idle partition: new messages show up within a second. */
const IDLE_FETCH_DELAY_MS = 1_000;

export const SUB_USAGE = `Usage: metaq sub -t <topic> -g <group> [options]

Consumes <topic> as consumer group <group> and prints each message as
"<partition>:<offset> <id> [<attribute>] <text>". Offsets are committed on exit
(after --max messages, Ctrl-C or SIGTERM) and every 5 seconds.

A group with committed offsets resumes after them. A new group starts at the end
(only new messages), or at the beginning with --from-beginning.

Options:
${formatOptionsHelp([
  ['-t, --topic <topic>', 'topic to consume (required)'],
  ['-g, --group <group>', 'consumer group (required)'],
  ['    --from-beginning', 'a new group starts at offset 0 instead of the end'],
  ['    --max <n>', 'exit after <n> messages'],
  ['    --offsets-file <file>', 'offsets file (default: $METAQ_HOME/offsets/<group>.json)'],
  ['    --recover-path <dir>', 'recover store (default: $METAQ_HOME/recover)'],
  ...COMMON_OPTIONS_HELP,
])}

--json prints one JSON object per line: {"topic","partition","offset","id","attribute",
"encoding","data"}, with "data" in UTF-8 when the payload is valid UTF-8 ("encoding":"utf8")
and in base64 otherwise ("encoding":"base64"). $METAQ_HOME defaults to ~/.metaq.

Examples:
  metaq sub -t test -g readers --from-beginning
  metaq sub -t test -g readers --max 1 --json`;

const SUB_OPTIONS = {
  ...COMMON_OPTIONS,
  topic: { type: 'string', short: 't' },
  group: { type: 'string', short: 'g' },
  'from-beginning': { type: 'boolean' },
  max: { type: 'string' },
  'offsets-file': { type: 'string' },
  'recover-path': { type: 'string' },
} as const;

/** `metaq sub`'s options, resolved. */
export interface SubOptions extends CommonOptions {
  readonly topic: string;
  readonly group: string;
  readonly fromBeginning: boolean;
  /** Exit after this many messages; `undefined`: until interrupted. */
  readonly max: number | undefined;
  readonly offsetsFile: string;
  readonly recoverPath: string;
}

/**
 * Parses `metaq sub`'s arguments; `'help'` for `--help`.
 *
 * @throws {UsageError} for anything wrong.
 */
export function parseSubArgs(args: readonly string[], env: NodeJS.ProcessEnv): SubOptions | 'help' {
  const { values, positionals } = parseCommandLine('sub', { args: [...args], options: SUB_OPTIONS }, SUB_USAGE);
  if (values.help === true) return 'help';
  const common = resolveCommonOptions('sub', values, env, SUB_USAGE);
  if (positionals.length > 0) throw new UsageError(`sub: unexpected argument ${JSON.stringify(positionals[0])}`, SUB_USAGE);
  if (values.topic === undefined) throw new UsageError('sub: -t/--topic is required', SUB_USAGE);
  const topicProblem = topicNameError(values.topic);
  if (topicProblem !== undefined) throw new UsageError(`sub: invalid topic ${JSON.stringify(values.topic)}: ${topicProblem}`, SUB_USAGE);
  if (values.group === undefined) throw new UsageError('sub: -g/--group is required', SUB_USAGE);
  const groupProblem = groupNameError(values.group);
  if (groupProblem !== undefined) throw new UsageError(`sub: invalid group ${JSON.stringify(values.group)}: ${groupProblem}`, SUB_USAGE);
  return {
    ...common,
    topic: values.topic,
    group: values.group,
    fromBeginning: values['from-beginning'] === true,
    max: values.max === undefined ? undefined : parseInteger('sub: --max', values.max, SUB_USAGE, 1),
    offsetsFile: values['offsets-file'] ?? defaultOffsetsFile(env, values.group),
    recoverPath: values['recover-path'] ?? defaultRecoverPath(env),
  };
}

/** Why consumption stopped. */
type StopReason = 'max' | 'interrupted';

/** Runs `metaq sub` until `--max` messages, Ctrl-C or SIGTERM. */
export async function runSub(options: SubOptions, ctx: CliContext): Promise<number> {
  const session = openSession(options.server, { requestTimeoutMs: options.timeoutMs });
  const storage = createLocalOffsetStorage(options.offsetsFile);
  const paint = painterFor(ctx.stdout, ctx.env);
  const notice = (text: string): void => {
    ctx.stderr.write(`metaq: ${text}\n`);
  };
  const stop = deferred<StopReason>();
  // Messages beyond --max wait here until close() has begun, then fail: a delivery that fails
  // while the consumer stops is left unconsumed (not committed), and fetched by the next run.
  const beyondMax = deferred<void>();
  let printed = 0;
  const listener = async (message: ConsumedMessage): Promise<void> => {
    if (options.max !== undefined && printed >= options.max) {
      await beyondMax.promise;
      throw new Error('beyond --max; left for the next run');
    }
    printed += 1;
    await write(ctx.stdout, `${formatMessage(message, options.json, paint)}\n`);
    if (options.max !== undefined && printed >= options.max) stop.resolve('max');
  };
  const removeInterrupt = ctx.onInterrupt(() => stop.resolve('interrupted'));
  const offEvents = reportTrouble(session.factory, session.serverUrl, notice);
  let consumer: MessageConsumer | undefined;
  try {
    consumer = session.factory.createConsumer(
      {
        group: options.group,
        offset: 0,
        consumeFromMaxOffset: !options.fromBeginning,
        recoverPath: options.recoverPath,
        maxDelayFetchTimeInMills: IDLE_FETCH_DELAY_MS,
      },
      storage,
    );
    consumer.subscribe(options.topic, { maxSize: FETCH_MAX_SIZE }, listener);
    const started = session.guard(consumer.completeSubscribe()).then(() => 'started' as const);
    if ((await Promise.race([started, stop.promise])) === 'started' && ctx.stderr.isTTY === true) {
      notice(`consuming '${options.topic}' on ${session.serverUrl} as group '${options.group}'; Ctrl-C to stop`);
    }
    await stop.promise;
    const closing = consumer.close(); // stops the fetch loops at once, then commits
    beyondMax.resolve();
    await closing;
  } finally {
    beyondMax.resolve();
    removeInterrupt();
    offEvents();
    await consumer?.close().catch(() => undefined);
    await storage.close();
    await session.close();
  }
  return 0;
}

/**
 * Tells the person at the terminal about trouble the consumer retries by itself: a lost
 * connection, and broker error answers to fetches (each distinct one once).
 */
function reportTrouble(factory: MessageSessionFactory, serverUrl: string, notice: (text: string) => void): () => void {
  const seen = new Set<string>();
  let lost = false;
  const offs = [
    factory.on('connection.disconnect', () => {
      if (!lost) notice(`lost the connection to ${serverUrl}; reconnecting`);
      lost = true;
    }),
    factory.on('connection.connect', ({ reconnect }) => {
      if (reconnect && lost) notice(`reconnected to ${serverUrl}`);
      lost = false;
    }),
    factory.on('consumer.fetch_error', ({ topic, partition, error }) => {
      if (!(error instanceof BrokerError)) return;
      const key = `${partition} ${error.status} ${error.detail}`;
      if (seen.has(key)) return;
      seen.add(key);
      notice(`fetching '${topic}' partition ${partition}: broker answered ${error.status}: ${error.detail}; retrying`);
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}
