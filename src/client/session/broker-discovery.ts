/**
 * Which brokers and partitions serve a topic: behind an interface so that the direct-URL mode
 * (one broker, `serverUrl`) and ZooKeeper discovery (`/meta/brokers/topics/...`, consumer
 * rebalancing) are interchangeable for producers and consumers.
 */
import type { OffsetCommitFence, OffsetStorage, StoredPartition } from '../offsets/offset-storage.js';

/** One partition of a topic on one broker. */
export interface PartitionRef {
  /** The broker's id (bits 12–21 of its message ids); part of the offset-storage key. */
  readonly brokerId: number;
  /** `meta://host:port` of the broker. */
  readonly brokerUrl: string;
  /** The partition on that broker, or `-1` to let the broker choose (producers only). */
  readonly partition: number;
}

/** How a consumer group spreads partitions over its members (MetaQ's `loadBalanceStrategyType`). */
export type LoadBalanceStrategy =
  /** MetaQ's DEFAULT: contiguous ranges of the sorted partition list, one per sorted member. */
  | 'range'
  /** MetaQ's CONSIST: a ketama ring of 160 points per member. */
  | 'consistent-hash';

/** What a consumer asks of the discovery when it starts fetching. */
export interface GroupSubscription {
  readonly group: string;
  readonly consumerId: string;
  /** The topics subscribed (MetaQ registers them as the member node's data). */
  readonly topics: readonly string[];
  readonly strategy: LoadBalanceStrategy;
  /**
   * Delivers a topic's new partition set for this member. The discovery awaits it: when it
   * resolves, the consumer fetches exactly `partitions` of `topic`, has stopped fetching the
   * others (listener calls in progress finished) and committed their offsets, so they can be
   * handed to another member. A rejection means "could not apply"; the discovery retries.
   */
  readonly onAssignment: (topic: string, partitions: readonly PartitionRef[], options?: AssignmentOptions) => Promise<void>;
}

/** How the consumer applies an assignment ({@link GroupSubscription.onAssignment}). */
export interface AssignmentOptions {
  /**
   * The consumer's positions in the partitions it stops are stale: the member's ZooKeeper
   * session expired, so other members may have owned them meanwhile, consumed and committed.
   * Stop them without committing (and forget positions still waiting for a commit); a partition
   * fetched again later starts from its stored offset.
   */
  readonly discardPositions?: boolean;
}

/** Whether a member may commit a partition's offset now: {@link GroupMembership.commitPermission}. */
export type CommitPermission =
  /** It holds the partition: commit, under `fence` when given. */
  | { readonly status: 'owned'; readonly fence?: OffsetCommitFence }
  /** Another member holds it now (our session expired meanwhile): the position here is stale, never commit it. */
  | { readonly status: 'lost' }
  /** Not known until the member has re-checked its owner nodes in its new session: commit later. */
  | { readonly status: 'unconfirmed' };

/** A consumer's membership of its group, from {@link BrokerDiscovery.joinGroup}. */
export interface GroupMembership {
  /**
   * Leaves the group: releases the partitions (call after the consumer stopped fetching and
   * committed) and removes the member node. Idempotent.
   */
  leave(): Promise<void>;
  /**
   * Optional (groups coordinated through ZooKeeper): whether the offset of `partition` of
   * `topic` may be committed now, and under which fence. Without this method every partition
   * the consumer fetched may be committed.
   */
  commitPermission?(topic: string, partition: StoredPartition): CommitPermission;
}

/**
 * Resolves topics to partitions. Implementations: the direct-URL discovery (one broker, no
 * coordination) and the ZooKeeper discovery (reads the broker registrations, owns partitions
 * for a consumer group through ephemeral znodes, rebalances when members or brokers change).
 */
export interface BrokerDiscovery {
  /**
   * The partitions a producer may send `topic` to (a single `-1` entry: the broker chooses).
   * When no broker serves the topic yet, waits up to `options.waitMs` (default: the
   * discovery's own wait) for one, then rejects with an `IllegalStateError` saying why.
   */
  publishPartitions(topic: string, options?: { readonly waitMs?: number }): Promise<readonly PartitionRef[]>;
  /**
   * Calls `listener` with the new publish partitions of `topic` whenever they change (a broker
   * joins or leaves). Never called in direct mode. Returns the unsubscribe function.
   */
  onPublishPartitionsChange(topic: string, listener: (partitions: readonly PartitionRef[]) => void): () => void;
  /**
   * Joins `subscription.group` and starts delivering assignments through `onAssignment`.
   * Resolves once every topic got its first assignment (which may be empty when the group has
   * more members than partitions). Direct mode: every partition of each topic, once.
   */
  joinGroup(subscription: GroupSubscription): Promise<GroupMembership>;
  /** The brokers currently known, `meta://host:port`. */
  brokerUrls(): readonly string[];
  /**
   * Optional: resolves once the discovery has learnt the brokers (ZooKeeper: `brokers/ids` read
   * once), so that {@link brokerUrls} is meaningful.
   */
  ready?(): Promise<void>;
  /**
   * Optional: the offset storage of a consumer created without one (ZooKeeper: MetaQ's default,
   * offsets under `consumers/<group>/offsets`). The consumer closes it with itself. Without this
   * method, consumers keep offsets in a local file.
   */
  createOffsetStorage?(): OffsetStorage;
  /** Releases watches and sessions. */
  close(): Promise<void>;
}
