/**
 * The consumer side of MetaQ's ZooKeeper layout, byte for byte against metaq-reference §4, with
 * a real ZooKeeper, two real `metaq-server` processes (broker ids 1 and 2, topics `orders` with 2
 * partitions and `refunds` with 1 on each) and a group of two real consumers, `a` subscribed to
 * `orders` and `refunds` (so its member node lists two topics) and `b` to `orders` only:
 *
 * - while the group runs and has committed its offsets, the whole tree under `/meta` is exactly
 *   the literal tree written out below from §4 — the brokers' nodes, the member nodes
 *   `ids/<group>_<consumerId>` (topics comma-separated), the owner nodes
 *   `owners/<topic>/<brokerId>-<partition>` (the owner's member id), the offset nodes
 *   `offsets/<topic>/<brokerId>-<partition>` (`<msgId>-<offset>`) and their empty persistent
 *   parents, and nothing else; member and owner nodes are ephemeral and owned by the ZooKeeper
 *   session of the consumer they name, offset nodes and parents are persistent;
 * - once both consumers closed, their member and owner nodes are gone and the offset nodes stay.
 *
 * Paths are string literals, never built with `MetaPaths` (the class under test), and ZooKeeper
 * is read with the plain `node-zookeeper-client` library (test/helpers/zk-tree.ts).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import {
  createMessageSessionFactory,
  createZookeeperDiscovery,
  type MessageConsumer,
  type MessageSessionFactory,
  type PartitionSelector,
  type SendResult,
} from '../../src/index.js';
import type { ZkClient } from '../../src/zk/zk-client.js';
import { connectZookeeper } from '../../src/zk/zookeeper-client.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { byPath, readTree, type ReadNode } from '../helpers/zk-tree.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';

const GROUP = 'layout-group';
const TOPIC_SECTIONS = ['[topic=orders]', 'numPartitions=2', '[topic=refunds]', 'numPartitions=1'].join('\n');
/** A stored record is a 20-byte header then the data (metaq-reference §2, "Stored record"). */
const RECORD_HEADER_BYTES = 20;

/**
 * Who must own a node: `persistent` for none, otherwise the ZooKeeper session of consumer
 * `a` / `b` or of broker `1` / `2`.
 */
type Owner = 'persistent' | 'consumer a' | 'consumer b' | 'broker 1' | 'broker 2';

/** One expected znode: path, exact data, owner. */
type ExpectedNode = readonly [path: string, data: string, owner: Owner];

/** A broker process registered in ZooKeeper, with what its nodes hold. */
interface RunningBroker {
  readonly id: 1 | 2;
  readonly process: BrokerProcess;
  /** `meta://127.0.0.1:<port>`, the data of `ids/<id>` and `ids/<id>/master`. */
  readonly url: string;
  /** CRC32 of its server.ini, decimal: the data of `master_config_checksum`. */
  readonly checksum: string;
}

/** A consumer of the group with its own session factory and ZooKeeper session. */
interface GroupConsumer {
  readonly zk: ZkClient;
  readonly factory: MessageSessionFactory;
  readonly consumer: MessageConsumer;
  /** `<topic> <data>` of every message it got (the data is unique per message). */
  readonly received: Set<string>;
}

/**
 * The nodes brokers 1 and 2 register under `/meta` for {@link TOPIC_SECTIONS} (§4's broker rows;
 * checked in detail by broker-zk-registration.test.ts), parents included.
 */
function expectedBrokerNodes(brokers: readonly RunningBroker[]): ExpectedNode[] {
  const nodes: ExpectedNode[] = [
    ['/meta', '', 'persistent'],
    ['/meta/brokers', '', 'persistent'],
    ['/meta/brokers/ids', '', 'persistent'],
    ['/meta/brokers/topics', '', 'persistent'],
    ['/meta/brokers/topics-pub', '', 'persistent'],
    ['/meta/brokers/topics-sub', '', 'persistent'],
  ];
  for (const dir of ['topics', 'topics-pub', 'topics-sub']) for (const topic of ['orders', 'refunds']) nodes.push([`/meta/brokers/${dir}/${topic}`, '', 'persistent']);
  for (const { id, url, checksum } of brokers) {
    const owner: Owner = id === 1 ? 'broker 1' : 'broker 2';
    nodes.push(
      [`/meta/brokers/ids/${id}`, url, 'persistent'],
      [`/meta/brokers/ids/${id}/master`, url, owner],
      [`/meta/brokers/ids/${id}/master_config_checksum`, checksum, owner],
      [`/meta/brokers/topics/orders/${id}-m`, '2', owner],
      [`/meta/brokers/topics/refunds/${id}-m`, '1', owner],
      [`/meta/brokers/topics-pub/orders/${id}-m`, `{"numParts":2,"broker":"${id}-m"}`, owner],
      [`/meta/brokers/topics-pub/refunds/${id}-m`, `{"numParts":1,"broker":"${id}-m"}`, owner],
      [`/meta/brokers/topics-sub/orders/${id}-m`, `{"numParts":2,"broker":"${id}-m"}`, owner],
      [`/meta/brokers/topics-sub/refunds/${id}-m`, `{"numParts":1,"broker":"${id}-m"}`, owner],
    );
  }
  return nodes;
}

/**
 * `<msgId>-<offset>` after consuming `last`, the last message of its partition: its id, then the
 * offset of the next record (the record's offset + header + data).
 */
function offsetData(last: { readonly result: SendResult; readonly data: string }): string {
  return `${last.result.id}-${last.result.offset + RECORD_HEADER_BYTES + Buffer.byteLength(last.data)}`;
}

/**
 * Compares `tree` with `expected`: paths and data exactly, then owners — a persistent node has
 * none, a consumer's node is owned by that consumer's session, and each broker's nodes by one
 * session of their own. Returns the differences (one a line), or `undefined` when there is none.
 */
function difference(tree: ReadonlyMap<string, ReadNode>, expected: readonly ExpectedNode[], consumerSessions: Readonly<Record<'a' | 'b', string>>): string | undefined {
  const wanted = new Map(expected.map(([path, data]) => [path, data]));
  const problems = [
    ...byPath([...wanted]).flatMap(([path, data]) => {
      const found = tree.get(path);
      if (found === undefined) return [`missing ${path} = ${JSON.stringify(data)}`];
      return found.data === data ? [] : [`${path} = ${JSON.stringify(found.data)}, expected ${JSON.stringify(data)}`];
    }),
    ...[...tree].filter(([path]) => !wanted.has(path)).map(([path, node]) => `unexpected ${path} = ${JSON.stringify(node.data)}`),
  ];
  if (problems.length > 0) return problems.join('\n');
  const sessions = new Map<Owner, string | undefined>([
    ['persistent', undefined],
    ['consumer a', consumerSessions.a],
    ['consumer b', consumerSessions.b],
  ]);
  for (const [path, , owner] of expected) {
    const found = tree.get(path)?.owner;
    if (!sessions.has(owner)) {
      if (found === undefined) return `${path} is persistent, expected an ephemeral of ${owner}`;
      if ([...sessions.values()].includes(found)) return `${path} is owned by ${found}, a session of another client, expected one of ${owner}'s own`;
      sessions.set(owner, found);
    }
    if (found !== sessions.get(owner)) return `${path} is owned by ${found ?? 'nobody (persistent)'}, expected ${owner} (${sessions.get(owner) ?? 'persistent'})`;
  }
  return undefined;
}

describe('consumer-side znodes in a real ZooKeeper, byte for byte', { timeout: 180_000 }, () => {
  let zk: ZookeeperServer;
  let dir: { path: string; remove: () => Promise<void> };
  const brokers: RunningBroker[] = [];
  const consumers = new Map<'a' | 'b', GroupConsumer>();
  let producerFactory: MessageSessionFactory | undefined;

  /** Writes broker `id`'s server.ini, starts it, and resolves once it serves. */
  async function startBroker(id: 1 | 2): Promise<RunningBroker> {
    const file = join(dir.path, `broker-${id}.ini`);
    fs.writeFileSync(
      file,
      testBrokerIni(join(dir.path, `data-${id}`), {
        system: { brokerId: id },
        topics: TOPIC_SECTIONS,
        zookeeper: { 'zk.zkConnect': zk.connectString, 'zk.zkSessionTimeoutMs': 10_000, 'zk.zkSyncTimeMs': 100 },
      }),
    );
    const child = spawnBroker(['start', '-c', file]);
    const started = await child.waitForLog('broker started', 30_000);
    return { id, process: child, url: `meta://127.0.0.1:${Number(started['port'])}`, checksum: String(crc32(fs.readFileSync(file))) };
  }

  /** Starts consumer `name` of the group on `topics`, in a session factory (and ZooKeeper session) of its own. */
  async function startConsumer(name: 'a' | 'b', topics: readonly string[]): Promise<GroupConsumer> {
    const session = connectZookeeper({ connectString: zk.connectString, sessionTimeoutMs: 10_000 });
    const factory = createMessageSessionFactory({ discovery: createZookeeperDiscovery({ zk: session, ownsClient: true }) });
    const received = new Set<string>();
    const consumer = factory.createConsumer({
      group: GROUP,
      consumerId: name,
      commitOffsetPeriodInMills: 200,
      maxDelayFetchTimeInMills: 200,
      recoverPath: join(dir.path, `recover-${name}`),
    });
    for (const topic of topics) {
      consumer.subscribe(topic, { maxSize: 64 * 1024 }, (message) => {
        received.add(`${message.topic} ${Buffer.from(message.data).toString('utf8')}`);
      });
    }
    const member = { zk: session, factory, consumer, received };
    consumers.set(name, member);
    await consumer.completeSubscribe();
    return member;
  }

  before(async () => {
    dir = await makeTempDir('metaq-zk-layout-');
    zk = await startZookeeper();
    brokers.push(...(await Promise.all([startBroker(1), startBroker(2)])));
  });

  after(async () => {
    for (const member of consumers.values()) await member.factory.close().catch(() => undefined);
    await producerFactory?.close().catch(() => undefined);
    for (const broker of brokers) {
      broker.process.child.kill('SIGTERM');
      await broker.process.exited;
    }
    await zk?.stop();
    await dir?.remove();
  });

  it('members (two topics for one), owners and committed offsets under consumers/<group> are MetaQ\'s, and only the offsets outlive the consumers', async () => {
    // Messages to chosen partitions: two to orders 1-0, one to each other partition except
    // refunds 2-0, which stays empty: its offset node is the `-1-0` metaq writes when it claims
    // a partition without a stored offset (MetaQ's Java ZkOffsetStorage.initOffset writes none).
    const sends: { topic: string; brokerId: number; partition: number; data: string }[] = [
      { topic: 'orders', brokerId: 1, partition: 0, data: 'order 1-0 first' },
      { topic: 'orders', brokerId: 1, partition: 0, data: 'order 1-0 second, a little longer' },
      { topic: 'orders', brokerId: 1, partition: 1, data: 'order 1-1' },
      { topic: 'orders', brokerId: 2, partition: 0, data: 'order 2-0' },
      { topic: 'orders', brokerId: 2, partition: 1, data: 'order 2-1 ü' },
      { topic: 'refunds', brokerId: 1, partition: 0, data: 'refund 1-0' },
    ];
    /** Where the next send goes. */
    let target = { brokerId: -1, partition: -1 };
    const toTarget: PartitionSelector = {
      name: 'to-target',
      select: (_topic, partitions) => {
        const chosen = partitions.find((p) => p.brokerId === target.brokerId && p.partition === target.partition);
        assert.ok(chosen !== undefined, `partition ${target.brokerId}-${target.partition} is known to the producer`);
        return chosen;
      },
    };
    producerFactory = createMessageSessionFactory({ zkConnect: zk.connectString });
    const factory = producerFactory;
    await waitFor(async () => (await factory.getPartitionsForTopic('orders')).length === 4 && (await factory.getPartitionsForTopic('refunds')).length === 2, {
      timeoutMs: 20_000,
      what: 'both brokers registered',
    });
    const producer = factory.createProducer({ selector: toTarget });
    await producer.publish('orders');
    await producer.publish('refunds');
    /** The last message sent to each `<topic> <brokerId>-<partition>`. */
    const last = new Map<string, { result: SendResult; data: string }>();
    for (const send of sends) {
      target = send;
      const result = await producer.send({ topic: send.topic, data: send.data });
      assert.equal(`${result.brokerUrl}#${result.partition}`, `${brokers[send.brokerId - 1]?.url}#${send.partition}`);
      last.set(`${send.topic} ${send.brokerId}-${send.partition}`, { result, data: send.data });
    }
    const lastOf = (key: string): { result: SendResult; data: string } => {
      const found = last.get(key);
      assert.ok(found !== undefined, key);
      return found;
    };

    const a = await startConsumer('a', ['orders', 'refunds']);
    const b = await startConsumer('b', ['orders']);
    const received = (): Set<string> => new Set([...a.received, ...b.received]);
    await waitFor(() => sends.every((s) => received().has(`${s.topic} ${s.data}`)), { timeoutMs: 20_000, what: 'every message consumed by the group' });
    const sessions = { a: a.zk.sessionId ?? '', b: b.zk.sessionId ?? '' };
    assert.ok(sessions.a !== '' && sessions.b !== '' && sessions.a !== sessions.b, 'two sessions');

    // metaq-reference §4: ids/<group>_<consumerId> = topics CSV; owners/<topic>/<b>-<p> = owner's
    // id (range: a then b over the string-sorted partitions; refunds has one member, a);
    // offsets/<topic>/<b>-<p> = <msgId>-<offset>, -1 as the id before any message.
    const running: ExpectedNode[] = [
      ...expectedBrokerNodes(brokers),
      ['/meta/consumers', '', 'persistent'],
      ['/meta/consumers/layout-group', '', 'persistent'],
      ['/meta/consumers/layout-group/ids', '', 'persistent'],
      ['/meta/consumers/layout-group/ids/layout-group_a', 'orders,refunds', 'consumer a'],
      ['/meta/consumers/layout-group/ids/layout-group_b', 'orders', 'consumer b'],
      ['/meta/consumers/layout-group/owners', '', 'persistent'],
      ['/meta/consumers/layout-group/owners/orders', '', 'persistent'],
      ['/meta/consumers/layout-group/owners/orders/1-0', 'layout-group_a', 'consumer a'],
      ['/meta/consumers/layout-group/owners/orders/1-1', 'layout-group_a', 'consumer a'],
      ['/meta/consumers/layout-group/owners/orders/2-0', 'layout-group_b', 'consumer b'],
      ['/meta/consumers/layout-group/owners/orders/2-1', 'layout-group_b', 'consumer b'],
      ['/meta/consumers/layout-group/owners/refunds', '', 'persistent'],
      ['/meta/consumers/layout-group/owners/refunds/1-0', 'layout-group_a', 'consumer a'],
      ['/meta/consumers/layout-group/owners/refunds/2-0', 'layout-group_a', 'consumer a'],
      ['/meta/consumers/layout-group/offsets', '', 'persistent'],
      ['/meta/consumers/layout-group/offsets/orders', '', 'persistent'],
      ['/meta/consumers/layout-group/offsets/orders/1-0', offsetData(lastOf('orders 1-0')), 'persistent'],
      ['/meta/consumers/layout-group/offsets/orders/1-1', offsetData(lastOf('orders 1-1')), 'persistent'],
      ['/meta/consumers/layout-group/offsets/orders/2-0', offsetData(lastOf('orders 2-0')), 'persistent'],
      ['/meta/consumers/layout-group/offsets/orders/2-1', offsetData(lastOf('orders 2-1')), 'persistent'],
      ['/meta/consumers/layout-group/offsets/refunds', '', 'persistent'],
      ['/meta/consumers/layout-group/offsets/refunds/1-0', offsetData(lastOf('refunds 1-0')), 'persistent'],
      ['/meta/consumers/layout-group/offsets/refunds/2-0', '-1-0', 'persistent'],
    ];
    // The same by hand for orders 1-0, which holds two records: the id of the second, then its
    // offset + the 20-byte record header + its 33 data bytes.
    const secondOf10 = lastOf('orders 1-0');
    assert.equal(running.find(([path]) => path === '/meta/consumers/layout-group/offsets/orders/1-0')?.[1], `${secondOf10.result.id}-${secondOf10.result.offset + 20 + 33}`);

    let lastDifference: string | undefined;
    await waitFor(
      async () => {
        await Promise.all([a.consumer.commitOffsets(), b.consumer.commitOffsets()]);
        lastDifference = difference(await readTree(zk.connectString, '/meta'), running, sessions);
        return lastDifference === undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the running group\'s layout' },
    ).catch((error: unknown) => assert.fail(`${(error as Error).message}\n${lastDifference}`));

    // Closed (leaving the group): member and owner nodes go, offsets stay (persistent).
    await Promise.all([a.consumer.close(), b.consumer.close()]);
    const closed = running.filter(([path, , owner]) => owner === 'persistent' || !path.startsWith('/meta/consumers/'));
    assert.equal(closed.length, running.length - 8, 'two member and six owner nodes gone');
    const left = difference(await readTree(zk.connectString, '/meta'), closed, sessions);
    assert.equal(left, undefined, left);
  });
});
