import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutWheel, type TimeoutWheelOptions } from '../../src/transaction/timeout-wheel.js';
import { timerCapacityExceededBody } from '../../src/protocol/transaction-bodies.js';
import { InvalidArgumentError } from '../../src/common/errors.js';

const START = 1_000_000;

/** A wheel on a fake clock starting at {@link START}; `advance(to)` moves the clock and ticks. */
function fakeWheel(options: Partial<TimeoutWheelOptions> = {}): { wheel: TimeoutWheel; fired: string[]; at: Map<string, number>; advance: (to: number) => number; clock: { now: number } } {
  const clock = { now: START };
  const wheel = new TimeoutWheel({ tickMs: 100, wheelSize: 8, capacity: 1000, now: () => clock.now, ...options });
  const fired: string[] = [];
  const at = new Map<string, number>();
  const advance = (to: number): number => {
    clock.now = to;
    return wheel.tick(to);
  };
  return { wheel, fired, at, advance, clock };
}

describe('TimeoutWheel', () => {
  it('fires at the end of the tick holding the deadline, never early', () => {
    const { wheel, fired, advance } = fakeWheel();
    assert.equal(wheel.schedule('a', 250, (key) => fired.push(key)), true);
    assert.equal(wheel.schedule('b', 300, (key) => fired.push(key)), true); // exactly on a tick boundary
    assert.equal(wheel.size, 2);
    assert.equal(advance(START + 249), 0);
    assert.equal(advance(START + 299), 0);
    assert.equal(advance(START + 300), 2);
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(wheel.size, 0);
    assert.equal(wheel.has('a'), false);
  });

  it('fires every timeout within one tick after its deadline (clock stepping 7 ms)', () => {
    const { wheel, at, clock, advance } = fakeWheel({ tickMs: 50, wheelSize: 16 });
    const deadlines = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const delay = (i * 7919) % 3000; // spread over several revolutions (one is 800 ms)
      deadlines.set(`k${i}`, START + delay);
      wheel.schedule(`k${i}`, delay, (key) => at.set(key, clock.now));
    }
    for (let t = START; t <= START + 3200; t += 7) advance(t);
    assert.equal(at.size, 200);
    for (const [key, deadline] of deadlines) {
      const firedAt = at.get(key)!;
      assert.ok(firedAt >= deadline, `${key} fired early: ${firedAt} < ${deadline}`);
      assert.ok(firedAt < deadline + 50 + 7, `${key} fired late: ${firedAt} vs ${deadline}`);
    }
  });

  it('cancel disarms a timeout', () => {
    const { wheel, fired, advance } = fakeWheel();
    wheel.schedule('a', 100, (key) => fired.push(key));
    wheel.schedule('b', 100, (key) => fired.push(key));
    assert.equal(wheel.cancel('a'), true);
    assert.equal(wheel.cancel('a'), false);
    assert.equal(wheel.cancel('never'), false);
    assert.equal(wheel.size, 1);
    advance(START + 10_000);
    assert.deepEqual(fired, ['b']);
    assert.equal(wheel.cancel('b'), false, 'a fired timeout is no longer armed');
  });

  it('refuses new keys at capacity, so the engine can answer with MetaQ\'s text', () => {
    const { wheel, fired, advance } = fakeWheel({ capacity: 3 });
    for (const key of ['a', 'b', 'c']) assert.equal(wheel.schedule(key, 100, (k) => fired.push(k)), true);
    assert.equal(wheel.schedule('d', 100, (k) => fired.push(k)), false);
    assert.equal(wheel.size, 3);
    assert.equal(wheel.has('d'), false);
    assert.equal(timerCapacityExceededBody(wheel.size, wheel.capacity), 'Timer size 3 is great than maxTimerCapacity 3');
    assert.equal(wheel.schedule('a', 500, (k) => fired.push(`${k}2`)), true, 're-arming an armed key needs no extra room');
    wheel.cancel('b');
    assert.equal(wheel.schedule('d', 100, (k) => fired.push(k)), true);
    advance(START + 1000);
    assert.deepEqual(fired, ['c', 'd', 'a2']);
  });

  it('handles delays of many revolutions, several rounds sharing one bucket', () => {
    const { wheel, fired, advance } = fakeWheel({ tickMs: 10, wheelSize: 4 }); // one revolution = 40 ms
    // Ticks 1, 5, 9 and 99 all hash to bucket 1.
    wheel.schedule('r0', 15, (k) => fired.push(k));
    wheel.schedule('r1', 55, (k) => fired.push(k));
    wheel.schedule('r2', 95, (k) => fired.push(k));
    wheel.schedule('r24', 1000, (k) => fired.push(k));
    const firedBy = (t: number): string[] => {
      advance(START + t);
      return [...fired];
    };
    assert.deepEqual(firedBy(19), []);
    assert.deepEqual(firedBy(20), ['r0']);
    assert.deepEqual(firedBy(59), ['r0']);
    assert.deepEqual(firedBy(60), ['r0', 'r1']);
    assert.deepEqual(firedBy(100), ['r0', 'r1', 'r2']);
    assert.deepEqual(firedBy(999), ['r0', 'r1', 'r2']);
    assert.deepEqual(firedBy(1000), ['r0', 'r1', 'r2', 'r24']);
  });

  it('fires many timeouts of one slot in deadline order (ties in schedule order)', () => {
    const { wheel, fired, advance } = fakeWheel();
    const delays = Array.from({ length: 100 }, (_, i) => 201 + ((i * 37) % 100)); // a permutation of 201..300
    for (const delay of delays) wheel.schedule(`d${delay}`, delay, (k) => fired.push(k));
    wheel.schedule('tie-1', 250, (k) => fired.push(k));
    wheel.schedule('tie-2', 250, (k) => fired.push(k));
    assert.equal(advance(START + 299), 0);
    assert.equal(advance(START + 300), 102);
    const expected = Array.from({ length: 100 }, (_, i) => `d${201 + i}`);
    expected.splice(expected.indexOf('d250') + 1, 0, 'tie-1', 'tie-2');
    assert.deepEqual(fired, expected);
  });

  it('after a clock jump fires everything due across buckets and rounds in deadline order', () => {
    const { wheel, fired, advance } = fakeWheel({ tickMs: 10, wheelSize: 4 });
    for (const delay of [95, 5, 1000, 33, 41, 2000]) wheel.schedule(`t${delay}`, delay, (k) => fired.push(k));
    assert.equal(advance(START + 1500), 5);
    assert.deepEqual(fired, ['t5', 't33', 't41', 't95', 't1000']);
    assert.equal(wheel.size, 1);
  });

  it('re-scheduling a key replaces the old timeout', () => {
    const { wheel, fired, advance } = fakeWheel();
    wheel.schedule('a', 100, () => fired.push('old'));
    wheel.schedule('a', 500, () => fired.push('new'));
    assert.equal(wheel.size, 1);
    advance(START + 400);
    assert.deepEqual(fired, []);
    advance(START + 500);
    assert.deepEqual(fired, ['new']);
  });

  it('a callback may re-arm its own key and cancel another due in the same batch', () => {
    const { wheel, fired, advance } = fakeWheel();
    wheel.schedule('a', 110, (k) => {
      fired.push(k);
      wheel.cancel('b');
      wheel.schedule('a', 100, (again) => fired.push(`${again}-again`));
    });
    wheel.schedule('b', 150, (k) => fired.push(k));
    advance(START + 200);
    assert.deepEqual(fired, ['a']);
    assert.equal(wheel.has('a'), true);
    advance(START + 300);
    assert.deepEqual(fired, ['a', 'a-again']);
  });

  it('a deadline in the past, or after an idle fast-forward, fires at the next tick', () => {
    const { wheel, fired, clock, advance } = fakeWheel();
    advance(START + 1_000_000); // nothing armed: the wheel skips ahead
    wheel.schedule('zero', 0, (k) => fired.push(k));
    clock.now = START + 1_000_050; // the clock ran ahead of tick()
    wheel.schedule('late', 0, (k) => fired.push(k));
    wheel.schedule('ok', 120, (k) => fired.push(k));
    assert.equal(advance(START + 1_000_099), 0);
    assert.equal(advance(START + 1_000_100), 2);
    assert.equal(advance(START + 1_000_169), 0);
    assert.equal(advance(START + 1_000_200), 1);
    assert.deepEqual(fired, ['zero', 'late', 'ok']);
  });

  it('reports callback errors to onError and keeps firing the others', () => {
    const errors: string[] = [];
    const { wheel, fired, advance } = fakeWheel({ onError: (error, key) => errors.push(`${key}:${(error as Error).message}`) });
    wheel.schedule('bad', 100, () => {
      throw new Error('boom');
    });
    wheel.schedule('good', 150, (k) => fired.push(k));
    assert.equal(advance(START + 200), 2);
    assert.deepEqual(errors, ['bad:boom']);
    assert.deepEqual(fired, ['good']);
  });

  it('without onError rethrows the first callback error after the whole batch ran', () => {
    const { wheel, fired, advance } = fakeWheel();
    wheel.schedule('bad', 100, () => {
      throw new Error('first');
    });
    wheel.schedule('bad2', 120, () => {
      throw new Error('second');
    });
    wheel.schedule('good', 150, (k) => fired.push(k));
    assert.throws(() => advance(START + 200), /first/);
    assert.deepEqual(fired, ['good']);
    assert.equal(wheel.size, 0);
  });

  it('validates its options and delays', () => {
    assert.throws(() => new TimeoutWheel({ tickMs: 0, wheelSize: 8, capacity: 1 }), InvalidArgumentError);
    assert.throws(() => new TimeoutWheel({ tickMs: 100, wheelSize: 0, capacity: 1 }), InvalidArgumentError);
    assert.throws(() => new TimeoutWheel({ tickMs: 100, wheelSize: 1.5, capacity: 1 }), InvalidArgumentError);
    assert.throws(() => new TimeoutWheel({ tickMs: 100, wheelSize: 8, capacity: 0 }), InvalidArgumentError);
    const { wheel } = fakeWheel();
    assert.throws(() => wheel.schedule('a', -1, () => undefined), InvalidArgumentError);
    assert.throws(() => wheel.schedule('a', Number.NaN, () => undefined), InvalidArgumentError);
    assert.throws(() => wheel.schedule('a', Number.POSITIVE_INFINITY, () => undefined), InvalidArgumentError);
    assert.equal(wheel.size, 0);
  });

  it('start() drives one unref\'d interval on the real clock; stop() releases it', async () => {
    const refTimers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = refTimers();
    const wheel = new TimeoutWheel({ tickMs: 5, wheelSize: 16, capacity: 10 });
    const fired: string[] = [];
    wheel.start();
    wheel.start(); // idempotent: still one interval
    assert.equal(wheel.running, true);
    assert.equal(refTimers(), before, 'the interval is unref\'d');
    wheel.schedule('a', 10, (k) => fired.push(k));
    for (let i = 0; i < 100 && fired.length === 0; i++) await sleep(10);
    assert.deepEqual(fired, ['a']);

    wheel.stop();
    assert.equal(wheel.running, false);
    wheel.schedule('b', 10, (k) => fired.push(k));
    await sleep(60);
    assert.deepEqual(fired, ['a'], 'nothing fires after stop()');
    assert.equal(wheel.has('b'), true, 'stop() keeps armed timeouts');
    assert.equal(wheel.tick(), 1);
    assert.deepEqual(fired, ['a', 'b']);
    wheel.stop(); // idempotent
  });
});
