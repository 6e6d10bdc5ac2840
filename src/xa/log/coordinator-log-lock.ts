/**
 * The exclusive lock of a coordinator log directory (transactions.md §5.7 case 27, cf. Atomikos'
 * log-file lock): two live transaction managers appending to one log would interleave their
 * decisions, and each one's recovery would presume the other's in-flight transactions aborted.
 *
 * The lock is the file `coordinator.lock` holding one JSON line: pid, node name, host name, start
 * time and a random token.
 *
 * - Why link(2) from a temporary file rather than `open(O_EXCL)` + write: the lock appears with its
 *   content in one atomic step, so a concurrent opener never reads an empty lock and takes it for stale.
 * - Stale lock: left by a process that no longer exists (SIGKILL, power loss). Taken over when the
 *   host is ours and the pid is not alive, or the pid is ours but this process holds no such lock
 *   (in a container the manager is often pid 1 on every start, so "our own pid" is usually stale).
 *   Takeover renames the stale file aside and checks that what it moved is still the stale content,
 *   so two managers taking over at once cannot both win.
 * - A lock of another host is never taken over: its pid means nothing here (a log directory on a
 *   shared file system). The operator is told to remove it once that manager is known to be dead.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { IllegalStateError, StoreIoError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';

/** Name of the lock file in the coordinator log directory. */
export const COORDINATOR_LOCK_FILE_NAME = 'coordinator.lock';

/** What a lock file holds. */
export interface CoordinatorLockOwner {
  readonly pid: number;
  /** The transaction manager's node name, when it gave one. */
  readonly nodeName: string | undefined;
  readonly host: string;
  /** ISO time the lock was taken. */
  readonly since: string;
  /** Random; tells this holder's lock from a successor's on release. */
  readonly token: string;
}

/** A held lock. */
export interface CoordinatorLogLock {
  /** The lock file. */
  readonly path: string;
  /** What the lock file holds. */
  readonly owner: CoordinatorLockOwner;
  /** Removes the lock file (if it is still ours). Idempotent. */
  release(): Promise<void>;
}

/** Settings of {@link lockCoordinatorLog}. */
export interface LockCoordinatorLogOptions {
  /** Written into the lock file, so that the error a second manager gets names the first one. */
  readonly nodeName?: string;
  /** Where a stale-lock takeover is reported. */
  readonly logger: Logger;
}

/** Lock files held by this process (resolved paths): a second open in the same process is refused too. */
const heldInThisProcess = new Set<string>();

/**
 * Acquisitions in progress per lock file, chained: two opens in this process take turns, so the
 * second one sees the first one's lock as held, never as a stale lock naming our own pid.
 */
const acquiring = new Map<string, Promise<unknown>>();

const ATTEMPTS = 5;

/**
 * Takes the lock of the coordinator log directory `dir` (which must exist).
 * @throws IllegalStateError naming the directory and the holder when a live manager holds it.
 * @throws StoreIoError when the lock file cannot be created or read.
 */
export async function lockCoordinatorLog(dir: string, options: LockCoordinatorLogOptions): Promise<CoordinatorLogLock> {
  const key = resolve(join(dir, COORDINATOR_LOCK_FILE_NAME));
  const previous = acquiring.get(key) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => acquire(dir, key, options));
  acquiring.set(key, run);
  try {
    return await run;
  } finally {
    if (acquiring.get(key) === run) acquiring.delete(key);
  }
}

async function acquire(dir: string, key: string, options: LockCoordinatorLogOptions): Promise<CoordinatorLogLock> {
  const path = join(dir, COORDINATOR_LOCK_FILE_NAME);
  const owner: CoordinatorLockOwner = {
    pid: process.pid,
    nodeName: options.nodeName,
    host: os.hostname(),
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const content = `${JSON.stringify(owner)}\n`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await tryCreate(path, content)) {
      heldInThisProcess.add(key);
      return { path, owner, release: releaser(path, key, content) };
    }
    const found = await readLock(path);
    if (found === undefined) continue; // removed meanwhile: try again
    const holder = parseOwner(found);
    const stale = staleness(holder, key);
    if (stale === undefined) throw liveLockError(dir, path, holder);
    if (await moveAsideIfUnchanged(path, found)) {
      options.logger.warn({ lock: path, previousHolder: holder ?? found.trim() }, `took over a stale coordinator log lock: ${stale}`);
    }
  }
  throw new IllegalStateError(
    `could not lock the coordinator log directory ${dir}: the lock file ${path} kept changing while this manager tried to ` +
      `take it; another transaction manager is starting on the same directory. Give each manager its own log directory.`,
  );
}

/** Creates the lock file atomically with its content; false when one exists. */
async function tryCreate(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.writeFile(temp, content, { flag: 'wx' });
    await fs.promises.link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StoreIoError(`creating the coordinator log lock ${path} failed`, error);
  } finally {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
  }
}

async function readLock(path: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreIoError(`reading the coordinator log lock ${path} failed`, error);
  }
}

/** The holder a lock file names, or undefined when its content is not a lock of this format. */
export function parseOwner(content: string): CoordinatorLockOwner | undefined {
  try {
    const value = JSON.parse(content) as Partial<Record<keyof CoordinatorLockOwner, unknown>>;
    if (typeof value !== 'object' || value === null || typeof value.pid !== 'number' || !Number.isSafeInteger(value.pid) || typeof value.host !== 'string') {
      return undefined;
    }
    return {
      pid: value.pid,
      nodeName: typeof value.nodeName === 'string' ? value.nodeName : undefined,
      host: value.host,
      since: typeof value.since === 'string' ? value.since : '',
      token: typeof value.token === 'string' ? value.token : '',
    };
  } catch {
    return undefined;
  }
}

/** Why the lock is stale, or undefined when its holder may be alive. */
function staleness(holder: CoordinatorLockOwner | undefined, key: string): string | undefined {
  // Unreadable content: link(2) never exposes a half-written lock, so this is a hand-edited or
  // damaged file, not a holder in the middle of writing it.
  if (holder === undefined) return 'its content is not a lock written by metaq';
  if (holder.host !== os.hostname()) return undefined;
  if (holder.pid === process.pid) return heldInThisProcess.has(key) ? undefined : `it names this process's pid ${holder.pid}, left by an earlier run`;
  return processAlive(holder.pid) ? undefined : `process ${holder.pid} no longer exists`;
}

function processAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Renames the stale lock aside and deletes it, if it still holds `stale`. When the renamed file
 * turns out to be a fresh lock (another manager took over first), it is put back.
 * @returns true when the stale lock was removed.
 */
async function moveAsideIfUnchanged(path: string, stale: string): Promise<boolean> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await fs.promises.rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new StoreIoError(`moving the stale coordinator log lock ${path} aside failed`, error);
  }
  const moved = await fs.promises.readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== stale) {
    // Someone else's fresh lock: give it back (link fails if a third one exists by now, and then
    // that one holds the lock; either way exactly one lock file remains).
    await fs.promises.link(aside, path).catch(() => undefined);
    await fs.promises.rm(aside, { force: true }).catch(() => undefined);
    return false;
  }
  await fs.promises.rm(aside, { force: true }).catch(() => undefined);
  return true;
}

function liveLockError(dir: string, path: string, holder: CoordinatorLockOwner | undefined): IllegalStateError {
  const who =
    holder === undefined
      ? 'another process'
      : `pid ${holder.pid}${holder.nodeName === undefined ? '' : ` (node ${holder.nodeName})`} on host ${holder.host}, since ${holder.since}`;
  const sameHost = holder === undefined || holder.host === os.hostname();
  const advice = sameHost
    ? 'Two transaction managers must never share a coordinator log: stop that one first, or give this one its own log directory.'
    : `Its pid cannot be checked from this host. If that manager is certainly stopped, delete ${path}; otherwise give this manager its own log directory.`;
  return new IllegalStateError(`the coordinator log directory ${dir} is locked by ${who} (lock file ${path}). ${advice}`);
}

function releaser(path: string, key: string, content: string): () => Promise<void> {
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    heldInThisProcess.delete(key);
    // Only our own lock: if it was taken over meanwhile (an operator deleted it by hand), the
    // successor's lock must stay.
    if ((await readLock(path).catch(() => undefined)) === content) await fs.promises.rm(path, { force: true });
  };
}
