/**
 * Partition selectors: round-robin per topic, random, and key-hash (same key → same partition).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { hashKey, keyHashSelector, randomSelector, roundRobinSelector, type PartitionRef } from '../../src/index.js';

const partitions: PartitionRef[] = [0, 1, 2, 3].map((partition) => ({ brokerId: 1, brokerUrl: 'meta://h:1', partition }));
const message = (key?: string) => ({ topic: 't', data: 'x', ...(key === undefined ? {} : { key }) });

describe('partition selectors', () => {
  it('round-robin cycles through the partitions, separately per topic', () => {
    const selector = roundRobinSelector();
    const a = Array.from({ length: 6 }, () => selector.select('a', partitions, message()).partition);
    const b = Array.from({ length: 2 }, () => selector.select('b', partitions, message()).partition);
    assert.deepEqual(a, [0, 1, 2, 3, 0, 1]);
    assert.deepEqual(b, [0, 1]);
  });

  it('random picks with the given random source, always in range', () => {
    assert.equal(randomSelector(() => 0).select('t', partitions, message()).partition, 0);
    assert.equal(randomSelector(() => 0.99).select('t', partitions, message()).partition, 3);
    const selector = randomSelector();
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(selector.select('t', partitions, message()).partition);
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  });

  it('key-hash sends the same key to the same partition and spreads keys', () => {
    const selector = keyHashSelector();
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 1000; i++) {
      const key = `order-${i}`;
      const first = selector.select('t', partitions, message(key)).partition;
      assert.equal(selector.select('t', partitions, message(key)).partition, first);
      counts[first] = (counts[first] ?? 0) + 1;
    }
    for (const count of counts) assert.ok(count > 180 && count < 320, `uneven spread ${counts.join(',')}`);
  });

  it('key-hash is stable across processes (no seed): FNV-1a 32', () => {
    assert.equal(hashKey(''), 0x811c9dc5);
    assert.equal(hashKey('a'), 0xe40c292c);
    assert.equal(hashKey('foobar'), 0xbf9cf968);
  });

  it('key-hash refuses a message without a key', () => {
    assert.throws(() => keyHashSelector().select('t', partitions, message()), InvalidArgumentError);
  });
});
