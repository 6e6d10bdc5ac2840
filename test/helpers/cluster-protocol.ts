/**
 * What the cluster test harness (cluster.ts) and its consumer child process
 * (cluster-consumer-child.ts) say to each other over the IPC channel. Plain JSON: message ids
 * travel as decimal strings (IPC's JSON serialisation has no bigint).
 */

/** Where a consumer child keeps its offsets. */
export type ChildOffsetStorage =
  /** The session factory's default in cluster mode: `<zkRoot>/consumers/<group>/offsets/...`. */
  | { readonly kind: 'zookeeper' }
  /** A PostgreSQL table (`createPostgresOffsetStorage`). */
  | { readonly kind: 'postgres'; readonly connectionString: string; readonly table: string }
  /** A local JSON file (`createLocalOffsetStorage`). */
  | { readonly kind: 'local'; readonly file: string };

/** The child's whole configuration, passed as JSON in argv[2]. */
export interface ConsumerChildConfig {
  /** The consumer id (member id `<group>_<name>`). */
  readonly name: string;
  readonly zkConnect: string;
  readonly zkRoot: string;
  readonly zkSessionTimeoutMs: number;
  readonly topic: string;
  readonly group: string;
  readonly storage: ChildOffsetStorage;
  /**
   * `exactly-once`: `exactlyOnce(storage, handler)` writing one row per message into
   * `rowsTable` (the workload of exactly-once-workload.ts; storage must be `postgres`).
   * `report`: a plain listener that reports every message it was given over IPC.
   */
  readonly mode: 'exactly-once' | 'report';
  readonly rowsTable?: string;
  /** Makes this a broadcast consumer (`createBroadcastConsumer`) with this id. */
  readonly broadcastId?: string;
  /**
   * `report` mode: after this many messages the listener blocks (every partition) until the
   * parent sends `close`; the blocked calls then complete (and count as consumed).
   */
  readonly pauseAfter?: number;
  /** Root of the local recover store (never the default `~/.meta_recover`). */
  readonly recoverPath: string;
  /** Where the child's JSON log lines go (info level). */
  readonly logFile: string;
}

/** One message as a `report` child saw it. */
export interface ReportedMessage {
  /** The message id, decimal. */
  readonly id: string;
  readonly partition: number;
  readonly offset: number;
  /** The payload as UTF-8 text. */
  readonly data: string;
  /**
   * When the listener got it, ms since the epoch with sub-ms precision
   * (`performance.timeOrigin + performance.now()`), comparable across the children.
   */
  readonly at: number;
}

/** Child → parent. */
export type ChildReport =
  /** `completeSubscribe()` resolved. */
  | { readonly type: 'ready'; readonly pid: number }
  /** A rebalance completed (the group member's `rebalance complete` log): what the consumer fetches now. */
  | { readonly type: 'rebalanced'; readonly assignment: readonly string[]; readonly durationMs: number; readonly passes: number }
  /** `report` mode: messages the listener finished with since the last report. */
  | { readonly type: 'consumed'; readonly messages: readonly ReportedMessage[] }
  /** An error-level log line of the client (for the test's diagnostics). */
  | { readonly type: 'error-log'; readonly line: string }
  /** The consumer closed gracefully (final commit done); every consumed report was sent before. */
  | { readonly type: 'closed' };

/** Parent → child. */
export type ParentCommand = { readonly type: 'close' };
