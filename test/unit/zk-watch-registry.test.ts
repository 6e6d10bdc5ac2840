/**
 * WatchRegistry (persistent watches over one-shot library watches): the orderings a real server
 * produces only by chance — a notification before the arm's answer is processed, a node created
 * while a children watch is being armed, stale watches of a previous session.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ZookeeperError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import { WatchRegistry, type WatchKind } from '../../src/zk/watch-registry.js';

interface ArmCall {
  readonly kind: WatchKind;
  readonly path: string;
  readonly fired: () => void;
  readonly resolve: (changed: boolean) => void;
  readonly reject: (err: unknown) => void;
}

function setup(): { registry: WatchRegistry; arms: ArmCall[] } {
  const arms: ArmCall[] = [];
  const registry = new WatchRegistry(
    (kind, path, fired) =>
      new Promise<boolean>((resolve, reject) => {
        arms.push({ kind, path, fired, resolve, reject });
      }),
    componentLogger('zk-test'),
  );
  registry.canArm = true;
  return { registry, arms };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function arm(arms: ArmCall[], index: number): ArmCall {
  const call = arms[index];
  assert.ok(call !== undefined, `arm #${index} was not requested (${arms.length} arms)`);
  return call;
}

describe('WatchRegistry', () => {
  it('arms once per (kind, path) however many listeners, and re-arms before notifying', async () => {
    const { registry, arms } = setup();
    const order: string[] = [];
    registry.add('children', '/a', () => order.push(`listener after ${arms.length} arms`));
    registry.add('children', '/a', () => undefined);
    registry.add('data', '/a', () => undefined);
    assert.deepEqual(arms.map((call) => `${call.kind}:${call.path}`), ['children:/a', 'data:/a']);
    arm(arms, 0).resolve(false);
    await tick();
    arm(arms, 0).fired();
    assert.deepEqual(order, ['listener after 3 arms'], 'the new arm was requested before the listener ran');
  });

  it('a notification that arrives before the arm request settles still counts', async () => {
    const { registry, arms } = setup();
    let fired = 0;
    registry.add('data', '/x', () => fired++);
    arm(arms, 0).fired(); // the library processed the answer and the event in one read
    arm(arms, 0).resolve(false);
    await tick();
    assert.equal(fired, 1);
    assert.equal(arms.length, 2, 're-armed');
  });

  it('notifies when arming itself saw an uncovered change (node created between two requests)', async () => {
    const { registry, arms } = setup();
    let fired = 0;
    registry.add('children', '/late', () => fired++);
    arm(arms, 0).resolve(true);
    await tick();
    assert.equal(fired, 1);
  });

  it('drops an entry whose last listener left once its watch fires, without re-arming', async () => {
    const { registry, arms } = setup();
    let fired = 0;
    const off = registry.add('children', '/gone', () => fired++);
    arm(arms, 0).resolve(false);
    await tick();
    off();
    arm(arms, 0).fired();
    assert.equal(fired, 0);
    assert.equal(arms.length, 1);
    registry.add('children', '/gone', () => fired++);
    assert.equal(arms.length, 2, 'a new subscription arms again');
  });

  it('ignores watches of a previous session; armAll re-arms all, failing only for connection errors', async () => {
    const { registry, arms } = setup();
    let fired = 0;
    registry.add('data', '/a', () => fired++);
    registry.add('children', '/b', () => fired++);
    arm(arms, 0).resolve(false);
    arm(arms, 1).resolve(false);
    await tick();
    registry.resetArms();
    arm(arms, 0).fired();
    assert.equal(fired, 0, 'stale watch ignored');
    const all = registry.armAll();
    assert.equal(arms.length, 4);
    arm(arms, 2).resolve(false);
    arm(arms, 3).reject(new ZookeeperError('CONNECTION_LOSS', 'lost', { retriable: true }));
    await assert.rejects(all, (err: unknown) => err instanceof ZookeeperError && err.zkCode === 'CONNECTION_LOSS');
    const again = registry.armAll();
    assert.equal(arms.length, 5, 'only the failed entry is armed again');
    arm(arms, 4).reject(new ZookeeperError('NO_AUTH', 'denied'));
    await again; // a non-connection failure is logged, not thrown
  });

  it('armMissing re-arms what failed after a reconnection and tells those listeners', async () => {
    const { registry, arms } = setup();
    let armed = 0;
    let failed = 0;
    registry.add('data', '/ok', () => armed++);
    registry.add('data', '/failed', () => failed++);
    arm(arms, 0).resolve(false);
    arm(arms, 1).reject(new ZookeeperError('CONNECTION_LOSS', 'lost', { retriable: true }));
    await tick();
    registry.armMissing();
    assert.deepEqual(arms.slice(2).map((call) => call.path), ['/failed']);
    arm(arms, 2).resolve(false);
    await tick();
    assert.deepEqual([armed, failed], [0, 1]);
  });

  it('does not arm while disconnected, and a throwing listener does not stop the others', async () => {
    const { registry, arms } = setup();
    registry.canArm = false;
    let other = 0;
    registry.add('data', '/t', () => {
      throw new Error('listener bug');
    });
    registry.add('data', '/t', () => other++);
    assert.equal(arms.length, 0);
    registry.notifyAll();
    assert.equal(other, 1);
  });
});
