/**
 * The log of one topic-partition: an ordered run of segment files, of which only the last is
 * written. Offsets are absolute byte positions in the concatenation of all segments.
 *
 * Writes go through one queue per log, drained by a single writer loop, so records are never
 * interleaved and many concurrent appends become one `writev` (and, with group commit, one
 * fdatasync). Readers see only what the flush policy lets them see: with group commit, only
 * bytes already on disk, so a consumer can never read a message that a crash could take back.
 */
import fs from 'node:fs';
import type { Logger } from '../common/logger.js';
import { StoreClosedError, StoreCorruptError, StoreIoError, InvalidArgumentError } from '../common/errors.js';
import { fdatasync, fsyncDirectory, readAt, writevAll, writevAllSync } from './file-io.js';
import { FlushCounter, isGroupCommit, type FlushSettings } from './flush-policy.js';
import { encodeRecordHeader, RECORD_HEADER_SIZE, type RecordInput } from '../protocol/record.js';
import { scanSegment } from './recovery.js';
import { Segment } from './segment.js';
import { segmentFileName, parseSegmentFileName } from './segment-name.js';

/** Settings of one partition log. */
export interface PartitionLogOptions extends FlushSettings {
  readonly topic: string;
  readonly partition: number;
  /** The partition's directory (`<dataPath>/<topic>-<partition>`); must exist. */
  readonly dir: string;
  /** Roll to a new segment once the active one has at least this many bytes. */
  readonly maxSegmentSize: number;
  /** Largest data length of one record; a larger length field found on recovery is corruption. */
  readonly maxRecordDataLength: number;
  readonly logger: Logger;
}

/** Where an appended batch landed. */
export interface AppendedBatch {
  /** Absolute offset of the first record. */
  readonly offset: number;
  /** Total bytes of the batch (headers included). */
  readonly length: number;
  /** Absolute offset of each record, in input order. */
  readonly offsets: readonly number[];
}

/** Outcome of {@link PartitionLog.read}: what MetaQ's `get` needs to answer. */
export type ReadResult =
  /** Bytes starting at the requested offset, clipped at the end of its segment (may end mid-record). */
  | { readonly kind: 'data'; readonly data: Buffer }
  /** The offset is below the first retained byte; resume at `minOffset`. */
  | { readonly kind: 'before-start'; readonly minOffset: number }
  /** Nothing at or after the offset yet; `maxOffset` is the end of the readable log. */
  | { readonly kind: 'past-end'; readonly maxOffset: number };

/** A segment as retention sees it. */
export interface SegmentInfo {
  readonly path: string;
  readonly start: number;
  readonly size: number;
  readonly mtimeMs: number;
}

interface PendingWrite {
  readonly buffers: Buffer[];
  readonly records: number;
  readonly bytes: number;
  /** Called with the offset of the first record once the write may be acknowledged. */
  readonly complete: (offset: number) => void;
  readonly reject: (error: unknown) => void;
}

/** Upper bound of bytes written by one `writev`; keeps a burst from delaying acks for long. */
const MAX_WRITE_BYTES = 4 * 1024 * 1024;

/** Largest batch {@link PartitionLog.appendBatch} writes synchronously (see "Why a synchronous write" there). */
const MAX_SYNC_WRITE_BYTES = 64 * 1024;

/** An open partition log. Create with {@link PartitionLog.open}. */
export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  readonly #options: PartitionLogOptions;
  readonly #log: Logger;
  readonly #groupCommit: boolean;
  readonly #segments: Segment[];
  readonly #queue: PendingWrite[] = [];
  readonly #flushCounter: FlushCounter;
  #draining: Promise<void> | undefined;
  #flushing: Promise<void> | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #writtenEnd: number;
  #durableEnd: number;
  #failure: Error | undefined;
  #closed = false;
  #appendedRecords = 0;
  #syncs = 0;
  #durableWaiters: { offset: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Id of the last record found on disk at open time, if the active segment had one. */
  readonly recoveredLastId: bigint | undefined;

  private constructor(options: PartitionLogOptions, segments: Segment[], recoveredLastId: bigint | undefined) {
    this.topic = options.topic;
    this.partition = options.partition;
    this.dir = options.dir;
    this.#options = options;
    this.#log = options.logger;
    this.#groupCommit = isGroupCommit(options);
    this.#segments = segments;
    this.#writtenEnd = this.#active.end;
    this.#durableEnd = this.#active.end;
    this.recoveredLastId = recoveredLastId;
    this.#flushCounter = new FlushCounter(options);
    if (!this.#groupCommit) {
      // The interval flusher covers quiet periods, when no append comes to trigger a flush.
      this.#flushTimer = setInterval(() => {
        if (this.#writtenEnd > this.#durableEnd) this.#startBackgroundFlush();
      }, options.unflushInterval);
      this.#flushTimer.unref();
    }
  }

  /**
   * Opens the log in `options.dir`: checks that the segments are contiguous, then validates the
   * last segment record by record and truncates a torn or corrupt tail. Creates the first
   * segment when the directory has none.
   * @throws StoreCorruptError when the segments are not contiguous (nothing is changed on disk).
   */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    const names = await fs.promises.readdir(options.dir);
    const starts = names
      .map((name) => parseSegmentFileName(name))
      .filter((start): start is number => start !== undefined)
      .sort((a, b) => a - b);
    const segments: Segment[] = [];
    try {
      for (const [i, start] of starts.entries()) segments.push(await Segment.open(options.dir, start, i === starts.length - 1));
      assertContiguous(options.dir, segments);
      let lastId: bigint | undefined;
      const last = segments.at(-1);
      if (last === undefined) {
        segments.push(await Segment.create(options.dir, 0));
        await fsyncDirectory(options.dir);
      } else {
        lastId = await recoverTail(last, options);
      }
      return new PartitionLog(options, segments, lastId);
    } catch (error) {
      await Promise.all(segments.map((s) => s.close()));
      throw error;
    }
  }

  get #active(): Segment {
    const last = this.#segments.at(-1);
    if (last === undefined) throw new Error('partition log has no segment');
    return last;
  }

  /** First retained offset. */
  get minOffset(): number {
    return this.#segments[0]?.start ?? 0;
  }

  /** End of the log as readers see it (with group commit: the end of what is on disk). */
  get maxOffset(): number {
    return this.#groupCommit ? this.#durableEnd : this.#writtenEnd;
  }

  /** End of everything written, synced or not. */
  get writtenOffset(): number {
    return this.#writtenEnd;
  }

  /** End of what is known to be on disk. */
  get durableOffset(): number {
    return this.#durableEnd;
  }

  /** Records appended since the log was opened. */
  get appendedRecords(): number {
    return this.#appendedRecords;
  }

  /** fdatasync/fsync calls made since the log was opened (group commit shares one among many appends). */
  get syncCount(): number {
    return this.#syncs;
  }

  /** Number of segment files. */
  get segmentCount(): number {
    return this.#segments.length;
  }

  /** Appends one record; resolves with its offset once the flush policy allows the ack. */
  append(record: RecordInput): Promise<number> {
    const refused = this.#refusal([record]);
    if (refused !== undefined) return Promise.reject(refused);
    const header = encodeRecordHeader(record);
    // The hot path of every put: no per-record arrays beyond the iovec pair.
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ buffers: [header, record.data], records: 1, bytes: RECORD_HEADER_SIZE + record.data.length, complete: resolve, reject });
      this.#kickWriter();
    });
  }

  /**
   * Appends records as one contiguous write (a transaction commit uses this so that its
   * messages are adjacent). Resolves once the flush policy allows the ack.
   *
   * Why a synchronous write (without group commit only): a commit is answered once its batch is
   * in the page cache, and the queued path costs a turn of the event loop (setImmediate) plus a
   * hop through libuv's thread pool, tens of microseconds each on a loaded machine, for a write
   * that itself takes a few. So a small batch (up to MAX_SYNC_WRITE_BYTES) that finds the writer
   * idle is written at once with `writevSync`: same bytes, same order (nothing is queued or in
   * flight before it), same flush policy. Not with group commit, where the ack waits for an
   * fdatasync anyway and concurrent appends must share it; not when the write fills the segment
   * (the roll is the writer's job).
   */
  appendBatch(records: readonly RecordInput[]): Promise<AppendedBatch> {
    const refused = this.#refusal(records);
    if (refused !== undefined) return Promise.reject(refused);
    const buffers: Buffer[] = [];
    const sizes: number[] = [];
    let bytes = 0;
    for (const record of records) {
      buffers.push(encodeRecordHeader(record), record.data);
      sizes.push(RECORD_HEADER_SIZE + record.data.length);
      bytes += RECORD_HEADER_SIZE + record.data.length;
    }
    const appended = (offset: number): AppendedBatch => {
      const offsets: number[] = [];
      let next = offset;
      for (const size of sizes) {
        offsets.push(next);
        next += size;
      }
      return { offset, length: bytes, offsets };
    };
    if (
      !this.#groupCommit &&
      bytes <= MAX_SYNC_WRITE_BYTES &&
      this.#queue.length === 0 &&
      this.#draining === undefined &&
      this.#active.size + bytes < this.#options.maxSegmentSize
    ) {
      try {
        return Promise.resolve(appended(this.#writeNow(buffers, records.length, bytes)));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<AppendedBatch>((resolve, reject) => {
      const complete = (offset: number): void => resolve(appended(offset));
      this.#queue.push({ buffers, records: records.length, bytes, complete, reject });
      this.#kickWriter();
    });
  }

  /**
   * Writes a batch synchronously at the end of the active segment (see appendBatch); the caller
   * checked that the writer is idle and the batch fits. Returns the offset of its first record.
   * @throws StoreIoError when the write fails (the partial write is cut off, as in the writer;
   *   if even that fails, the log fails as it does there).
   */
  #writeNow(buffers: readonly Buffer[], records: number, bytes: number): number {
    const segment = this.#active;
    const position = segment.size;
    try {
      writevAllSync(segment.fd, buffers, position);
    } catch (error) {
      const failure = new StoreIoError(`writing to ${segment.path} failed`, error);
      try {
        fs.ftruncateSync(segment.fd, position);
      } catch (truncateError) {
        this.#fail(new StoreIoError(`could not cut a failed write from ${segment.path}; restart the broker to recover`, truncateError), []);
        throw this.#failure ?? failure;
      }
      throw failure;
    }
    segment.size += bytes;
    this.#writtenEnd = segment.end;
    this.#appendedRecords += records;
    if (this.#flushCounter.appended(records)) this.#startBackgroundFlush();
    return segment.start + position;
  }

  /** Why these records cannot be appended now, if they cannot. */
  #refusal(records: readonly RecordInput[]): Error | undefined {
    if (this.#closed) return new StoreClosedError(`partition ${this.topic}-${this.partition}`);
    if (this.#failure !== undefined) return this.#failure;
    if (records.length === 0) return new InvalidArgumentError('appendBatch needs at least one record');
    for (const record of records) {
      if (record.data.length > this.#options.maxRecordDataLength) {
        return new InvalidArgumentError(`record of ${record.data.length} bytes exceeds the limit of ${this.#options.maxRecordDataLength} bytes`);
      }
    }
    return undefined;
  }

  /**
   * Starts the writer loop unless it runs; restarts it if appends came in as it finished.
   *
   * Why setImmediate: appends tend to arrive in bursts within one turn of the event loop (all
   * requests parsed from one socket read, or all producers woken by the previous ack). Starting
   * the write after the current turn lets the whole burst go out in one write and one fdatasync
   * instead of a write for the first append and another for the rest.
   */
  #kickWriter(): void {
    if (this.#draining !== undefined) return;
    this.#draining = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#drain())
      .finally(() => {
        this.#draining = undefined;
        if (this.#queue.length > 0 && this.#failure === undefined) this.#kickWriter();
      });
  }

  /** The single writer: writes queued batches in order, syncs per the flush policy, acks. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failure === undefined) {
        const batch = this.#takeWriteBatch();
        const segment = this.#active;
        const position = segment.size;
        const buffers: Buffer[] = [];
        let bytes = 0;
        let records = 0;
        for (const w of batch) {
          for (const b of w.buffers) buffers.push(b);
          bytes += w.bytes;
          records += w.records;
        }
        try {
          await writevAll(segment.fd, buffers, position);
        } catch (error) {
          await this.#undoFailedWrite(segment, position, batch, error);
          continue;
        }
        segment.size += bytes;
        this.#writtenEnd = segment.end;
        this.#appendedRecords += records;
        if (this.#groupCommit) {
          try {
            this.#syncs += 1;
            await fdatasync(segment.fd);
          } catch (error) {
            this.#fail(new StoreIoError(`fdatasync of ${segment.path} failed; restart the broker to recover the log from disk`, error), batch);
            return;
          }
          this.#setDurable(this.#writtenEnd);
        } else if (this.#flushCounter.appended(records)) {
          this.#startBackgroundFlush();
        }
        let offset = segment.start + position;
        for (const w of batch) {
          w.complete(offset);
          offset += w.bytes;
        }
        if (segment.size >= this.#options.maxSegmentSize) await this.#roll();
      }
    } catch (error) {
      this.#fail(new StoreIoError(`writing to ${this.dir} failed`, error), []);
    }
  }

  #takeWriteBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    let bytes = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0];
      if (next === undefined || (batch.length > 0 && bytes + next.bytes > MAX_WRITE_BYTES)) break;
      this.#queue.shift();
      batch.push(next);
      bytes += next.bytes;
    }
    return batch;
  }

  /** A failed write may have left part of the batch in the file: cut it off, fail only this batch. */
  async #undoFailedWrite(segment: Segment, position: number, batch: PendingWrite[], error: unknown): Promise<void> {
    const failure = new StoreIoError(`writing to ${segment.path} failed`, error);
    try {
      await new Promise<void>((resolve, reject) => fs.ftruncate(segment.fd, position, (e) => (e === null ? resolve() : reject(e))));
      for (const w of batch) w.reject(failure);
    } catch (truncateError) {
      this.#fail(new StoreIoError(`could not cut a failed write from ${segment.path}; restart the broker to recover`, truncateError), batch);
    }
  }

  /**
   * After an fsync failure the page cache may have dropped the dirty pages it could not write,
   * so nothing about the file can be trusted any more (PostgreSQL's "fsyncgate"): refuse all
   * further appends; a restart re-reads the log from disk and truncates any bad tail.
   */
  #fail(error: Error, inFlight: PendingWrite[]): void {
    this.#failure ??= error;
    this.#log.error({ err: error }, 'partition log failed; appends are refused until restart');
    for (const w of inFlight) w.reject(error);
    for (const w of this.#queue.splice(0)) w.reject(error);
    for (const w of this.#durableWaiters.splice(0)) w.reject(error);
  }

  #startBackgroundFlush(): void {
    if (this.#flushing !== undefined || this.#failure !== undefined) return;
    this.#flushing = this.flush().finally(() => {
      this.#flushing = undefined;
    });
    this.#flushing.catch(() => undefined);
  }

  /** Forces everything written so far to disk. */
  async flush(): Promise<void> {
    const segment = this.#active;
    const target = this.#writtenEnd;
    this.#flushCounter.flushStarted();
    try {
      this.#syncs += 1;
      await fdatasync(segment.fd);
    } catch (error) {
      this.#fail(new StoreIoError(`fdatasync of ${segment.path} failed; restart the broker to recover the log from disk`, error), []);
      throw this.#failure;
    }
    // A roll may have happened meanwhile; it synced the old segment itself.
    if (target > this.#durableEnd && segment === this.#active) this.#setDurable(target);
  }

  /**
   * Resolves once every byte before `offset` is on disk. With group commit that is already
   * true for every acknowledged append; with `unflushThreshold > 0` it waits for the next flush.
   * (The transaction engine writes its APPLIED record only then: that record lets a replay skip
   * a batch, so it must never reach the disk before the batch does.)
   */
  whenDurable(offset: number): Promise<void> {
    if (offset <= this.#durableEnd) return Promise.resolve();
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    // No flush is forced: the next one (threshold, interval or roll) resolves it.
    return new Promise((resolve, reject) => this.#durableWaiters.push({ offset, resolve, reject }));
  }

  #setDurable(offset: number): void {
    if (offset <= this.#durableEnd) return;
    this.#durableEnd = offset;
    if (this.#durableWaiters.length === 0) return;
    const waiting = this.#durableWaiters;
    this.#durableWaiters = [];
    for (const waiter of waiting) {
      if (waiter.offset <= offset) waiter.resolve();
      else this.#durableWaiters.push(waiter);
    }
  }

  /** Freezes the full active segment (fully synced) and starts a new one after it. */
  async #roll(): Promise<void> {
    const old = this.#active;
    // fsync, not fdatasync: the file's mtime must reach the disk too, since retention and the
    // message id floor read it after a restart.
    this.#syncs += 1;
    await new Promise<void>((resolve, reject) => fs.fsync(old.fd, (e) => (e === null ? resolve() : reject(e))));
    this.#setDurable(old.end);
    const next = await Segment.create(this.dir, old.end);
    await fsyncDirectory(this.dir);
    this.#segments.push(next);
    this.#log.info({ segment: next.path }, 'rolled to a new segment');
  }

  /** The segment holding `offset`, assuming minOffset <= offset < end of the last segment. */
  #segmentFor(offset: number): Segment {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const seg = this.#segments[mid];
      if (seg !== undefined && seg.start <= offset) lo = mid;
      else hi = mid - 1;
    }
    const found = this.#segments[lo];
    if (found === undefined) throw new Error('partition log has no segment');
    return found;
  }

  /**
   * Reads up to `maxSize` bytes starting at `offset`, never past the end of the segment that
   * holds `offset` nor past {@link maxOffset}. The slice may end in the middle of a record.
   */
  async read(offset: number, maxSize: number): Promise<ReadResult> {
    if (this.#closed) throw new StoreClosedError(`partition ${this.topic}-${this.partition}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(maxSize) || maxSize <= 0) {
      throw new InvalidArgumentError(`invalid read of ${maxSize} bytes at offset ${offset}`);
    }
    if (offset < this.minOffset) return { kind: 'before-start', minOffset: this.minOffset };
    const end = this.maxOffset;
    if (offset >= end) return { kind: 'past-end', maxOffset: end };
    const segment = this.#segmentFor(offset);
    const length = Math.min(maxSize, Math.min(segment.end, end) - offset);
    if (length <= 0) return { kind: 'past-end', maxOffset: end };
    segment.acquire();
    try {
      return { kind: 'data', data: await readAt(segment.fd, length, offset - segment.start) };
    } finally {
      segment.release();
    }
  }

  /**
   * Start offset of the segment holding `offset` (MetaQ's `offset` command): the max offset when
   * `offset` is at or past the end, the min offset when it is before the start.
   */
  segmentStartFor(offset: number): number {
    if (offset >= this.maxOffset) return this.maxOffset;
    if (offset < this.minOffset) return this.minOffset;
    return this.#segmentFor(offset).start;
  }

  /** Segments retention may remove, oldest first: all but the active one. */
  async immutableSegments(): Promise<SegmentInfo[]> {
    const result: SegmentInfo[] = [];
    for (const segment of this.#segments.slice(0, -1)) {
      const stats = await fs.promises.stat(segment.path);
      result.push({ path: segment.path, start: segment.start, size: segment.size, mtimeMs: stats.mtimeMs });
    }
    return result;
  }

  /**
   * Removes the oldest segment from the log if it starts at `start` and is not the active one,
   * then hands its file to `dispose` (delete or archive). Only the oldest may go, so that the
   * remaining segments stay contiguous.
   * @returns false when that segment is not the oldest removable one.
   */
  async retireOldestSegment(start: number, dispose: (path: string) => Promise<void>): Promise<boolean> {
    const oldest = this.#segments[0];
    if (oldest === undefined || oldest.start !== start || this.#segments.length < 2) return false;
    this.#segments.shift();
    oldest.retire();
    await dispose(oldest.path);
    return true;
  }

  /**
   * Cuts the log back to `offset`, which must lie in the active segment. Only for start-up
   * recovery of transactions (removing a partially written commit batch before re-appending it
   * whole), before any client is served.
   * @throws InvalidArgumentError when appends are in progress or the offset is out of the active segment.
   */
  async truncateTail(offset: number): Promise<void> {
    const segment = this.#active;
    if (this.#queue.length > 0 || this.#draining !== undefined) throw new InvalidArgumentError('cannot truncate a partition log while appends are in progress');
    if (offset < segment.start || offset > this.#writtenEnd) {
      throw new InvalidArgumentError(`cannot truncate ${this.topic}-${this.partition} to ${offset}: outside the active segment ${segment.start}..${this.#writtenEnd}`);
    }
    if (offset === this.#writtenEnd) return;
    this.#log.warn({ from: this.#writtenEnd, to: offset }, 'truncating a partial transaction batch');
    await new Promise<void>((resolve, reject) => fs.ftruncate(segment.fd, offset - segment.start, (e) => (e === null ? resolve() : reject(e))));
    await fdatasync(segment.fd);
    segment.size = offset - segment.start;
    this.#writtenEnd = offset;
    this.#durableEnd = offset;
  }

  /** Waits for queued appends, syncs, and closes every segment file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    while (this.#draining !== undefined) await this.#draining;
    await this.#flushing?.catch(() => undefined);
    if (this.#failure === undefined && this.#writtenEnd > this.#durableEnd) await this.flush().catch(() => undefined);
    await Promise.all(this.#segments.map((s) => s.close()));
  }
}

function assertContiguous(dir: string, segments: readonly Segment[]): void {
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1];
    const cur = segments[i];
    if (prev === undefined || cur === undefined) continue;
    if (prev.end !== cur.start) {
      const kind = prev.end < cur.start ? `a gap of ${cur.start - prev.end} bytes` : `an overlap of ${prev.end - cur.start} bytes`;
      throw new StoreCorruptError(
        `segments in ${dir} are not contiguous: ${segmentFileName(prev.start)} (${prev.size} bytes) ends at offset ${prev.end} ` +
          `but the next file is ${segmentFileName(cur.start)}, ${kind}. A segment file was removed, truncated or copied in by hand; ` +
          `restore it from a backup or move the later files away, then start again.`,
      );
    }
  }
}

/** Validates the active segment and truncates everything after its last valid record. */
async function recoverTail(segment: Segment, options: PartitionLogOptions): Promise<bigint | undefined> {
  const scan = await scanSegment(segment.fd, segment.size, options.maxRecordDataLength);
  if (scan.validLength < segment.size) {
    const cut = segment.size - scan.validLength;
    options.logger.warn(
      { segment: segment.path, validBytes: scan.validLength, truncatedBytes: cut, reason: scan.problem },
      `recovery: truncating ${cut} bytes of torn or corrupt tail (${scan.problem ?? 'unknown'}) after ${scan.records} valid records`,
    );
    await new Promise<void>((resolve, reject) => fs.ftruncate(segment.fd, scan.validLength, (e) => (e === null ? resolve() : reject(e))));
    await fdatasync(segment.fd);
    segment.size = scan.validLength;
  }
  return scan.lastId;
}
