/**
 * What the transaction engine reports to operators (`GET /api/transactions/stats` on the HTTP
 * gateway, `metaq tx stats`): the branches it holds, its timeout wheel, and how its journal
 * reaches the disk. Counters are since the broker started.
 *
 * Why these: the questions asked of a transactional broker at 3 a.m. are "is a coordinator
 * gone?" (prepared branches and the age of the oldest), "is the disk the problem?" (the last
 * sync's duration, a failed journal) and "is group commit working?" (forced records per sync), and
 * none of them could be answered without reading logs before.
 */

/** The journal part of {@link TransactionEngineStats}. */
export interface TransactionJournalStats {
  /** Records written. */
  readonly records: number;
  /**
   * Records that had to be on disk before their answer: XA PREPARE and COMMIT, local commits
   * with `flushTxLogAtCommit=1`, heuristic decisions, checkpoint markers.
   */
  readonly forcedRecords: number;
  /** Forced writes (fdatasync, or a write on the O_DSYNC descriptor). */
  readonly syncs: number;
  /**
   * `forcedRecords / syncs`, or null before the first sync: how many records that waited for
   * the disk one forced write carried on average. Above 1 under concurrent commits means group
   * commit is working; below 1 means syncs without such records (the once-a-second sync of
   * `flushTxLogAtCommit=2`, a file roll).
   */
  readonly forcedRecordsPerSync: number | null;
  /** Bytes written, record headers included. */
  readonly bytesWritten: number;
  /** Duration of the last forced write in ms, or null before the first one. */
  readonly lastSyncMs: number | null;
  /** Journal files on disk, the current one included. */
  readonly files: number;
  /** Why the journal stopped taking records (a failed write or sync: restart the broker), or null. */
  readonly failure: string | null;
}

/** The checkpoint part of {@link TransactionEngineStats}. */
export interface TransactionCheckpointStats {
  /** Checkpoints written. */
  readonly written: number;
  /** Seconds since the last checkpoint was written, or null before the first one. */
  readonly lastAgeSeconds: number | null;
  /** The last checkpoint failure's message, cleared by the next success; null when none. */
  readonly lastFailure: string | null;
}

/** A snapshot of the broker's transaction engine. */
export interface TransactionEngineStats {
  /** The broker's `flushTxLogAtCommit` (0, 1 or 2): how local commits reach the disk. */
  readonly flushTxLogAtCommit: number;
  /** Transactions begun and neither prepared nor finished, by kind. */
  readonly active: { readonly local: number; readonly xa: number };
  /** XA branches prepared and waiting for their coordinator's decision. */
  readonly prepared: number;
  /**
   * Age in seconds of the oldest prepared branch, or null when there is none. A value that keeps
   * growing means a coordinator is not coming back: see `metaq tx list`.
   */
  readonly oldestPreparedAgeSeconds: number | null;
  /** Heuristically completed branches waiting for FORGET. */
  readonly heuristic: number;
  /** Commits journaled whose partition appends are not yet known to be on disk. */
  readonly commitsNotApplied: number;
  /** Timeouts armed in the timeout wheel, and its capacity (`maxTxTimeoutTimerCapacity`). */
  readonly timeouts: { readonly armed: number; readonly capacity: number };
  readonly journal: TransactionJournalStats;
  readonly checkpoints: TransactionCheckpointStats;
}
