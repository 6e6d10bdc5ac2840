/**
 * `metaq pub`: sends one message (the text argument), or one message per line of stdin (`-`).
 *
 *   metaq pub -t test "hello"
 *   seq 1 100 | metaq pub -t test -
 *
 * Lines from stdin are pipelined (up to {@link PUB_WINDOW} sends in flight on the one
 * connection, which keeps their order per partition) and their results printed in input order.
 */
import { createInterface } from 'node:readline';
import { keyHashSelector, type MessageProducer, type PartitionSelector, type SendResult } from '../../client/index.js';
import { topicNameError } from '../../common/config/topic-lookup.js';
import { MetaqError } from '../../common/errors.js';
import { formatSendResult } from '../output/format.js';
import {
  COMMON_OPTIONS,
  COMMON_OPTIONS_HELP,
  CliError,
  UsageError,
  formatOptionsHelp,
  parseCommandLine,
  parseInteger,
  resolveCommonOptions,
  type CommonOptions,
} from './args.js';
import { write, type CliContext } from './context.js';
import { openSession } from './session.js';

/** Sends from stdin in flight at once. */
export const PUB_WINDOW = 256;

export const PUB_USAGE = `Usage: metaq pub -t <topic> [options] <text | ->

Sends one message with <text>, or with - one message per line read from stdin
(empty lines are skipped). Prints "sent id=<id> partition=<p> offset=<o>" per message.

Options:
${formatOptionsHelp([
  ['-t, --topic <topic>', 'topic to send to (required)'],
  ['-a, --attribute <text>', 'MetaQ message attribute (consumers can filter on it)'],
  ['-p, --partition <n>', 'send to partition <n> (default: round-robin)'],
  ['-k, --key <key>', 'choose the partition by hashing <key> (same key, same partition)'],
  ...COMMON_OPTIONS_HELP,
])}

Examples:
  metaq pub -t test "hello world"
  metaq pub -t test -a greeting -k user-42 "hi"
  printf 'one\\ntwo\\n' | metaq pub -t test --json -`;

const PUB_OPTIONS = {
  ...COMMON_OPTIONS,
  topic: { type: 'string', short: 't' },
  attribute: { type: 'string', short: 'a' },
  partition: { type: 'string', short: 'p' },
  key: { type: 'string', short: 'k' },
} as const;

/** `metaq pub`'s options, resolved. */
export interface PubOptions extends CommonOptions {
  readonly topic: string;
  readonly attribute: string | undefined;
  readonly partition: number | undefined;
  readonly key: string | undefined;
  /** The message text, or `undefined` to read lines from stdin. */
  readonly text: string | undefined;
}

/**
 * Parses `metaq pub`'s arguments; `'help'` for `--help`.
 *
 * @throws {UsageError} for anything wrong.
 */
export function parsePubArgs(args: readonly string[], env: NodeJS.ProcessEnv): PubOptions | 'help' {
  const { values, positionals } = parseCommandLine('pub', { args: [...args], options: PUB_OPTIONS }, PUB_USAGE);
  if (values.help === true) return 'help';
  const common = resolveCommonOptions('pub', values, env, PUB_USAGE);
  if (values.topic === undefined) throw new UsageError('pub: -t/--topic is required', PUB_USAGE);
  const topicProblem = topicNameError(values.topic);
  if (topicProblem !== undefined) throw new UsageError(`pub: invalid topic ${JSON.stringify(values.topic)}: ${topicProblem}`, PUB_USAGE);
  if (positionals.length === 0) throw new UsageError('pub: give the message text, or - to read one message per line from stdin', PUB_USAGE);
  if (positionals.length > 1) {
    throw new UsageError(`pub: expected one message argument, got ${positionals.length}; quote text that contains spaces`, PUB_USAGE);
  }
  if (values.partition !== undefined && values.key !== undefined) throw new UsageError('pub: -p/--partition and -k/--key are mutually exclusive', PUB_USAGE);
  const partition = values.partition === undefined ? undefined : parseInteger('pub: -p/--partition', values.partition, PUB_USAGE, 0, 0x7fffffff);
  const text = positionals[0] as string;
  return { ...common, topic: values.topic, attribute: values.attribute, partition, key: values.key, text: text === '-' ? undefined : text };
}

/** Sends every message to one partition (`-p`); checked against the topic's partitions first. */
export function fixedPartitionSelector(partition: number): PartitionSelector {
  return {
    name: `partition-${partition}`,
    select(topic, partitions) {
      const ref = partitions.find((p) => p.partition === partition);
      if (ref === undefined) throw new CliError(`topic '${topic}' has no partition ${partition}`, { exitCode: 2 });
      return ref;
    },
  };
}

/** Describes a topic's partitions for an error message: `0-2`, `0`, or `0, 2, 5`. */
export function describePartitions(partitions: readonly number[]): string {
  const sorted = [...partitions].sort((a, b) => a - b);
  const contiguous = sorted.every((p, i) => p === (sorted[0] as number) + i);
  if (sorted.length > 1 && contiguous) return `${sorted[0]}-${sorted[sorted.length - 1]}`;
  return sorted.join(', ');
}

/** Runs `metaq pub`. */
export async function runPub(options: PubOptions, ctx: CliContext): Promise<number> {
  const session = openSession(options.server, { requestTimeoutMs: options.timeoutMs });
  try {
    const selector = options.partition !== undefined ? fixedPartitionSelector(options.partition) : options.key !== undefined ? keyHashSelector() : undefined;
    const producer = session.factory.createProducer(selector === undefined ? {} : { selector });
    await session.guard(producer.publish(options.topic));
    if (options.partition !== undefined) await checkPartition(options.topic, options.partition, session.factory.getPartitionsForTopic(options.topic));
    if (options.text !== undefined) {
      const result = await session.guard(producer.send(message(options, options.text)));
      await write(ctx.stdout, `${formatSendResult(result, options.json)}\n`);
      return 0;
    }
    return await pubLines(options, producer, ctx);
  } finally {
    await session.close();
  }
}

function message(options: PubOptions, text: string): { topic: string; data: string; attribute?: string; key?: string } {
  return {
    topic: options.topic,
    data: text,
    ...(options.attribute === undefined ? {} : { attribute: options.attribute }),
    ...(options.key === undefined ? {} : { key: options.key }),
  };
}

async function checkPartition(topic: string, partition: number, lookup: Promise<readonly { partition: number }[]>): Promise<void> {
  const numbers = (await lookup).map((p) => p.partition);
  if (numbers.includes(-1)) {
    throw new CliError(
      `cannot send to partition ${partition}: the broker's partition count for topic '${topic}' is unknown (its configuration is not readable)`,
    );
  }
  if (!numbers.includes(partition)) {
    throw new CliError(`topic '${topic}' has no partition ${partition} (its partitions: ${describePartitions(numbers)})`, { exitCode: 2 });
  }
}

/**
 * `pub -`: one message per stdin line. Sends are pipelined (up to {@link PUB_WINDOW} in
 * flight); each result is printed as soon as it and every earlier one are in, so a person typing
 * lines sees each one confirmed at once.
 */
async function pubLines(options: PubOptions, producer: MessageProducer, ctx: CliContext): Promise<number> {
  const lines = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  let interrupted = false;
  const removeInterrupt = ctx.onInterrupt(() => {
    interrupted = true;
    lines.close();
  });
  let firstError: unknown;
  let failures = 0;
  let total = 0;
  /** Prints the results in input order; never rejects. */
  let printing: Promise<void> = Promise.resolve();
  /** The printing promise of each send still in the window. */
  const window: Promise<void>[] = [];
  const report = async (result: SendResult): Promise<void> => write(ctx.stdout, `${formatSendResult(result, options.json)}\n`);
  const fail = (error: unknown): void => {
    failures += 1;
    firstError ??= error;
    lines.close(); // stop reading; the sends already in flight are still reported
  };
  try {
    for await (const line of lines) {
      if (firstError !== undefined || interrupted) break;
      if (line === '') continue;
      total += 1;
      const sending = producer.send(message(options, line));
      printing = printing.then(() => sending.then(report, fail));
      window.push(printing);
      if (window.length >= PUB_WINDOW) await window.shift();
    }
    await printing;
  } finally {
    removeInterrupt();
  }
  if (firstError !== undefined) {
    if (total === 1) throw firstError;
    const text = firstError instanceof Error ? firstError.message : String(firstError);
    throw new CliError(`${text} (${failures} of the ${total} messages read were not sent; stopped reading stdin)`, {
      ...(firstError instanceof MetaqError ? { code: firstError.code } : {}),
      cause: firstError,
    });
  }
  return interrupted ? 130 : 0;
}
