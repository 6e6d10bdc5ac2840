/**
 * Thin promise wrappers over `node-zookeeper-client`'s callback API, and the mapping of its
 * exceptions to {@link ZookeeperError}. Nothing here knows about sessions, retries or watches
 * beyond passing a one-shot watcher through; that is zookeeper-client.ts's job.
 */
import zookeeper, { type Client, type Stat } from 'node-zookeeper-client';
import { ZookeeperError } from '../common/errors.js';

export type { Client as LibraryClient, State as LibraryState } from 'node-zookeeper-client';

/** The library's module object (CommonJS, so reached through the default import). */
export const lib = zookeeper;

/**
 * Errors that mean "the connection or session went away, the operation may not have run": the
 * client reconnects (or opens a new session) by itself, so trying again can succeed.
 */
const RETRIABLE_CODES: ReadonlySet<string> = new Set(['CONNECTION_LOSS', 'SESSION_EXPIRED', 'OPERATION_TIMEOUT', 'TIMEOUT']);

/** Whether a `zkCode` is a connection-type failure (see {@link RETRIABLE_CODES}). */
export function isConnectionCode(zkCode: string): boolean {
  return RETRIABLE_CODES.has(zkCode);
}

/** The library exception's name (`NO_NODE`, ...) or `undefined` for any other error. */
export function libraryCode(err: unknown): string | undefined {
  return err instanceof zookeeper.Exception ? err.getName() : undefined;
}

/**
 * Converts whatever the library reported into a {@link ZookeeperError}: `zkCode` is the
 * library's exception name, `SYSTEM_ERROR` for anything that is not a library exception.
 */
export function toZookeeperError(err: unknown, what: string, path: string | undefined): ZookeeperError {
  if (err instanceof ZookeeperError) return err;
  const zkCode = libraryCode(err) ?? 'SYSTEM_ERROR';
  const detail = err instanceof Error ? err.message : String(err);
  return new ZookeeperError(zkCode, `ZooKeeper ${what}${path === undefined ? '' : ` ${path}`} failed: ${zkCode}${zkCode === detail ? '' : ` (${detail})`}`, {
    cause: err,
    path,
    retriable: isConnectionCode(zkCode),
  });
}

/** Session id (hex) of an ephemeral node's owner, `undefined` for a persistent node. */
export function ownerOf(stat: Stat): string | undefined {
  const owner = stat.ephemeralOwner;
  return owner.every((byte) => byte === 0) ? undefined : owner.toString('hex');
}

/** A one-shot library watcher. */
export type LibraryWatcher = (event: zookeeper.Event) => void;

type Callback<T> = (error: Error | zookeeper.Exception | null, value: T) => void;

/**
 * Calls a callback-style library function and settles with its result. The library call is
 * made synchronously, so requests reach the socket in call order (watch re-arming relies on it).
 */
function call<T>(invoke: (callback: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    invoke((error, value) => (error ? reject(error) : resolve(value)));
  });
}

function toBuffer(data: string): Buffer {
  return Buffer.from(data, 'utf8');
}

/** `create`; rejects with the library's exception (`NODE_EXISTS`, `NO_NODE`, ...). */
export function create(client: Client, path: string, data: string, ephemeral: boolean): Promise<string> {
  const mode = ephemeral ? zookeeper.CreateMode.EPHEMERAL : zookeeper.CreateMode.PERSISTENT;
  return call<string>((cb) => client.create(path, toBuffer(data), mode, cb));
}

/** `getData`; rejects `NO_NODE` when missing. */
export async function getData(client: Client, path: string): Promise<{ data: string; stat: Stat }> {
  let stat: Stat | undefined;
  const data = await new Promise<Buffer | null>((resolve, reject) => {
    client.getData(path, (error, value, valueStat) => {
      if (error) return reject(error);
      stat = valueStat;
      resolve(value as Buffer | null);
    });
  });
  if (stat === undefined) throw new Error(`getData ${path} returned no stat`);
  return { data: data === null ? '' : data.toString('utf8'), stat };
}

/** `setData` with a version (`-1`: any); rejects `NO_NODE`, `BAD_VERSION`. */
export function setData(client: Client, path: string, data: string, version: number): Promise<Stat> {
  return call<Stat>((cb) => client.setData(path, toBuffer(data), version, cb));
}

/** `exists`, optionally leaving a one-shot watch (on data if it exists, on creation if not). */
export function exists(client: Client, path: string, watcher?: LibraryWatcher): Promise<Stat | null> {
  return call<Stat | null>((cb) => (watcher === undefined ? client.exists(path, cb) : client.exists(path, watcher, cb)));
}

/** `getChildren`, optionally leaving a one-shot children watch; rejects `NO_NODE`. */
export function getChildren(client: Client, path: string, watcher?: LibraryWatcher): Promise<string[]> {
  return call<string[]>((cb) => (watcher === undefined ? client.getChildren(path, cb) : client.getChildren(path, watcher, cb)));
}

/** `delete` of any version; rejects `NO_NODE`, `NOT_EMPTY`. */
export function remove(client: Client, path: string): Promise<void> {
  return call<undefined>((cb) => client.remove(path, -1, (error) => cb(error, undefined)));
}

/** {@link remove}, answering false instead of rejecting when the node does not exist. */
export async function removeIfPresent(client: Client, path: string): Promise<boolean> {
  try {
    await remove(client, path);
    return true;
  } catch (err) {
    if (libraryCode(err) === 'NO_NODE') return false;
    throw err;
  }
}
