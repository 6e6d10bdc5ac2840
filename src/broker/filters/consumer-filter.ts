/**
 * A server-side consumer filter (MetaQ's `ConsumerMessageFilter`, metaq-reference §6.9): a
 * function from an ES module named by `group.<consumerGroup>=<module>` in a topic section, asked
 * for every record a `get` by that group would return.
 *
 * This wrapper runs it safely: anything but a synchronous `true` is a rejection, an exception is
 * a rejection (as MetaQ), and exceptions are logged once per burst (the first one, then at most
 * one summary per {@link ERROR_LOG_INTERVAL_MS}) so that a broken filter on a busy topic does not
 * flood the log.
 */
import type { Logger } from '../../common/logger.js';

/** What a server-side filter is shown of a stored message. */
export interface ServerFilterMessage {
  /** The broker-assigned message id. */
  readonly id: bigint;
  readonly topic: string;
  readonly partition: number;
  /** Byte offset of the record in the partition log. */
  readonly offset: number;
  /** The payload (without the attribute block); a copy, the filter may keep it. */
  readonly data: Buffer;
  /** The attribute, when the message has one. */
  readonly attribute?: string;
  /** The raw flag word (bit 0: has an attribute). */
  readonly flag: number;
}

/**
 * The function a filter module exports (default export, or a named export `filter`): `true`
 * sends the message to the group, anything else skips it. Must be synchronous.
 */
export type ServerMessageFilter = (group: string, message: ServerFilterMessage) => boolean;

/** Where a filter came from, for logs and error messages. */
export interface ConsumerFilterSource {
  /** The topic section's pattern, e.g. `orders` or `orders-*`. */
  readonly pattern: string;
  readonly group: string;
  /** Absolute path of the module. */
  readonly module: string;
}

/** At most one "the filter keeps failing" log line per this many milliseconds. */
export const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Counters of one filter since start-up. A record at the edge of an answer may be shown to the
 * filter twice (see filter-applier.ts), so these count answers, not calls.
 */
export interface ConsumerFilterCounters {
  /** Records sent to the group. */
  delivered: number;
  /** Records skipped for the group (rejected, or the filter threw). */
  filtered: number;
  /** Filter calls that threw or did not return a boolean. */
  errors: number;
}

/** A loaded filter of one (topic section, consumer group). */
export class ConsumerFilter {
  readonly source: ConsumerFilterSource;
  readonly counters: ConsumerFilterCounters = { delivered: 0, filtered: 0, errors: 0 };
  readonly #fn: ServerMessageFilter;
  readonly #log: Logger;
  readonly #now: () => number;
  #lastErrorLogAt = Number.NEGATIVE_INFINITY;
  #suppressedErrors = 0;

  constructor(source: ConsumerFilterSource, fn: ServerMessageFilter, log: Logger, now: () => number = Date.now) {
    this.source = source;
    this.#fn = fn;
    this.#log = log;
    this.#now = now;
  }

  /** Asks the filter about one message; never throws. */
  accepts(message: ServerFilterMessage): boolean {
    let verdict: unknown;
    const fn = this.#fn; // called as a plain function: `this` is not ours to hand out
    try {
      verdict = fn(this.source.group, message);
    } catch (error) {
      return this.#failed(message, error);
    }
    if (verdict === true || verdict === false) return verdict;
    let got: string;
    if (verdict instanceof Promise) {
      verdict.catch(() => undefined); // never an unhandled rejection from an async filter
      got = 'a Promise (filters must be synchronous)';
    } else {
      // No String() of objects: a hostile toString() must not make this throw.
      if (verdict === null) got = 'null';
      else if (typeof verdict === 'object' || typeof verdict === 'function') got = `a value of type ${typeof verdict}`;
      else got = `${typeof verdict} ${String(verdict)}`;
    }
    return this.#failed(message, new TypeError(`the filter returned ${got}, expected true or false`));
  }

  #failed(message: ServerFilterMessage, error: unknown): false {
    this.counters.errors += 1;
    const now = this.#now();
    if (now - this.#lastErrorLogAt < ERROR_LOG_INTERVAL_MS) {
      this.#suppressedErrors += 1;
      return false;
    }
    const suppressed = this.#suppressedErrors;
    this.#lastErrorLogAt = now;
    this.#suppressedErrors = 0;
    const { pattern, group, module } = this.source;
    this.#log.error(
      { err: error, topic: message.topic, partition: message.partition, offset: message.offset, group, pattern, module, suppressedSinceLastLog: suppressed },
      'server-side consumer filter failed; the message counts as rejected (further failures within 10 s are counted, not logged)',
    );
    return false;
  }
}
