/**
 * What a consumer-group member needs to know about the brokers: the partitions of a topic that
 * accept subscribers, and when they change. Implemented from the broker registrations in
 * ZooKeeper (broker-registry.ts); an interface so that rebalancing is unit-testable alone.
 */
import type { PartitionRef } from '../session/broker-discovery.js';
import type { Unsubscribe } from '../../zk/zk-client.js';

/** The subscriber-side view of the cluster. */
export interface TopicPartitionSource {
  /**
   * Every partition of `topic` registered under `topics-sub` (masters and slaves of a broker id
   * give the same partitions once), with the URL to fetch from: the master's when it is
   * registered, otherwise a slave's. Empty when no broker serves the topic.
   */
  subscribePartitions(topic: string): Promise<readonly PartitionRef[]>;
  /** Calls `listener` whenever the partitions of `topic` or their brokers may have changed. */
  onSubscribePartitionsChange(topic: string, listener: () => void): Unsubscribe;
}
