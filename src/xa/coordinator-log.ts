/**
 * The coordinator log's contract (transactions.md §5.3): presumed abort, so only decisions are
 * logged. The implementation is log/file-coordinator-log.ts; tests of the manager may use an
 * in-memory one.
 *
 * | record | forced | meaning |
 * |---|---|---|
 * | COMMITTING | yes, before any phase-two call; concurrent ones share an fsync | decision = commit, with the participants |
 * | HEURISTIC | yes | a participant reported a heuristic outcome; needs an operator |
 * | PRESUMED_ABORTING | yes | recovery's claim on an orphan; a later COMMITTING for it is refused |
 * | END | no | every participant acknowledged (or the orphan was rolled back everywhere) |
 *
 * No record for begin, prepare or abort: a transaction without COMMITTING is presumed aborted.
 */
import type { PhaseTwoOutcome, ResourceId } from './resource.js';

/** One participant as COMMITTING records it: enough for recovery to complete phase two. */
export interface LoggedParticipant {
  readonly resourceId: ResourceId;
  /** The branch qualifier (the XID is `{ METAQ_TM_FORMAT_ID, gtrid, bqual }`). */
  readonly branchQualifier: Buffer;
}

/** A heuristic outcome reported by one participant. */
export interface LoggedHeuristic {
  readonly resourceId: ResourceId;
  readonly branchQualifier: Buffer;
  readonly outcome: Extract<PhaseTwoOutcome, `heuristic-${string}`>;
  /** When it was recorded (ms since the epoch). */
  readonly atMs: number;
  /** Free text for the operator (what was seen). */
  readonly detail: string;
}

/** A transaction the log holds without END. */
export interface PendingEntry {
  readonly gtrid: Buffer;
  readonly state: 'committing' | 'presumed-aborting';
  /** When the decision (or the claim) was logged (ms since the epoch). */
  readonly decidedAtMs: number;
  /** COMMITTING's participants; empty for PRESUMED_ABORTING. */
  readonly participants: readonly LoggedParticipant[];
  /** Heuristic outcomes recorded for it, oldest first. */
  readonly heuristics: readonly LoggedHeuristic[];
}

/** The coordinator log. Methods reject with a `StoreIoError` once the log has failed (fail-stop). */
export interface CoordinatorLog {
  /**
   * Forces the commit decision. Rejects with an `IllegalStateError` (and writes nothing) when
   * the gtrid has a PRESUMED_ABORTING entry: recovery already claimed it, the transaction must roll back.
   */
  committing(gtrid: Buffer, participants: readonly LoggedParticipant[]): Promise<void>;
  /**
   * Forces recovery's claim on an orphan. Resolves false (and writes nothing) when the gtrid has
   * a COMMITTING entry (it is not an orphan), true once the claim is on disk (or was already).
   */
  presumedAborting(gtrid: Buffer): Promise<boolean>;
  /** Forces a heuristic outcome of one participant of a pending transaction. */
  heuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>): Promise<void>;
  /** Ends a pending transaction (unforced: a lost END only makes recovery re-drive an idempotent phase two). */
  end(gtrid: Buffer): Promise<void>;
  /** The entry of `gtrid`, or undefined when there is none or it ended. */
  get(gtrid: Buffer): PendingEntry | undefined;
  /** Every pending entry (oldest decision first). */
  pending(): PendingEntry[];
  /**
   * Optional: forces every record appended so far (END included) to disk. The manager calls it
   * before deleting PostgreSQL marker rows of ended transactions (a lost END makes recovery
   * re-drive the commit, which then needs the marker). A log without it must make every forced
   * record also force the records appended before it (true of an append-only file): the manager
   * then deletes markers only once a forced record written after the END has completed.
   */
  sync?(): Promise<void>;
  /** Flushes, releases the lock, closes the files. */
  close(): Promise<void>;
}
