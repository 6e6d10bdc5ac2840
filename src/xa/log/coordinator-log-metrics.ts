/**
 * The counters both coordinator log implementations expose for the manager's metrics
 * (transactions.md §5.8: in-flight decisions, fsync cost, group-commit batch size).
 */

/** Counters of a coordinator log. */
export interface CoordinatorLogMetrics {
  /**
   * fsyncs that covered journal records since open. With group commit it grows slower than the
   * number of forced records: `appendCount / syncCount` approximates the batch size.
   */
  readonly syncCount: number;
  /** Records written since open (forced or not, checkpoint markers included). */
  readonly appendCount: number;
  /** Transactions the log holds without END. */
  readonly pendingCount: number;
}
