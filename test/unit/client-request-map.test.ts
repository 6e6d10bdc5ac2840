/**
 * Opaques and the in-flight request map: wrapping Java-int counter, correlation, and the
 * sweep that finds expired requests without scanning every request each time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpaqueCounter } from '../../src/client/transport/opaque-counter.js';
import { RequestMap } from '../../src/client/transport/request-map.js';
import { describeRequest, type PendingRequest } from '../../src/client/transport/request.js';

function pending(opaque: number, startedAt: number, timeoutMs: number): PendingRequest {
  return {
    opaque,
    frame: { type: 'version' },
    startedAt,
    timeoutMs,
    deadline: startedAt + timeoutMs,
    interpret: () => undefined,
    owner: undefined,
    resolve: () => undefined,
    reject: () => undefined,
    head: 'version\r\n',
    body: undefined,
    size: 9,
    settled: false,
  };
}

describe('OpaqueCounter', () => {
  it('counts up and wraps from 2^31-1 to -2^31 like a Java int', () => {
    const counter = new OpaqueCounter(2147483646);
    assert.deepEqual([counter.next(), counter.next(), counter.next(), counter.next()], [2147483646, 2147483647, -2147483648, -2147483647]);
  });

  it('skips opaques still in use', () => {
    const counter = new OpaqueCounter(1);
    const inUse = new Set([2, 3]);
    assert.deepEqual([counter.next((o) => inUse.has(o)), counter.next((o) => inUse.has(o))], [1, 4]);
  });
});

describe('RequestMap', () => {
  it('takes a request by opaque once; unknown and repeated opaques give undefined', () => {
    const map = new RequestMap();
    const a = pending(7, 0, 100);
    map.add(a);
    assert.equal(map.has(7), true);
    assert.equal(map.take(7), a);
    assert.equal(map.take(7), undefined);
    assert.equal(map.take(99), undefined);
    assert.equal(map.size, 0);
  });

  it('returns exactly the expired requests, with mixed timeouts', () => {
    const map = new RequestMap();
    const long = pending(1, 0, 10_000);
    const short = pending(2, 10, 100);
    const later = pending(3, 50, 100);
    const fresh = pending(4, 400, 100);
    for (const r of [long, short, later, fresh]) map.add(r);
    assert.deepEqual(map.takeExpired(109), []);
    assert.deepEqual(map.takeExpired(110), [short]);
    assert.deepEqual(map.takeExpired(300), [later]);
    assert.deepEqual(map.takeExpired(10_000), [long, fresh]);
    assert.equal(map.size, 0);
  });

  it('stops scanning at requests too young to have expired', () => {
    const map = new RequestMap();
    const requests = Array.from({ length: 1000 }, (_, i) => pending(i, i, 1000));
    for (const r of requests) map.add(r);
    assert.deepEqual(map.takeExpired(1002), requests.slice(0, 3));
    assert.equal(map.size, 997);
  });

  it('takes requests by predicate in insertion order', () => {
    const map = new RequestMap();
    const written = pending(1, 0, 100);
    written.head = undefined;
    const queued = pending(2, 0, 100);
    map.add(written);
    map.add(queued);
    assert.deepEqual(map.takeWhere((r) => r.head === undefined), [written]);
    assert.deepEqual([...map.values()], [queued]);
  });
});

describe('describeRequest', () => {
  it('names the command, topic and partition for error messages', () => {
    const data = Buffer.alloc(0);
    assert.equal(describeRequest({ type: 'put', topic: 't', partition: 2, data, flag: 0, checksum: -1, transactionKey: undefined }), "put to 't' partition 2");
    assert.equal(describeRequest({ type: 'get', topic: 't', group: 'g', partition: 1, offset: 5, maxSize: 10 }), "get from 't' partition 1 offset 5 (group 'g')");
    assert.equal(describeRequest({ type: 'stats', item: undefined }), 'stats');
    assert.equal(describeRequest({ type: 'version' }), 'version (heartbeat)');
  });
});
