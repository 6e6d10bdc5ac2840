/**
 * The coordinator log as the manager uses it: the same {@link CoordinatorLog}, plus a count of
 * which appended records are known to be on disk.
 *
 * Why: END is not forced (a lost END only makes recovery re-drive an idempotent phase two), but
 * a PostgreSQL marker row may only be deleted once the END of its transaction is durable —
 * otherwise a crash could lose the END, recovery would re-drive the commit, PostgreSQL would
 * answer "does not exist", and the missing marker would read as a heuristic rollback. A record is
 * durable once a forced record (or `sync`) issued after it has completed: the log writes in call
 * order and a forced write forces what precedes it (see `CoordinatorLog.sync`).
 */
import type { CoordinatorLog, LoggedHeuristic, LoggedParticipant, PendingEntry } from './coordinator-log.js';

/** A {@link CoordinatorLog} that knows which of its appended records are durable. */
export class TrackedLog implements CoordinatorLog {
  readonly inner: CoordinatorLog;
  /** Sequence number of the last append call issued. */
  #issued = 0;
  /** Every append with a sequence number ≤ this is durable. */
  #durable = 0;

  constructor(inner: CoordinatorLog) {
    this.inner = inner;
  }

  /** Sequence number of the last END (or any record) issued; durable once {@link isDurable} says so. */
  get lastIssued(): number {
    return this.#issued;
  }

  /** True when the record issued with sequence number `seq` is known to be on disk. */
  isDurable(seq: number): boolean {
    return seq <= this.#durable;
  }

  /** True when the inner log can be synced on demand. */
  get canSync(): boolean {
    return typeof this.inner.sync === 'function';
  }

  async #forced<T>(write: () => Promise<T>): Promise<T> {
    const seq = ++this.#issued;
    const result = await write();
    // Everything issued before this forced record is on disk with it.
    if (seq > this.#durable) this.#durable = seq;
    return result;
  }

  committing(gtrid: Buffer, participants: readonly LoggedParticipant[]): Promise<void> {
    return this.#forced(() => this.inner.committing(gtrid, participants));
  }

  presumedAborting(gtrid: Buffer): Promise<boolean> {
    return this.#forced(() => this.inner.presumedAborting(gtrid));
  }

  heuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>): Promise<void> {
    return this.#forced(() => this.inner.heuristic(gtrid, heuristic));
  }

  /** Appends END (unforced); resolves with the record's sequence number. */
  async endTracked(gtrid: Buffer): Promise<number> {
    const seq = ++this.#issued;
    await this.inner.end(gtrid);
    return seq;
  }

  end(gtrid: Buffer): Promise<void> {
    return this.endTracked(gtrid).then(() => undefined);
  }

  get(gtrid: Buffer): PendingEntry | undefined {
    return this.inner.get(gtrid);
  }

  pending(): PendingEntry[] {
    return this.inner.pending();
  }

  async sync(): Promise<void> {
    const sync = this.inner.sync;
    if (sync === undefined) return;
    await this.#forced(() => sync.call(this.inner));
  }

  async close(): Promise<void> {
    const seq = ++this.#issued;
    await this.inner.close();
    this.#durable = Math.max(this.#durable, seq);
  }
}
