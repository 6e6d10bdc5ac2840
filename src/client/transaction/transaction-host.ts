/**
 * What a producer lends to its transactions and XA resources. Internal: the producer implements
 * it; transactions never touch the connection pool or the discovery directly, so that every
 * request they make is counted by the producer (its `close()` waits for them).
 */
import { IllegalStateError } from '../../common/errors.js';
import type { TransactionKey } from '../../protocol/transaction-key.js';
import type { Message, SendResult } from '../message.js';
import type { PartitionSelector } from '../producer/partition-selectors.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import type { OpaquelessRequest, ResponseInterpreter } from '../transport/request.js';
import type { LocalKeyGenerator } from './session-id.js';

/** Something the producer settles when it closes (open local transactions roll back). */
export interface ProducerBound {
  /** Called by `producer.close()`: finish what must not outlive the producer. Never rejects. */
  producerClosing(): Promise<void>;
}

/** The producer, as its transactions see it. */
export interface TransactionHost {
  /** The producer's partition selector. */
  readonly selector: PartitionSelector;
  /** The producer's default send timeout in ms. */
  readonly sendTimeoutMs: number;
  /** The producer's session id and local transaction counter. */
  readonly keys: LocalKeyGenerator;
  /** True once `close()` was called. */
  readonly closed: boolean;
  /**
   * The partitions of a topic this producer published.
   *
   * @throws (rejects) IllegalStateError when `publish(topic)` was not called; ClientClosedError after close.
   */
  partitionsFor(topic: string): Promise<readonly PartitionRef[]>;
  /** The brokers that host a partition of every topic published (and resolved) so far, sorted. */
  publishedBrokerUrls(): readonly string[];
  /** Every broker the discovery knows now. */
  knownBrokerUrls(): readonly string[];
  /**
   * Sends `message` to `ref` in the transaction `key`; resolves with the broker's answer
   * (offset -1: the message is staged, not yet in the partition).
   *
   * @throws (rejects) InvalidArgumentError for a malformed message (before anything is sent);
   *   BrokerError, RequestTimeoutError, ConnectionError as a plain send.
   */
  putInTransaction(ref: PartitionRef, message: Message, key: TransactionKey, timeoutMs: number): Promise<SendResult>;
  /** Any other request to `brokerUrl` (the `transaction` commands), counted as the producer's. */
  request<T>(brokerUrl: string, frame: OpaquelessRequest, timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T>;
  /** Registers an object to settle at close; returns the function that unregisters it. */
  bind(bound: ProducerBound): () => void;
}

/**
 * Picks the partition of `message` among `partitions`, restricted to `brokerUrl` when given
 * (every message of a transaction goes to one broker). A `-1` entry (the discovery does not know
 * the partition count, so a plain send lets the broker choose) becomes partition 0: the broker
 * refuses `-1` in a transaction, and partition 0 exists for every configured topic.
 *
 * @throws {IllegalStateError} when the topic has no partition on `brokerUrl`.
 */
export function selectTransactionalPartition(
  selector: PartitionSelector,
  message: Message,
  partitions: readonly PartitionRef[],
  brokerUrl: string | undefined,
): PartitionRef {
  const candidates = brokerUrl === undefined ? partitions : partitions.filter((p) => p.brokerUrl === brokerUrl);
  if (candidates.length === 0) {
    throw new IllegalStateError(
      brokerUrl === undefined
        ? `No partition of topic '${message.topic}' is available`
        : `Topic '${message.topic}' has no partition on ${brokerUrl}, the broker this transaction is bound to (all messages of a transaction go to one broker)`,
    );
  }
  const chosen = candidates.length === 1 ? (candidates[0] as PartitionRef) : selector.select(message.topic, candidates, message);
  return chosen.partition === -1 ? { ...chosen, partition: 0 } : chosen;
}
