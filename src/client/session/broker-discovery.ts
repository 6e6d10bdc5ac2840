/**
 * Which brokers and partitions serve a topic: behind an interface so that the direct-URL mode
 * (one broker, `serverUrl`) and ZooKeeper discovery (`/meta/brokers/topics/...`, consumer
 * rebalancing) are interchangeable for producers and consumers.
 */

/** One partition of a topic on one broker. */
export interface PartitionRef {
  /** The broker's id (bits 12–21 of its message ids); part of the offset-storage key. */
  readonly brokerId: number;
  /** `meta://host:port` of the broker. */
  readonly brokerUrl: string;
  /** The partition on that broker, or `-1` to let the broker choose (producers only). */
  readonly partition: number;
}

/**
 * Resolves topics to partitions. Implementations: the direct-URL discovery now; a ZooKeeper
 * one later (it reads the broker registrations, owns partitions for a consumer group through
 * ephemeral znodes, and calls `onChange` after a rebalance).
 */
export interface BrokerDiscovery {
  /** The partitions a producer may send `topic` to (a single `-1` entry: the broker chooses). */
  publishPartitions(topic: string): Promise<readonly PartitionRef[]>;
  /**
   * The partitions of `topic` this member of `group` should fetch. `onChange` is called with
   * the new assignment whenever it changes (never in direct mode).
   */
  subscribePartitions(
    topic: string,
    group: string,
    consumerId: string,
    onChange: (partitions: readonly PartitionRef[]) => void,
  ): Promise<readonly PartitionRef[]>;
  /** Gives up a consumer's partitions (before the consumer stops). */
  unsubscribe(topic: string, group: string, consumerId: string): Promise<void>;
  /** The brokers currently known, `meta://host:port`. */
  brokerUrls(): readonly string[];
  /** Releases watches and sessions. */
  close(): Promise<void>;
}
