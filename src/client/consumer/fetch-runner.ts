/**
 * The pull loop of one partition (MetaQ's `FetchRequestRunner`, metaq-reference §6.6):
 *
 * 1. `get topic group partition offset maxSize`;
 * 2. `value` → walk the records (CRC-checked), give each to the filter and the listener, one at
 *    a time, in order; advance the offset after each message is done with (delivered,
 *    filtered out, or moved to the recover store). Fetch again at once.
 * 3. 404 / 403 / nothing new → wait (`maxDelay / 10` more per empty fetch, up to `maxDelay`).
 * 4. 301 → continue at the offset the broker gives (committed like any other progress).
 * 5. A record with a bad CRC → ask the broker (`offset`) for the start of the segment holding
 *    it and continue from there: this realigns a consumer whose offset was not on a record
 *    boundary. Records below the furthest offset already consumed are skipped on that re-read
 *    (no duplicates); if the same position is bad again it is real corruption and the record
 *    is skipped with an error log (MetaQ would loop on it forever).
 * 6. No whole message in a non-empty answer → the message is larger than `maxSize`: after
 *    `maxIncreaseFetchDataRetries` such answers `maxSize` doubles (fetch-size.ts).
 * 7. 404 because the offset is beyond the end of the log (data deleted, log recreated, failover
 *    to a broker with less data): MetaQ's broker keeps answering 404 unless it runs with
 *    `updateConsumerOffsets=true`, so the consumer would wait forever. At the first 404 of a
 *    streak the runner asks where the log ends (`get` at Long.MAX_VALUE, answered 301 + max
 *    offset by every MetaQ broker) — unless the broker itself just confirmed the offset (it is
 *    the end of data the broker sent, or a 301 target) and no fetch failed since — and during
 *    a streak at most every {@link OFFSET_RANGE_CHECK_INTERVAL_MS}. When the offset is past the
 *    end, the runner moves to the end or the start of the log (`offsetOutOfRange`), logs a
 *    warning and commits the new offset like other progress. An offset below the start is
 *    answered 301 by the broker itself (step 4).
 *
 * Errors (timeouts, lost connections, 5xx) back off like empty fetches and retry forever; a
 * consumer never gives up on a partition by itself.
 */
import type { Logger } from '../../common/logger.js';
import { LONG_MAX_OFFSET, type LongMaxOffset } from '../../protocol/frames.js';
import { ATTRIBUTE_FLAG, decodeMessageData } from '../../protocol/message-data.js';
import { MessageRecordIterator, type MessageRecord } from '../../protocol/message-records.js';
import { InvalidRecordError } from '../../protocol/protocol-error.js';
import { RECORD_HEADER_SIZE } from '../../protocol/record.js';
import { parseBrokerUrl } from '../broker-url.js';
import type { ClientEmitter } from '../instrumentation.js';
import type { ConsumedMessage, MessageFilter, MessageListener } from '../message.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import type { BrokerConnection } from '../transport/broker-connection.js';
import { ABORTED, sleep, untilAborted } from '../util/sleep.js';
import type { ResolvedConsumerConfig } from './consumer-config.js';
import { deliver, type DeliveryContext } from './deliver.js';
import { FetchBackoff } from './fetch-backoff.js';
import { interpretGet, interpretOffset, isMissingPartition, type FetchOutcome } from './fetch-response.js';
import { FetchSizeTuner } from './fetch-size.js';
import type { RecoverStore } from './recover-store.js';
import { ResultCode } from '../../protocol/result-codes.js';

/**
 * During a streak of 404 answers, how often the runner checks again whether its offset is beyond
 * the end of the log (step 7). An idle consumer caught up with its partition thus adds one small
 * request per this interval at most.
 */
export const OFFSET_RANGE_CHECK_INTERVAL_MS = 10_000;

/** Settings of one {@link FetchRunner}. */
export interface FetchRunnerOptions {
  readonly topic: string;
  readonly ref: PartitionRef;
  /** Where to start: a committed offset, the configured one, or {@link LONG_MAX_OFFSET} ("the end"). */
  readonly offset: number | LongMaxOffset;
  /** Id of the last message before `offset` (`-1n` when unknown). */
  readonly messageId: bigint;
  /** The subscription's `maxSize`. */
  readonly maxSize: number;
  readonly config: ResolvedConsumerConfig;
  readonly listener: MessageListener;
  readonly filter: MessageFilter | undefined;
  readonly connection: Pick<BrokerConnection, 'request'>;
  readonly recoverStore: RecoverStore;
  readonly emitter: ClientEmitter;
  readonly log: Logger;
}

/** A partition's progress, for commits. */
export interface FetchPosition {
  /** Next offset to fetch; `undefined` while a start "at the end" is not resolved yet. */
  readonly offset: number | undefined;
  readonly messageId: bigint;
  /** Increases with every change; a commit records the version it saved. */
  readonly version: number;
}

/** The fetch loop of one partition. Internal. */
export class FetchRunner {
  readonly #o: FetchRunnerOptions;
  readonly #abort = new AbortController();
  readonly #backoff: FetchBackoff;
  readonly #size: FetchSizeTuner;
  readonly #delivery: DeliveryContext;
  #offset: number | LongMaxOffset;
  #messageId: bigint;
  #version = 0;
  /** Records starting below this offset were already consumed (see step 5). */
  #floor: number;
  /** Absolute offset of the last record found corrupt, to tell corruption from misalignment. */
  #lastBadOffset: number | undefined;
  #failing = false;
  /**
   * Step 7: false while the offset comes from outside (a commit, the configuration) or a fetch
   * failed since the broker last vouched for it: the next 404 then checks it at once.
   */
  #offsetConfirmed = false;
  #lastRangeCheckAt = Number.NEGATIVE_INFINITY;
  #unsubscribe: () => void = () => undefined;
  #loop: Promise<void> | undefined;

  constructor(options: FetchRunnerOptions) {
    this.#o = options;
    this.#offset = options.offset;
    this.#messageId = options.messageId;
    this.#floor = options.offset === LONG_MAX_OFFSET ? 0 : options.offset;
    this.#backoff = new FetchBackoff(options.config.maxDelayFetchTimeInMills);
    this.#size = new FetchSizeTuner(options.maxSize, options.config.maxIncreaseFetchDataRetries);
    this.#delivery = {
      listener: options.listener,
      group: options.config.group,
      brokerId: options.ref.brokerId,
      maxFetchRetries: options.config.maxFetchRetries,
      maxDelayMs: options.config.maxDelayFetchTimeInMills,
      recoverStore: options.recoverStore,
      signal: this.#abort.signal,
      emitter: options.emitter,
      log: options.log,
    };
  }

  /** The topic this runner fetches. */
  get topic(): string {
    return this.#o.topic;
  }

  /** The partition this runner fetches. */
  get ref(): PartitionRef {
    return this.#o.ref;
  }

  /** The current `maxSize` (it adapts to large messages). */
  get maxSize(): number {
    return this.#size.current;
  }

  /** Progress to commit. */
  position(): FetchPosition {
    // After a realignment the fetch offset is temporarily behind what was consumed; the floor is not.
    const offset = this.#offset === LONG_MAX_OFFSET ? undefined : Math.max(this.#offset, this.#floor);
    return { offset, messageId: this.#messageId, version: this.#version };
  }

  /** Starts fetching. */
  start(): void {
    if (this.#loop !== undefined) return;
    // A reconnect may mean a restarted broker with less data (step 7): check the offset again.
    // (The fetch itself may not fail: the connection can come back while this loop sleeps.)
    const url = normalizedUrl(this.#o.ref.brokerUrl);
    this.#unsubscribe = this.#o.emitter.on('connection.connect', ({ brokerUrl, reconnect }) => {
      if (reconnect && brokerUrl === url) this.#offsetConfirmed = false;
    });
    this.#loop = this.#run();
  }

  /**
   * Stops fetching. Resolves once the listener call in progress (if any) has returned; a
   * message whose listener is being retried is left unconsumed (it is fetched again later).
   */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#unsubscribe();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const requestOffset = this.#offset;
      let outcome: FetchOutcome | typeof ABORTED;
      try {
        outcome = await untilAborted(
          this.#o.connection.request(
            { type: 'get', topic: this.#o.topic, group: this.#o.config.group, partition: this.#o.ref.partition, offset: requestOffset, maxSize: this.#size.current },
            this.#o.config.fetchTimeoutInMills,
            interpretGet,
          ),
          signal,
        );
      } catch (error) {
        this.#fetchFailed(error);
        await sleep(this.#backoff.miss(), signal);
        continue;
      }
      if (outcome === ABORTED) return;
      this.#recovered();
      const wasConfirmed = this.#offsetConfirmed;
      // Data from, or a 301 to, this offset: the broker vouches that it is inside the log.
      if (outcome.kind !== 'empty') this.#offsetConfirmed = true;
      switch (outcome.kind) {
        case 'value':
          // A get never carries LONG_MAX_OFFSET and answers with data: the broker answers it with 301.
          await this.#consume(requestOffset as number, outcome.body);
          break;
        case 'moved':
          if (outcome.offset === requestOffset) {
            await sleep(this.#backoff.miss(), signal);
          } else {
            // A forward skip from a position the broker had confirmed is routine with a server-side
            // filter (rejected messages skipped); anything else (start below the log start, a
            // committed offset moved) is worth an info line.
            const routine = wasConfirmed && typeof requestOffset === 'number' && outcome.offset > requestOffset;
            this.#o.log[routine ? 'debug' : 'info']({ from: String(requestOffset), to: outcome.offset }, 'broker moved the fetch offset');
            this.#moveTo(outcome.offset, this.#messageId);
            this.#floor = outcome.offset;
          }
          break;
        case 'empty':
          // A partition the broker has no log for yet has no end to compare with: wait for it.
          if (outcome.status === ResultCode.NotFound && !isMissingPartition(outcome) && requestOffset !== LONG_MAX_OFFSET && this.#rangeCheckDue()) {
            const moved = await this.#resolveOutOfRange(requestOffset);
            if (moved || signal.aborted) break; // fetch from the new offset at once
          }
          await sleep(this.#backoff.miss(), signal);
          break;
      }
    }
  }

  /** Step 7: whether this 404 should check the offset against the end of the log. */
  #rangeCheckDue(): boolean {
    const now = Date.now();
    if (this.#offsetConfirmed && now - this.#lastRangeCheckAt < OFFSET_RANGE_CHECK_INTERVAL_MS) return false;
    this.#lastRangeCheckAt = now;
    return true;
  }

  /**
   * Step 7: asks where the log ends and, when `requestOffset` is past it, moves to the end or
   * the start of the log per `offsetOutOfRange`. True when the offset moved.
   */
  async #resolveOutOfRange(requestOffset: number): Promise<boolean> {
    const { topic, ref, config, connection, emitter, log } = this.#o;
    const signal = this.#abort.signal;
    const base = { topic, group: config.group, partition: ref.partition };
    try {
      // Every MetaQ broker answers a get at Long.MAX_VALUE with 301 + its max offset.
      const end = await untilAborted(connection.request({ type: 'get', ...base, offset: LONG_MAX_OFFSET, maxSize: this.#size.current }, config.fetchTimeoutInMills, interpretGet), signal);
      // 404: the partition is gone meanwhile; nothing to compare with (the next 404 asks again).
      if (end === ABORTED || end.kind !== 'moved') return false;
      this.#offsetConfirmed = true;
      if (requestOffset <= end.offset) return false;
      const maxOffset = end.offset;
      let target = maxOffset;
      if (config.offsetOutOfRange === 'min') {
        // `offset 0` answers the start of the first segment: the log's min offset.
        const start = await untilAborted(connection.request({ type: 'offset', ...base, offset: 0 }, config.fetchTimeoutInMills, interpretOffset), signal);
        if (start === ABORTED) return false;
        target = Math.min(start, maxOffset);
      }
      log.warn(
        { topic, partition: ref.partition, group: config.group, from: requestOffset, to: target, maxOffset, policy: config.offsetOutOfRange },
        `consumer offset ${requestOffset} is beyond the end of the log of ${topic}-${ref.partition} (max offset ${maxOffset}); ` +
          `continuing at the ${config.offsetOutOfRange === 'min' ? 'start' : 'end'} of the log, offset ${target} (offsetOutOfRange='${config.offsetOutOfRange}')`,
      );
      this.#moveTo(target, this.#messageId);
      this.#floor = target; // a move back: records from here on were never consumed
      this.#backoff.reset();
      if (emitter.has('consumer.offset_reset')) {
        emitter.emit('consumer.offset_reset', { ...base, from: requestOffset, to: target, policy: config.offsetOutOfRange, maxOffset });
      }
      return true;
    } catch (error) {
      this.#fetchFailed(error);
      return false;
    }
  }

  /** Consumes the records of one `value` body fetched at `requestOffset`. */
  async #consume(requestOffset: number, body: Buffer): Promise<void> {
    const records = new MessageRecordIterator(body);
    try {
      for (const record of records) {
        if (!(await this.#handle(requestOffset, record))) return;
      }
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      await this.#realign(requestOffset + error.position, error, body);
      return;
    }
    if (records.consumed === 0) {
      if (body.length > 0 && this.#size.record(body.length, false)) {
        this.#o.log.warn({ maxSize: this.#size.current, offset: requestOffset }, 'no whole message fits in maxSize; doubled it');
      } else if (body.length > 0 && this.#size.atCeiling && this.#backoff.misses === 0) {
        this.#o.log.error(
          { maxSize: this.#size.current, offset: requestOffset, received: body.length },
          'the message at this offset is larger than the largest fetch (maxSize or the broker maxTransferSize); the partition is stuck until the limit is raised',
        );
      }
      await sleep(this.#backoff.miss(), this.#abort.signal);
      return;
    }
    this.#size.record(body.length, true);
    this.#backoff.reset();
  }

  /** Filters and delivers one record; false when the runner is stopping. */
  async #handle(requestOffset: number, record: MessageRecord): Promise<boolean> {
    if (this.#abort.signal.aborted) return false;
    const offset = requestOffset + record.position;
    const next = offset + record.size;
    if (offset < this.#floor) {
      // Re-read after a realignment: consumed before.
      this.#moveTo(next, record.id);
      return true;
    }
    const message = this.#message(offset, record);
    if (this.#o.filter !== undefined && !accepts(this.#o.filter, message)) {
      this.#moveTo(next, record.id);
      return true;
    }
    const outcome = await deliver(message, this.#delivery);
    if (outcome === 'stopped') return false;
    this.#moveTo(next, record.id);
    return true;
  }

  #message(offset: number, record: MessageRecord): ConsumedMessage {
    const { topic, ref } = this.#o;
    if ((record.flag & ATTRIBUTE_FLAG) === 0) {
      return { id: record.id, topic, partition: ref.partition, offset, data: record.data, flag: record.flag, recovered: false };
    }
    try {
      const { payload, attribute } = decodeMessageData(record.data, record.flag);
      return { id: record.id, topic, partition: ref.partition, offset, data: payload, attribute, flag: record.flag, recovered: false };
    } catch (error) {
      // The CRC matched, so the producer wrote a bad attribute block: hand over the raw data.
      this.#o.log.warn({ err: error, offset }, 'message flag announces an attribute the data does not hold; delivering the raw data');
      return { id: record.id, topic, partition: ref.partition, offset, data: record.data, flag: record.flag, recovered: false };
    }
  }

  #moveTo(offset: number, messageId: bigint): void {
    this.#offset = offset;
    this.#messageId = messageId;
    if (offset > this.#floor) this.#floor = offset;
    this.#version += 1;
  }

  /** Step 5: a bad record at absolute offset `badOffset`. */
  async #realign(badOffset: number, error: InvalidRecordError, body: Buffer): Promise<void> {
    const signal = this.#abort.signal;
    if (this.#lastBadOffset === badOffset) {
      this.#lastBadOffset = undefined;
      if (error.reason === 'bad-checksum') {
        const skipTo = badOffset + RECORD_HEADER_SIZE + body.readInt32BE(error.position);
        this.#o.log.error({ offset: badOffset, skipTo }, 'corrupt message (checksum mismatch) in the partition log; skipped');
        this.#moveTo(skipTo, this.#messageId);
        return;
      }
      // A garbage length at a position reached twice: nothing safe to skip to; retry later.
      this.#o.log.error({ offset: badOffset, reason: error.reason }, 'unreadable record in the partition log; retrying after a delay');
      await sleep(this.#backoff.miss(), signal);
      return;
    }
    this.#lastBadOffset = badOffset;
    this.#o.log.warn({ offset: badOffset, reason: error.reason }, 'invalid record; asking the broker for the segment start to realign');
    try {
      const start = await untilAborted(
        this.#o.connection.request(
          { type: 'offset', topic: this.#o.topic, group: this.#o.config.group, partition: this.#o.ref.partition, offset: badOffset },
          this.#o.config.fetchTimeoutInMills,
          interpretOffset,
        ),
        signal,
      );
      if (start === ABORTED) return;
      // Going back is not progress: keep the version so that nothing is committed for it.
      this.#offset = start;
    } catch (failure) {
      this.#fetchFailed(failure);
      await sleep(this.#backoff.miss(), signal);
    }
  }

  #fetchFailed(error: unknown): void {
    const { topic, ref, config, emitter, log } = this.#o;
    // After an outage (a broker restarted with less data, a failover) the first 404 checks again.
    this.#offsetConfirmed = false;
    if (!this.#failing) log.warn({ err: error }, 'fetch failed; backing off');
    else log.debug({ err: error }, 'fetch failed again');
    this.#failing = true;
    if (emitter.has('consumer.fetch_error')) emitter.emit('consumer.fetch_error', { topic, group: config.group, partition: ref.partition, error });
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#o.log.info('fetching again');
  }
}

/** `meta://host:port` as connections report it in events. */
function normalizedUrl(brokerUrl: string): string {
  try {
    return parseBrokerUrl(brokerUrl).url;
  } catch {
    return brokerUrl;
  }
}

/** Runs a filter; an exception counts as "reject", as in MetaQ. */
function accepts(filter: MessageFilter, message: ConsumedMessage): boolean {
  try {
    return Boolean(filter(message));
  } catch {
    return false;
  }
}
