/**
 * Proves the test-harness servers in test/helpers: a private ZooKeeper and a private PostgreSQL
 * start, answer real clients, survive a simulated crash with their data, and leave nothing
 * behind (port, process, directory) when stopped, when their owner exits abruptly, and when
 * their owner is SIGKILLed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import zookeeper from 'node-zookeeper-client';
import pg from 'pg';
import { isAlive, reapOrphans } from '../helpers/cleanup.js';
import { isPortFree } from '../helpers/free-port.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { type ZookeeperServer, fourLetterWord, startZookeeper } from '../helpers/zookeeper-server.js';

/** Connects a node-zookeeper-client and resolves once the session is established. */
async function connectZk(connectString: string): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(connectString, { sessionTimeout: 5000, retries: 0 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ZooKeeper session with ${connectString} within 10 s`)), 10_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return client;
}

function zkCreate(client: zookeeper.Client, path: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => client.create(path, data, (err) => (err ? reject(err) : resolve())));
}

function zkGet(client: zookeeper.Client, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => client.getData(path, (err, data) => (err ? reject(err) : resolve(data))));
}

/** Opens a pg client, runs `fn`, always closes it. */
async function withPg<T>(server: PostgresServer, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Asserts a stopped server left no process, no listener and no directory behind. */
async function assertNothingLeft(what: string, pid: number, port: number, dir: string): Promise<void> {
  assert.equal(isAlive(pid), false, `${what}: process ${pid} still alive`);
  assert.equal(await isPortFree(port), true, `${what}: port ${port} still taken`);
  assert.equal(existsSync(dir), false, `${what}: ${dir} still exists`);
}

describe('ZooKeeper test server', () => {
  let zk: ZookeeperServer | undefined;
  after(() => zk?.stop());

  it('starts, serves a znode, keeps it across kill/start, and leaves nothing after stop', async () => {
    const t0 = Date.now();
    zk = await startZookeeper();
    const startMs = Date.now() - t0;
    assert.ok(startMs < 15_000, `ZooKeeper took ${startMs} ms to start`);
    assert.match(zk.connectString, /^127\.0\.0\.1:\d+$/);
    assert.match(await fourLetterWord(zk.host, zk.port, 'srvr'), /Mode: standalone/);

    let client = await connectZk(zk.connectString);
    try {
      await zkCreate(client, '/metaq-test', Buffer.from('hello'));
      assert.equal((await zkGet(client, '/metaq-test')).toString(), 'hello');
    } finally {
      client.close();
    }

    const firstPid = zk.pid;
    await zk.kill();
    assert.equal(zk.running, false);
    assert.ok(firstPid !== undefined && !isAlive(firstPid), 'kill() left the JVM running');
    await zk.start();
    client = await connectZk(zk.connectString);
    try {
      assert.equal((await zkGet(client, '/metaq-test')).toString(), 'hello', 'znode lost across kill/start');
    } finally {
      client.close();
    }
    assert.ok(existsSync(zk.logFile), 'ZooKeeper should log to a file in its directory');

    const { pid, port, dataDir } = zk;
    assert.ok(pid !== undefined);
    await zk.stop();
    await zk.stop(); // idempotent
    await assertNothingLeft('ZooKeeper', pid, port, dataDir);
  });
});

describe('PostgreSQL test server', () => {
  const servers: PostgresServer[] = [];
  after(() => Promise.all(servers.map((s) => s.stop())));

  it('starts, runs a PREPARE TRANSACTION round trip, keeps prepared transactions across kill/start, and leaves nothing after stop', async () => {
    const t0 = Date.now();
    const server = await startPostgres({ database: 'metaq_test' });
    servers.push(server);
    const startMs = Date.now() - t0;
    assert.ok(startMs < 15_000, `PostgreSQL took ${startMs} ms to start`);

    await withPg(server, async (client) => {
      assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      assert.equal((await client.query('SELECT current_database() AS db')).rows[0].db, 'metaq_test');
      const max = Number((await client.query('SHOW max_prepared_transactions')).rows[0].max_prepared_transactions);
      assert.ok(max >= 64, `max_prepared_transactions is ${max}`);

      await client.query('CREATE TABLE t (v int)');
      await client.query('BEGIN');
      await client.query('INSERT INTO t VALUES (1)');
      await client.query("PREPARE TRANSACTION 'x'");
      assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 0, 'prepared but not committed');
      await client.query("COMMIT PREPARED 'x'");
      assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1);

      // Leave one in doubt: an XA coordinator must find it again after a database crash.
      await client.query('BEGIN');
      await client.query('INSERT INTO t VALUES (2)');
      await client.query("PREPARE TRANSACTION 'in-doubt'");
    });

    await server.kill();
    assert.equal(server.running, false);
    await server.start();
    await withPg(server, async (client) => {
      const gids = (await client.query('SELECT gid FROM pg_prepared_xacts')).rows.map((r: { gid: string }) => r.gid);
      assert.deepEqual(gids, ['in-doubt']);
      await client.query("ROLLBACK PREPARED 'in-doubt'");
      assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1);
    });

    const { pid, port, dataDir } = server;
    assert.ok(pid !== undefined);
    await server.stop();
    await server.stop(); // idempotent
    await assertNothingLeft('PostgreSQL', pid, port, dataDir);
  });

  it('can run without prepared transactions', async () => {
    const server = await startPostgres({ maxPreparedTransactions: 0 });
    servers.push(server);
    await withPg(server, async (client) => {
      await client.query('BEGIN');
      await assert.rejects(client.query("PREPARE TRANSACTION 'y'"), /prepared transactions are disabled/);
      await client.query('ROLLBACK');
    });
  });
});

/** What a child "owner" process reports about the servers it started. */
interface OwnerInfo {
  zkPid: number;
  zkPort: number;
  zkDir: string;
  pgPid: number;
  pgPort: number;
  pgDir: string;
}

describe('test server cleanup', () => {
  const helpers = (name: string): string => fileURLToPath(new URL(`../helpers/${name}`, import.meta.url));

  /**
   * Runs a child Node process that starts both servers, prints their pids/ports/dirs as JSON,
   * then runs `tail` (code that ends the process without calling stop()).
   */
  function spawnOwner(tail: string): { info: Promise<OwnerInfo>; exited: Promise<void>; pid: number } {
    const script = `
      import { startZookeeper } from ${JSON.stringify(helpers('zookeeper-server.ts'))};
      import { startPostgres } from ${JSON.stringify(helpers('postgres-server.ts'))};
      const [zk, pgs] = await Promise.all([startZookeeper(), startPostgres()]);
      console.log(JSON.stringify({ zkPid: zk.pid, zkPort: zk.port, zkDir: zk.dataDir, pgPid: pgs.pid, pgPort: pgs.port, pgDir: pgs.dataDir }));
      ${tail}
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const info = new Promise<OwnerInfo>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line !== undefined) resolve(JSON.parse(line) as OwnerInfo);
      });
      child.once('exit', (code, signal) => reject(new Error(`owner process exited (${code ?? signal}) before reporting; output: ${out}`)));
    });
    info.catch(() => undefined);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    assert.ok(child.pid !== undefined);
    return { info, exited, pid: child.pid };
  }

  it('kills the servers and removes their directories when the owner process crashes', async () => {
    const owner = spawnOwner(`setTimeout(() => { throw new Error('simulated test crash'); }, 10);`);
    const info = await owner.info;
    await owner.exited;
    await assertNothingLeft('ZooKeeper after owner crash', info.zkPid, info.zkPort, info.zkDir);
    await assertNothingLeft('PostgreSQL after owner crash', info.pgPid, info.pgPort, info.pgDir);
  });

  it('reaps servers left behind by a SIGKILLed owner', async () => {
    const owner = spawnOwner(`setInterval(() => {}, 1000);`);
    let info: OwnerInfo | undefined;
    try {
      info = await owner.info;
      process.kill(owner.pid, 'SIGKILL');
      await owner.exited;
      // Nothing ran in the owner, so its servers are still there...
      assert.equal(isAlive(info.zkPid), true);
      assert.equal(isAlive(info.pgPid), true);
    } finally {
      if (info === undefined) process.kill(owner.pid, 'SIGKILL');
      // ...until the next helper start reaps them (this is what startZookeeper/startPostgres call).
      reapOrphans('metaq-test-zk-', 'SIGKILL');
      reapOrphans('metaq-test-pg-', 'SIGQUIT');
    }
    await waitFor(() => !isAlive(info.zkPid) && !isAlive(info.pgPid), { timeoutMs: 10_000, what: 'orphaned servers to exit' });
    await assertNothingLeft('ZooKeeper after owner SIGKILL', info.zkPid, info.zkPort, info.zkDir);
    await assertNothingLeft('PostgreSQL after owner SIGKILL', info.pgPid, info.pgPort, info.pgDir);
  });
});
