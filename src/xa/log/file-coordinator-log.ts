/**
 * The durable coordinator log (transactions.md §5.3): the {@link CoordinatorLog} contract on top
 * of the broker's generic transaction journal (src/transaction/log): CRC-framed records, torn-tail
 * truncation at open, file rolling, group commit, atomic CRC-checked checkpoints.
 *
 * Layout of the directory (one per transaction manager node):
 * - `coordinator.lock`: the lock (coordinator-log-lock.ts);
 * - `txlog-<sequence>.log`: the journal, records of coordinator-records.ts;
 * - `checkpoint-<sequence>.ckp`: snapshots of the pending entries (coordinator-snapshot.ts).
 *
 * Why the state changes before the record is on disk: a decision call checks and changes the
 * pending table in the same synchronous step as it queues the record, so two racing calls on one
 * gtrid (the manager's COMMITTING and recovery's PRESUMED_ABORTING) cannot both pass the check.
 * Until the forced write completes the entry is visible but its call has not resolved. If the
 * write fails, the log stops (fail-stop, like the journal): whether the record reached the disk is
 * unknown, and keeping the entry is the conservative answer for the rest of this process's life.
 *
 * Why a forced call that writes nothing (a duplicate, a declined claim) still waits for an fsync
 * barrier: every forced call resolves only once every record appended before it is durable. A
 * duplicate thus never resolves before the first call's record is on disk, and the manager's
 * TrackedLog may treat any completed forced call as making the earlier (unforced) ENDs durable.
 * The barrier costs no fsync when nothing is unsynced.
 */
import { IllegalStateError, InvalidArgumentError, StoreClosedError, StoreIoError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { ensureDurableDirectory } from '../../store/file-io.js';
import type { JournalDurability } from '../../transaction/log/journal-durability.js';
import type { JournalIo } from '../../transaction/log/journal-io.js';
import { DEFAULT_MAX_CHECKPOINTS } from '../../transaction/log/tx-checkpoint.js';
import { TxJournal } from '../../transaction/log/tx-journal.js';
import { MAX_FRAME_PAYLOAD } from '../../transaction/log/tx-record-frame.js';
import type { CoordinatorLog, LoggedHeuristic, LoggedParticipant, PendingEntry } from '../coordinator-log.js';
import { CoordinatorCheckpointer } from './coordinator-checkpointer.js';
import { lockCoordinatorLog, type CoordinatorLogLock } from './coordinator-log-lock.js';
import type { CoordinatorLogMetrics } from './coordinator-log-metrics.js';
import { replayCoordinatorLog, type CoordinatorReplayStats } from './coordinator-log-replay.js';
import { encodeCoordinatorRecord, type CoordinatorRecord } from './coordinator-records.js';
import { PendingTable } from './pending-table.js';

/** Default period of checkpoints (when something was logged since the last one). */
export const DEFAULT_COORDINATOR_CHECKPOINT_INTERVAL_MS = 60_000;

/**
 * Default size after which the journal moves to a new file. Smaller than the broker's 64 MiB:
 * coordinator records are tens of bytes, and checkpoints can only delete whole files, so small
 * files keep the directory small.
 */
export const DEFAULT_COORDINATOR_LOG_MAX_FILE_SIZE = 16 * 1024 * 1024;

/** Largest `setInterval` delay Node accepts. */
const MAX_TIMER_MS = 0x7fff_ffff;

/** Settings of {@link openCoordinatorLog}. */
export interface FileCoordinatorLogOptions {
  /** The manager's node name, written into the lock file so that a second manager's error names it. */
  readonly nodeName?: string;
  /** Journal file size limit in bytes. Default {@link DEFAULT_COORDINATOR_LOG_MAX_FILE_SIZE}. */
  readonly maxFileSize?: number;
  /**
   * Checkpoint period in ms; 0 disables the timer (checkpoints then happen when the journal rolls
   * and on {@link FileCoordinatorLog.checkpoint}). Default {@link DEFAULT_COORDINATOR_CHECKPOINT_INTERVAL_MS}.
   */
  readonly checkpointIntervalMs?: number;
  /** Checkpoint files kept (at least 1). Default 3 (`DEFAULT_MAX_CHECKPOINTS`). */
  readonly maxCheckpoints?: number;
  /** Logger; default `componentLogger('xa-log', { dir })`. */
  readonly logger?: Logger;
  /** Clock for record times (ms since the epoch); default `Date.now`. For tests. */
  readonly now?: () => number;
  /** Journal write-path I/O, replaced only by tests that inject write or fsync failures. */
  readonly journalIo?: Partial<JournalIo>;
}

/**
 * Opens (creating if needed) the coordinator log in `dir`: takes the lock, opens the journal
 * (cutting a torn tail), replays the newest valid checkpoint and the records after it, and starts
 * the checkpoint timer.
 * @throws IllegalStateError when another live transaction manager holds the directory's lock.
 * @throws StoreCorruptError when the journal or checkpoints are damaged beyond a torn tail.
 * @throws StoreIoError when the directory cannot be read or written.
 * @throws InvalidArgumentError for a bad option.
 */
export function openCoordinatorLog(dir: string, options: FileCoordinatorLogOptions = {}): Promise<FileCoordinatorLog> {
  return FileCoordinatorLog.open(dir, options);
}

interface Parts {
  readonly dir: string;
  readonly nodeName: string | undefined;
  readonly journal: TxJournal;
  readonly lock: CoordinatorLogLock;
  readonly table: PendingTable;
  readonly replay: CoordinatorReplayStats;
  readonly settings: { readonly checkpointIntervalMs: number; readonly maxCheckpoints: number; readonly now: () => number; readonly log: Logger };
}

/** The file-based {@link CoordinatorLog}. Open with {@link openCoordinatorLog}. */
export class FileCoordinatorLog implements CoordinatorLog, CoordinatorLogMetrics {
  /** The log directory. */
  readonly dir: string;
  /** The node name given at open (in the lock file). */
  readonly nodeName: string | undefined;
  /** What replay at open found. */
  readonly replay: CoordinatorReplayStats;
  readonly #journal: TxJournal;
  readonly #lock: CoordinatorLogLock;
  readonly #table: PendingTable;
  readonly #checkpointer: CoordinatorCheckpointer;
  readonly #now: () => number;
  readonly #log: Logger;
  #failure: StoreIoError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(parts: Parts) {
    this.dir = parts.dir;
    this.nodeName = parts.nodeName;
    this.replay = parts.replay;
    this.#journal = parts.journal;
    this.#lock = parts.lock;
    this.#table = parts.table;
    this.#now = parts.settings.now;
    this.#log = parts.settings.log;
    this.#checkpointer = new CoordinatorCheckpointer({
      dir: parts.dir,
      journal: parts.journal,
      maxCheckpoints: parts.settings.maxCheckpoints,
      intervalMs: parts.settings.checkpointIntervalMs,
      snapshot: () => parts.table.pending(),
      now: parts.settings.now,
      logger: parts.settings.log,
    });
  }

  /** See {@link openCoordinatorLog}. */
  static async open(dir: string, options: FileCoordinatorLogOptions = {}): Promise<FileCoordinatorLog> {
    const checkpointIntervalMs = options.checkpointIntervalMs ?? DEFAULT_COORDINATOR_CHECKPOINT_INTERVAL_MS;
    const maxCheckpoints = options.maxCheckpoints ?? DEFAULT_MAX_CHECKPOINTS;
    if (!Number.isSafeInteger(checkpointIntervalMs) || checkpointIntervalMs < 0 || checkpointIntervalMs > MAX_TIMER_MS) {
      throw new InvalidArgumentError(`coordinator log checkpointIntervalMs must be an integer in [0, ${MAX_TIMER_MS}], got ${checkpointIntervalMs}`);
    }
    if (!Number.isSafeInteger(maxCheckpoints) || maxCheckpoints < 1) {
      throw new InvalidArgumentError(`coordinator log maxCheckpoints must be a positive integer, got ${maxCheckpoints}`);
    }
    const log = options.logger ?? componentLogger('xa-log', { dir });
    const now = options.now ?? Date.now;
    try {
      await ensureDurableDirectory(dir);
    } catch (error) {
      throw new StoreIoError(`creating the coordinator log directory ${dir} failed`, error);
    }
    const lock = await lockCoordinatorLog(dir, { nodeName: options.nodeName, logger: log });
    let journal: TxJournal | undefined;
    try {
      journal = await TxJournal.open(dir, {
        maxFileSize: options.maxFileSize ?? DEFAULT_COORDINATOR_LOG_MAX_FILE_SIZE,
        logger: log,
        ...(options.journalIo === undefined ? {} : { io: options.journalIo }),
      });
      const table = new PendingTable();
      const replay = await replayCoordinatorLog(dir, journal, table, log);
      const instance = new FileCoordinatorLog({
        dir,
        nodeName: options.nodeName,
        journal,
        lock,
        table,
        replay,
        settings: { checkpointIntervalMs, maxCheckpoints, now, log },
      });
      instance.#checkpointer.start();
      log.info(
        { pending: table.size, fromCheckpoint: replay.checkpointSequence, records: replay.records, truncatedBytes: journal.truncatedBytesAtOpen },
        `coordinator log opened with ${table.size} pending transactions`,
      );
      return instance;
    } catch (error) {
      await journal?.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw error;
    }
  }

  /** fsyncs of journal files since open (group commit: fewer than forced records under concurrency). */
  get syncCount(): number {
    return this.#journal.syncCount;
  }

  /** Records written since open (checkpoint markers included). */
  get appendCount(): number {
    return this.#journal.appendCount;
  }

  /** Transactions held without END. */
  get pendingCount(): number {
    return this.#table.size;
  }

  /** Duration in ms of the last fsync, or undefined before the first one. */
  get lastSyncLatencyMs(): number | undefined {
    return this.#journal.lastSyncLatencyMs;
  }

  /** Checkpoints written since open. */
  get checkpointCount(): number {
    return this.#checkpointer.written;
  }

  /** Number of journal files (the current one included). */
  get fileCount(): number {
    return this.#journal.fileCount;
  }

  /** Bytes of torn or corrupt tail cut off the newest journal file at open. */
  get truncatedBytesAtOpen(): number {
    return this.#journal.truncatedBytesAtOpen;
  }

  /** The error that stopped the log, if one did. */
  get failure(): StoreIoError | undefined {
    const cause = this.#journal.failure;
    if (cause === undefined) return undefined;
    this.#failure ??= new StoreIoError(
      `the coordinator log in ${this.dir} failed and refuses every further call; restart the transaction manager, which ` +
        `recovers the log from disk`,
      cause,
    );
    return this.#failure;
  }

  /**
   * Forces the commit decision (group-committed with concurrent forced records).
   * A duplicate resolves once the first record is durable; participants missing from a logged
   * decision are added with another forced record.
   * @throws (rejects) IllegalStateError, writing nothing, when recovery claimed the gtrid
   *   (PRESUMED_ABORTING); InvalidArgumentError for a malformed argument; StoreIoError once failed.
   */
  committing(gtrid: Buffer, participants: readonly LoggedParticipant[]): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planCommitting(gtrid, participants, this.#now());
      if (plan.action === 'refuse') throw new IllegalStateError(plan.reason);
      return plan.action === 'already' ? this.#barrier() : this.#write(plan.record, 'sync');
    });
  }

  /**
   * Forces recovery's claim on an orphan. Resolves false, writing nothing, when the gtrid is
   * COMMITTING; true once the claim is durable (a duplicate waits for the first one's write).
   */
  presumedAborting(gtrid: Buffer): Promise<boolean> {
    return this.#guard(() => {
      const plan = this.#table.planPresumedAborting(gtrid, this.#now());
      const written = plan.action === 'write' ? this.#write(plan.record, 'sync') : this.#barrier();
      return written.then(() => plan.action !== 'decline');
    });
  }

  /**
   * Forces a participant's heuristic outcome. A duplicate (same participant and outcome) writes
   * nothing. A gtrid without an entry gets a presumed-aborting one: a heuristic outside COMMITTING
   * comes from a rollback (see pending-table.ts).
   */
  heuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planHeuristic(gtrid, heuristic, this.#now());
      return plan.action === 'already' ? this.#barrier() : this.#write(plan.record, 'sync');
    });
  }

  /** Ends a pending transaction, unforced. Ending an unknown (or already ended) gtrid writes nothing. */
  end(gtrid: Buffer): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planEnd(gtrid, this.#now());
      return plan.action === 'already' ? Promise.resolve() : this.#write(plan.record, 'none');
    });
  }

  /** The pending entry of `gtrid` (visible from the call that logs it, before its write completes). */
  get(gtrid: Buffer): PendingEntry | undefined {
    return this.#table.get(gtrid);
  }

  /** Every pending entry, oldest decision first. */
  pending(): PendingEntry[] {
    return this.#table.pending();
  }

  /**
   * Writes a checkpoint now (snapshot of every pending entry) and deletes the journal files older
   * than the oldest kept checkpoint. The timer and journal rolls call this too.
   * @throws (rejects) StoreIoError when a write fails; StoreClosedError after close.
   */
  checkpoint(): Promise<void> {
    return this.#guard(() => this.#checkpointer.checkpoint());
  }

  /**
   * Forces every record appended so far (END included) to disk: one fsync shared with concurrent
   * forced records, none when everything is already durable.
   * @throws (rejects) StoreIoError once failed; StoreClosedError after close.
   */
  sync(): Promise<void> {
    return this.#guard(() => this.#barrier());
  }

  /** Stops the checkpoint timer, flushes and closes the journal, releases the lock. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    try {
      await this.#checkpointer.stop();
      await this.#journal.close();
      const pending = this.#table.size;
      // Atomikos' shutdown warning: these entries are the only record of decisions in phase two.
      if (pending > 0) this.#log.warn({ pending }, `coordinator log closed with ${pending} pending transactions: do NOT delete ${this.dir}, recovery completes them at the next start`);
    } finally {
      await this.#lock.release();
    }
  }

  /** Runs a call's synchronous part, turning a throw into a rejection; refuses once closed or failed. */
  #guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      if (this.#closed) throw new StoreClosedError(`coordinator log in ${this.dir}`);
      const failure = this.failure;
      if (failure !== undefined) throw failure;
      return call();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Encodes, applies and appends one record; resolves once it meets `durability`. */
  #write(record: Exclude<CoordinatorRecord, { kind: 'checkpoint' }>, durability: JournalDurability): Promise<void> {
    const { type, payload } = encodeCoordinatorRecord(record);
    // Checked here because the journal's own check comes after the table has changed.
    if (payload.length > MAX_FRAME_PAYLOAD) throw new InvalidArgumentError(`a ${record.kind} record of ${payload.length} bytes exceeds the journal's limit`);
    this.#table.apply(record);
    const done = this.#journal.append(type, payload, durability).then(
      () => this.#checkpointer.noteAppend(),
      (error: unknown) => {
        throw this.failure ?? error;
      },
    );
    return done;
  }

  /** Resolves once every record appended before this call is durable (one shared fsync, none if all are). */
  #barrier(): Promise<void> {
    return this.#journal.sync().catch((error: unknown) => {
      throw this.failure ?? error;
    });
  }
}
