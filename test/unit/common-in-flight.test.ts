/** InFlight: held until settled, waits for work added during the wait, never rejects. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InFlight } from '../../src/common/in-flight.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('InFlight', () => {
  it('holds each operation until it settles, rejected ones included, without an unhandled rejection', async () => {
    const inFlight = new InFlight();
    const a = deferred();
    const b = deferred();
    inFlight.add(a.promise);
    inFlight.add(b.promise);
    assert.equal(inFlight.size, 2);
    a.resolve();
    b.reject(new Error('refused'));
    await inFlight.settled();
    assert.equal(inFlight.size, 0);
    await assert.rejects(b.promise, /refused/, 'whoever awaits the operation still gets its rejection');
  });

  it('settled() also waits for operations added while it waits', async () => {
    const inFlight = new InFlight();
    const first = deferred();
    const late = deferred();
    inFlight.add(first.promise);
    let done = false;
    const waiting = inFlight.settled().then(() => (done = true));
    inFlight.add(late.promise);
    first.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false, 'the operation added during the wait is still in flight');
    late.resolve();
    await waiting;
    assert.equal(done, true);
  });

  it('settled() resolves at once when nothing is in flight', async () => {
    await new InFlight().settled();
  });
});
