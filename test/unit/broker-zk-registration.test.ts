/**
 * The broker's registration in ZooKeeper (metaq-reference §4), against the in-memory fake
 * ensemble: a real MetaqBroker (real store, real port) whose ZooKeeper session comes from
 * test/helpers/fake-zk.ts. Every expected node and its data is written out literally here, not
 * built with the code under test.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { pino } from 'pino';
import { MetaqBroker } from '../../src/broker/broker.js';
import { brokerUrl } from '../../src/broker/zk/broker-url.js';
import { configFileChecksum, crc32Decimal } from '../../src/broker/zk/config-checksum.js';
import { loadBrokerConfig } from '../../src/common/config/index.js';
import { rootLogger, setRootLogger } from '../../src/common/logger.js';
import { messageChecksum } from '../../src/protocol/record.js';
import type { ZkClient } from '../../src/zk/zk-client.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { FakeZookeeper, type FakeClientOptions } from '../helpers/fake-zk.js';
import { RawClient, resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/** Two concrete topics (one refusing publishers, one refusing subscribers) and a wildcard section. */
const TOPICS = ['[topic=audit]', 'acceptPublish=false', 'numPartitions=3', '[topic=events]', 'acceptSubscribe=false', '[topic=orders-*]', 'numPartitions=4'].join('\n');

let dir: { path: string; remove: () => Promise<void> };
let zk: FakeZookeeper;
let broker: MetaqBroker | undefined;
let observer: ZkClient;
const clients: ZkClient[] = [];

beforeEach(async () => {
  dir = await makeTempDir('metaq-zkreg-');
  zk = new FakeZookeeper({ sessionTimeoutMs: 4000, connectionTimeoutMs: 30_000 });
  observer = zk.client();
  await observer.waitConnected();
});
afterEach(async () => {
  await broker?.stop();
  broker = undefined;
  await observer.close();
  for (const client of clients.splice(0)) await client.close();
  await dir.remove();
});

interface Started {
  readonly broker: MetaqBroker;
  /** The broker's own ZooKeeper client. */
  readonly client: ZkClient;
  readonly url: string;
  readonly iniFile: string;
}

async function startBroker(options: { zookeeper?: Record<string, string | number>; client?: FakeClientOptions } = {}): Promise<Started> {
  const iniFile = join(dir.path, 'server.ini');
  fs.writeFileSync(iniFile, testBrokerIni(join(dir.path, 'data'), { topics: TOPICS, zookeeper: { 'zk.zkConnect': 'fake-zk:2181', 'zk.zkSyncTimeMs': 0, ...options.zookeeper } }));
  const config = await loadBrokerConfig(iniFile);
  let client: ZkClient | undefined;
  broker = await MetaqBroker.start(config, {
    connectZookeeper: (zkOptions) => {
      assert.equal(zkOptions.connectString, 'fake-zk:2181');
      client = zk.client({ sessionTimeoutMs: zkOptions.sessionTimeoutMs, ...options.client });
      clients.push(client);
      return client;
    },
  });
  assert.ok(client !== undefined, 'the broker opened a ZooKeeper session');
  return { broker, client, url: `meta://127.0.0.1:${broker.port}`, iniFile };
}

/** The fake's tree below `/meta`, as [path, data] pairs. */
function tree(): [string, string][] {
  return [...zk.dump()].filter(([path]) => path === '/meta' || path.startsWith('/meta/'));
}

/** Every node the broker of {@link TOPICS} registers at start, with the topics on disk. */
function expectedTree(url: string, checksum: string, extra: [string, string][] = []): [string, string][] {
  return (
    [
      ['/meta', ''],
      ['/meta/brokers', ''],
      ['/meta/brokers/ids', ''],
      ['/meta/brokers/ids/7', url],
      ['/meta/brokers/ids/7/master', url],
      ['/meta/brokers/ids/7/master_config_checksum', checksum],
      ['/meta/brokers/topics', ''],
      ['/meta/brokers/topics/audit', ''],
      ['/meta/brokers/topics/audit/7-m', '3'],
      ['/meta/brokers/topics/events', ''],
      ['/meta/brokers/topics/events/7-m', '2'],
      ['/meta/brokers/topics-pub', ''],
      ['/meta/brokers/topics-pub/events', ''],
      ['/meta/brokers/topics-pub/events/7-m', '{"numParts":2,"broker":"7-m"}'],
      ['/meta/brokers/topics-sub', ''],
      ['/meta/brokers/topics-sub/audit', ''],
      ['/meta/brokers/topics-sub/audit/7-m', '{"numParts":3,"broker":"7-m"}'],
      ...extra,
    ] satisfies [string, string][]
  ).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const ORDERS_EU: [string, string][] = [
  ['/meta/brokers/topics/orders-eu', ''],
  ['/meta/brokers/topics/orders-eu/7-m', '4'],
  ['/meta/brokers/topics-pub/orders-eu', ''],
  ['/meta/brokers/topics-pub/orders-eu/7-m', '{"numParts":4,"broker":"7-m"}'],
  ['/meta/brokers/topics-sub/orders-eu', ''],
  ['/meta/brokers/topics-sub/orders-eu/7-m', '{"numParts":4,"broker":"7-m"}'],
];

/** The broker's ephemeral nodes (every registered node but the legacy `ids/7`). */
const ephemeralPaths = (paths: [string, string][]): string[] => paths.map(([path]) => path).filter((path) => /\/(master|master_config_checksum|7-m)$/.test(path));

const fileChecksum = (file: string): string => String(crc32(fs.readFileSync(file)));

async function put(port: number, topic: string, body: string, opaque = 1): Promise<{ code: number; text: string }> {
  const raw = await RawClient.connect(port);
  try {
    return resultText(await raw.request(`put ${topic} -1 ${Buffer.byteLength(body)} 0 ${messageChecksum(Buffer.from(body))} ${opaque}\r\n${body}`, opaque));
  } finally {
    raw.close();
  }
}

describe('broker registration in ZooKeeper', () => {
  it('registers every node of MetaQ\'s layout with its exact data; ephemerals belong to the broker\'s session, ids/<id> is persistent', async () => {
    // Stores on disk before start: a wildcard-configured topic and a topic no section configures.
    fs.mkdirSync(join(dir.path, 'data', 'orders-old-1'), { recursive: true });
    fs.mkdirSync(join(dir.path, 'data', 'legacy-0'));
    fs.mkdirSync(join(dir.path, 'data', 'legacy-2'));
    const { broker, client, url, iniFile } = await startBroker();
    await waitFor(() => broker.zookeeperState === 'registered', { timeoutMs: 5000, what: 'registration' });
    const checksum = fileChecksum(iniFile);
    assert.match(checksum, /^\d+$/);
    const expected = expectedTree(url, checksum, [
      ['/meta/brokers/topics/legacy', ''],
      ['/meta/brokers/topics/legacy/7-m', '3'],
      ['/meta/brokers/topics-sub/legacy', ''],
      ['/meta/brokers/topics-sub/legacy/7-m', '{"numParts":3,"broker":"7-m"}'],
      ['/meta/brokers/topics/orders-old', ''],
      ['/meta/brokers/topics/orders-old/7-m', '4'],
      ['/meta/brokers/topics-pub/orders-old', ''],
      ['/meta/brokers/topics-pub/orders-old/7-m', '{"numParts":4,"broker":"7-m"}'],
      ['/meta/brokers/topics-sub/orders-old', ''],
      ['/meta/brokers/topics-sub/orders-old/7-m', '{"numParts":4,"broker":"7-m"}'],
    ]);
    assert.deepEqual(tree(), expected);
    for (const path of ephemeralPaths(expected)) {
      assert.equal((await observer.get(path))?.ephemeralOwner, client.sessionId, `${path} is an ephemeral of the broker's session`);
    }
    assert.equal((await observer.get('/meta/brokers/ids/7'))?.ephemeralOwner, undefined, 'ids/7 is persistent');
  });

  it('registers a topic of a wildcard section right after a put creates it', async () => {
    const { broker, url, iniFile } = await startBroker();
    await waitFor(() => broker.zookeeperState === 'registered', { timeoutMs: 5000, what: 'registration' });
    assert.equal(await observer.exists('/meta/brokers/topics-pub/orders-eu/7-m'), false, 'not registered before the put');
    assert.equal((await put(broker.port, 'orders-eu', 'hello')).code, 200);
    await waitFor(() => observer.exists('/meta/brokers/topics-sub/orders-eu/7-m'), { timeoutMs: 5000, what: 'orders-eu registered' });
    assert.deepEqual(tree(), expectedTree(url, fileChecksum(iniFile), ORDERS_EU));
    assert.deepEqual(broker.zookeeperRegistration?.registeredTopics, ['audit', 'events', 'orders-eu']);
  });

  it('at stop deletes its nodes, then waits zk.zkSyncTimeMs with the port still open, then closes the port and the session', async () => {
    // 1.5 s, not less: the test must connect to the port and read the session's state inside
    // this window, also on a loaded machine.
    const syncMs = 1500;
    const { broker: started, client } = await startBroker({ zookeeper: { 'zk.zkSyncTimeMs': syncMs } });
    await waitFor(() => started.zookeeperState === 'registered', { timeoutMs: 5000, what: 'registration' });
    const port = started.port;
    const begun = Date.now();
    const stopping = started.stop();
    broker = undefined;
    await waitFor(async () => !(await observer.exists('/meta/brokers/ids/7/master')), { timeoutMs: 2000, intervalMs: 10, what: 'master deleted' });
    const deletedAfter = Date.now() - begun;
    assert.ok(deletedAfter < syncMs, `nodes deleted first (after ${deletedAfter} ms)`);
    // The port still answers while the clients react.
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    socket.destroy();
    assert.notEqual(client.state, 'closed', 'the session stays open until the port is closed');
    await stopping;
    assert.ok(Date.now() - begun >= syncMs, 'waited zk.zkSyncTimeMs');
    assert.equal(client.state, 'closed');
    assert.equal(started.zookeeperState, 'stopped');
    // Only the persistent parents remain: no node of broker 7.
    assert.deepEqual(
      tree().filter(([path]) => path.includes('/7')),
      [],
    );
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });

  it('registers everything again in a new session after expiry, the persistent legacy node included', async () => {
    const { broker, client, url, iniFile } = await startBroker();
    await waitFor(() => broker.zookeeperState === 'registered', { timeoutMs: 5000, what: 'registration' });
    assert.equal((await put(broker.port, 'orders-eu', 'x')).code, 200);
    await waitFor(() => observer.exists('/meta/brokers/topics-sub/orders-eu/7-m'), { timeoutMs: 5000, what: 'orders-eu registered' });
    const before = client.sessionId;
    // ZooKeeper loses the broker's session and (as after a restore from an old snapshot) its nodes.
    zk.disconnect(client);
    await observer.removeRecursive('/meta/brokers');
    await zk.expireSession(client);
    assert.deepEqual(tree(), [['/meta', '']]);
    await zk.reconnect(client);
    assert.notEqual(client.sessionId, before, 'a new session');
    const expected = expectedTree(url, fileChecksum(iniFile), ORDERS_EU);
    await waitFor(() => broker.zookeeperState === 'registered' && JSON.stringify(tree()) === JSON.stringify(expected), { timeoutMs: 5000, what: 're-registration' });
    assert.deepEqual(tree(), expected);
    for (const path of ephemeralPaths(expected)) assert.equal((await observer.get(path))?.ephemeralOwner, client.sessionId, path);
  });

  it('waits for the master node of a previous, still live session of its broker id, serving meanwhile, then takes over', async () => {
    const previous = zk.client();
    await previous.ownEphemeral('/meta/brokers/ids/7/master', 'meta://127.0.0.1:1');
    await previous.ownEphemeral('/meta/brokers/topics-pub/events/7-m', '{"numParts":2,"broker":"7-m"}');
    const { broker, client, url, iniFile } = await startBroker();
    await waitFor(() => broker.zookeeperState === 'waiting-for-previous-session', { timeoutMs: 5000, what: 'waiting state' });
    assert.equal((await put(broker.port, 'events', 'served while waiting')).code, 200);
    assert.equal((await observer.get('/meta/brokers/ids/7/master'))?.data, 'meta://127.0.0.1:1', 'the old node is left alone');
    assert.equal(await observer.exists('/meta/brokers/topics-sub/audit/7-m'), false, 'nothing else registered before the master');
    // The previous process died; its session ends (as at the session timeout).
    zk.crash(previous);
    await zk.expireSession(previous);
    await waitFor(() => broker.zookeeperState === 'registered', { timeoutMs: 5000, what: 'take-over' });
    const expected = expectedTree(url, fileChecksum(iniFile));
    assert.deepEqual(tree(), expected);
    for (const path of ephemeralPaths(expected)) assert.equal((await observer.get(path))?.ephemeralOwner, client.sessionId, path);
  });

  it('serves with ZooKeeper unreachable, says so once, and registers (put-created topics too) when it is back', async () => {
    const lines: Record<string, unknown>[] = [];
    const previousRoot = rootLogger();
    setRootLogger(
      pino(
        { level: 'info' },
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
            callback();
          },
        }),
      ),
    );
    try {
      const { broker, client, url, iniFile } = await startBroker({ zookeeper: { 'zk.zkConnectionTimeoutMs': 500 }, client: { startDisconnected: true } });
      assert.equal(broker.zookeeperState, 'registering');
      assert.equal((await put(broker.port, 'orders-eu', 'while ZooKeeper is down')).code, 200);
      const unreachable = 'ZooKeeper unreachable at fake-zk:2181; serving anyway, will register when it is back';
      await waitFor(() => lines.some((line) => line['msg'] === unreachable), { timeoutMs: 10_000, what: 'the unreachable warning' });
      assert.deepEqual(tree(), []);
      await zk.reconnect(client);
      await waitFor(() => broker.zookeeperState === 'registered', { timeoutMs: 5000, what: 'registration after ZooKeeper came back' });
      assert.deepEqual(tree(), expectedTree(url, fileChecksum(iniFile), ORDERS_EU));
      assert.equal(lines.filter((line) => line['msg'] === unreachable).length, 1, 'said once');
      assert.ok(
        lines.some((line) => line['msg'] === `registered in ZooKeeper at fake-zk:2181/meta/brokers/ids/7 as ${url}`),
        'says where it registered',
      );
    } finally {
      setRootLogger(previousRoot);
    }
  });

  it('registers nothing with zk.zkEnable=false', async () => {
    fs.writeFileSync(join(dir.path, 'standalone.ini'), testBrokerIni(join(dir.path, 'data')));
    broker = await MetaqBroker.start(await loadBrokerConfig(join(dir.path, 'standalone.ini')), {
      connectZookeeper: () => assert.fail('no ZooKeeper session for a standalone broker'),
    });
    assert.equal(broker.zookeeperState, 'disabled');
  });
});

describe('broker URL and config checksum', () => {
  it('meta://host:port, an IPv6 address in brackets', () => {
    assert.equal(brokerUrl('10.0.0.5', 8123), 'meta://10.0.0.5:8123');
    assert.equal(brokerUrl('broker-1.example.com', 8123), 'meta://broker-1.example.com:8123');
    assert.equal(brokerUrl('fe80::1', 8123), 'meta://[fe80::1]:8123');
    assert.equal(brokerUrl('[::1]', 8123), 'meta://[::1]:8123');
  });

  it('CRC32 of the file bytes, unsigned decimal; of the loaded text when the file changed since', async () => {
    // crc32("123456789") is the CRC-32 check value 0xCBF43926.
    assert.equal(crc32Decimal(Buffer.from('123456789')), '3421780262');
    const file = join(dir.path, 'bom.ini');
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[system]\n')]);
    fs.writeFileSync(file, bytes);
    const rawText = fs.readFileSync(file, 'utf8');
    assert.equal(await configFileChecksum({ file, rawText }), String(crc32(bytes)), 'the BOM counts, as in MetaQ');
    fs.writeFileSync(file, '[system]\nedited=1\n');
    assert.equal(await configFileChecksum({ file, rawText }), String(crc32(Buffer.from(rawText, 'utf8'))), 'describes the configuration in use');
    assert.equal(await configFileChecksum({ file: undefined, rawText: '123456789' }), '3421780262');
  });
});
