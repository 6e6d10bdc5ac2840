/** The coordinator log directory lock: one live transaction manager per log. */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { IllegalStateError } from '../../src/common/errors.js';
import { COORDINATOR_LOCK_FILE_NAME, openCoordinatorLog, type FileCoordinatorLog } from '../../src/xa/log/index.js';
import { makeGtrid, nodeIdOf, branchQualifier } from '../../src/xa/xid.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let temp: { path: string; remove: () => Promise<void> };
let dir: string;
let lockPath: string;
const opened: FileCoordinatorLog[] = [];
const children: ChildProcess[] = [];

async function open(nodeName = 'tm-a'): Promise<FileCoordinatorLog> {
  const log = await openCoordinatorLog(dir, { nodeName, checkpointIntervalMs: 0 });
  opened.push(log);
  return log;
}

function writeLock(owner: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(lockPath, `${JSON.stringify({ host: os.hostname(), since: '2024-01-01T00:00:00.000Z', token: 'x', ...owner })}\n`);
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', '0']);
  assert.ok(typeof result.pid === 'number' && result.pid > 0);
  return result.pid;
}

/** A live process that is not this one. */
async function liveChild(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child;
}

const gtrid = makeGtrid({ nodeId: nodeIdOf('tm-a'), startedAtMs: 1, sequence: 1n });

beforeEach(async () => {
  temp = await makeTempDir('metaq-xa-log-lock-');
  dir = join(temp.path, 'coordinator');
  lockPath = join(dir, COORDINATOR_LOCK_FILE_NAME);
});
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(opened.splice(0).map((l) => l.close()));
  await temp.remove();
});

describe('coordinator log lock', () => {
  it('holds the pid and node name of the holder while open, and is removed on close', async () => {
    const log = await open('tm-a');
    const owner = JSON.parse(fs.readFileSync(lockPath, 'utf8')) as Record<string, unknown>;
    assert.equal(owner['pid'], process.pid);
    assert.equal(owner['nodeName'], 'tm-a');
    assert.equal(owner['host'], os.hostname());
    await log.close();
    assert.equal(fs.existsSync(lockPath), false);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.startsWith('coordinator.lock')),
      [],
      'no temporary lock files are left behind',
    );
  });

  it('refuses a second open while the first is open, naming the directory, pid and node, without disturbing the first', async () => {
    const first = await open('tm-a');
    const content = fs.readFileSync(lockPath, 'utf8');
    await assert.rejects(open('tm-b'), (e: unknown) => {
      assert.ok(e instanceof IllegalStateError);
      assert.match(e.message, new RegExp(`directory ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is locked by pid ${process.pid} \\(node tm-a\\)`));
      assert.match(e.message, /stop that one first, or give this one its own log directory/);
      return true;
    });
    assert.equal(fs.readFileSync(lockPath, 'utf8'), content);
    await first.committing(gtrid, [{ resourceId: 'postgres:x', branchQualifier: branchQualifier(0) }]);
    await first.close();
    const second = await open('tm-b');
    assert.equal(second.get(gtrid)?.state, 'committing');
  });

  it('lets exactly one of three concurrent opens win', async () => {
    const results = await Promise.allSettled([open('tm-a'), open('tm-b'), open('tm-c')]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof IllegalStateError, String(r.reason));
  });

  it('refuses a lock held by another live process', async () => {
    const child = await liveChild();
    writeLock({ pid: child.pid, nodeName: 'tm-other' });
    await assert.rejects(open(), (e: unknown) => e instanceof IllegalStateError && e.message.includes(`pid ${child.pid} (node tm-other)`));
    assert.equal((JSON.parse(fs.readFileSync(lockPath, 'utf8')) as { pid: number }).pid, child.pid, 'the live lock is untouched');
  });

  it('takes over a stale lock left by a dead process', async () => {
    const pid = deadPid();
    writeLock({ pid, nodeName: 'tm-dead' });
    const log = await open('tm-a');
    const owner = JSON.parse(fs.readFileSync(lockPath, 'utf8')) as Record<string, unknown>;
    assert.equal(owner['pid'], process.pid);
    assert.equal(owner['nodeName'], 'tm-a');
    await log.close();
  });

  it('takes over a lock naming this pid that this process does not hold (a container restarted as pid 1)', async () => {
    writeLock({ pid: process.pid, nodeName: 'tm-a' });
    const log = await open('tm-a');
    assert.equal((JSON.parse(fs.readFileSync(lockPath, 'utf8')) as { token: string }).token.length, 16);
    await log.close();
  });

  it('takes over a lock file whose content is not a metaq lock', async () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(lockPath, 'garbage');
    await open();
  });

  it('never takes over a lock of another host: its pid cannot be checked from here', async () => {
    writeLock({ pid: deadPid(), nodeName: 'tm-remote', host: `${os.hostname()}-elsewhere` });
    await assert.rejects(open(), (e: unknown) => e instanceof IllegalStateError && e.message.includes('-elsewhere') && e.message.includes(`delete ${lockPath}`));
  });

  it('close does not remove a lock that is no longer its own', async () => {
    const log = await open('tm-a');
    fs.rmSync(lockPath);
    writeLock({ pid: deadPid(), nodeName: 'tm-successor' });
    await log.close();
    assert.equal((JSON.parse(fs.readFileSync(lockPath, 'utf8')) as { nodeName: string }).nodeName, 'tm-successor');
  });
});
