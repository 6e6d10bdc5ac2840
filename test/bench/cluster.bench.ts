/**
 * `npm run bench:cluster`: cluster mode end to end, with a private ZooKeeper and brokers run from
 * the built `dist/` (as `npm start` runs them), everything on this machine.
 *
 * | figure                            | what                                                           | baseline                                                        |
 * |-----------------------------------|----------------------------------------------------------------|-----------------------------------------------------------------|
 * | cluster.rebalance.join.p50 / .max | a group of 10 consumers over 3 brokers x 8 partitions: one consumer joins; from `completeSubscribe()` to every member fetching exactly its range share | create + delete 24 ephemeral znodes sequentially with one raw `node-zookeeper-client` session (p50 / max of 10) |
 * | cluster.rebalance.leave.p50 / .max | same group (11 → 10): one consumer leaves gracefully; from `close()` to every remaining member fetching exactly its share | same |
 * | cluster.produce.brokers3          | produce rate over 3 brokers x 8 partitions, 1 KiB messages, 1000 sends in flight, discovery through ZooKeeper | the same producer against 1 broker x 8 partitions (same run) |
 *
 * A rebalance is done when every member's applied assignment (what the consumer was told to
 * fetch, once it fetches exactly that) equals its share under the range strategy among the live
 * members; the owner nodes in ZooKeeper are then checked to name exactly those members. Ten
 * rounds, each one join then one leave of a random member, so the group goes 10 → 11 → 10.
 * Consumers run in this process, each with its own session factory (own ZooKeeper session and
 * broker connections), with their default ZooKeeper offset storage.
 *
 * Brokers: `unflushThreshold=0` as conf/cluster/*.ini (every acknowledged message is fsynced,
 * group commit), `zk.zkSyncTimeMs=200`. Environment: METAQ_BENCH_MESSAGES (per produce figure,
 * default 200000), METAQ_BENCH_ROUNDS (default 10), METAQ_BENCH_DIR.
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import zookeeper from 'node-zookeeper-client';
import type { BrokerDiscovery, MessageConsumer, MessageSessionFactory, PartitionRef, ZkClient } from '../../src/index.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';
import { formatBenchLine, type BenchFigure } from './bench-report.js';
import { percentile } from './raw-baseline-client.js';

// Eleven consumers in this process would fill the output with their info logs; set before the
// client modules (which create their loggers when loaded) are imported below.
process.env['METAQ_LOG_LEVEL'] ??= 'warn';
const { connectZookeeper, createMessageSessionFactory, createZookeeperDiscovery, MetaPaths } = await import('../../src/index.js');
const { rangeAssignment } = await import('../../src/client/zk/group/strategies.js');

const MESSAGES = Number(process.env['METAQ_BENCH_MESSAGES'] ?? 200_000);
const ROUNDS = Number(process.env['METAQ_BENCH_ROUNDS'] ?? 10);
const GROUP_SIZE = 10;
const PARTITIONS_PER_BROKER = 8;
const BROKER_IDS = [1, 2, 3] as const;
const IN_FLIGHT = 1000;
const ZK_ROOT = '/bench';
const GROUP = 'bench-group';
const GROUP_TOPIC = 'bench-group';
const PRODUCE_TOPIC = 'bench-produce';
/** Unmeasured rounds of the baseline first (the JVM's first rounds are several times slower). */
const BASELINE_WARMUP_ROUNDS = 3;
/** Longest a rebalance may take before the run fails (it should take well under a second). */
const CONVERGE_TIMEOUT_MS = 30_000;
const data = Buffer.alloc(1024, 7);
const root = fs.mkdtempSync(join(process.env['METAQ_BENCH_DIR'] ?? os.tmpdir(), 'metaq-bench-cluster-'));
const ALL_PARTITIONS = BROKER_IDS.flatMap((b) => Array.from({ length: PARTITIONS_PER_BROKER }, (_, p) => `${b}-${p}`));

/** A deterministic random source (mulberry32), so that every run picks the same members. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(0x6d657461);
const randomId = (): string => Math.floor(random() * 0xffffffff).toString(16).padStart(8, '0');

// ---- processes ----

async function startClusterBroker(zk: ZookeeperServer, brokerId: number): Promise<BrokerProcess> {
  const dir = join(root, `broker-${brokerId}`);
  fs.mkdirSync(dir);
  const ini = join(dir, 'server.ini');
  fs.writeFileSync(
    ini,
    testBrokerIni(join(dir, 'data'), {
      system: { brokerId, numPartitions: PARTITIONS_PER_BROKER, unflushThreshold: 0, unflushInterval: 1000, maxSegmentSize: '1024*1024*1024' },
      zookeeper: { 'zk.zkConnect': zk.connectString, 'zk.zkRoot': ZK_ROOT, 'zk.zkSyncTimeMs': 200 },
      topics: `[topic=${GROUP_TOPIC}]\n[topic=${PRODUCE_TOPIC}]`,
    }),
  );
  const broker = spawnBroker(['start', '-c', ini], {}, { built: true });
  await broker.waitForLog('broker started');
  return broker;
}

async function stopBroker(broker: BrokerProcess): Promise<void> {
  if (broker.child.exitCode === null && broker.child.signalCode === null) broker.child.kill('SIGTERM');
  await broker.exited;
}

/** Waits until the brokers' registrations of `topic` give `count` partitions to producers. */
async function waitForPartitions(factory: MessageSessionFactory, topic: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = await factory.getPartitionsForTopic(topic).catch(() => []);
    if (found.length === count) return;
    if (Date.now() > deadline) throw new Error(`${topic}: ${found.length} partitions registered, expected ${count}`);
    await sleep(50);
  }
}

// ---- (b) produce throughput ----

/** Messages per second of one producer in cluster mode, IN_FLIGHT sends outstanding. */
async function produceRate(zkConnect: string, partitions: number): Promise<number> {
  const factory = createMessageSessionFactory({ zkConnect, zkRoot: ZK_ROOT });
  try {
    await waitForPartitions(factory, PRODUCE_TOPIC, partitions);
    const producer = factory.createProducer();
    await producer.publish(PRODUCE_TOPIC);
    // Warm-up: one send per partition, so every broker connection is open before timing.
    await Promise.all(Array.from({ length: partitions }, () => producer.send({ topic: PRODUCE_TOPIC, data })));
    let next = 0;
    const start = process.hrtime.bigint();
    const worker = async (): Promise<void> => {
      while (next < MESSAGES) {
        next += 1;
        await producer.send({ topic: PRODUCE_TOPIC, data });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return MESSAGES / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await factory.close();
  }
}

// ---- (a) rebalance ----

interface Member {
  /** `<group>_<consumerId>`, the member id in ZooKeeper. */
  readonly id: string;
  readonly factory: MessageSessionFactory;
  readonly consumer: MessageConsumer;
  /** What the consumer fetches now, by partition name (replaced once each onAssignment is applied). */
  readonly applied: { fetching: ReadonlySet<string> };
}

/** Called after any member's assignment changed. */
let onAnyAssignment: () => void = () => undefined;

/**
 * A consumer-group member whose ZooKeeper session is established before it joins (so a join
 * measures the rebalance, not the TCP/session set-up), recording each applied assignment.
 */
async function prepareMember(zkConnect: string): Promise<Member> {
  const consumerId = `c${randomId()}`;
  const zk: ZkClient = connectZookeeper({ connectString: zkConnect });
  await zk.waitConnected(10_000);
  const cluster = createZookeeperDiscovery({ zk, paths: new MetaPaths(ZK_ROOT), ownsClient: true });
  await cluster.ready();
  const applied = { fetching: new Set<string>() as ReadonlySet<string> };
  const discovery: BrokerDiscovery = {
    publishPartitions: (topic) => cluster.publishPartitions(topic),
    onPublishPartitionsChange: (topic, listener) => cluster.onPublishPartitionsChange(topic, listener),
    brokerUrls: () => cluster.brokerUrls(),
    ready: () => cluster.ready(),
    createOffsetStorage: () => cluster.createOffsetStorage(),
    close: () => cluster.close(),
    joinGroup: (subscription) =>
      cluster.joinGroup({
        ...subscription,
        onAssignment: async (topic, partitions: readonly PartitionRef[]) => {
          await subscription.onAssignment(topic, partitions);
          applied.fetching = new Set(partitions.map((p) => `${p.brokerId}-${p.partition}`));
          onAnyAssignment();
        },
      }),
  };
  const factory = createMessageSessionFactory({ discovery });
  const consumer = factory.createConsumer({ group: GROUP, consumerId, recoverPath: join(root, 'recover') });
  consumer.subscribe(GROUP_TOPIC, { maxSize: 64 * 1024 }, () => undefined);
  return { id: `${GROUP}_${consumerId}`, factory, consumer, applied };
}

/** True when every live member fetches exactly its range share among the live members. */
function converged(live: readonly Member[]): boolean {
  const ids = live.map((m) => m.id);
  for (const m of live) {
    const share = rangeAssignment(ALL_PARTITIONS, ids, m.id);
    const { fetching } = m.applied;
    if (share.length !== fetching.size || share.some((name) => !fetching.has(name))) return false;
  }
  return true;
}

/** Runs `change`, resolves with the ms until {@link converged}. */
async function timeRebalance(live: readonly Member[], change: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  let done!: (ms: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  const check = (): void => {
    if (converged(live)) done(Number(process.hrtime.bigint() - start) / 1e6);
  };
  onAnyAssignment = check;
  const changing = change();
  const timer = setTimeout(() => done(-1), CONVERGE_TIMEOUT_MS);
  check();
  const ms = await finished;
  clearTimeout(timer);
  onAnyAssignment = () => undefined;
  await changing;
  if (ms < 0) throw new Error(`the group did not converge within ${CONVERGE_TIMEOUT_MS} ms: ${live.map((m) => `${m.id}=[${[...m.applied.fetching].join(' ')}]`).join(', ')}`);
  return ms;
}

/** The owner nodes name exactly the expected members (checked after each round, not timed). */
async function checkOwners(checker: ZkClient, live: readonly Member[]): Promise<void> {
  const paths = new MetaPaths(ZK_ROOT);
  const ids = live.map((m) => m.id);
  const expected = new Map<string, string>();
  for (const id of ids) for (const name of rangeAssignment(ALL_PARTITIONS, ids, id)) expected.set(name, id);
  const owners = await Promise.all(ALL_PARTITIONS.map(async (name) => [name, (await checker.get(`${paths.groupOwners(GROUP, GROUP_TOPIC)}/${name}`))?.data] as const));
  const wrong = owners.filter(([name, owner]) => owner !== expected.get(name));
  if (wrong.length > 0) throw new Error(`owner nodes differ from the expected shares: ${wrong.map(([n, o]) => `${n}=${o ?? '(none)'}`).join(', ')}`);
}

async function rebalanceTimes(zkConnect: string): Promise<{ join: number[]; leave: number[] }> {
  const checker = connectZookeeper({ connectString: zkConnect });
  const live: Member[] = [];
  const join: number[] = [];
  const leave: number[] = [];
  try {
    await checker.waitConnected(10_000);
    for (let i = 0; i < GROUP_SIZE; i++) {
      const member = await prepareMember(zkConnect);
      live.push(member);
      await timeRebalance(live, () => member.consumer.completeSubscribe());
    }
    await checkOwners(checker, live);
    for (let round = 0; round < ROUNDS; round++) {
      const joining = await prepareMember(zkConnect);
      live.push(joining);
      join.push(await timeRebalance(live, () => joining.consumer.completeSubscribe()));
      await checkOwners(checker, live);
      await sleep(200);
      const leaving = live.splice(Math.floor(random() * live.length), 1)[0] as Member;
      leave.push(await timeRebalance(live, () => leaving.factory.close()));
      await checkOwners(checker, live);
      await sleep(200);
    }
  } finally {
    await Promise.allSettled(live.map((m) => m.factory.close()));
    await checker.close();
  }
  return { join, leave };
}

/** Baseline: create + delete 24 ephemeral znodes sequentially with one raw library session, ms. */
async function rawOwnerWrites(zkConnect: string): Promise<number[]> {
  const client = zookeeper.createClient(zkConnect, { sessionTimeout: 30_000 });
  await new Promise<void>((resolve) => {
    client.once('connected', () => resolve());
    client.connect();
  });
  const call = (run: (cb: (error: unknown) => void) => void): Promise<void> =>
    new Promise((resolve, reject) => run((error) => (error === null || error === undefined ? resolve() : reject(error instanceof Error ? error : new Error(String(error))))));
  const parent = `${ZK_ROOT}-baseline`;
  const times: number[] = [];
  try {
    await call((cb) => client.mkdirp(parent, (error) => cb(error)));
    for (let round = -BASELINE_WARMUP_ROUNDS; round < ROUNDS; round++) {
      const start = process.hrtime.bigint();
      for (const name of ALL_PARTITIONS) {
        await call((cb) => client.create(`${parent}/${name}`, Buffer.from('bench-group_c00000000'), zookeeper.CreateMode.EPHEMERAL, (error) => cb(error)));
      }
      for (const name of ALL_PARTITIONS) await call((cb) => client.remove(`${parent}/${name}`, (error) => cb(error)));
      if (round >= 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  } finally {
    client.close();
  }
  return times;
}

async function main(): Promise<void> {
  console.log(
    `cluster benchmark: ${BROKER_IDS.length} brokers x ${PARTITIONS_PER_BROKER} partitions, group of ${GROUP_SIZE}, ${ROUNDS} rounds; ` +
      `produce ${MESSAGES} x 1 KiB, ${IN_FLIGHT} in flight; ${os.cpus().length} CPUs, dir ${root}`,
  );
  const zk = await startZookeeper({ tickTimeMs: 2000 });
  const brokers: BrokerProcess[] = [];
  try {
    // (b) first with broker 1 alone, then with all three, one producer each time.
    brokers.push(await startClusterBroker(zk, 1));
    const oneBroker = await produceRate(zk.connectString, PARTITIONS_PER_BROKER);
    console.log(`  produce, 1 broker: ${oneBroker.toFixed(0)} msg/s`);
    for (const id of BROKER_IDS.slice(1)) brokers.push(await startClusterBroker(zk, id));
    const threeBrokers = await produceRate(zk.connectString, PARTITIONS_PER_BROKER * BROKER_IDS.length);
    console.log(`  produce, 3 brokers: ${threeBrokers.toFixed(0)} msg/s`);

    // (a) rebalancing, then its baseline on the same ZooKeeper.
    const { join, leave } = await rebalanceTimes(zk.connectString);
    console.log(`  join (ms): ${join.map((t) => t.toFixed(0)).join(' ')}`);
    console.log(`  leave (ms): ${leave.map((t) => t.toFixed(0)).join(' ')}`);
    const raw = await rawOwnerWrites(zk.connectString);
    console.log(`  raw create+delete of ${ALL_PARTITIONS.length} ephemeral nodes (ms): ${raw.map((t) => t.toFixed(1)).join(' ')}`);

    const max = (values: readonly number[]): number => Math.max(...values);
    const figures: BenchFigure[] = [
      { name: 'cluster.rebalance.join.p50', value: percentile(join, 50), unit: 'ms', baseline: percentile(raw, 50) },
      { name: 'cluster.rebalance.join.max', value: max(join), unit: 'ms', baseline: max(raw) },
      { name: 'cluster.rebalance.leave.p50', value: percentile(leave, 50), unit: 'ms', baseline: percentile(raw, 50) },
      { name: 'cluster.rebalance.leave.max', value: max(leave), unit: 'ms', baseline: max(raw) },
      { name: 'cluster.produce.brokers3', value: threeBrokers, unit: 'msg/s', baseline: oneBroker },
    ];
    for (const f of figures) console.log(formatBenchLine(f));
  } finally {
    await Promise.allSettled(brokers.map(stopBroker));
    await zk.stop();
  }
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
