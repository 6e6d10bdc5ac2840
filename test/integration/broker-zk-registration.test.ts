/**
 * Broker registration against a real ZooKeeper and real `metaq-server` processes: the znode
 * layout byte for byte (metaq-reference §4), deregistration at a graceful stop, a SIGKILLed
 * broker restarted at once, a broker started while ZooKeeper is down, ZooKeeper restarted under a
 * running broker, a session expired under a frozen broker, and a master beside a Java MetaQ async
 * slave of its id (metaq has no slave mode; the test writes the slave's nodes as §4 lays them
 * out): the master leaves them alone, leaves `ids/<id>` persistent with empty data when it stops
 * while the slave is registered, and clients fetch from the slave meanwhile.
 *
 * ZooKeeper is read with the plain `node-zookeeper-client` library, not with metaq's adapter, so
 * the layout is checked from the outside.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { createBrokerRegistry } from '../../src/client/zk/broker-registry.js';
import { messageChecksum } from '../../src/protocol/record.js';
import { MetaPaths } from '../../src/zk/meta-paths.js';
import { connectZookeeper } from '../../src/zk/zookeeper-client.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { RawClient, resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { byPath, connectLibrary, createEphemeral, dataOf, librarySessionId, readTree, type ReadNode } from '../helpers/zk-tree.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';

const TOPICS = ['[topic=audit]', 'acceptPublish=false', 'numPartitions=3', '[topic=events]', 'acceptSubscribe=false', '[topic=orders-*]', 'numPartitions=4'].join('\n');
const SESSION_TIMEOUT_MS = 4000;

/** Every node a broker 7 with {@link TOPICS} registers under `root`, with their exact data. */
function expectedTree(root: string, url: string, checksum: string, extraTopics: { topic: string; parts: number }[] = []): [string, string][] {
  const topic = (name: string, parts: number, pub: boolean, sub: boolean): [string, string][] => [
    [`${root}/brokers/topics/${name}`, ''],
    [`${root}/brokers/topics/${name}/7-m`, String(parts)],
    ...(pub ? ([[`${root}/brokers/topics-pub/${name}`, ''], [`${root}/brokers/topics-pub/${name}/7-m`, `{"numParts":${parts},"broker":"7-m"}`]] as [string, string][]) : []),
    ...(sub ? ([[`${root}/brokers/topics-sub/${name}`, ''], [`${root}/brokers/topics-sub/${name}/7-m`, `{"numParts":${parts},"broker":"7-m"}`]] as [string, string][]) : []),
  ];
  const nodes: [string, string][] = [
    [root, ''],
    [`${root}/brokers`, ''],
    [`${root}/brokers/ids`, ''],
    [`${root}/brokers/ids/7`, url],
    [`${root}/brokers/ids/7/master`, url],
    [`${root}/brokers/ids/7/master_config_checksum`, checksum],
    [`${root}/brokers/topics`, ''],
    [`${root}/brokers/topics-pub`, ''],
    [`${root}/brokers/topics-sub`, ''],
    ...topic('audit', 3, false, true),
    ...topic('events', 2, true, false),
    ...extraTopics.flatMap((extra) => topic(extra.topic, extra.parts, true, true)),
  ];
  return nodes.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

async function put(port: number, topic: string, body: string): Promise<number> {
  const raw = await RawClient.connect(port);
  try {
    return resultText(await raw.request(`put ${topic} -1 ${Buffer.byteLength(body)} 0 ${messageChecksum(Buffer.from(body))} 1\r\n${body}`, 1)).code;
  } finally {
    raw.close();
  }
}

describe('broker registration in a real ZooKeeper', () => {
  let zk: ZookeeperServer;
  let dir: { path: string; remove: () => Promise<void> };
  const running = new Set<BrokerProcess>();

  before(async () => {
    zk = await startZookeeper();
    dir = await makeTempDir('metaq-zkreg-it-');
  });
  after(async () => {
    for (const broker of running) {
      broker.child.kill('SIGKILL');
      await broker.exited;
    }
    await zk.stop();
    await dir.remove();
  });

  /** Writes `<name>.ini` (data in `<name>-data`) and returns its path and checksum. */
  function writeIni(name: string, zookeeperKeys: Record<string, string | number> = {}): { file: string; checksum: string } {
    const file = join(dir.path, `${name}.ini`);
    fs.writeFileSync(
      file,
      testBrokerIni(join(dir.path, `${name}-data`), {
        topics: TOPICS,
        zookeeper: { 'zk.zkConnect': zk.connectString, 'zk.zkSessionTimeoutMs': SESSION_TIMEOUT_MS, 'zk.zkSyncTimeMs': 100, ...zookeeperKeys },
      }),
    );
    return { file, checksum: String(crc32(fs.readFileSync(file))) };
  }

  /** Starts a broker process; resolves once it serves, with its URL. */
  async function start(file: string): Promise<{ broker: BrokerProcess; port: number; url: string }> {
    const broker = spawnBroker(['start', '-c', file]);
    running.add(broker);
    void broker.exited.then(() => running.delete(broker));
    const started = await broker.waitForLog('broker started');
    const port = Number(started['port']);
    return { broker, port, url: `meta://127.0.0.1:${port}` };
  }

  async function stop(broker: BrokerProcess): Promise<void> {
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exited, 0, `clean exit; stderr: ${broker.stderr()}`);
  }

  /** Waits until the tree under `root` is exactly `expected`, then returns it (with owners). */
  async function waitForTree(root: string, expected: [string, string][], timeoutMs = 15_000): Promise<Map<string, ReadNode>> {
    let last: [string, string][] = [];
    try {
      return await waitFor(
        async () => {
          const tree = await readTree(zk.connectString, root);
          last = dataOf(tree);
          return JSON.stringify(last) === JSON.stringify(expected) ? tree : undefined;
        },
        { timeoutMs, intervalMs: 100, what: `the registration under ${root}` },
      );
    } catch (err) {
      assert.deepEqual(last, expected, (err as Error).message);
      throw err;
    }
  }

  /** The ephemeral nodes are owned by one live session, the legacy ids/7 is persistent; returns the owner. */
  function checkOwners(root: string, tree: Map<string, ReadNode>): string {
    const owners = new Set<string | undefined>();
    for (const [path, node] of tree) {
      if (/\/(master|master_config_checksum|7-m)$/.test(path)) owners.add(node.owner);
      else assert.equal(node.owner, undefined, `${path} is persistent`);
    }
    assert.equal(owners.size, 1, 'one session owns every ephemeral');
    const owner = [...owners][0];
    assert.ok(owner !== undefined, 'the broker nodes are ephemeral');
    assert.equal(tree.get(`${root}/brokers/ids/7`)?.owner, undefined);
    return owner;
  }

  it('registers MetaQ\'s layout under /meta byte for byte, adds a put-created topic, and removes its nodes at a graceful stop', async () => {
    const { file, checksum } = writeIni('layout');
    const { broker, port, url } = await start(file);
    const registered = await waitForTree('/meta', expectedTree('/meta', url, checksum));
    checkOwners('/meta', registered);
    assert.ok(broker.logs.some((line) => line['msg'] === `registered in ZooKeeper at ${zk.connectString}/meta/brokers/ids/7 as ${url}`));

    assert.equal(await put(port, 'orders-eu', 'first message of a wildcard topic'), 200);
    const withTopic = await waitForTree('/meta', expectedTree('/meta', url, checksum, [{ topic: 'orders-eu', parts: 4 }]), 5000);
    checkOwners('/meta', withTopic);

    await stop(broker);
    const left = await readTree(zk.connectString, '/meta');
    assert.deepEqual(
      [...left.keys()].filter((path) => /\/7(-m)?(\/|$)/.test(path)),
      [],
      'no node of broker 7 is left',
    );
    assert.ok(broker.logs.some((line) => line['msg'] === 'deregistered from ZooKeeper'));
  });

  it('a broker SIGKILLed and restarted at once starts, waits for its old session\'s node, then registers', async () => {
    const root = '/fast-restart';
    // A longer session than the other tests: everything up to the check that the old node is
    // left alone must happen while the killed broker's session lives, which ends from about 2/3 of
    // the timeout after the kill (the last ping), and a broker process takes seconds to start on a
    // loaded machine.
    const sessionMs = 10_000;
    const { file, checksum } = writeIni('fast', { 'zk.zkRoot': root, 'zk.zkSessionTimeoutMs': sessionMs });
    const first = await start(file);
    const before = checkOwners(root, await waitForTree(root, expectedTree(root, first.url, checksum)));
    first.broker.child.kill('SIGKILL');
    await first.broker.exited;

    const second = await start(file);
    assert.notEqual(second.url, first.url, 'a new port (serverPort=0), so the URL tells the registrations apart');
    await waitFor(() => second.broker.logs.some((line) => String(line['msg']).startsWith('broker id already registered by another ZooKeeper session')), {
      timeoutMs: 5000,
      what: 'the waiting notice',
    });
    assert.equal(await put(second.port, 'events', 'served while waiting'), 200);
    assert.equal((await readTree(zk.connectString, `${root}/brokers/ids/7/master`)).get(`${root}/brokers/ids/7/master`)?.data, first.url, 'old node left alone');

    const after = checkOwners(root, await waitForTree(root, expectedTree(root, second.url, checksum), sessionMs + 10_000));
    assert.notEqual(after, before, 'owned by the new session');
    await stop(second.broker);
  });

  it('starts and serves while ZooKeeper is down, and registers once ZooKeeper is started', async () => {
    const root = '/zk-down';
    const { file, checksum } = writeIni('down', { 'zk.zkRoot': root, 'zk.zkConnectionTimeoutMs': 1000 });
    await zk.kill();
    try {
      const { broker, port, url } = await start(file);
      assert.equal(await put(port, 'events', 'ZooKeeper is down'), 200);
      await broker.waitForLog(`ZooKeeper unreachable at ${zk.connectString}; serving anyway, will register when it is back`, 10_000);
      await zk.start();
      checkOwners(root, await waitForTree(root, expectedTree(root, url, checksum), 20_000));
      await stop(broker);
    } finally {
      if (!zk.running) await zk.start();
    }
  });

  it('keeps (or restores) its registration when ZooKeeper is restarted under it', async () => {
    const root = '/zk-restart';
    const { file, checksum } = writeIni('restart', { 'zk.zkRoot': root });
    const { broker, port, url } = await start(file);
    await waitForTree(root, expectedTree(root, url, checksum));
    await zk.kill();
    assert.equal(await put(port, 'orders-eu', 'ZooKeeper is down'), 200, 'serves while ZooKeeper is down');
    await zk.start();
    // The topic created while ZooKeeper was down is registered too.
    checkOwners(root, await waitForTree(root, expectedTree(root, url, checksum, [{ topic: 'orders-eu', parts: 4 }]), 20_000));
    await stop(broker);
  });

  it('registers again after its session expired under a frozen broker', async () => {
    const root = '/expiry';
    const { file, checksum } = writeIni('expiry', { 'zk.zkRoot': root });
    const { broker, url } = await start(file);
    const before = checkOwners(root, await waitForTree(root, expectedTree(root, url, checksum)));
    broker.child.kill('SIGSTOP');
    try {
      // ZooKeeper expires the silent session and deletes its ephemerals.
      await waitFor(async () => (await readTree(zk.connectString, `${root}/brokers/ids/7/master`)).size === 0, {
        timeoutMs: SESSION_TIMEOUT_MS + 10_000,
        intervalMs: 200,
        what: 'the frozen broker\'s session to expire',
      });
    } finally {
      broker.child.kill('SIGCONT');
    }
    const after = checkOwners(root, await waitForTree(root, expectedTree(root, url, checksum), 15_000));
    assert.notEqual(after, before, 'a new session');
    await stop(broker);
  });

  it('a Java slave of broker 7 (its nodes as §4 lays them out) is left alone; the master leaving while it is registered empties ids/7; clients fetch from it', async () => {
    // metaq brokers have no slave mode (no slaveId key), so a second plain session registers
    // slave 1 of broker 7 exactly as MetaQ's async slave does (metaq-reference §4): its URL in
    // ids/7/slave1, and the topics under <topic>/7-s1 (topics-pub only for a topic that accepts
    // publishers, topics-sub only for one that accepts subscribers). No ids/7 data, no checksum.
    const root = '/with-slave';
    const slaveUrl = 'meta://127.0.0.1:18124';
    const slaveNodes: [string, string][] = [
      [`${root}/brokers/ids/7/slave1`, slaveUrl],
      [`${root}/brokers/topics/audit/7-s1`, '3'],
      [`${root}/brokers/topics-sub/audit/7-s1`, '{"numParts":3,"broker":"7-s1"}'],
      [`${root}/brokers/topics/events/7-s1`, '2'],
      [`${root}/brokers/topics-pub/events/7-s1`, '{"numParts":2,"broker":"7-s1"}'],
    ];
    const { file, checksum } = writeIni('slave', { 'zk.zkRoot': root });
    const first = await start(file);
    await waitForTree(root, expectedTree(root, first.url, checksum));
    const slave = await connectLibrary(zk.connectString);
    const registryClient = connectZookeeper({ connectString: zk.connectString });
    const registry = createBrokerRegistry({ zk: registryClient, paths: new MetaPaths(root), coalesceMs: 10 });
    try {
      for (const [path, data] of slaveNodes) await createEphemeral(slave, path, data);
      const slaveSession = librarySessionId(slave);
      /** Every node of the slave is an ephemeral of the slave's session. */
      const checkSlaveOwners = (tree: Map<string, ReadNode>): void => {
        for (const [path] of slaveNodes) assert.equal(tree.get(path)?.owner, slaveSession, `${path} belongs to the slave`);
      };
      const withSlave = (url: string): [string, string][] => byPath([...expectedTree(root, url, checksum), ...slaveNodes]);
      let tree = await waitForTree(root, withSlave(first.url));
      checkSlaveOwners(tree);
      checkOwners(root, new Map([...tree].filter(([path]) => !slaveNodes.some(([slavePath]) => slavePath === path))));

      // Clients: fetch from the master while it is registered; a slave is never a publish target.
      const fetchUrls = async (): Promise<string> => [...new Set((await registry.subscribePartitions('audit')).map((p) => `${p.brokerId}-${p.partition}@${p.brokerUrl}`))].join(' ');
      await waitFor(async () => (await fetchUrls()) === `7-0@${first.url} 7-1@${first.url} 7-2@${first.url}`, { timeoutMs: 5000, what: 'audit fetched from the master' });
      assert.deepEqual(
        (await registry.publishPartitions('events')).map((p) => p.brokerUrl),
        [first.url, first.url],
      );

      // The master leaves: MetaQ cannot delete ids/7 (slave1 is below it) and writes "" instead.
      await stop(first.broker);
      const afterMaster: [string, string][] = byPath([
        [root, ''],
        [`${root}/brokers`, ''],
        [`${root}/brokers/ids`, ''],
        [`${root}/brokers/ids/7`, ''],
        [`${root}/brokers/topics`, ''],
        [`${root}/brokers/topics/audit`, ''],
        [`${root}/brokers/topics/events`, ''],
        [`${root}/brokers/topics-pub`, ''],
        [`${root}/brokers/topics-pub/events`, ''],
        [`${root}/brokers/topics-sub`, ''],
        [`${root}/brokers/topics-sub/audit`, ''],
        ...slaveNodes,
      ]);
      tree = await waitForTree(root, afterMaster, 5000);
      checkSlaveOwners(tree);
      assert.equal(tree.get(`${root}/brokers/ids/7`)?.owner, undefined, 'ids/7 stays persistent');
      assert.ok(first.broker.logs.some((line) => line['msg'] === 'deregistered from ZooKeeper'));

      // Clients now fetch broker 7's partitions from slave 1, and have nowhere to publish.
      await waitFor(async () => (await fetchUrls()) === `7-0@${slaveUrl} 7-1@${slaveUrl} 7-2@${slaveUrl}`, { timeoutMs: 5000, what: 'audit fetched from the slave' });
      assert.deepEqual(registry.brokers(), [{ brokerId: 7, master: undefined, slaves: new Map([[1, slaveUrl]]) }]);
      await waitFor(async () => (await registry.publishPartitions('events')).length === 0, { timeoutMs: 5000, what: 'no publish partition left' });

      // The master comes back (a new port): ids/7 holds its URL again, the slave untouched.
      const second = await start(file);
      tree = await waitForTree(root, withSlave(second.url));
      checkSlaveOwners(tree);
      await waitFor(async () => (await fetchUrls()) === `7-0@${second.url} 7-1@${second.url} 7-2@${second.url}`, { timeoutMs: 5000, what: 'audit fetched from the master again' });

      // With the slave gone, the master's stop deletes ids/7 itself.
      slave.close();
      await waitForTree(root, expectedTree(root, second.url, checksum), 5000);
      await stop(second.broker);
      assert.deepEqual(
        [...(await readTree(zk.connectString, root)).keys()].filter((path) => /\/7(-m|-s1)?(\/|$)/.test(path)),
        [],
        'no node of broker 7 is left',
      );
    } finally {
      slave.close();
      registry.close();
      await registryClient.close();
    }
  });
});
