/**
 * Counters of the transaction manager (transactions.md §5.8, "Coordinator"): what an operator
 * alerts on is `committingWithoutEnd` with `oldestCommittingAgeMs` (phase two stuck: a
 * participant keeps failing), `heuristics` (data may be inconsistent) and `orphanRollbacks`.
 */

/** A snapshot of the manager's counters, from `tm.metrics()`. Counters count since the manager was created. */
export interface TransactionManagerMetrics {
  /** Transactions begun in this process and not ended (phase two in the background included). */
  readonly inFlight: number;
  /** COMMITTING records without END in the coordinator log. */
  readonly committingWithoutEnd: number;
  /** Age of the oldest of them (ms since its decision), 0 when there is none. */
  readonly oldestCommittingAgeMs: number;
  /** PRESUMED_ABORTING records without END (orphans being rolled back). */
  readonly presumedAbortingWithoutEnd: number;
  /** Transactions held by a heuristic outcome, waiting for an operator's `forget`. */
  readonly heuristicPending: number;
  /** Heuristic outcomes recorded. */
  readonly heuristics: number;
  /** Recovery scans run. */
  readonly recoveryScans: number;
  /** Duration of the last recovery scan in ms. */
  readonly lastRecoveryScanMs: number;
  /** Orphan branches rolled back by recovery (presumed abort). */
  readonly orphanRollbacks: number;
  /** COMMITTING transactions recovery completed (re-driven phase two). */
  readonly recoveredCommits: number;
  /** Phase-two calls retried, by resource id. */
  readonly phaseTwoRetries: Readonly<Record<string, number>>;
  /** Two-phase commits that reached their decision (decision-row ones included). */
  readonly commits: number;
  /** Of those, decided by a last resource's commit with its decision row (decision-row mode; no log record). */
  readonly lastResourceCommits: number;
  /** Orphan branches recovery committed because their decision row says commit (decision-row mode). */
  readonly decisionRowRecoveries: number;
  /** One-phase commits (one branch with work; no log record). */
  readonly onePhaseCommits: number;
  /** Commits with nothing to commit (no work, or read-only votes only). */
  readonly readOnlyCommits: number;
  /** Transactions rolled back (application rollback, timeout, "no" vote, failed decision). */
  readonly rollbacks: number;
  /** Of those, rolled back because they outlived their timeout. */
  readonly timeouts: number;
  /** Broker commits answered XAER_NOTA and taken as committed (expired outcome tombstone). */
  readonly tombstonesExpired: number;
  /**
   * PostgreSQL marker rows deleted by the orphan-marker sweep (orphan-marker-sweeper.ts): left
   * behind by a manager that died before its batched sweep, found in the table after a scan.
   */
  readonly orphanMarkersDeleted: number;
}

/** The mutable counters behind {@link TransactionManagerMetrics} (the manager adds the gauges). */
export class MetricsCounters {
  heuristics = 0;
  recoveryScans = 0;
  lastRecoveryScanMs = 0;
  orphanRollbacks = 0;
  recoveredCommits = 0;
  commits = 0;
  lastResourceCommits = 0;
  decisionRowRecoveries = 0;
  onePhaseCommits = 0;
  readOnlyCommits = 0;
  rollbacks = 0;
  timeouts = 0;
  orphanMarkersDeleted = 0;
  readonly #phaseTwoRetries = new Map<string, number>();

  /** Counts one retried phase-two call on `resourceId`. */
  phaseTwoRetry(resourceId: string): void {
    this.#phaseTwoRetries.set(resourceId, (this.#phaseTwoRetries.get(resourceId) ?? 0) + 1);
  }

  /** Retries by resource id, as a plain object. */
  phaseTwoRetries(): Record<string, number> {
    return Object.fromEntries(this.#phaseTwoRetries);
  }
}
