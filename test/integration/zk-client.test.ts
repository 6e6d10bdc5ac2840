/**
 * connectZookeeper() against a private real ZooKeeper 3.8: the shared ZkClient conformance
 * suite, plus what only a real ensemble can show (a SIGKILLed owner process, a hung server).
 *
 * How a session expiry is forced: a second connection presents the client's session id and
 * password and, in the same write, asks to close the session (what ZooKeeper's own tests do).
 * The server moves the session to the new connection (dropping the client's), then closes it:
 * the ephemerals go at once, and the client's reconnection is answered "session expired".
 * Both requests travel in one write so that the client's own reconnection cannot win the
 * session back in between.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, it } from 'node:test';
import { ZookeeperError } from '../../src/common/errors.js';
import { connectZookeeper, type ZkClient } from '../../src/zk/index.js';
import { waitFor } from '../helpers/wait-for.js';
import { expireZkSession } from '../helpers/zk-expire.js';
import { zkConformance } from '../helpers/zk-conformance.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';

/** Small, so that a dead owner's session ends quickly (the server's minimum is 2 ticks = 1 s). */
const SESSION_TIMEOUT_MS = 2000;
/** For the conformance clients: long enough to ride out a server restart in the same session. */
const CONFORMANCE_SESSION_TIMEOUT_MS = 4000;

/** Resolves once every thread of `pid` is stopped (SIGSTOP is delivered asynchronously). */
async function waitStopped(pid: number): Promise<void> {
  await waitFor(
    async () => {
      const tasks = await readdir(`/proc/${pid}/task`);
      const states = await Promise.all(tasks.map(async (task) => (await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8')).replace(/^.*\) /s, '').charAt(0)));
      return states.every((state) => state === 'T' || state === 't');
    },
    { timeoutMs: 5000, intervalMs: 5, what: `process ${pid} to stop` },
  );
}

describe('connectZookeeper against a real ZooKeeper', () => {
  let server: ZookeeperServer;
  const extraClients: ZkClient[] = [];
  const open = (options: { connectionTimeoutMs?: number; sessionTimeoutMs?: number } = {}): ZkClient => {
    const client = connectZookeeper({ connectString: server.connectString, sessionTimeoutMs: options.sessionTimeoutMs ?? CONFORMANCE_SESSION_TIMEOUT_MS, connectionTimeoutMs: options.connectionTimeoutMs ?? 15_000 });
    extraClients.push(client);
    return client;
  };

  before(async () => {
    server = await startZookeeper();
  });
  after(async () => {
    await Promise.all(extraClients.map((client) => client.close()));
    await server?.stop();
  });
  afterEach(async () => {
    // A failed outage test must not leave the server down for the next test.
    if (!server.running) await server.start();
  });

  describe('conformance', () => {
    zkConformance({
      waitMs: 15_000,
      client: (options) => open(options),
      expireSession: (client) => expireZkSession(server.connectString, client),
      outage: async () => {
        await server.kill();
        return () => server.start();
      },
      clientWhileDown: async (options) => {
        await server.kill();
        const client = open(options);
        return { client, restore: () => server.start() };
      },
    });
  });

  it('a new owner waits for the ephemeral node of a SIGKILLed owner process until its session expires', async () => {
    const path = `/sigkill-${process.pid}/brokers/ids/7/master`;
    const dir = await mkdtemp(join(tmpdir(), 'metaq-zk-owner-'));
    const script = join(dir, 'owner.mts');
    await writeFile(
      script,
      [
        `import { connectZookeeper } from ${JSON.stringify(resolve('src/zk/index.ts'))};`,
        `const zk = connectZookeeper({ connectString: ${JSON.stringify(server.connectString)}, sessionTimeoutMs: ${SESSION_TIMEOUT_MS} });`,
        `await zk.ownEphemeral(${JSON.stringify(path)}, 'old-owner');`,
        `console.log('OWNED ' + zk.sessionId);`,
        'setInterval(() => undefined, 1000);',
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = createInterface({ input: child.stdout });
      const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as string[];
      const match = /^OWNED ([0-9a-f]+)$/.exec(line ?? '');
      assert.ok(match, `owner process said ${line}`);
      const oldSession = match[1];
      const client = open({ sessionTimeoutMs: SESSION_TIMEOUT_MS });
      await client.waitConnected();
      assert.equal((await client.get(path))?.ephemeralOwner, oldSession);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const killedAt = Date.now();
      await client.ownEphemeral(path, 'new-owner', { waitMs: 15_000 });
      const waited = Date.now() - killedAt;
      assert.deepEqual(await client.get(path), { data: 'new-owner', ephemeralOwner: client.sessionId, version: 0 });
      // The old session lived on for about its timeout after the process died.
      assert.ok(waited >= SESSION_TIMEOUT_MS / 2, `took over after ${waited} ms, before the old session could have expired`);
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a hung (SIGSTOPped) server: operations time out (retriable TIMEOUT), the silent connection is dropped, the client recovers', async () => {
    const client = open({ connectionTimeoutMs: 500, sessionTimeoutMs: 3000 });
    await client.waitConnected(15_000);
    const pid = server.pid;
    assert.ok(pid !== undefined);
    const disconnected = new Promise<number>((resolve) => client.on('disconnected', () => resolve(Date.now())));
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await waitStopped(pid);
      const asked = Date.now();
      await assert.rejects(client.get('/'), (err: unknown) => err instanceof ZookeeperError && err.zkCode === 'TIMEOUT' && err.retriable);
      // Within the connection timeout, not only once the silent connection is dropped (2 s).
      assert.ok(Date.now() - asked < 1500, `get rejected after ${Date.now() - asked} ms`);
      // The library alone would stay "connected" forever; the watchdog gives up after 2/3 of the session timeout.
      const droppedAt = await Promise.race([disconnected, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 6000).unref())]);
      assert.ok(droppedAt !== undefined, 'the connection to the hung server was never dropped');
      assert.ok(droppedAt - stoppedAt < 4000, `connection dropped after ${droppedAt - stoppedAt} ms`);
      assert.equal(client.state, 'disconnected');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await client.waitConnected(15_000);
    await waitFor(() => client.exists('/'), { timeoutMs: 15_000, what: 'the server answering again' });
  });
});
