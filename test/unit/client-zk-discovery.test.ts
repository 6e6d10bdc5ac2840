/**
 * Client discovery through ZooKeeper, against the in-memory fake ensemble: the partition lists
 * built from broker registrations (metaq-reference §4), change events, the producer following
 * brokers that join and leave (against fake brokers on loopback), the error of a wrong zkRoot,
 * the factory options of cluster mode and broadcast consumers.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ClientClosedError, IllegalStateError, InvalidArgumentError } from '../../src/common/errors.js';
import type { RequestFrame } from '../../src/protocol/frames.js';
import { keyHashSelector } from '../../src/client/producer/partition-selectors.js';
import type { GroupMembership, PartitionRef } from '../../src/client/session/broker-discovery.js';
import { broadcastConsumerConfig, localBroadcastId } from '../../src/client/session/broadcast.js';
import { createMessageSessionFactory, type MessageSessionFactory } from '../../src/client/session/session-factory.js';
import { createBrokerRegistry, type BrokerRegistry } from '../../src/client/zk/broker-registry.js';
import { createZookeeperDiscovery, type JoinConsumerGroup, type ZookeeperDiscovery } from '../../src/client/zk/zk-discovery.js';
import { encodeTopicBrokerData, MetaPaths, topicBrokerName } from '../../src/zk/meta-paths.js';
import type { ZkClient } from '../../src/zk/zk-client.js';
import { answerHeartbeats, startFakeBroker, type FakeBroker } from '../helpers/client-fake-broker.js';
import { FakeZookeeper } from '../helpers/fake-zk.js';
import { waitFor } from '../helpers/wait-for.js';

const paths = new MetaPaths('/meta');

interface BrokerRegistration {
  readonly id: number;
  readonly url: string;
  /** topic → partitions. */
  readonly topics: Readonly<Record<string, number>>;
  /** Register as slave `slave` of broker `id` instead of its master. */
  readonly slave?: number;
}

/** Registers a broker as MetaQ's BrokerZooKeeper does, on a client (session) of its own. */
async function register(zk: FakeZookeeper, broker: BrokerRegistration): Promise<ZkClient> {
  const client = zk.client();
  const role = broker.slave === undefined ? ({ kind: 'master' } as const) : ({ kind: 'slave', slaveId: broker.slave } as const);
  await client.ownEphemeral(broker.slave === undefined ? paths.brokerMaster(broker.id) : paths.brokerSlave(broker.id, broker.slave), broker.url);
  for (const [topic, numParts] of Object.entries(broker.topics)) {
    const name = topicBrokerName(broker.id, role);
    const data = encodeTopicBrokerData({ numParts, broker: name });
    await client.ownEphemeral(`${paths.topicPub(topic)}/${name}`, data);
    await client.ownEphemeral(`${paths.topicSub(topic)}/${name}`, data);
  }
  return client;
}

/** The broker's process dies and its session expires: its ephemeral nodes go. */
async function kill(zk: FakeZookeeper, client: ZkClient): Promise<void> {
  zk.crash(client);
  await zk.expireSession(client);
}

function pairs(refs: readonly PartitionRef[]): string[] {
  return refs.map((r) => `${r.brokerId}-${r.partition}@${r.brokerUrl}`);
}

describe('broker registry: partition lists from the registrations', () => {
  let zk: FakeZookeeper;
  let registry: BrokerRegistry;

  beforeEach(() => {
    zk = new FakeZookeeper();
    registry = createBrokerRegistry({ zk: zk.client(), paths, coalesceMs: 5, random: () => 0.99 });
  });
  afterEach(() => registry.close());

  it('publish partitions: every master of topics-pub, partitions 0..numParts-1, numerically sorted by (broker, partition)', async () => {
    await register(zk, { id: 10, url: 'meta://h10:8123', topics: { t: 2, other: 5 } });
    await register(zk, { id: 2, url: 'meta://h2:8123', topics: { t: 11 } });
    // A slave's topics-pub registration is not a publish target (MetaQ reads only `-m`).
    await register(zk, { id: 2, slave: 1, url: 'meta://h2s:8123', topics: { t: 11 } });
    const refs = await registry.publishPartitions('t');
    assert.deepEqual(
      pairs(refs),
      [...Array.from({ length: 11 }, (_, p) => `2-${p}@meta://h2:8123`), '10-0@meta://h10:8123', '10-1@meta://h10:8123'],
    );
    assert.deepEqual(await registry.publishPartitions('nobody'), []);
    assert.deepEqual(registry.masterUrls(), ['meta://h2:8123', 'meta://h10:8123']);
  });

  it('skips a topics-pub registration whose master is not registered under ids, and malformed data', async () => {
    await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 1 } });
    const orphan = zk.client();
    await orphan.ownEphemeral(`${paths.topicPub('t')}/3-m`, encodeTopicBrokerData({ numParts: 4, broker: '3-m' }));
    await orphan.ownEphemeral(`${paths.topicPub('t')}/4-m`, 'not json');
    await orphan.ownEphemeral(`${paths.topicPub('t')}/junk`, '{}');
    assert.deepEqual(pairs(await registry.publishPartitions('t')), ['1-0@meta://h1:8123']);
    // Its master appears: it becomes a target.
    await orphan.ownEphemeral(paths.brokerMaster(3), 'meta://h3:8123');
    await waitFor(async () => (await registry.publishPartitions('t')).length === 5, { timeoutMs: 2000, what: 'broker 3 as a target' });
  });

  it('subscribe partitions: masters and slaves once; master gone → a slave URL; master back → master URL', async () => {
    const master = await register(zk, { id: 1, url: 'meta://m1:8123', topics: { t: 2 } });
    await register(zk, { id: 1, slave: 1, url: 'meta://s1a:8123', topics: { t: 2 } });
    await register(zk, { id: 1, slave: 2, url: 'meta://s1b:8123', topics: { t: 2 } });
    await register(zk, { id: 5, url: 'meta://m5:8123', topics: { t: 1 } });
    assert.deepEqual(pairs(await registry.subscribePartitions('t')), ['1-0@meta://m1:8123', '1-1@meta://m1:8123', '5-0@meta://m5:8123']);

    let events = 0;
    registry.onSubscribePartitionsChange('t', () => events++);
    await kill(zk, master);
    const slaveUrls = new Set(['meta://s1a:8123', 'meta://s1b:8123']);
    const failedOver = await waitFor(
      async () => {
        const refs = await registry.subscribePartitions('t');
        return refs.filter((r) => r.brokerId === 1).every((r) => slaveUrls.has(r.brokerUrl)) ? refs : undefined;
      },
      { timeoutMs: 2000, what: 'partitions of broker 1 fetched from a slave' },
    );
    // Same partitions, one slave for the broker id (random, here the last one), the master still gone.
    assert.deepEqual(pairs(failedOver), ['1-0@meta://s1b:8123', '1-1@meta://s1b:8123', '5-0@meta://m5:8123']);
    assert.ok(events >= 1);
    // Still one event per change: nothing more happens while nothing changes.
    const settled = events;
    await register(zk, { id: 1, url: 'meta://m1:8123', topics: { t: 2 } });
    await waitFor(async () => pairs(await registry.subscribePartitions('t'))[0] === '1-0@meta://m1:8123', { timeoutMs: 2000, what: 'master back' });
    assert.equal(events, settled + 1);
  });

  it('coalesces a burst of registrations into one change event with the final list', async () => {
    const slow = createBrokerRegistry({ zk: zk.client(), paths, coalesceMs: 40 });
    try {
      await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 2 } });
      assert.equal((await slow.publishPartitions('t')).length, 2);
      const seen: string[][] = [];
      slow.onPublishPartitionsChange('t', (refs) => seen.push(pairs(refs)));
      // Three brokers register 4 nodes each within one burst.
      await Promise.all([2, 3, 4].map((id) => register(zk, { id, url: `meta://h${id}:8123`, topics: { t: 1 } })));
      await waitFor(() => seen.length > 0, { timeoutMs: 2000, what: 'a change event' });
      await waitFor(async () => (await slow.publishPartitions('t')).length === 5, { timeoutMs: 2000 });
      assert.equal(seen.length, 1, `one event expected, got ${JSON.stringify(seen)}`);
      assert.equal(seen[0]?.length, 5);
    } finally {
      slow.close();
    }
  });

  it('drops a broker whose session expired and calls the listeners; close() stops them', async () => {
    const one = await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 1 } });
    await register(zk, { id: 2, url: 'meta://h2:8123', topics: { t: 1 } });
    assert.equal((await registry.publishPartitions('t')).length, 2);
    const events: string[][] = [];
    registry.onPublishPartitionsChange('t', (refs) => events.push(pairs(refs)));
    await kill(zk, one);
    await waitFor(() => events.length === 1, { timeoutMs: 2000, what: 'the change event' });
    assert.deepEqual(events[0], ['2-0@meta://h2:8123']);
    assert.deepEqual(registry.masterUrls(), ['meta://h2:8123']);
    registry.close();
    await register(zk, { id: 3, url: 'meta://h3:8123', topics: { t: 1 } });
    await zk.flush();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(events.length, 1);
    await assert.rejects(registry.publishPartitions('t'), ClientClosedError);
  });

  it('re-reads after its own session expired (changes made meanwhile are seen)', async () => {
    const client = zk.client();
    const own = createBrokerRegistry({ zk: client, paths, coalesceMs: 5 });
    try {
      await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 1 } });
      assert.equal((await own.publishPartitions('t')).length, 1);
      zk.disconnect(client);
      await register(zk, { id: 2, url: 'meta://h2:8123', topics: { t: 3 } });
      await zk.expireSession(client);
      await zk.reconnect(client);
      await waitFor(async () => (await own.publishPartitions('t')).length === 4, { timeoutMs: 2000, what: 'broker 2 after the session expiry' });
    } finally {
      own.close();
    }
  });
});

describe('ZooKeeper discovery', () => {
  let zk: FakeZookeeper;

  beforeEach(() => {
    zk = new FakeZookeeper({ connectString: 'zk1:2181,zk2:2181' });
  });

  it('publishPartitions waits for a first broker that registers within the wait', async () => {
    const discovery = createZookeeperDiscovery({ zk: zk.client(), paths, publishWaitMs: 2000, coalesceMs: 5 });
    try {
      const pending = discovery.publishPartitions('t');
      setTimeout(() => void register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 2 } }), 50);
      assert.equal((await pending).length, 2);
      assert.deepEqual(discovery.brokerUrls(), ['meta://h1:8123']);
    } finally {
      await discovery.close();
    }
  });

  it('a wrong zkRoot: a clear error naming the topic, the root and the connect string', async () => {
    await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 2 } });
    const discovery = createZookeeperDiscovery({ zk: zk.client(), paths: new MetaPaths('/metaq'), publishWaitMs: 100, coalesceMs: 5 });
    try {
      const started = Date.now();
      await assert.rejects(discovery.publishPartitions('t'), (error: unknown) => {
        assert.ok(error instanceof IllegalStateError, String(error));
        assert.match(error.message, /no broker has registered topic t under \/metaq\/brokers\/topics-pub/);
        assert.match(error.message, /zk\.zkEnable=true/);
        assert.match(error.message, /zk\.zkRoot \(\/metaq\)/);
        assert.match(error.message, /zk1:2181,zk2:2181/);
        assert.match(error.message, /nothing is registered under \/metaq\/brokers/);
        return true;
      });
      // Not >= 100: a timer is started from the event loop's cached time, so measured with
      // Date.now() it can seem to fire early by however long the loop was descheduled.
      assert.ok(Date.now() - started >= 50, 'it waited for a broker first');
    } finally {
      await discovery.close();
    }
    // The right root, a topic nobody serves: the message lists what is registered.
    const right = createZookeeperDiscovery({ zk: zk.client(), paths, publishWaitMs: 50, coalesceMs: 5 });
    try {
      await assert.rejects(right.publishPartitions('missing'), /1 broker id\(s\) under \/meta\/brokers\/ids; topics registered: t\)/);
    } finally {
      await right.close();
    }
  });

  it('joinGroup hands the registry to the group member; close() leaves, stops watching and closes an owned client', async () => {
    const client = zk.client();
    let left = 0;
    let source: unknown;
    const joinGroup: JoinConsumerGroup = async (options) => {
      source = options.partitions;
      assert.equal(options.paths, paths);
      assert.equal(options.zk, client);
      await options.subscription.onAssignment('t', await options.partitions.subscribePartitions('t'));
      return { leave: async () => void left++ } satisfies GroupMembership;
    };
    await register(zk, { id: 1, url: 'meta://h1:8123', topics: { t: 2 } });
    const discovery: ZookeeperDiscovery = createZookeeperDiscovery({ zk: client, paths, ownsClient: true, joinGroup, coalesceMs: 5 });
    let assigned: readonly PartitionRef[] = [];
    await discovery.joinGroup({
      group: 'g',
      consumerId: 'c1',
      topics: ['t'],
      strategy: 'range',
      onAssignment: async (_topic, partitions) => {
        assigned = partitions;
      },
    });
    assert.equal(source, discovery.registry);
    assert.deepEqual(pairs(assigned), ['1-0@meta://h1:8123', '1-1@meta://h1:8123']);
    await discovery.close();
    assert.equal(left, 1, 'a membership still open is left at close');
    assert.equal(client.state, 'closed');
    await assert.rejects(discovery.publishPartitions('t'), ClientClosedError);
  });

  it('does not close a client it does not own', async () => {
    const client = zk.client();
    const discovery = createZookeeperDiscovery({ zk: client, paths });
    await discovery.ready();
    await discovery.close();
    assert.equal(client.state, 'connected');
    await client.close();
  });
});

/** A fake broker that answers puts and records (partition) per put. */
async function answeringBroker(): Promise<{ broker: FakeBroker; puts: RequestFrame[] }> {
  const broker = await startFakeBroker();
  const puts: RequestFrame[] = [];
  let id = 1;
  broker.respond((request, connection) => {
    if (answerHeartbeats(request, connection)) return true;
    if (request.type === 'put') {
      puts.push(request);
      connection.reply(request.opaque, 200, `${id++} ${request.partition} ${id * 10}`);
    } else if (request.type !== 'quit') connection.reply(request.opaque, 200);
    return true;
  });
  return { broker, puts };
}

describe('producer in cluster mode (fake ZooKeeper, fake brokers)', () => {
  let zk: FakeZookeeper;
  let brokers: { broker: FakeBroker; puts: RequestFrame[] }[];
  let factory: MessageSessionFactory;
  let discovery: ZookeeperDiscovery;
  let sessions: ZkClient[];

  beforeEach(async () => {
    zk = new FakeZookeeper();
    brokers = await Promise.all([answeringBroker(), answeringBroker(), answeringBroker()]);
    sessions = [];
    for (const [i, b] of brokers.slice(0, 2).entries()) sessions.push(await register(zk, { id: i + 1, url: b.broker.url, topics: { t: 2 } }));
    discovery = createZookeeperDiscovery({ zk: zk.client(), paths, ownsClient: true, coalesceMs: 5, publishWaitMs: 500 });
    factory = createMessageSessionFactory({
      discovery,
      timerResolutionMs: 10,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
  });
  afterEach(async () => {
    await factory.close();
    await Promise.all(brokers.map((b) => b.broker.close()));
  });

  /** Sends `n` messages; returns `brokerIndex-partition` of each. */
  async function sendMany(producer: ReturnType<MessageSessionFactory['createProducer']>, n: number, key?: (i: number) => string): Promise<string[]> {
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => producer.send({ topic: 't', data: `m${i}`, ...(key === undefined ? {} : { key: key(i) }) })),
    );
    return results.map((r) => `${brokers.findIndex((b) => b.broker.url === r.brokerUrl)}-${r.partition}`);
  }

  it('spreads sends round-robin over every partition of every broker, and follows brokers joining and leaving', async () => {
    const producer = factory.createProducer();
    await producer.publish('t');
    const first = await sendMany(producer, 8);
    assert.deepEqual([...new Set(first)].sort(), ['0-0', '0-1', '1-0', '1-1']);
    assert.equal(first.filter((x) => x === '0-0').length, 2, 'round-robin: each partition twice');

    // A third broker registers: used without restarting anything.
    const third = brokers[2];
    assert.ok(third !== undefined);
    sessions.push(await register(zk, { id: 3, url: third.broker.url, topics: { t: 2 } }));
    await waitFor(async () => (await factory.getPartitionsForTopic('t')).length === 6, { timeoutMs: 2000 });
    await waitFor(async () => (await sendMany(producer, 6)).some((x) => x.startsWith('2-')), { timeoutMs: 2000, what: 'a send to the third broker' });
    const spread = await sendMany(producer, 12);
    assert.deepEqual([...new Set(spread)].sort(), ['0-0', '0-1', '1-0', '1-1', '2-0', '2-1']);

    // Broker 1 (index 0) dies and its session expires: no longer chosen.
    const gone = sessions[0];
    assert.ok(gone !== undefined);
    await kill(zk, gone);
    await waitFor(async () => (await factory.getPartitionsForTopic('t')).length === 4, { timeoutMs: 2000 });
    const before = brokers[0]?.puts.length;
    await waitFor(async () => !(await sendMany(producer, 4)).some((x) => x.startsWith('0-')), { timeoutMs: 2000 });
    const after = await sendMany(producer, 20);
    assert.ok(!after.some((x) => x.startsWith('0-')), 'the departed broker is not chosen');
    assert.ok((brokers[0]?.puts.length ?? 0) <= (before ?? 0) + 4);
  });

  it('keyHashSelector keeps key → partition while the set is unchanged', async () => {
    const producer = factory.createProducer({ selector: keyHashSelector() });
    await producer.publish('t');
    const keys = (i: number): string => `k${i % 7}`;
    const a = await sendMany(producer, 28, keys);
    const b = await sendMany(producer, 28, keys);
    assert.deepEqual(a, b);
    for (let i = 0; i < 28; i++) assert.equal(a[i], a[i % 7]);
  });

  it('when every broker left: a send fails with the discovery error after the wait, or uses a broker that comes back', async () => {
    const producer = factory.createProducer();
    await producer.publish('t');
    for (const session of sessions) await kill(zk, session);
    await waitFor(async () => (await discovery.registry.publishPartitions('t')).length === 0, { timeoutMs: 2000, what: 'no broker left' });
    const started = Date.now();
    await assert.rejects(producer.send({ topic: 't', data: 'none' }), /no broker has registered topic t/);
    assert.ok(Date.now() - started >= 400, 'the send waited for a broker first');
    // A broker that comes back within the wait (publishWaitMs; the factory passes its requestTimeoutMs) is used.
    const pending = producer.send({ topic: 't', data: 'late' });
    const back = brokers[1];
    assert.ok(back !== undefined);
    const ensemble = zk;
    setTimeout(() => void register(ensemble, { id: 2, url: back.broker.url, topics: { t: 2 } }), 100);
    const result = await pending;
    assert.equal(result.brokerUrl, back.broker.url);
  });

  it('defaultTopic: an unregistered topic goes to the default topic\'s brokers with partition -1, then to its own partitions once registered', async () => {
    const plain = factory.createProducer();
    await plain.publish('fresh').catch(() => undefined);
    await assert.rejects(plain.send({ topic: 'fresh', data: 'x' }), /no broker has registered topic fresh/, 'without defaultTopic it fails');

    const producer = factory.createProducer({ defaultTopic: 't' });
    await producer.publish('fresh');
    const early = await Promise.all(Array.from({ length: 4 }, (_, i) => producer.send({ topic: 'fresh', data: `early${i}` })));
    const earlyPuts = brokers.slice(0, 2).flatMap((b) => b.puts.filter((put) => put.type === 'put' && put.topic === 'fresh'));
    assert.equal(earlyPuts.length, 4);
    assert.ok(earlyPuts.every((put) => put.type === 'put' && put.partition === -1), 'the broker picks the partition');
    assert.deepEqual(new Set(early.map((r) => r.brokerUrl)), new Set(brokers.slice(0, 2).map((b) => b.broker.url)), 'spread over the default topic\'s brokers');

    // The third broker registers the topic (as a broker does after the put that created it): its partitions are used from then on.
    const third = brokers[2];
    assert.ok(third !== undefined);
    sessions.push(await register(zk, { id: 3, url: third.broker.url, topics: { fresh: 3 } }));
    await waitFor(async () => (await producer.send({ topic: 'fresh', data: 'probe' })).brokerUrl === third.broker.url, { timeoutMs: 2000, what: 'sends to the registered broker' });
    const later = await Promise.all(Array.from({ length: 6 }, (_, i) => producer.send({ topic: 'fresh', data: `later${i}` })));
    assert.ok(later.every((r) => r.brokerUrl === third.broker.url));
    assert.deepEqual([...new Set(later.map((r) => r.partition))].sort(), [0, 1, 2]);
    assert.throws(() => factory.createProducer({ defaultTopic: 'bad topic' }), InvalidArgumentError);
  });

  it('a transaction sends only to its broker while the producer spreads over several', async () => {
    const producer = factory.createProducer();
    await producer.publish('t');
    const tx = producer.beginTransaction();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => tx.send({ topic: 't', data: `tx${i}` })));
    assert.equal(new Set(results.map((r) => r.brokerUrl)).size, 1);
    assert.equal(tx.brokerUrl, results[0]?.brokerUrl);
    await tx.commit();
  });
});

describe('session factory in cluster mode: options, offset storage, broadcast consumers', () => {
  it('needs exactly one of serverUrl, zkConnect and discovery, and names bad values', () => {
    assert.throws(() => createMessageSessionFactory({}), /give serverUrl .* zkConnect/);
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'meta://h:1', zkConnect: 'h:2181' }), /serverUrl and zkConnect are mutually exclusive/);
    const discovery = createZookeeperDiscovery({ zk: new FakeZookeeper().client(), paths, ownsClient: true });
    assert.throws(() => createMessageSessionFactory({ zkConnect: 'h:2181', discovery }), /zkConnect and discovery are mutually exclusive/);
    void discovery.close();
    for (const bad of ['', 'localhost', 'h:0', 'h:2181,', 'h:99999', 'h:2181/chroot/']) {
      assert.throws(() => createMessageSessionFactory({ zkConnect: bad }), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.match(error.message, /MessageSessionFactoryOptions\.zkConnect/);
        return true;
      }, bad);
    }
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'meta://h:1', zkRoot: '/meta' }), /zkRoot needs zkConnect/);
    assert.throws(() => createMessageSessionFactory({ zkConnect: 'h:2181', zkRoot: 'a b' }), /MessageSessionFactoryOptions\.zkRoot/);
    assert.throws(() => createMessageSessionFactory({ zkConnect: 'h:2181', zkSessionTimeoutMs: 0 }), /zkSessionTimeoutMs must be an integer >= 1/);
    assert.throws(() => createMessageSessionFactory({ zkConnect: 'h:2181', zkConnectionTimeoutMs: 1.5 }), /zkConnectionTimeoutMs must be an integer >= 1/);
    assert.throws(() => createMessageSessionFactory({ zkConnect: 'h:2181', partitions: { t: 2 } }), /partitions applies to direct mode/);
  });

  it('consumers keep offsets in ZooKeeper by default; broadcast consumers in a local file under their own group', async () => {
    const zk = new FakeZookeeper();
    const factory = createMessageSessionFactory({ discovery: createZookeeperDiscovery({ zk: zk.client(), paths, ownsClient: true }) });
    try {
      const consumer = factory.createConsumer({ group: 'g' });
      assert.equal(typeof (consumer.offsetStorage as { nodePath?: unknown }).nodePath, 'function', 'ZooKeeper offset storage');
      const broadcast = factory.createBroadcastConsumer({ group: 'g', broadcastId: 'host1-w2' });
      assert.equal(broadcast.config.group, 'g-host1-w2');
      assert.equal((broadcast.offsetStorage as { nodePath?: unknown }).nodePath, undefined, 'local offset storage');
      const byIp = factory.createBroadcastConsumer({ group: 'g' });
      assert.equal(byIp.config.group, `g-${localBroadcastId()}`);
      assert.throws(() => factory.createBroadcastConsumer({ group: 'g', broadcastId: 'a.b' }), /ConsumerConfig\.broadcastId "a\.b" is invalid/);
    } finally {
      await factory.close();
    }
  });

  it('broadcast group names follow MetaQ: the local IP with . and : replaced by -', () => {
    const ipv4 = { lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }], eth0: [{ address: '10.1.2.3', family: 'IPv4', internal: false }] };
    assert.equal(localBroadcastId(ipv4 as never), '10-1-2-3');
    const ipv6 = { eth0: [{ address: 'fe80::1%eth0', family: 'IPv6', internal: false }] };
    assert.equal(localBroadcastId(ipv6 as never), 'fe80--1-eth0');
    assert.equal(localBroadcastId({}, () => 'box.local'), 'box-local');
    assert.deepEqual(broadcastConsumerConfig({ group: 'orders', offset: 5 }, () => '10-1-2-3'), { group: 'orders-10-1-2-3', offset: 5 });
  });
});
