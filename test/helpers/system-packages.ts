/**
 * Installing a Debian package that a test needs (ZooKeeper, PostgreSQL) when it is missing.
 *
 * Why in the test harness and not in a setup script: machines are handed out fresh, so whatever
 * a test needs must be installed by the project's own code; doing it lazily here means a test
 * that needs nothing extra never pays for `apt-get`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Directory whose atomic creation is the cross-process apt lock. */
const LOCK_DIR = join(tmpdir(), 'metaq-test-apt.lock');
/** How long to wait for another process's apt-get before giving up. */
const LOCK_WAIT_MS = 15 * 60_000;
/** How long one apt-get run may take. */
const APT_TIMEOUT_MS = 15 * 60_000;

/** Set once `apt-get update` succeeded in this process, so it runs at most once per process. */
let updated: Promise<void> | undefined;
/** Per-package install in flight, so concurrent callers in one process share one install. */
const inFlight = new Map<string, Promise<void>>();

/**
 * Makes sure Debian package `pkg` is installed, using `probePath` (a file the package ships) to
 * tell whether it already is.
 *
 * If `probePath` exists nothing happens. Otherwise this takes a cross-process lock (so that two
 * test files running in parallel do not fight over the dpkg lock: the second waits for the
 * first), checks again, runs `apt-get update` (once per process) and
 * `apt-get install -y --no-install-recommends pkg`, and checks that `probePath` now exists.
 *
 * @param pkg - The Debian package name, e.g. `zookeeper`.
 * @param probePath - An absolute path the package installs, e.g. `/usr/share/java/zookeeper.jar`.
 * @throws Error saying what failed and how to install the package by hand.
 */
export function ensureDebianPackage(pkg: string, probePath: string): Promise<void> {
  if (existsSync(probePath)) return Promise.resolve();
  let pending = inFlight.get(pkg);
  if (pending === undefined) {
    pending = install(pkg, probePath).finally(() => inFlight.delete(pkg));
    inFlight.set(pkg, pending);
  }
  return pending;
}

async function install(pkg: string, probePath: string): Promise<void> {
  const manual = `Install it by hand with 'apt-get install -y ${pkg}' (as root) and run the test again.`;
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`${probePath} is missing and this is not a Debian system with apt-get, so package '${pkg}' cannot be installed automatically. ${manual}`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`${probePath} is missing and installing package '${pkg}' needs root, but this process runs as uid ${process.getuid?.()}. ${manual}`);
  }
  await withAptLock(async () => {
    // Another process may have installed it while we waited for the lock.
    if (existsSync(probePath)) return;
    updated ??= apt(['update']).catch((err: unknown) => {
      updated = undefined; // let a later call try again
      throw err;
    });
    await updated;
    await apt(['install', '-y', '--no-install-recommends', pkg]);
  }).catch((err: unknown) => {
    throw new Error(`Could not install Debian package '${pkg}': ${err instanceof Error ? err.message : String(err)} ${manual}`, { cause: err });
  });
  if (!existsSync(probePath)) {
    throw new Error(`Debian package '${pkg}' was installed but ${probePath} still does not exist; the package layout may have changed. Update the probe path in test/helpers.`);
  }
}

/** Runs `apt-get ARGS` non-interactively, rejecting with its output on failure. */
function apt(args: string[]): Promise<void> {
  // Why DPkg::Lock::Timeout: our own lock only serialises metaq test processes; an unrelated
  // apt/dpkg (e.g. unattended-upgrades) may still hold the dpkg lock, so wait for it too.
  const full = ['-q', '-o', 'DPkg::Lock::Timeout=300', ...args];
  return new Promise((resolve, reject) => {
    execFile(
      'apt-get',
      full,
      { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: APT_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve();
          return;
        }
        const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`'apt-get ${full.join(' ')}' failed (${err.message.split('\n')[0]}):\n${tail}`, { cause: err }));
      },
    );
  });
}

/**
 * Runs `fn` while holding the cross-process apt lock: a directory created with `mkdir` (atomic:
 * exactly one creator wins) holding the owner's pid. A lock whose owner died is taken over.
 */
async function withAptLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await lockIsStale()) {
      await rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${LOCK_WAIT_MS / 60_000} min waiting for another test process to finish apt-get (lock ${LOCK_DIR}); if no such process runs, delete that directory.`);
    }
    await sleep(500);
  }
  try {
    await writeFile(join(LOCK_DIR, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
}

/** A lock is stale when its owner pid is recorded and that process no longer exists. */
async function lockIsStale(): Promise<boolean> {
  let pid: number;
  try {
    pid = Number.parseInt(await readFile(join(LOCK_DIR, 'pid'), 'utf8'), 10);
  } catch {
    // No pid file yet: the owner is between mkdir and writeFile, or died right there. Only treat
    // it as stale when it has been like that for a while.
    try {
      const { mtimeMs } = await stat(LOCK_DIR);
      return Date.now() - mtimeMs > 60_000;
    } catch {
      return false; // vanished: not stale, just retry mkdir
    }
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
