import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessageId, MESSAGE_ID_EPOCH_MS, MessageIdGenerator, messageIdFloorAt } from '../../src/store/message-id.js';

describe('message ids', () => {
  it('use MetaQ layout: timestamp << 22 | brokerId << 12 | sequence', () => {
    const now = MESSAGE_ID_EPOCH_MS + 1000;
    const ids = new MessageIdGenerator(5, { now: () => now });
    const first = ids.next();
    assert.equal(first, (1000n << 22n) | (5n << 12n));
    assert.deepEqual(decodeMessageId(ids.next()), { timestampMs: now, brokerId: 5, sequence: 1 });
  });

  it('are positive and based on the wall clock', () => {
    const before = Date.now();
    const id = new MessageIdGenerator(1023).next();
    assert.ok(id > 0n);
    const { timestampMs, brokerId } = decodeMessageId(id);
    assert.equal(brokerId, 1023);
    assert.ok(timestampMs >= before && timestampMs <= Date.now());
  });

  it('reject broker ids outside 0..1023', () => {
    assert.throws(() => new MessageIdGenerator(1024), /brokerId must be an integer from 0 to 1023/);
    assert.throws(() => new MessageIdGenerator(-1), /brokerId/);
  });

  it('stay strictly increasing when the clock stands still past 4096 ids, or steps back', () => {
    let now = MESSAGE_ID_EPOCH_MS + 5000;
    const ids = new MessageIdGenerator(3, { now: () => now });
    let last = -1n;
    for (let i = 0; i < 10_000; i++) {
      if (i === 6000) now -= 2000; // NTP steps the clock back
      const id = ids.next();
      assert.ok(id > last, `id ${i} not increasing`);
      last = id;
    }
  });

  it('start above the floor found in the store (restart with a clock that went back)', () => {
    const floor = new MessageIdGenerator(9, { now: () => MESSAGE_ID_EPOCH_MS + 10_000 }).next();
    const restarted = new MessageIdGenerator(2, { now: () => MESSAGE_ID_EPOCH_MS + 3_000, floor });
    assert.ok(restarted.next() > floor);
  });

  it('floor at a time is above every id of that millisecond', () => {
    const t = MESSAGE_ID_EPOCH_MS + 77;
    const ids = new MessageIdGenerator(1023, { now: () => t });
    let id = 0n;
    for (let i = 0; i < 4096; i++) id = ids.next();
    assert.ok(messageIdFloorAt(t) >= id);
    assert.ok(messageIdFloorAt(t) < new MessageIdGenerator(0, { now: () => t + 1 }).next());
  });
});
