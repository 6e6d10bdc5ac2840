/**
 * Partition selectors: which partition of a topic a message goes to (MetaQ's
 * `PartitionSelector`).
 *
 * Ordering: MetaQ orders messages per partition only. Messages with the same key go to the
 * same partition with {@link keyHashSelector}; they are stored in the order the producer sent
 * them when the sends are made from one producer over its one connection, either awaited one
 * by one or pipelined (the connection writes requests in call order and the broker appends a
 * connection's puts to a partition in arrival order). A send that fails and is retried by the
 * application can land after later messages.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import type { Message } from '../message.js';
import type { PartitionRef } from '../session/broker-discovery.js';

/** Chooses the partition for a message. */
export interface PartitionSelector {
  /** A short name for logs (`round-robin`, `random`, `key-hash`, …). */
  readonly name: string;
  /**
   * Picks one of `partitions` (never empty) for `message`.
   *
   * @throws {InvalidArgumentError} when the message lacks what the selector needs.
   */
  select(topic: string, partitions: readonly PartitionRef[], message: Message): PartitionRef;
}

/** Cycles through the partitions of each topic (the default, as MetaQ's `RoundRobinPartitionSelector`). */
export function roundRobinSelector(): PartitionSelector {
  const next = new Map<string, number>();
  return {
    name: 'round-robin',
    select(topic, partitions) {
      const i = next.get(topic) ?? 0;
      next.set(topic, (i + 1) % 0x40000000);
      return partitions[i % partitions.length] as PartitionRef;
    },
  };
}

/** Picks a partition uniformly at random (MetaQ's `RandomPartitionSelector`). */
export function randomSelector(random: () => number = Math.random): PartitionSelector {
  return {
    name: 'random',
    select(_topic, partitions) {
      return partitions[Math.floor(random() * partitions.length) % partitions.length] as PartitionRef;
    },
  };
}

/**
 * 32-bit FNV-1a over the UTF-16 code units of `key`: stable across processes, runs and
 * platforms (no seed), fast, and well spread for short keys.
 */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Sends messages with the same `key` to the same partition (`hashKey(key) % partitions`), for
 * per-key ordering. The mapping changes if the topic's partition count changes.
 *
 * @throws (from `select`) {@link InvalidArgumentError} for a message without a `key`.
 */
export function keyHashSelector(): PartitionSelector {
  return {
    name: 'key-hash',
    select(topic, partitions, message) {
      if (message.key === undefined) throw new InvalidArgumentError(`keyHashSelector needs message.key (topic '${topic}')`);
      return partitions[hashKey(message.key) % partitions.length] as PartitionRef;
    },
  };
}
