/**
 * The in-memory FakeZookeeper: the shared ZkClient conformance suite, plus its own test controls
 * (crash, expiry while disconnected, conflicts, dump).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ZookeeperError } from '../../src/common/errors.js';
import { FakeZookeeper } from '../helpers/fake-zk.js';
import { zkConformance } from '../helpers/zk-conformance.js';

describe('FakeZookeeper: ZkClient conformance', () => {
  const fake = new FakeZookeeper();
  zkConformance({
    waitMs: 2000,
    client: (options) => fake.client(options),
    expireSession: (client) => fake.expireSession(client),
    outage: async (clients) => {
      for (const client of clients) fake.disconnect(client);
      return async () => {
        for (const client of clients) await fake.reconnect(client);
      };
    },
    clientWhileDown: async (options) => {
      const client = fake.client({ ...options, startDisconnected: true });
      return { client, restore: () => fake.reconnect(client) };
    },
  });
});

describe('FakeZookeeper controls', () => {
  it('dump() lists every node but the root, sorted, with its data', async () => {
    const zk = new FakeZookeeper();
    const client = zk.client();
    await client.create('/meta/b', 'B');
    await client.create('/meta/a/x', 'X');
    assert.deepEqual([...zk.dump()], [
      ['/meta', ''],
      ['/meta/a', ''],
      ['/meta/a/x', 'X'],
      ['/meta/b', 'B'],
    ]);
  });

  it('a crashed client keeps its session and ephemerals until the session is expired; a waiting owner then takes over', async () => {
    const zk = new FakeZookeeper();
    const old = zk.client();
    await old.ownEphemeral('/meta/brokers/ids/1/master', 'old');
    const oldSession = old.sessionId ?? '';
    zk.crash(old);
    assert.equal(old.state, 'closed');
    assert.equal(zk.isSessionAlive(oldSession), true);
    const fresh = zk.client();
    let owned = false;
    const taking = fresh.ownEphemeral('/meta/brokers/ids/1/master', 'new', { waitMs: 5000 }).then(() => {
      owned = true;
    });
    await zk.flush();
    assert.equal(owned, false);
    assert.equal(zk.dump().get('/meta/brokers/ids/1/master'), 'old');
    await zk.expireSession(old);
    await taking;
    assert.equal(zk.isSessionAlive(oldSession), false);
    assert.deepEqual(await fresh.get('/meta/brokers/ids/1/master'), { data: 'new', ephemeralOwner: fresh.sessionId, version: 0 });
  });

  it('an expiry while disconnected is learnt on reconnection; a node taken meanwhile is a conflict and no longer owned', async () => {
    const zk = new FakeZookeeper();
    const owner = zk.client();
    const rival = zk.client();
    await owner.ownEphemeral('/ids/1', 'owner');
    await owner.ownEphemeral('/ids/2', 'owner');
    const events: string[] = [];
    for (const event of ['connected', 'disconnected', 'expired', 'session'] as const) owner.on(event, () => events.push(event));
    zk.disconnect(owner);
    await zk.expireSession(owner);
    assert.deepEqual(events, ['disconnected'], 'the client does not know yet');
    assert.equal(zk.dump().has('/ids/1'), false);
    await rival.ownEphemeral('/ids/1', 'rival');
    let report: { recreated: readonly string[]; conflicts: readonly string[] } | undefined;
    owner.on('session', (payload) => (report = payload));
    await zk.reconnect(owner);
    assert.deepEqual(events, ['disconnected', 'expired', 'connected', 'session']);
    assert.deepEqual(report, { sessionId: owner.sessionId, recreated: ['/ids/2'], conflicts: ['/ids/1'] });
    assert.equal(zk.dump().get('/ids/1'), 'rival');
    await assert.rejects(owner.updateEphemeral('/ids/1', 'again'), (err: unknown) => err instanceof ZookeeperError && err.zkCode === 'NOT_OWNED');
    await zk.expireSession(rival);
    await zk.expireSession(owner);
    assert.equal(zk.dump().get('/ids/2'), 'owner');
    assert.equal(zk.dump().get('/ids/1'), 'rival', 'the rival re-creates its own node');
  });

  it('watch changes during a disconnection are delivered on reconnection, once per listener', async () => {
    const zk = new FakeZookeeper();
    const watcher = zk.client();
    const writer = zk.client();
    await writer.create('/w', '');
    let fired = 0;
    watcher.watchChildren('/w', () => fired++);
    await zk.flush();
    zk.disconnect(watcher);
    await writer.create('/w/a', '');
    await writer.create('/w/b', '');
    await zk.flush();
    assert.equal(fired, 0);
    await zk.reconnect(watcher);
    assert.equal(fired, 1);
  });

  it('close() of a client waiting in ownEphemeral rejects it with CLOSED', async () => {
    const zk = new FakeZookeeper();
    const holder = zk.client();
    const waiter = zk.client();
    await holder.ownEphemeral('/x', 'h');
    const waiting = waiter.ownEphemeral('/x', 'w', { waitMs: 60_000 });
    await zk.flush();
    await waiter.close();
    await assert.rejects(waiting, (err: unknown) => err instanceof ZookeeperError && err.zkCode === 'CLOSED');
  });
});
