/**
 * An in-memory {@link CoordinatorLog} for unit tests of the transaction manager: the same state
 * machine as the file log (pending-table.ts), so the same transitions, duplicates and refusals,
 * without disk. Extras for tests: the written records in order (to assert that COMMITTING was
 * forced before phase two), a simulated restart, and a simulated disk failure.
 */
import { IllegalStateError, StoreClosedError, StoreIoError } from '../../common/errors.js';
import type { CoordinatorLog, LoggedHeuristic, LoggedParticipant, PendingEntry } from '../coordinator-log.js';
import type { CoordinatorLogMetrics } from './coordinator-log-metrics.js';
import { encodeCoordinatorRecord, type CoordinatorRecord } from './coordinator-records.js';
import { PendingTable } from './pending-table.js';

/** Settings of a {@link MemoryCoordinatorLog}. */
export interface MemoryCoordinatorLogOptions {
  /** Clock for record times (ms since the epoch); default `Date.now`. */
  readonly now?: () => number;
}

/** A record the in-memory log "wrote". */
export interface WrittenCoordinatorRecord {
  readonly record: CoordinatorRecord;
  /** True for COMMITTING, PRESUMED_ABORTING and HEURISTIC (each counts as one sync here: no group commit). */
  readonly forced: boolean;
}

/** The in-memory {@link CoordinatorLog}. */
export class MemoryCoordinatorLog implements CoordinatorLog, CoordinatorLogMetrics {
  readonly #table = new PendingTable();
  readonly #now: () => number;
  readonly #records: WrittenCoordinatorRecord[] = [];
  #syncCount = 0;
  #failure: StoreIoError | undefined;
  #closed = false;

  /**
   * @param options clock.
   * @param entries pending entries to start with (what a restart would have replayed).
   */
  constructor(options: MemoryCoordinatorLogOptions = {}, entries: readonly PendingEntry[] = []) {
    this.#now = options.now ?? Date.now;
    this.#table.restore(entries);
  }

  /** Forced records written (one "sync" each). */
  get syncCount(): number {
    return this.#syncCount;
  }

  /** Records written. */
  get appendCount(): number {
    return this.#records.length;
  }

  /** Transactions held without END. */
  get pendingCount(): number {
    return this.#table.size;
  }

  /** Every record written, oldest first (a copy of the list). */
  records(): WrittenCoordinatorRecord[] {
    return [...this.#records];
  }

  /**
   * Simulates a failed disk: every later call rejects with a StoreIoError (as the file log does
   * after a failed write or fsync).
   */
  fail(cause: unknown = new Error('simulated coordinator log failure')): void {
    this.#failure ??= new StoreIoError('the in-memory coordinator log failed (simulated); restart the transaction manager', cause);
  }

  /**
   * Simulates a restart: closes this log and returns a new one holding its pending entries, as
   * replay would rebuild them. What only lives in memory (ended presumed-aborting gtrids, records,
   * counters) is not carried over, as in a real restart.
   */
  restart(): MemoryCoordinatorLog {
    this.#closed = true;
    return new MemoryCoordinatorLog({ now: this.#now }, this.#table.pending());
  }

  /** Same semantics as `FileCoordinatorLog.committing`. */
  committing(gtrid: Buffer, participants: readonly LoggedParticipant[]): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planCommitting(gtrid, participants, this.#now());
      if (plan.action === 'refuse') throw new IllegalStateError(plan.reason);
      if (plan.action === 'write') this.#write(plan.record, true);
    });
  }

  /** Same semantics as `FileCoordinatorLog.presumedAborting`. */
  presumedAborting(gtrid: Buffer): Promise<boolean> {
    return this.#guard(() => {
      const plan = this.#table.planPresumedAborting(gtrid, this.#now());
      if (plan.action === 'decline') return false;
      if (plan.action === 'write') this.#write(plan.record, true);
      return true;
    });
  }

  /** Same semantics as `FileCoordinatorLog.heuristic`. */
  heuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planHeuristic(gtrid, heuristic, this.#now());
      if (plan.action === 'write') this.#write(plan.record, true);
    });
  }

  /** Same semantics as `FileCoordinatorLog.end`. */
  end(gtrid: Buffer): Promise<void> {
    return this.#guard(() => {
      const plan = this.#table.planEnd(gtrid, this.#now());
      if (plan.action === 'write') this.#write(plan.record, false);
    });
  }

  /** The pending entry of `gtrid`. */
  get(gtrid: Buffer): PendingEntry | undefined {
    return this.#table.get(gtrid);
  }

  /** Every pending entry, oldest decision first. */
  pending(): PendingEntry[] {
    return this.#table.pending();
  }

  /** Nothing to force in memory; rejects like the other calls once closed or failed. */
  sync(): Promise<void> {
    return this.#guard(() => undefined);
  }

  /** Refuses every later call. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Runs a call synchronously (deciding in call order, like the file log) and settles asynchronously. */
  #guard<T>(call: () => T): Promise<T> {
    try {
      if (this.#closed) throw new StoreClosedError('in-memory coordinator log');
      if (this.#failure !== undefined) throw this.#failure;
      return Promise.resolve(call());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #write(record: Exclude<CoordinatorRecord, { kind: 'checkpoint' }>, forced: boolean): void {
    // Encoded although nothing is stored, so that a value the file log would refuse is refused here too.
    encodeCoordinatorRecord(record);
    this.#table.apply(record);
    this.#records.push({ record, forced });
    if (forced) this.#syncCount += 1;
  }
}
