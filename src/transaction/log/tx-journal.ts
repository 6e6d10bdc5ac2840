/**
 * The transaction journal: an append-only run of files `txlog-<sequence>.log` in
 * `<dataLogPath>/transactions`, holding framed records (see tx-record-frame.ts) whose payloads
 * belong to the transaction engine. The engine appends events and, at start-up, replays every
 * record after its newest checkpoint.
 *
 * Design note
 *
 * - Why group commit. With `flushTxLogAtCommit=1` every prepare/commit waits for an fdatasync,
 *   and one fdatasync costs about a millisecond on a good SSD, ten on a disk. Giving each
 *   committer its own fsync caps a broker at a few hundred commits per second whatever the
 *   concurrency (Kafka's design doc: "two to three orders of magnitude" slower). Instead one
 *   writer loop takes every append queued while the previous write + fdatasync ran, writes them
 *   with one `writev` and covers them with one fdatasync: throughput grows with the number of
 *   concurrent committers while every `'sync'` append is still on disk before it resolves. This
 *   is the technique of the message store (src/store/partition-log.ts).
 * - Why the writer waits for the fdatasync in flight before writing more: writing the appends
 *   that arrive meanwhile at once, and chaining the next fdatasync behind the current one, was
 *   tried (2026-11-22) and made `bench:tx` mode 1 with 8 clients slower (5,100–5,600 → 4,100–4,200
 *   tx/s): each fdatasync then covered fewer commits, so there were more of them.
 * - Why `'deferred'`. `flushTxLogAtCommit=2` trades the last second of commits on a machine crash
 *   for latency: the append resolves after the write, and a timer armed by the first unsynced
 *   deferred record fsyncs within `deferredSyncIntervalMs`. A timer per dirty period, not a
 *   permanent interval, so an idle journal never wakes up; and every fsync (including one for a
 *   concurrent `'sync'` append) counts, so the timer's fsync is skipped when it has nothing left.
 * - Why a synchronous write. A record that asks for no fsync (`'none'`, `'deferred'`: every local
 *   commit with `flushTxLogAtCommit` 0 or 2, the APPLIED records) is acknowledged once it is in the
 *   page cache. Through the writer that costs a turn of the event loop and a hop through libuv's
 *   thread pool (two wake-ups, tens of microseconds each) for a write that itself takes a few. So
 *   when the writer is idle (nothing queued or being written, so order is kept) and the record is
 *   small, fits the file and its preallocated space, it is written at once with `writevSync`: the
 *   same bytes at the same place as the writer would put them, the same failure rule. Measured
 *   (2026-11-22, 2 cores, warm broker, A/B interleaved): `flushTxLogAtCommit=2` went from about
 *   2,900 to 3,900 tx/s with 1 client and from about 10,100 to 11,200 with 8; each write took
 *   4 µs on average. Records that must be on disk still go through the writer, where concurrent
 *   ones share a sync; so does a `'none'` record while the journal is entirely on disk, so that
 *   the next forced batch can still be a single O_DSYNC write (in mode 2 a `'deferred'` record
 *   leaves the journal unsynced anyway, and in mode 0 only the first commit after a sync pays).
 * - Why fail-stop. After a failed fdatasync the kernel may already have dropped the dirty pages it
 *   could not write and marked them clean, so a later fsync can "succeed" without the data
 *   (PostgreSQL's fsyncgate). After a failed write we cannot tell which of the batch's records
 *   reached the file. Either way the journal no longer knows what is on disk, and a transaction
 *   engine that goes on would acknowledge commits that a crash could take back. So the first
 *   failure rejects every pending and later append with a StoreIoError asking for a restart; the
 *   restart re-reads the files, and CRCs decide what survived.
 * - Records never straddle files, and a file is fdatasynced before the next one is created, so a
 *   crash can tear only the newest file; recovery (tx-journal-recovery.ts) relies on that.
 * - Why preallocate. An fdatasync after an append that grew the file must also write the file
 *   system's metadata (the new size, new blocks) through its own journal; an fdatasync after
 *   overwriting blocks that already exist writes the data alone. Measured here (ext4, 1 KiB
 *   records): 335 µs against 205 µs per write + fdatasync. So the journal writes zeros ahead of
 *   its records, `preallocateBytes` at a time, and its records overwrite them (PostgreSQL's WAL
 *   segments are zero-filled for the same reason). Zeros never decode as a record (the type byte
 *   is inside the CRC), so recovery tells the zero tail from damage; sealed files and a cleanly
 *   closed file are cut back to their records.
 * - Why O_DSYNC. Every asynchronous file call hops through libuv's thread pool, and a hop costs
 *   tens of microseconds on a loaded machine: write + fdatasync is two hops per group-commit
 *   batch. A write on a second descriptor of the same file, opened with `O_DSYNC`, returns once
 *   its bytes are on disk: one hop. It only syncs its own bytes, though (Linux writes back the
 *   written range, not the whole file), so it is used only when everything before the batch is
 *   already durable (`durableSize` is where the batch starts) and the batch did not preallocate
 *   (the zeros and the new size are made durable by a plain fdatasync, once per
 *   `preallocateBytes`). Otherwise, and for batches with no `'sync'` append (modes 0 and 2
 *   never pay a sync per write), the plain descriptor and fdatasync are used as before. A failed
 *   durable write fails the journal exactly like a failed fdatasync.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, MetaqError, StoreClosedError, StoreCorruptError, StoreIoError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { ensureDurableDirectory, fsyncDirectory } from '../../store/file-io.js';
import { closeFd, fstatSize, ftruncateFd, openFd } from './fd-ops.js';
import { isJournalDurability, type JournalDurability } from './journal-durability.js';
import { journalIoWith, type JournalIo } from './journal-io.js';
import { assertJournalPosition, formatJournalPosition, type JournalPosition } from './journal-position.js';
import { readFrameBlock } from './tx-frame-reader.js';
import { FIRST_JOURNAL_SEQUENCE, journalFileName } from './tx-file-names.js';
import { recoverJournalDirectory, type ActiveJournalFile, type SealedJournalFile } from './tx-journal-recovery.js';
import { encodeFrameHeader, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD } from './tx-record-frame.js';

/** Default size after which the journal moves on to a new file (MetaQ's `meta.tx_journal_file_size`). */
export const DEFAULT_TX_JOURNAL_MAX_FILE_SIZE = 64 * 1024 * 1024;

/** Default bound on how long a `'deferred'` append stays unsynced (MetaQ's 1 s for `flushTxLogAtCommit=2`). */
export const DEFAULT_DEFERRED_SYNC_INTERVAL_MS = 1000;

/** Default zero-filled space written ahead of the records at a time (see "Why preallocate"). */
export const DEFAULT_PREALLOCATE_BYTES = 4 * 1024 * 1024;

/** One shared block of zeros for preallocation writes (never modified). */
const ZEROS = Buffer.alloc(1024 * 1024);

/** Settings of {@link TxJournal.open}. */
export interface TxJournalOptions {
  /**
   * Start a new file once the current one would grow past this many bytes. A file exceeds it
   * only when it holds a single record larger than this. Default {@link DEFAULT_TX_JOURNAL_MAX_FILE_SIZE}.
   */
  readonly maxFileSize?: number;
  /** `'deferred'` appends are fdatasynced within this many ms. Default {@link DEFAULT_DEFERRED_SYNC_INTERVAL_MS}. */
  readonly deferredSyncIntervalMs?: number;
  /**
   * Zero-filled bytes written ahead of the records at a time, so that fdatasync rarely has file
   * metadata to write; 0 turns preallocation off. Default {@link DEFAULT_PREALLOCATE_BYTES}.
   */
  readonly preallocateBytes?: number;
  /** Logger; default `componentLogger('txlog', { dir })`. */
  readonly logger?: Logger;
  /** Write-path I/O, replaced only by tests that inject failures. */
  readonly io?: Partial<JournalIo>;
}

/** A record read back by {@link TxJournal.readFrom}. */
export interface JournalRecord {
  /** Where the record is. */
  readonly position: JournalPosition;
  /** The record type given to `append`. */
  readonly type: number;
  /** The payload given to `append` (a private copy). */
  readonly payload: Buffer;
}

interface PendingAppend {
  /** `[header, payload]`, or nothing for a sync barrier. */
  readonly buffers: readonly Buffer[];
  readonly bytes: number;
  readonly durability: JournalDurability;
  readonly resolve: (position: JournalPosition) => void;
  readonly reject: (error: unknown) => void;
}

/** Largest record {@link TxJournal.append} writes synchronously (see "Why a synchronous write"). */
const MAX_SYNC_WRITE_BYTES = 64 * 1024;

/** Upper bound of bytes per `writev`, so that a burst does not delay the first acks for long. */
const MAX_WRITE_BYTES = 4 * 1024 * 1024;

/** Largest `setTimeout` delay Node accepts. */
const MAX_TIMER_MS = 0x7fff_ffff;

/** The open transaction journal of one broker. Create with {@link TxJournal.open}. */
export class TxJournal {
  /** The journal directory. */
  readonly dir: string;
  /** Bytes cut off the newest file's torn or corrupt tail when the journal was opened. */
  readonly truncatedBytesAtOpen: number;
  readonly #maxFileSize: number;
  readonly #deferredSyncIntervalMs: number;
  readonly #preallocateBytes: number;
  readonly #log: Logger;
  readonly #io: JournalIo;
  /** Older files, oldest first; all fdatasynced. */
  readonly #sealed: SealedJournalFile[];
  #active: ActiveJournalFile;
  /**
   * The active file opened a second time with O_DSYNC (see "Why O_DSYNC"): undefined until the
   * first durable write needs it, null when it could not be opened (the two-call path is used).
   */
  #dsyncFd: number | null | undefined;
  readonly #queue: PendingAppend[] = [];
  #draining: Promise<void> | undefined;
  #deferredTimer: NodeJS.Timeout | undefined;
  #failure: Error | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #syncCount = 0;
  #bytesWritten = 0;
  #appendCount = 0;
  #forcedAppendCount = 0;
  #lastSyncLatencyMs: number | undefined;

  private constructor(
    dir: string,
    settings: { maxFileSize: number; deferredSyncIntervalMs: number; preallocateBytes: number; log: Logger; io: JournalIo },
    sealed: SealedJournalFile[],
    active: ActiveJournalFile,
    truncatedBytes: number,
  ) {
    this.dir = dir;
    this.#maxFileSize = settings.maxFileSize;
    this.#deferredSyncIntervalMs = settings.deferredSyncIntervalMs;
    this.#preallocateBytes = settings.preallocateBytes;
    this.#log = settings.log;
    this.#io = settings.io;
    this.#sealed = sealed;
    this.#active = active;
    this.truncatedBytesAtOpen = truncatedBytes;
  }

  /**
   * Opens the journal in `dir`, creating the directory (durably) and a first file if needed.
   * Validates every file: a torn or corrupt tail of the newest file is cut off (with a warning
   * giving the byte count); damage in an older file, or a missing file, refuses the start.
   * @throws StoreCorruptError naming the damaged or missing file (nothing is changed on disk).
   * @throws StoreIoError when the directory or a file cannot be read or written.
   */
  static async open(dir: string, options: TxJournalOptions = {}): Promise<TxJournal> {
    const maxFileSize = options.maxFileSize ?? DEFAULT_TX_JOURNAL_MAX_FILE_SIZE;
    const deferredSyncIntervalMs = options.deferredSyncIntervalMs ?? DEFAULT_DEFERRED_SYNC_INTERVAL_MS;
    if (!Number.isSafeInteger(maxFileSize) || maxFileSize < 1) {
      throw new InvalidArgumentError(`transaction journal maxFileSize must be a positive integer, got ${maxFileSize}`);
    }
    if (!Number.isSafeInteger(deferredSyncIntervalMs) || deferredSyncIntervalMs < 1 || deferredSyncIntervalMs > MAX_TIMER_MS) {
      throw new InvalidArgumentError(`transaction journal deferredSyncIntervalMs must be an integer in [1, ${MAX_TIMER_MS}], got ${deferredSyncIntervalMs}`);
    }
    const preallocateBytes = options.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES;
    if (!Number.isSafeInteger(preallocateBytes) || preallocateBytes < 0) {
      throw new InvalidArgumentError(`transaction journal preallocateBytes must be a non-negative integer, got ${preallocateBytes}`);
    }
    const log = options.logger ?? componentLogger('txlog', { dir });
    const io = journalIoWith(options.io);
    try {
      await ensureDurableDirectory(dir);
      const recovered = await recoverJournalDirectory(dir, log);
      return new TxJournal(dir, { maxFileSize, deferredSyncIntervalMs, preallocateBytes, log, io }, recovered.sealed, recovered.active, recovered.truncatedBytes);
    } catch (error) {
      if (error instanceof MetaqError) throw error;
      throw new StoreIoError(`opening the transaction journal in ${dir} failed`, error);
    }
  }

  /** Completed fdatasync calls on journal files since open (group commit shares one among many appends). */
  get syncCount(): number {
    return this.#syncCount;
  }

  /** Bytes written (headers included) since open. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /** Records written since open. */
  get appendCount(): number {
    return this.#appendCount;
  }

  /**
   * Records written that asked to be on disk before their append resolved (`'sync'`). Divided by
   * {@link syncCount}: how many of them one forced write carried (group commit).
   */
  get forcedAppendCount(): number {
    return this.#forcedAppendCount;
  }

  /** Duration in ms of the last completed fdatasync, or undefined before the first one. */
  get lastSyncLatencyMs(): number | undefined {
    return this.#lastSyncLatencyMs;
  }

  /** Position the next record would get if it fits in the current file: the end of everything written. */
  get endPosition(): JournalPosition {
    return { file: this.#active.sequence, offset: this.#active.size };
  }

  /** End of what is known to be on disk: every record before this position is durable. */
  get durablePosition(): JournalPosition {
    return { file: this.#active.sequence, offset: this.#active.durableSize };
  }

  /** Number of journal files, the current one included. */
  get fileCount(): number {
    return this.#sealed.length + 1;
  }

  /** The error that stopped the journal, if one did (every append is refused with it). */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Appends one record. Records are written in call order; the returned positions increase in
   * call order. Do not modify `payload` until the promise settles (it is written without a copy).
   * @param type record type, 0–255, chosen by the engine.
   * @param durability when to resolve, see {@link JournalDurability}.
   * @returns the record's position, once the durability demand is met.
   * @throws (rejects) InvalidArgumentError for a bad type, payload or durability; StoreClosedError
   *   after `close()`; the journal's StoreIoError once it has failed.
   */
  append(type: number, payload: Buffer, durability: JournalDurability): Promise<JournalPosition> {
    const refused = this.#refusal(type, payload, durability);
    if (refused !== undefined) return Promise.reject(refused);
    const header = encodeFrameHeader(type, payload);
    if (durability !== 'sync') {
      const written = this.#writeNow(header, payload, durability);
      if (written !== undefined) return written instanceof Error ? Promise.reject(written) : Promise.resolve(written);
    }
    return new Promise<JournalPosition>((resolve, reject) => {
      this.#queue.push({ buffers: [header, payload], bytes: FRAME_HEADER_SIZE + payload.length, durability, resolve, reject });
      this.#kickWriter();
    });
  }

  /** Makes every record appended before this call durable (one shared fdatasync, if anything is unsynced). */
  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreClosedError('transaction journal'));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return this.#barrier();
  }

  #refusal(type: number, payload: Buffer, durability: JournalDurability): Error | undefined {
    if (this.#closed) return new StoreClosedError('transaction journal');
    if (this.#failure !== undefined) return this.#failure;
    if (!Number.isInteger(type) || type < 0 || type > 0xff) return new InvalidArgumentError(`journal record type must be an integer in [0, 255], got ${type}`);
    if (!Buffer.isBuffer(payload)) return new InvalidArgumentError('journal record payload must be a Buffer');
    if (payload.length > MAX_FRAME_PAYLOAD) {
      return new InvalidArgumentError(`journal record payload of ${payload.length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD} bytes`);
    }
    if (!isJournalDurability(durability)) return new InvalidArgumentError(`journal durability must be 'none', 'sync' or 'deferred', got ${String(durability)}`);
    return undefined;
  }

  /**
   * Writes a record that asks for no fsync at once, on the calling thread, when the writer is idle
   * (see "Why a synchronous write"). Returns its position, the journal's failure if the write
   * failed, or undefined when the record must go through the writer: something is queued or
   * being written (order), the record is large, it needs preallocation or a new file, or it is
   * a `'none'` record on a journal that is entirely on disk (below).
   */
  #writeNow(header: Buffer, payload: Buffer, durability: 'none' | 'deferred'): JournalPosition | Error | undefined {
    const writeSync = this.#io.writevSync;
    const file = this.#active;
    const start = file.size;
    const bytes = header.length + payload.length;
    if (writeSync === undefined || this.#draining !== undefined || this.#queue.length > 0 || bytes > MAX_SYNC_WRITE_BYTES) return undefined;
    if (start + bytes >= this.#maxFileSize || (this.#preallocateBytes > 0 && start + bytes > file.allocated)) return undefined;
    // Everything so far is on disk, so the next forced batch may be one O_DSYNC write (see "Why
    // O_DSYNC"); an unforced record written now would cost it a write + fdatasync. Through the
    // writer it can still share that batch (an APPLIED record with the next COMMIT).
    if (durability === 'none' && start === file.durableSize) return undefined;
    try {
      writeSync(file.fd, [header, payload], start);
    } catch (error) {
      return this.#fail(
        new StoreIoError(`writing to transaction journal file ${file.path} failed; the transaction journal refuses all further appends until the broker is restarted, which recovers it from disk`, error),
      );
    }
    file.size += bytes;
    this.#bytesWritten += bytes;
    this.#appendCount += 1;
    if (durability === 'deferred') this.#armDeferredSync();
    return { file: file.sequence, offset: start };
  }

  /** Queues an empty 'sync' entry: the writer fdatasyncs when it reaches it, if anything is unsynced. */
  #barrier(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ buffers: [], bytes: 0, durability: 'sync', resolve: () => resolve(), reject });
      this.#kickWriter();
    });
  }

  /**
   * Starts the writer loop unless it runs; restarts it if appends came in as it finished.
   *
   * Why setImmediate: appends arrive in bursts within one turn of the event loop (every request
   * parsed from a socket read, every committer woken by the previous fsync). Starting after the
   * current turn lets the whole burst share the first write and fdatasync.
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

  /** The single writer: writes queued appends in order, syncs as demanded, acks, rolls. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === undefined) {
      let batch: PendingAppend[] = [];
      try {
        const first = this.#queue[0];
        // Roll before a record that does not fit, so files stay within maxFileSize (a record
        // larger than that gets a file of its own) and no record straddles two files.
        if (first !== undefined && first.bytes > 0 && this.#active.size > 0 && this.#active.size + first.bytes > this.#maxFileSize) {
          await this.#roll();
        }
        batch = this.#takeBatch();
        await this.#writeBatch(batch);
      } catch (error) {
        const failure = this.#fail(error);
        for (const w of batch) w.reject(failure);
      }
    }
  }

  /** Takes queued appends for one write: as many as fit in the current file and MAX_WRITE_BYTES. */
  #takeBatch(): PendingAppend[] {
    const room = Math.max(0, this.#maxFileSize - this.#active.size);
    const batch: PendingAppend[] = [];
    let bytes = 0;
    for (;;) {
      const next = this.#queue[0];
      if (next === undefined) break;
      if (batch.length > 0 && next.bytes > 0 && (bytes + next.bytes > MAX_WRITE_BYTES || bytes + next.bytes > room)) break;
      this.#queue.shift();
      batch.push(next);
      bytes += next.bytes;
    }
    return batch;
  }

  async #writeBatch(batch: readonly PendingAppend[]): Promise<void> {
    const file = this.#active;
    const start = file.size;
    const buffers: Buffer[] = [];
    let bytes = 0;
    for (const w of batch) {
      for (const b of w.buffers) buffers.push(b);
      bytes += w.bytes;
    }
    if (bytes > 0) {
      const preallocating = start + bytes > file.allocated && this.#preallocateBytes > 0;
      if (preallocating) await this.#preallocate(file, start + bytes);
      const writeDurable = this.#io.writevDurable;
      const dsyncFd =
        writeDurable !== undefined && !preallocating && start === file.durableSize && batch.some((w) => w.durability === 'sync')
          ? (this.#dsyncFd ?? (await this.#openDsync(file)))
          : null;
      if (writeDurable !== undefined && dsyncFd !== null) {
        const started = performance.now();
        await ioStep(`writing to transaction journal file ${file.path} with O_DSYNC (write and fdatasync in one call)`, () => writeDurable(dsyncFd, buffers, start));
        this.#lastSyncLatencyMs = performance.now() - started;
        file.size += bytes;
        this.#bytesWritten += bytes;
        this.#syncCount += 1;
        file.durableSize = file.size;
      } else {
        await ioStep(`writing to transaction journal file ${file.path}`, () => this.#io.writev(file.fd, buffers, start));
        file.size += bytes;
        this.#bytesWritten += bytes;
      }
    }
    const waiting: { append: PendingAppend; position: JournalPosition }[] = [];
    let deferred = false;
    let offset = start;
    for (const w of batch) {
      const position: JournalPosition = { file: file.sequence, offset };
      offset += w.bytes;
      if (w.bytes > 0) this.#appendCount += 1;
      if (w.bytes > 0 && w.durability === 'sync') this.#forcedAppendCount += 1;
      // Appends that need no fsync are acked as soon as they are written, even when they share
      // the batch with 'sync' ones: they must not pay for a durability they did not ask for.
      if (w.durability === 'sync') waiting.push({ append: w, position });
      else {
        w.resolve(position);
        if (w.durability === 'deferred') deferred = true;
      }
    }
    if (waiting.length > 0) {
      await this.#syncActive();
      for (const { append, position } of waiting) append.resolve(position);
    } else if (deferred) {
      this.#armDeferredSync();
    }
    if (file.size >= this.#maxFileSize) await this.#roll();
  }

  /**
   * Writes zeros from the end of the file to past `needed` (see "Why preallocate"), within
   * `maxFileSize` unless one record alone is larger. Not synced here: the fdatasync that follows
   * the records covers the zeros and the new size together.
   */
  async #preallocate(file: ActiveJournalFile, needed: number): Promise<void> {
    const target = Math.max(needed, Math.min(this.#maxFileSize, needed + this.#preallocateBytes));
    const buffers: Buffer[] = [];
    for (let left = target - file.allocated; left > 0; left -= ZEROS.length) buffers.push(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
    await ioStep(`preallocating transaction journal file ${file.path}`, () => this.#io.writev(file.fd, buffers, file.allocated));
    file.allocated = target;
  }

  /** The O_DSYNC descriptor of the active file, opened on first use; null if it cannot be opened. */
  async #openDsync(file: ActiveJournalFile): Promise<number | null> {
    if (this.#dsyncFd !== undefined) return this.#dsyncFd;
    try {
      this.#dsyncFd = await openFd(file.path, fs.constants.O_WRONLY | fs.constants.O_DSYNC);
    } catch (error) {
      // Not a failure of the journal: the two-call path (write, fdatasync) works without it.
      this.#log.warn({ err: error, file: file.path }, 'could not open the transaction journal file with O_DSYNC; syncing with fdatasync');
      this.#dsyncFd = null;
    }
    return this.#dsyncFd;
  }

  /** Closes the O_DSYNC descriptor of the active file, if open. */
  async #closeDsync(): Promise<void> {
    const fd = this.#dsyncFd;
    this.#dsyncFd = undefined;
    if (typeof fd === 'number') await closeFd(fd);
  }

  /** Cuts the zero-filled space off `file`, leaving exactly its records (sealed files, clean close). */
  async #trimPreallocated(file: ActiveJournalFile): Promise<void> {
    if (file.allocated <= file.size) return;
    await ioStep(`truncating transaction journal file ${file.path}`, () => ftruncateFd(file.fd, file.size));
    await ioStep(`fdatasync of transaction journal file ${file.path}`, () => this.#io.fdatasync(file.fd));
    file.allocated = file.size;
  }

  /** fdatasyncs the current file if it has unsynced bytes. */
  async #syncActive(): Promise<void> {
    const file = this.#active;
    const target = file.size;
    if (target <= file.durableSize) return;
    const started = performance.now();
    await ioStep(`fdatasync of transaction journal file ${file.path}`, () => this.#io.fdatasync(file.fd));
    this.#lastSyncLatencyMs = performance.now() - started;
    // Counted on completion, together with durablePosition, so that whoever sees the count sees
    // the records it covers as durable too.
    this.#syncCount += 1;
    file.durableSize = target;
  }

  /**
   * Seals the current file and starts the next one. The old file is fdatasynced first, whatever
   * the durability of its records: recovery treats any damage in an older file as fatal, which is
   * only right if older files are always complete on disk.
   */
  async #roll(): Promise<void> {
    await this.#syncActive();
    const old = this.#active;
    // Sealed files hold records only: recovery validates every byte of them.
    await this.#trimPreallocated(old);
    const sequence = old.sequence + 1;
    const path = join(this.dir, journalFileName(sequence));
    const fd = await ioStep(`creating transaction journal file ${path}`, () => openFd(path, 'wx+'));
    this.#sealed.push({ sequence: old.sequence, path: old.path, size: old.size });
    this.#active = { sequence, path, fd, size: 0, durableSize: 0, allocated: 0 };
    await this.#closeDsync();
    await closeFd(old.fd);
    await ioStep(`fsync of directory ${this.dir}`, () => fsyncDirectory(this.dir));
    this.#log.info({ file: path, previousSize: old.size }, 'transaction journal rolled to a new file');
  }

  /**
   * Arms the one-shot timer that fsyncs deferred records. Not unref'd on purpose: a deferred
   * record is promised to reach the disk within the interval even if nothing else keeps the
   * process alive; `close()` clears it.
   */
  #armDeferredSync(): void {
    if (this.#deferredTimer !== undefined || this.#closed || this.#failure !== undefined) return;
    this.#deferredTimer = setTimeout(() => {
      this.#deferredTimer = undefined;
      // A failure is logged by #fail and reported to every later append; nothing to add here.
      if (!this.#closed && this.#failure === undefined) this.#barrier().catch(() => undefined);
    }, this.#deferredSyncIntervalMs);
  }

  /** Fails the journal for good (see the design note) and rejects everything queued. */
  #fail(error: unknown): Error {
    if (this.#failure === undefined) {
      this.#failure =
        error instanceof MetaqError ? error : new StoreIoError(`the transaction journal in ${this.dir} failed; restart the broker to recover it`, error);
      this.#log.error({ err: this.#failure }, 'transaction journal failed; every append is refused until the broker is restarted');
    }
    if (this.#deferredTimer !== undefined) clearTimeout(this.#deferredTimer);
    this.#deferredTimer = undefined;
    for (const w of this.#queue.splice(0)) w.reject(this.#failure);
    return this.#failure;
  }

  /**
   * Replays every record from `position` (inclusive) to the end of the journal, across files, in
   * order; records appended while the iteration runs are included. Without a position, replays
   * from the first file. Each payload is a private copy.
   * @throws StoreCorruptError when `position` (or, without one, the start of the journal) is in a
   *   file that was already deleted, or when a record that was valid at open is no longer valid.
   * @throws InvalidArgumentError when `position` is past the end of the journal.
   */
  async *readFrom(position?: JournalPosition): AsyncGenerator<JournalRecord, void, undefined> {
    if (this.#closed) throw new StoreClosedError('transaction journal');
    let { sequence, offset } = this.#replayStart(position);
    for (;;) {
      const path = join(this.dir, journalFileName(sequence));
      const fd = await openFd(path, 'r').catch((error: unknown) => {
        throw new StoreIoError(`opening transaction journal file ${path} for replay failed`, error);
      });
      let reachedEnd = false;
      try {
        for (;;) {
          // Read synchronously with the active-file check: the writer may roll between blocks.
          const isActive = sequence === this.#active.sequence;
          const limit = isActive ? this.#active.size : (this.#sealed.find((f) => f.sequence === sequence)?.size ?? (await fstatSize(fd)));
          if (offset >= limit) {
            reachedEnd = isActive;
            break;
          }
          const block = await readFrameBlock(fd, offset, limit);
          for (const frame of block.frames) {
            yield { position: { file: sequence, offset: frame.offset }, type: frame.type, payload: Buffer.from(frame.payload) };
          }
          offset = block.end;
          if (block.problem !== undefined) {
            throw new StoreCorruptError(
              `transaction journal file ${path} has no valid record at byte ${offset} (${block.problem}), although it was ` +
                `validated when the journal was opened: either the file was damaged since, or the replay position does not ` +
                `point at the start of a record`,
            );
          }
        }
      } finally {
        await closeFd(fd);
      }
      if (reachedEnd) return;
      sequence += 1;
      offset = 0;
    }
  }

  /** Checks a replay start and returns where to begin. */
  #replayStart(position: JournalPosition | undefined): { sequence: number; offset: number } {
    const oldest = this.#sealed[0]?.sequence ?? this.#active.sequence;
    if (position === undefined) {
      if (oldest !== FIRST_JOURNAL_SEQUENCE) {
        // Files before `oldest` were deleted after a checkpoint: replaying the rest without that
        // checkpoint would silently forget the transactions they held.
        throw new StoreCorruptError(
          `the transaction journal in ${this.dir} starts at ${journalFileName(oldest)}: earlier files were deleted after a ` +
            `checkpoint, so it cannot be replayed from the beginning. Replay from the checkpoint's position; if no valid ` +
            `checkpoint was found, the checkpoint files were removed or are all corrupt: restore them from a backup.`,
        );
      }
      return { sequence: oldest, offset: 0 };
    }
    assertJournalPosition(position, 'readFrom position');
    if (position.file < oldest) {
      throw new StoreCorruptError(
        `cannot replay the transaction journal from ${formatJournalPosition(position)}: ${journalFileName(position.file)} was ` +
          `already deleted (the oldest file is ${journalFileName(oldest)}). Journal files must only be deleted before the ` +
          `oldest retained checkpoint (see oldestCheckpointPosition).`,
      );
    }
    const size = position.file === this.#active.sequence ? this.#active.size : this.#sealed.find((f) => f.sequence === position.file)?.size;
    if (size === undefined || position.offset > size) {
      throw new InvalidArgumentError(
        `readFrom position ${formatJournalPosition(position)} is past the end of the transaction journal (${formatJournalPosition(this.endPosition)})`,
      );
    }
    return { sequence: position.file, offset: position.offset };
  }

  /**
   * Deletes the journal files that lie entirely before `position`'s file (used after a
   * checkpoint), oldest first; never the current file, nor the file holding `position`.
   *
   * Pass the position of the OLDEST retained checkpoint (see `oldestCheckpointPosition`), not
   * the newest: if the newest checkpoint turns out corrupt, loading falls back to an older one,
   * which needs its journal files.
   * @returns the number of files deleted.
   */
  async deleteFilesBefore(position: JournalPosition): Promise<number> {
    if (this.#closed) throw new StoreClosedError('transaction journal');
    assertJournalPosition(position, 'deleteFilesBefore position');
    // Off the list first, synchronously, so that a concurrent call or replay cannot pick them.
    const doomed: SealedJournalFile[] = [];
    for (let next = this.#sealed[0]; next !== undefined && next.sequence < position.file; next = this.#sealed[0]) {
      doomed.push(next);
      this.#sealed.shift();
    }
    for (const [i, file] of doomed.entries()) {
      try {
        await fs.promises.rm(file.path, { force: true });
      } catch (error) {
        this.#sealed.unshift(...doomed.slice(i));
        throw new StoreIoError(`deleting transaction journal file ${file.path} failed`, error);
      }
      // One directory fsync per file, oldest first: whatever a crash keeps of the deletions, the
      // remaining files have no gap in their sequence, which open() would refuse.
      await fsyncDirectory(this.dir).catch((error: unknown) => {
        throw new StoreIoError(`fsync of directory ${this.dir} after deleting ${file.path} failed`, error);
      });
    }
    if (doomed.length > 0) {
      this.#log.info({ deleted: doomed.map((f) => f.path), before: formatJournalPosition(position) }, `deleted ${doomed.length} transaction journal files`);
    }
    return doomed.length;
  }

  /**
   * Writes everything queued, fdatasyncs what is unsynced, and closes the file. Appends made
   * after this call are refused. Resolves even if the journal had failed (the failure was logged
   * and delivered to the appends it concerned).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#deferredTimer !== undefined) clearTimeout(this.#deferredTimer);
    this.#deferredTimer = undefined;
    if (this.#failure === undefined) await this.#barrier().catch(() => undefined);
    while (this.#draining !== undefined) await this.#draining;
    // A cleanly closed file ends at its last record, as it did before preallocation (tools and
    // tests that cut or inspect a closed journal see exactly its records).
    if (this.#failure === undefined) await this.#trimPreallocated(this.#active).catch((error: unknown) => this.#log.warn({ err: error }, 'could not trim the preallocated tail at close; the next start ignores it'));
    await this.#closeDsync();
    await closeFd(this.#active.fd);
  }
}

/**
 * Runs one step of the write path, turning its error into the StoreIoError that fails the
 * journal: it names the step and tells the operator to restart.
 */
async function ioStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw new StoreIoError(`${what} failed; the transaction journal refuses all further appends until the broker is restarted, which recovers it from disk`, error);
  }
}
