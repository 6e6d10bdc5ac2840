/**
 * The `ZkClient` contract as tests, run against the in-memory fake (test/unit/zk-fake.test.ts)
 * and against a real ZooKeeper through `connectZookeeper()` (test/integration/zk-client.test.ts),
 * so that code unit-tested on the fake behaves the same on a real ensemble.
 *
 * Call {@link zkConformance} inside a `describe`; the harness's methods are only called from
 * tests, so they may rely on servers started in a `before` hook.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';
import { ZookeeperError } from '../../src/common/errors.js';
import type { ZkClient, ZkClientEvents } from '../../src/zk/zk-client.js';
import { waitFor } from './wait-for.js';

/** What the suite needs from an implementation. */
export interface ZkConformanceHarness {
  /** A new client with its own session, connecting on its own. */
  client(options?: { readonly connectionTimeoutMs?: number }): ZkClient;
  /**
   * Makes the ensemble expire the client's session; resolves once the ensemble has ended it
   * (the client may find out later).
   */
  expireSession(client: ZkClient): Promise<void>;
  /**
   * Cuts the connections of `clients` (the real server: stops it) without ending sessions;
   * the returned function restores them.
   */
  outage(clients: readonly ZkClient[]): Promise<() => Promise<void>>;
  /** A client created while the ensemble is unreachable, and the function making it reachable. */
  clientWhileDown(options?: { readonly connectionTimeoutMs?: number }): Promise<{ client: ZkClient; restore: () => Promise<void> }>;
  /** How long to wait for something that should happen (events, watches), in ms. */
  readonly waitMs: number;
}

let counter = 0;

/** Registers the conformance tests (call inside a `describe`). */
export function zkConformance(harness: ZkConformanceHarness): void {
  let base = '';
  let clients: ZkClient[] = [];

  const open = (options?: { readonly connectionTimeoutMs?: number }): ZkClient => {
    const client = harness.client(options);
    clients.push(client);
    return client;
  };
  const connected = async (): Promise<ZkClient> => {
    const client = open();
    await client.waitConnected(harness.waitMs);
    return client;
  };
  const until = <T>(predicate: () => T | Promise<T>, what: string): Promise<NonNullable<T>> => waitFor(predicate, { timeoutMs: harness.waitMs, intervalMs: 5, what });
  /** Lets pending notifications of `client` arrive: ZooKeeper delivers a watch event before the answer to a later read. */
  const settle = async (client: ZkClient): Promise<void> => {
    await client.exists('/');
    await new Promise((resolve) => setImmediate(resolve));
  };
  const nextEvent = <K extends keyof ZkClientEvents>(client: ZkClient, event: K): Promise<ZkClientEvents[K]> =>
    new Promise((resolve) => {
      const off = client.on(event, (payload) => {
        off();
        resolve(payload);
      });
    });
  const zkCode = (code: string) => (err: unknown) => {
    assert.ok(err instanceof ZookeeperError, `expected a ZookeeperError, got ${String(err)}`);
    assert.equal(err.zkCode, code, err.message);
    return true;
  };

  beforeEach(() => {
    base = `/conformance-${process.pid}-${++counter}`;
    clients = [];
  });
  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
  });

  it('connects by itself, reports connected then session, and has a session id', async () => {
    const client = open();
    const events: string[] = [];
    client.on('connected', () => events.push('connected'));
    const session = nextEvent(client, 'session');
    assert.equal(client.state, 'disconnected');
    await client.waitConnected(harness.waitMs);
    const payload = await session;
    assert.equal(client.state, 'connected');
    assert.match(client.sessionId ?? '', /^[0-9a-f]+$/);
    assert.deepEqual(payload, { sessionId: client.sessionId, recreated: [], conflicts: [] });
    assert.deepEqual(events, ['connected']);
  });

  it('creates persistent nodes with parents, reports exists without changing data, refuses missing parents', async () => {
    const zk = await connected();
    assert.equal(await zk.create(`${base}/a/b`, 'one'), 'created');
    assert.deepEqual(await zk.get(`${base}/a/b`), { data: 'one', ephemeralOwner: undefined, version: 0 });
    assert.deepEqual(await zk.get(`${base}/a`), { data: '', ephemeralOwner: undefined, version: 0 });
    assert.equal(await zk.create(`${base}/a/b`, 'two'), 'exists');
    assert.equal((await zk.get(`${base}/a/b`))?.data, 'one');
    await assert.rejects(zk.create(`${base}/missing/c`, 'x', { parents: false }), zkCode('NO_NODE'));
    assert.equal(await zk.exists(`${base}/missing`), false);
  });

  it('creates ephemeral nodes of the current session, which cannot have children', async () => {
    const zk = await connected();
    assert.equal(await zk.create(`${base}/e`, 'eph', { mode: 'ephemeral' }), 'created');
    const node = await zk.get(`${base}/e`);
    assert.equal(node?.ephemeralOwner, zk.sessionId);
    await assert.rejects(zk.create(`${base}/e/child`, 'x'), zkCode('NO_CHILDREN_FOR_EPHEMERALS'));
  });

  it('answers undefined/false for missing nodes and lists children', async () => {
    const zk = await connected();
    assert.equal(await zk.get(`${base}/none`), undefined);
    assert.equal(await zk.exists(`${base}/none`), false);
    assert.equal(await zk.children(`${base}/none`), undefined);
    await zk.create(`${base}/p/x`, '1');
    await zk.create(`${base}/p/y`, '2');
    assert.deepEqual((await zk.children(`${base}/p`))?.sort(), ['x', 'y']);
    assert.deepEqual(await zk.children(`${base}/p/x`), []);
    assert.equal(await zk.exists(`${base}/p/x`), true);
  });

  it('keeps UTF-8 data intact', async () => {
    const zk = await connected();
    const text = 'größe € 😀 {"numParts":4,"broker":"3-m"}';
    await zk.create(`${base}/utf8`, text);
    assert.equal((await zk.get(`${base}/utf8`))?.data, text);
  });

  it('sets data: creates missing nodes, bumps versions, honours conditional versions', async () => {
    const zk = await connected();
    assert.equal(await zk.set(`${base}/s/t`, 'v0'), true);
    assert.deepEqual(await zk.get(`${base}/s/t`), { data: 'v0', ephemeralOwner: undefined, version: 0 });
    assert.equal(await zk.set(`${base}/s/t`, 'v1'), true);
    assert.equal((await zk.get(`${base}/s/t`))?.version, 1);
    assert.equal(await zk.set(`${base}/s/t`, 'stale', 0), false);
    assert.deepEqual(await zk.get(`${base}/s/t`), { data: 'v1', ephemeralOwner: undefined, version: 1 });
    assert.equal(await zk.set(`${base}/s/t`, 'v2', 1), true);
    assert.deepEqual(await zk.get(`${base}/s/t`), { data: 'v2', ephemeralOwner: undefined, version: 2 });
    assert.equal(await zk.set(`${base}/s/missing`, 'x', 0), false);
    assert.equal(await zk.exists(`${base}/s/missing`), false);
  });

  it('setInSession writes only within the named session, never once it ended', async () => {
    const writer = await connected();
    const reader = await connected();
    const path = `${base}/offsets/1-0`;
    const first = writer.sessionId ?? '';
    await writer.setInSession(path, 'a', first); // missing: created with its parents
    assert.equal((await reader.get(path))?.data, 'a');
    await writer.setInSession(path, 'b', first);
    assert.deepEqual(await reader.get(path), { data: 'b', ephemeralOwner: undefined, version: 1 });
    const session = nextEvent(writer, 'session');
    await harness.expireSession(writer);
    // Issued before the client may know that its session ended: refused all the same.
    await assert.rejects(writer.setInSession(path, 'stale', first), zkCode('SESSION_EXPIRED'));
    const report = await session;
    await assert.rejects(writer.setInSession(path, 'stale', first), zkCode('SESSION_EXPIRED'));
    assert.equal((await reader.get(path))?.data, 'b', 'nothing written for the ended session');
    await writer.setInSession(path, 'c', report.sessionId);
    assert.equal((await reader.get(path))?.data, 'c');
  });

  it('removes nodes: false when missing, NOT_EMPTY with children; removeRecursive takes the subtree', async () => {
    const zk = await connected();
    await zk.create(`${base}/r/a/b/c`, 'deep');
    await zk.create(`${base}/r/a/d`, 'side');
    await zk.create(`${base}/r/keep`, 'k');
    await assert.rejects(zk.remove(`${base}/r/a`), zkCode('NOT_EMPTY'));
    assert.equal(await zk.remove(`${base}/r/keep`), true);
    assert.equal(await zk.remove(`${base}/r/keep`), false);
    assert.equal(await zk.removeRecursive(`${base}/r/a`), true);
    assert.equal(await zk.exists(`${base}/r/a`), false);
    assert.deepEqual(await zk.children(`${base}/r`), []);
    assert.equal(await zk.removeRecursive(`${base}/r/a`), false);
  });

  it('ensurePath creates missing persistent parents without data and is idempotent', async () => {
    const zk = await connected();
    await zk.ensurePath(`${base}/x/y/z`);
    await zk.ensurePath(`${base}/x/y/z`);
    for (const path of [`${base}/x`, `${base}/x/y`, `${base}/x/y/z`]) assert.deepEqual(await zk.get(path), { data: '', ephemeralOwner: undefined, version: 0 });
  });

  it('rejects malformed paths with BAD_ARGUMENTS', async () => {
    const zk = await connected();
    await assert.rejects(zk.get('relative/path'), zkCode('BAD_ARGUMENTS'));
    await assert.rejects(zk.create(`${base}/trailing/`, ''), zkCode('BAD_ARGUMENTS'));
    await assert.rejects(zk.exists(`${base}//double`), zkCode('BAD_ARGUMENTS'));
  });

  it('watchChildren fires on node creation, child add and remove, node deletion, re-arming itself', async () => {
    const watcher = await connected();
    const writer = await connected();
    let fired = 0;
    watcher.watchChildren(`${base}/w`, () => fired++);
    await settle(watcher);
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['node created', () => writer.create(`${base}/w`, '')],
      ['child added', () => writer.create(`${base}/w/c1`, '')],
      ['second child added', () => writer.create(`${base}/w/c2`, '')],
      ['child removed', () => writer.remove(`${base}/w/c1`)],
      ['node deleted', () => writer.removeRecursive(`${base}/w`)],
      ['node created again', () => writer.create(`${base}/w`, '')],
    ];
    for (const [what, step] of steps) {
      const before = fired;
      await step();
      await until(() => fired > before, `children watch to fire: ${what}`);
      // Let duplicates of the same change arrive, so the next step counts only its own.
      await settle(watcher);
    }
  });

  it('watchData fires on data change, creation and deletion but not on children changes', async () => {
    const watcher = await connected();
    const writer = await connected();
    let data = 0;
    let children = 0;
    watcher.watchData(`${base}/d`, () => data++);
    watcher.watchChildren(`${base}/d`, () => children++);
    await settle(watcher);
    await writer.create(`${base}/d`, 'v0');
    await until(() => data >= 1, 'data watch on creation');
    await settle(watcher);
    const afterCreate = data;
    await writer.set(`${base}/d`, 'v1');
    await until(() => data > afterCreate, 'data watch on change');
    await settle(watcher);
    const afterSet = data;
    const childrenBefore = children;
    await writer.create(`${base}/d/child`, '');
    await until(() => children > childrenBefore, 'children watch on child add');
    await settle(watcher);
    assert.equal(data, afterSet, 'a child added must not fire the data watch');
    await writer.removeRecursive(`${base}/d`);
    await until(() => data > afterSet, 'data watch on deletion');
  });

  it('unsubscribing stops one listener and leaves the others', async () => {
    const watcher = await connected();
    const writer = await connected();
    let kept = 0;
    let dropped = 0;
    await writer.create(`${base}/u`, '');
    watcher.watchChildren(`${base}/u`, () => kept++);
    const off = watcher.watchChildren(`${base}/u`, () => dropped++);
    await settle(watcher);
    await writer.create(`${base}/u/1`, '');
    await until(() => kept >= 1 && dropped >= 1, 'both listeners');
    await settle(watcher);
    assert.deepEqual([kept, dropped], [1, 1]);
    off();
    await writer.create(`${base}/u/2`, '');
    await until(() => kept >= 2, 'the kept listener');
    await settle(watcher);
    assert.deepEqual([kept, dropped], [2, 1]);
    await writer.create(`${base}/u/3`, '');
    await until(() => kept >= 3, 'the kept listener again');
    await settle(watcher);
    assert.equal(kept, 3);
    assert.equal(dropped, 1);
  });

  it('ownEphemeral: visible to others with the owner session, data updatable, gone once close() resolves', async () => {
    const owner = await connected();
    const other = await connected();
    await owner.ownEphemeral(`${base}/brokers/ids/1/master`, 'meta://h:8123');
    assert.deepEqual(await other.get(`${base}/brokers/ids/1/master`), { data: 'meta://h:8123', ephemeralOwner: owner.sessionId, version: 0 });
    await owner.updateEphemeral(`${base}/brokers/ids/1/master`, 'meta://h:8124');
    assert.equal((await other.get(`${base}/brokers/ids/1/master`))?.data, 'meta://h:8124');
    await owner.close();
    assert.equal(owner.state, 'closed');
    assert.equal(await other.exists(`${base}/brokers/ids/1/master`), false);
    assert.equal(await other.exists(`${base}/brokers/ids/1`), true, 'parents are persistent');
    await owner.close();
    await assert.rejects(owner.get(`${base}/brokers`), zkCode('CLOSED'));
  });

  it('ownEphemeral twice by the same client takes the node over; releaseEphemeral deletes it once', async () => {
    const zk = await connected();
    await zk.ownEphemeral(`${base}/own`, 'a');
    await zk.ownEphemeral(`${base}/own`, 'b');
    assert.equal((await zk.get(`${base}/own`))?.data, 'b');
    assert.equal(await zk.releaseEphemeral(`${base}/own`), true);
    assert.equal(await zk.exists(`${base}/own`), false);
    assert.equal(await zk.releaseEphemeral(`${base}/own`), false);
    await assert.rejects(zk.updateEphemeral(`${base}/own`, 'c'), zkCode('NOT_OWNED'));
  });

  it('ownEphemeral refuses a persistent node at once', async () => {
    const zk = await connected();
    await zk.create(`${base}/persistent`, 'p');
    await assert.rejects(zk.ownEphemeral(`${base}/persistent`, 'x', { waitMs: 60_000 }), zkCode('NODE_EXISTS'));
  });

  it('ownEphemeral waits for another live session to let go, then owns the node', async () => {
    const first = await connected();
    const second = await connected();
    await first.ownEphemeral(`${base}/lock`, 'first');
    let done = false;
    const taking = second.ownEphemeral(`${base}/lock`, 'second', { waitMs: harness.waitMs }).then(() => {
      done = true;
    });
    await settle(second);
    await settle(first);
    assert.equal(done, false, 'must wait while the first session holds the node');
    assert.equal(await first.releaseEphemeral(`${base}/lock`), true);
    await taking;
    assert.deepEqual(await first.get(`${base}/lock`), { data: 'second', ephemeralOwner: second.sessionId, version: 0 });
  });

  it('ownEphemeral gives up after waitMs with NODE_EXISTS naming the owning session', async () => {
    const first = await connected();
    const second = await connected();
    await first.ownEphemeral(`${base}/held`, 'first');
    const started = Date.now();
    await assert.rejects(second.ownEphemeral(`${base}/held`, 'second', { waitMs: 300 }), (err: unknown) => {
      zkCode('NODE_EXISTS')(err);
      assert.ok(err instanceof Error && err.message.includes(first.sessionId ?? '?'), (err as Error).message);
      assert.match((err as Error).message, /still running|session expires/);
      return true;
    });
    assert.ok(Date.now() - started >= 290, 'waited about waitMs');
    assert.equal((await second.get(`${base}/held`))?.ephemeralOwner, first.sessionId);
  });

  it('after a session expiry: expired then session events, owned ephemerals re-created with their latest data, watches fire', async () => {
    const owner = await connected();
    const other = await connected();
    await owner.ownEphemeral(`${base}/ids/1/master`, 'v1');
    await owner.updateEphemeral(`${base}/ids/1/master`, 'v2');
    await owner.ownEphemeral(`${base}/ids/1/released`, 'r');
    await owner.releaseEphemeral(`${base}/ids/1/released`);
    await owner.create(`${base}/ids/1/plain`, 'not owned', { mode: 'ephemeral' });
    let ownerWatch = 0;
    owner.watchChildren(`${base}/ids/1`, () => ownerWatch++);
    let quiet = 0;
    owner.watchData(`${base}/quiet`, () => quiet++);
    await settle(owner);
    const oldSession = owner.sessionId;
    const expired = nextEvent(owner, 'expired');
    const session = nextEvent(owner, 'session');
    await harness.expireSession(owner);
    assert.deepEqual(await expired, { sessionId: oldSession });
    const report = await session;
    assert.notEqual(report.sessionId, oldSession);
    assert.equal(owner.sessionId, report.sessionId);
    assert.deepEqual(report.recreated, [`${base}/ids/1/master`]);
    assert.deepEqual(report.conflicts, []);
    assert.deepEqual(await other.get(`${base}/ids/1/master`), { data: 'v2', ephemeralOwner: report.sessionId, version: 0 });
    assert.equal(await other.exists(`${base}/ids/1/plain`), false, 'a plain ephemeral create is not re-created');
    assert.equal(await other.exists(`${base}/ids/1/released`), false);
    // Nothing changes at /quiet: only "changes may have been missed" tells this listener.
    await until(() => quiet >= 1, 'listeners told after the new session');
    const before = ownerWatch;
    await other.create(`${base}/ids/1/new`, '');
    await until(() => ownerWatch > before, 'watch re-armed in the new session');
  });

  it('operations wait through a connection outage; the session, its ephemerals and watches survive', async () => {
    const owner = await connected();
    const watcher = await connected();
    await owner.ownEphemeral(`${base}/o/eph`, 'alive');
    let fired = 0;
    watcher.watchChildren(`${base}/o`, () => fired++);
    await settle(watcher);
    const sessions = [owner.sessionId, watcher.sessionId];
    const disconnected = nextEvent(watcher, 'disconnected');
    const restore = await harness.outage([owner, watcher]);
    await disconnected;
    assert.equal(watcher.state, 'disconnected');
    const pending = watcher.get(`${base}/o/eph`);
    const reconnected = nextEvent(watcher, 'connected');
    await restore();
    await reconnected;
    assert.deepEqual(await pending, { data: 'alive', ephemeralOwner: sessions[0], version: 0 });
    await owner.waitConnected(harness.waitMs);
    assert.deepEqual([owner.sessionId, watcher.sessionId], sessions, 'same sessions after the outage');
    const before = fired;
    await owner.create(`${base}/o/after`, '');
    await until(() => fired > before, 'children watch after the outage');
  });

  it('a client started while ZooKeeper is unreachable times operations out (retriable) and connects by itself later', async () => {
    const { client, restore } = await harness.clientWhileDown({ connectionTimeoutMs: 300 });
    clients.push(client);
    assert.equal(client.state, 'disconnected');
    await assert.rejects(client.get('/'), (err: unknown) => {
      zkCode('TIMEOUT')(err);
      assert.equal((err as ZookeeperError).retriable, true);
      return true;
    });
    await assert.rejects(client.waitConnected(50), zkCode('TIMEOUT'));
    await restore();
    await client.waitConnected(harness.waitMs);
    assert.equal(await client.create(`${base}/late`, 'ok'), 'created');
  });
}
