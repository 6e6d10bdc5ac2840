/**
 * A producer in cluster mode against a real ZooKeeper and real broker processes registered in
 * it (`zk.zkEnable=true`): sends spread over every broker, a broker started later is used
 * without restarting the producer, a SIGKILLed broker is skipped once its ZooKeeper session
 * expired, and no acknowledged send is lost (everything is consumed back from every broker and
 * compared message by message); broadcast consumers each get every message.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalOffsetStorage, createMessageSessionFactory, type ConsumedMessage, type MessageProducer, type MessageSessionFactory, type SendResult } from '../../src/index.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { freePort } from '../helpers/free-port.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';

const TOPIC = 'test';
const PARTITIONS = 2;
const ZK_ROOT = `/metaq-it-${process.pid}`;
/** Small, so that a SIGKILLed broker's registrations go quickly. */
const BROKER_ZK_SESSION_MS = 4000;

/** A broker process registered in ZooKeeper, restartable on the same port and data. */
class ClusterBroker {
  readonly id: number;
  readonly port: number;
  readonly ini: string;
  readonly url: string;
  #process: BrokerProcess | undefined;

  constructor(id: number, port: number, ini: string) {
    this.id = id;
    this.port = port;
    this.ini = ini;
    this.url = `meta://127.0.0.1:${port}`;
  }

  static async create(id: number, dir: string, zkConnect: string): Promise<ClusterBroker> {
    const port = await freePort();
    const ini = join(dir, `broker-${id}.ini`);
    const text = [
      '[system]',
      `brokerId=${id}`,
      `serverPort=${port}`,
      'hostName=127.0.0.1',
      `numPartitions=${PARTITIONS}`,
      `dataPath=${join(dir, `data-${id}`)}`,
      // Group commit: a send is acknowledged once it is on disk, so it survives SIGKILL.
      'unflushThreshold=0',
      'unflushInterval=1000',
      'maxSegmentSize=1024*1024',
      '[zookeeper]',
      'zk.zkEnable=true',
      `zk.zkConnect=${zkConnect}`,
      `zk.zkRoot=${ZK_ROOT}`,
      `zk.zkSessionTimeoutMs=${BROKER_ZK_SESSION_MS}`,
      'zk.zkSyncTimeMs=100',
      `[topic=${TOPIC}]`,
      '',
    ].join('\n');
    fs.writeFileSync(ini, text);
    const broker = new ClusterBroker(id, port, ini);
    try {
      await broker.start();
    } catch (error) {
      await broker.kill();
      throw error;
    }
    return broker;
  }

  async start(): Promise<void> {
    this.#process = spawnBroker(['start', '-c', this.ini]);
    await this.#process.waitForLog('broker started', 30_000);
  }

  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process?.child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await this.#process?.exited;
  }
}

interface Acked {
  readonly data: string;
  readonly result: SendResult;
}

describe('producer in cluster mode: real ZooKeeper, real brokers', { timeout: 120_000 }, () => {
  let zk: ZookeeperServer;
  let dir: { path: string; remove: () => Promise<void> };
  const brokers: ClusterBroker[] = [];
  let factory: MessageSessionFactory;
  let producer: MessageProducer;
  const acked: Acked[] = [];
  /** Data of sends that failed: they may or may not have been stored. */
  const failed = new Set<string>();
  let counter = 0;

  async function partitionCount(): Promise<number> {
    return (await factory.getPartitionsForTopic(TOPIC).catch(() => [])).length;
  }

  /** Sends `n` messages at once (pipelined); every one must succeed. */
  async function sendAll(n: number): Promise<SendResult[]> {
    const results = await Promise.all(
      Array.from({ length: n }, async () => {
        const data = `m-${counter++}`;
        const result = await producer.send({ topic: TOPIC, data });
        acked.push({ data, result });
        return result;
      }),
    );
    return results;
  }

  before(async () => {
    dir = await makeTempDir('metaq-zk-producer-');
    zk = await startZookeeper();
    brokers.push(...(await Promise.all([1, 2, 3].map((id) => ClusterBroker.create(id, dir.path, zk.connectString)))));
    factory = createMessageSessionFactory({ zkConnect: zk.connectString, zkRoot: ZK_ROOT, zkSessionTimeoutMs: 10_000 });
    await waitFor(async () => (await partitionCount()) === 3 * PARTITIONS, { timeoutMs: 20_000, what: 'three brokers registered in ZooKeeper' });
    producer = factory.createProducer();
    await producer.publish(TOPIC);
  });

  after(async () => {
    await factory?.close();
    await Promise.all(brokers.map((b) => b.stop()));
    await zk?.stop();
    await dir?.remove();
  });

  it('spreads sends over every partition of all three brokers', async () => {
    const results = await sendAll(60);
    const targets = new Set(results.map((r) => `${r.brokerUrl}#${r.partition}`));
    assert.deepEqual([...targets].sort(), brokers.flatMap((b) => Array.from({ length: PARTITIONS }, (_, p) => `${b.url}#${p}`)).sort());
    // Round-robin: exactly 10 per partition.
    for (const target of targets) assert.equal(results.filter((r) => `${r.brokerUrl}#${r.partition}` === target).length, 10, target);
  });

  it('uses a fourth broker started later without restarting the producer', async () => {
    brokers.push(await ClusterBroker.create(4, dir.path, zk.connectString));
    await waitFor(async () => (await partitionCount()) === 4 * PARTITIONS, { timeoutMs: 20_000, what: 'the fourth broker registered' });
    const fourth = brokers[3] as ClusterBroker;
    const results = await sendAll(40);
    assert.equal(results.filter((r) => r.brokerUrl === fourth.url).length, 10);
    assert.equal(new Set(results.map((r) => r.brokerUrl)).size, 4);
  });

  it('skips a SIGKILLed broker once its session expired; sends then all succeed', async () => {
    const victim = brokers[1] as ClusterBroker;
    let stop = false;
    const outcomes: { ok: boolean; afterRemoval: boolean }[] = [];
    let removed = false;
    // 16 senders keep sending while the broker dies; sends to it fail (connection lost, refused).
    const workers = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const data = `m-${counter++}`;
        const afterRemoval = removed;
        try {
          // 5 s: a send to the dying broker fails at once (connection lost or refused); one to a
          // live broker waits for its fsync, which can take a second on a loaded machine.
          const result = await producer.send({ topic: TOPIC, data }, { timeoutMs: 5000 });
          acked.push({ data, result });
          outcomes.push({ ok: true, afterRemoval });
        } catch {
          failed.add(data);
          outcomes.push({ ok: false, afterRemoval });
        }
      }
    });
    try {
      await waitFor(() => outcomes.length >= 100, { timeoutMs: 10_000, what: 'sends before the kill' });
      const killedAt = Date.now();
      await victim.kill();
      await waitFor(async () => (await factory.getPartitionsForTopic(TOPIC)).every((p) => p.brokerUrl !== victim.url), {
        timeoutMs: BROKER_ZK_SESSION_MS + 10_000,
        what: "the killed broker's registrations to expire",
      });
      removed = true;
      const tookMs = Date.now() - killedAt;
      // From about 2/3 of the timeout after the kill (the client pings every third of it); half of
      // it leaves room for ZooKeeper's tick.
      assert.ok(tookMs >= BROKER_ZK_SESSION_MS / 2, `removed after ${tookMs} ms: only the session expiry removes a SIGKILLed broker`);
      const mark = outcomes.length;
      await waitFor(() => outcomes.filter((o, i) => i >= mark && o.afterRemoval).length >= 200, { timeoutMs: 20_000, what: 'sends after the removal' });
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    const late = outcomes.filter((o) => o.afterRemoval);
    assert.ok(late.length >= 200);
    assert.deepEqual(late.filter((o) => !o.ok).length, 0, 'no send fails once the dead broker is skipped');
    assert.ok(failed.size > 0, 'sends to the dying broker failed before it was skipped (the test saw the window)');
  });

  it('lost no acknowledged send: every broker gives back exactly what it acknowledged', async () => {
    // The killed broker comes back (same port and data) so its messages can be read.
    const victim = brokers[1] as ClusterBroker;
    await victim.start();
    await waitFor(async () => (await partitionCount()) === 4 * PARTITIONS, { timeoutMs: 20_000, what: 'broker 2 back' });
    const byId = new Map(acked.map((a) => [a.result.id, a]));
    assert.equal(byId.size, acked.length, 'message ids are unique');
    const consumed = new Map<bigint, ConsumedMessage>();
    const consumer = factory.createConsumer({ group: `verify-${process.pid}`, maxDelayFetchTimeInMills: 200, recoverPath: join(dir.path, 'recover') });
    consumer.subscribe(TOPIC, { maxSize: 1024 * 1024 }, (message) => {
      consumed.set(message.id, { ...message, data: Buffer.from(message.data) });
    });
    await consumer.completeSubscribe();
    try {
      await waitFor(() => [...byId.keys()].every((id) => consumed.has(id)), {
        timeoutMs: 20_000,
        what: `all ${byId.size} acknowledged messages consumed (have ${consumed.size})`,
      });
    } finally {
      await consumer.close();
    }
    for (const [id, sent] of byId) {
      const got = consumed.get(id) as ConsumedMessage;
      assert.equal(got.data.toString('utf8'), sent.data, `message ${id}`);
      assert.equal(got.partition, sent.result.partition, `message ${id}`);
      assert.equal(got.offset, sent.result.offset, `message ${id}`);
    }
    // Nothing else: every other consumed message is one whose send failed (it may have been stored).
    const extra = [...consumed.values()].filter((m) => !byId.has(m.id));
    assert.ok(extra.every((m) => failed.has(m.data.toString('utf8'))), `unexpected messages: ${extra.map((m) => m.data.toString()).join(', ')}`);
    assert.ok(new Set(acked.map((a) => a.result.brokerUrl)).size === 4);
  });

  it('broadcast consumers: every instance gets every message', async () => {
    const ids = new Set(acked.map((a) => a.result.id));
    const instances = ['a', 'b'].map((broadcastId) => {
      const storage = createLocalOffsetStorage(join(dir.path, `offsets-${broadcastId}.json`));
      const seen = new Set<bigint>();
      const consumer = factory.createBroadcastConsumer(
        { group: 'bcast', broadcastId, maxDelayFetchTimeInMills: 200, recoverPath: join(dir.path, `recover-${broadcastId}`) },
        storage,
      );
      consumer.subscribe(TOPIC, { maxSize: 1024 * 1024 }, (message) => {
        seen.add(message.id);
      });
      return { consumer, storage, seen };
    });
    try {
      assert.deepEqual(
        instances.map((i) => i.consumer.config.group),
        ['bcast-a', 'bcast-b'],
      );
      await Promise.all(instances.map((i) => i.consumer.completeSubscribe()));
      for (const instance of instances) {
        await waitFor(() => [...ids].every((id) => instance.seen.has(id)), {
          timeoutMs: 20_000,
          what: `${instance.consumer.config.group} to get all ${ids.size} messages (has ${instance.seen.size})`,
        });
      }
    } finally {
      for (const instance of instances) {
        await instance.consumer.close();
        await instance.storage.close();
      }
    }
  });
});
