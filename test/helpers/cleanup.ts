/**
 * Lifecycle of the server processes that test helpers start: stopping one child gracefully,
 * and making sure none is left behind when a test process ends in any way.
 *
 * Three layers, because each covers a way of dying the others cannot:
 * - `stop()` in a test's `after`/`finally` (the normal path, async, graceful);
 * - {@link trackServer}: `exit`, `SIGINT`, `SIGTERM` and `SIGHUP` handlers that kill every
 *   still-tracked server synchronously and delete its directory (a test that threw, timed out or
 *   was interrupted with Ctrl-C);
 * - {@link reapOrphans}: a process that was SIGKILLed runs no handler at all, so every server
 *   directory records its owner's pid, and the next helper start kills servers whose owner is
 *   gone and deletes their directories.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A server process that must not outlive this test process. */
export interface TrackedServer {
  /** Human-readable name, e.g. `ZooKeeper 127.0.0.1:2181`. */
  readonly name: string;
  /** The server's private temporary directory, deleted on exit. */
  readonly dir: string;
  /** The pid of the running server process, or undefined when it is not running. */
  pid(): number | undefined;
  /**
   * The signal that shuts the server down quickly without leaving resources behind: SIGKILL for a
   * JVM, SIGQUIT for a postmaster (a SIGKILLed postmaster leaves its backends and its shared
   * memory segment behind for a moment).
   */
  readonly exitSignal: NodeJS.Signals;
}

/** Name of the file in each server directory recording who owns it. */
const OWNER_FILE = 'owner.json';
/** Servers tracked in this process and not yet stopped. */
const tracked = new Set<TrackedServer>();
let handlersInstalled = false;

/**
 * Registers `server` so that it is killed and its directory deleted if this process exits
 * before the server is stopped. Returns the function that unregisters it (call it from `stop()`).
 */
export function trackServer(server: TrackedServer): () => void {
  installHandlers();
  tracked.add(server);
  return () => {
    tracked.delete(server);
  };
}

/**
 * Records in `dir` that this process owns it and which pid the server currently has, so that
 * {@link reapOrphans} can clean up after a test process that was killed outright.
 */
export function writeOwnerFile(dir: string, serverPid: number | undefined): void {
  writeFileSync(join(dir, OWNER_FILE), JSON.stringify({ ownerPid: process.pid, serverPid: serverPid ?? null }));
}

/**
 * Kills servers left behind by test processes that no longer exist and deletes their
 * directories. Only directories in `os.tmpdir()` named `prefix*` are looked at, and a server pid
 * is only signalled while its command line still names that directory (pids get reused).
 *
 * @param prefix - Directory name prefix, e.g. `metaq-test-zk-`.
 * @param exitSignal - The signal to send first (see {@link TrackedServer.exitSignal}).
 */
export function reapOrphans(prefix: string, exitSignal: NodeJS.Signals): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    let owner: { ownerPid?: unknown; serverPid?: unknown };
    try {
      owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      // No owner file: either its owner is between mkdtemp and writing the file (give it time),
      // or it died right there.
      if (ageMs(dir) > 10 * 60_000) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (typeof owner.ownerPid !== 'number' || isAlive(owner.ownerPid)) continue;
    if (typeof owner.serverPid === 'number' && commandLine(owner.serverPid).includes(dir)) {
      killAndWaitSync(owner.serverPid, exitSignal, 5000);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Stops `child` gracefully: sends `signal`, waits up to `graceMs` for it to exit, then sends
 * SIGKILL and waits for that too. Resolves once the process has exited (at once if it already
 * had).
 */
export async function terminateChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (hasExited(child)) return;
  // An unref'd child would let the event loop end while we wait for it; hold it while stopping.
  child.ref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), graceMs);
  });
  const late = await Promise.race([exited.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late && !hasExited(child)) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** True once `child` has exited (its exit code or signal is known). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * True while process `pid` exists and is not a zombie. Reads `/proc` where it can, because
 * `kill(pid, 0)` also succeeds for an exited child that has not been reaped yet, and inside the
 * synchronous `exit` handler Node never gets to reap it.
 */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal` to `pid`, waits synchronously up to `graceMs` for it to go, then SIGKILLs it. */
function killAndWaitSync(pid: number, signal: NodeJS.Signals, graceMs: number): void {
  if (!signalQuietly(pid, signal)) return;
  if (waitGoneSync(pid, graceMs)) return;
  signalQuietly(pid, 'SIGKILL');
  waitGoneSync(pid, 2000);
}

function signalQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

function waitGoneSync(pid: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    Atomics.wait(cell, 0, 0, 20); // a synchronous 20 ms sleep; the exit handler cannot await
  }
  return true;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Synchronously kills every tracked server and deletes its directory. */
function cleanupAllSync(): void {
  for (const server of tracked) {
    tracked.delete(server);
    const pid = server.pid();
    if (pid !== undefined) killAndWaitSync(pid, server.exitSignal, 3000);
    try {
      rmSync(server.dir, { recursive: true, force: true });
    } catch {
      // Best effort: reapOrphans cannot help here (the owner is this live process), but a
      // leftover directory is harmless compared to failing the exit path.
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanupAllSync();
      process.removeListener(signal, onSignal);
      // Why re-raise: listening for a signal replaces Node's default "exit on signal"; if nobody
      // else handles it, restore the default and deliver it again so the process still dies.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
