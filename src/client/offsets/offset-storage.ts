/**
 * Where a consumer group keeps its offsets (MetaQ's `OffsetStorage`, metaq-reference §6.7):
 * an interface, so that the local file storage here and the ZooKeeper and PostgreSQL storages
 * that come later are interchangeable.
 *
 * An offset is the byte position of the next message to consume in a partition log; the id of
 * the last consumed message is stored next to it (MetaQ's `msgId-offset`), which sync-replication
 * failover uses to map offsets between brokers.
 */

/** A partition as the offset storage keys it: MetaQ's `<brokerId>-<partition>`. */
export interface StoredPartition {
  readonly brokerId: number;
  readonly partition: number;
}

/** The committed position of a group in one topic-partition. */
export interface PartitionOffset {
  readonly topic: string;
  readonly brokerId: number;
  readonly partition: number;
  /** Next offset to fetch. */
  readonly offset: number;
  /** Id of the last message consumed before `offset`; `-1n` when none yet. */
  readonly messageId: bigint;
}

/**
 * What makes a consumer's offset commit legitimate: in a ZooKeeper group, the member owns the
 * partitions through ephemeral owner nodes of one session, so its commit is valid only while
 * that session lives. The ZooKeeper storage writes within that session only
 * (`ZkClient.setInSession`); the consumer itself never commits a partition it no longer owns.
 * The PostgreSQL storage ignores the fence: its offsets only move forward, so a late commit of
 * a former owner cannot move a partition back. The local file storage is per process.
 */
export interface OffsetCommitFence {
  /** The ZooKeeper session (hex id) whose owner nodes hold the committed partitions. */
  readonly zkSessionId: string;
}

/** Storage of consumer offsets. Implementations must be safe to call concurrently. */
export interface OffsetStorage {
  /**
   * The stored offsets of `group` for the given partitions of `topic`. Partitions without a
   * stored offset are left out (the consumer then calls {@link init}).
   */
  load(topic: string, group: string, partitions: readonly StoredPartition[]): Promise<PartitionOffset[]>;
  /**
   * Stores the given offsets of `group`, replacing earlier ones. Durable when it resolves.
   * With `fence` (a consumer of a ZooKeeper group passes it), a storage that can bind the write
   * to the session holding the partitions does so and writes nothing once that session has
   * ended; the others ignore it (see {@link OffsetCommitFence}).
   */
  commit(group: string, offsets: readonly PartitionOffset[], fence?: OffsetCommitFence): Promise<void>;
  /** Records the initial offset of a partition that had none. */
  init(topic: string, group: string, partition: StoredPartition, offset: number): Promise<void>;
  /** Finishes pending writes and releases resources. */
  close(): Promise<void>;
}
