/**
 * The ZooKeeper offset storage against the in-memory ZooKeeper: MetaQ's node layout and
 * `<msgId>-<offset>` data, the legacy bare offset, init that never overwrites, negative message
 * ids, and refusing negative offsets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IllegalStateError, InvalidArgumentError, ClientClosedError } from '../../src/common/errors.js';
import { createZookeeperOffsetStorage } from '../../src/client/offsets/zookeeper-offset-storage.js';
import { MetaPaths } from '../../src/zk/meta-paths.js';
import { FakeZookeeper } from '../helpers/fake-zk.js';

const NEGATIVE_ID = -6402851124219904123n;

function setup(root?: string) {
  const ensemble = new FakeZookeeper();
  const zk = ensemble.client();
  const paths = new MetaPaths(root);
  return { ensemble, zk, paths, storage: createZookeeperOffsetStorage({ zk, paths }) };
}

describe('ZooKeeper offset storage', () => {
  it('commits <msgId>-<offset> under consumers/<group>/offsets/<topic>/<b>-<p> and loads it back', async () => {
    const { ensemble, zk, storage } = setup();
    await storage.commit('g1', [
      { topic: 'orders', brokerId: 0, partition: 1, offset: 1024, messageId: 7n },
      { topic: 'orders', brokerId: 2, partition: 0, offset: 0, messageId: -1n },
      { topic: 'audit', brokerId: 0, partition: 0, offset: 33, messageId: 99n },
    ]);
    assert.deepEqual(
      [...ensemble.dump()].filter(([path]) => /\/offsets\/[^/]+\/[^/]+$/.test(path)),
      [
        ['/meta/consumers/g1/offsets/audit/0-0', '99-33'],
        ['/meta/consumers/g1/offsets/orders/0-1', '7-1024'],
        ['/meta/consumers/g1/offsets/orders/2-0', '-1-0'],
      ],
    );
    const loaded = await storage.load('orders', 'g1', [
      { brokerId: 0, partition: 1 },
      { brokerId: 2, partition: 0 },
      { brokerId: 3, partition: 0 }, // never committed: left out
    ]);
    assert.deepEqual(loaded, [
      { topic: 'orders', brokerId: 0, partition: 1, offset: 1024, messageId: 7n },
      { topic: 'orders', brokerId: 2, partition: 0, offset: 0, messageId: -1n },
    ]);
    // A later commit replaces the data; other groups are separate.
    await storage.commit('g1', [{ topic: 'orders', brokerId: 0, partition: 1, offset: 2048, messageId: 8n }]);
    assert.equal((await zk.get('/meta/consumers/g1/offsets/orders/0-1'))?.data, '8-2048');
    assert.deepEqual(await storage.load('orders', 'g2', [{ brokerId: 0, partition: 1 }]), []);
    assert.equal(storage.nodePath('orders', 'g1', { brokerId: 0, partition: 1 }), '/meta/consumers/g1/offsets/orders/0-1');
    await storage.close();
  });

  it('uses the configured root', async () => {
    const { ensemble, storage } = setup('metaq-a/');
    await storage.commit('g', [{ topic: 't', brokerId: 1, partition: 3, offset: 5, messageId: 4n }]);
    assert.equal(ensemble.dump().get('/metaq-a/consumers/g/offsets/t/1-3'), '4-5');
  });

  it('reads the legacy bare <offset> of pre-1.4 clients (message id -1)', async () => {
    const { zk, storage } = setup();
    await zk.set('/meta/consumers/old/offsets/t/0-0', '123456');
    await zk.set('/meta/consumers/old/offsets/t/0-1', ' 42\n');
    assert.deepEqual(await storage.load('t', 'old', [{ brokerId: 0, partition: 0 }, { brokerId: 0, partition: 1 }]), [
      { topic: 't', brokerId: 0, partition: 0, offset: 123456, messageId: -1n },
      { topic: 't', brokerId: 0, partition: 1, offset: 42, messageId: -1n },
    ]);
  });

  it('keeps a negative 64-bit message id exact (split at the last "-")', async () => {
    const { zk, storage } = setup();
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 77, messageId: NEGATIVE_ID }]);
    assert.equal((await zk.get('/meta/consumers/g/offsets/t/0-0'))?.data, `${NEGATIVE_ID}-77`);
    assert.deepEqual(await storage.load('t', 'g', [{ brokerId: 0, partition: 0 }]), [{ topic: 't', brokerId: 0, partition: 0, offset: 77, messageId: NEGATIVE_ID }]);
    // As written by Java MetaQ for a negative id.
    await zk.set('/meta/consumers/g/offsets/t/0-1', '-9223372036854775808-9000');
    assert.deepEqual(await storage.load('t', 'g', [{ brokerId: 0, partition: 1 }]), [
      { topic: 't', brokerId: 0, partition: 1, offset: 9000, messageId: -9223372036854775808n },
    ]);
  });

  it('init creates -1-<offset> only when the node is missing', async () => {
    const { zk, storage } = setup();
    await storage.init('t', 'g', { brokerId: 0, partition: 0 }, 0);
    assert.equal((await zk.get('/meta/consumers/g/offsets/t/0-0'))?.data, '-1-0');
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 500, messageId: 3n }]);
    await storage.init('t', 'g', { brokerId: 0, partition: 0 }, 0);
    assert.equal((await zk.get('/meta/consumers/g/offsets/t/0-0'))?.data, '3-500');
    await storage.init('t', 'g', { brokerId: 0, partition: 1 }, 100);
    assert.deepEqual(await storage.load('t', 'g', [{ brokerId: 0, partition: 1 }]), [{ topic: 't', brokerId: 0, partition: 1, offset: 100, messageId: -1n }]);
  });

  it('lets an operator move an offset back (dashboard "skip"/reset is not undone)', async () => {
    const { zk, storage } = setup();
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 5000, messageId: 9n }]);
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 100, messageId: 2n }]);
    assert.equal((await zk.get('/meta/consumers/g/offsets/t/0-0'))?.data, '2-100');
  });

  it('never writes a negative or fractional offset; rejects unreadable nodes', async () => {
    const { ensemble, zk, storage } = setup();
    await assert.rejects(storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: -1, messageId: 1n }]), InvalidArgumentError);
    await assert.rejects(storage.commit('g', [{ topic: 't', brokerId: 0, partition: 1, offset: 1.5, messageId: 1n }]), InvalidArgumentError);
    await assert.rejects(storage.init('t', 'g', { brokerId: 0, partition: 2 }, -100), InvalidArgumentError);
    assert.deepEqual([...ensemble.dump().keys()].filter((path) => /\/offsets\/[^/]+\/[^/]+$/.test(path)), []);
    await zk.set('/meta/consumers/g/offsets/t/0-3', 'garbage');
    await assert.rejects(storage.load('t', 'g', [{ brokerId: 0, partition: 3 }]), (error: unknown) => error instanceof IllegalStateError && /0-3/.test(error.message));
  });

  it('a failed write makes commit reject; close refuses later calls', async () => {
    const ensemble = new FakeZookeeper({ connectionTimeoutMs: 50 });
    const zk = ensemble.client();
    const storage = createZookeeperOffsetStorage({ zk, paths: new MetaPaths() });
    await zk.waitConnected();
    ensemble.disconnect(zk);
    await assert.rejects(storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 1, messageId: 1n }]), /not connected/);
    await ensemble.reconnect(zk);
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 1, messageId: 1n }]);
    await storage.close();
    await assert.rejects(storage.load('t', 'g', [{ brokerId: 0, partition: 0 }]), ClientClosedError);
    assert.throws(() => createZookeeperOffsetStorage({ zk: undefined as never, paths: new MetaPaths() }), InvalidArgumentError);
  });
});
