/**
 * The {@link ZookeeperError}s the adapter and the fake raise themselves, so both say the same
 * thing in the same words. (Mapping of the library's exceptions lives in zookeeper-client.ts.)
 */
import { ZookeeperError } from '../common/errors.js';

/** The client was closed (`close()`), so the operation will never run. Not retriable. */
export function closedError(connectString: string, what: string, path?: string): ZookeeperError {
  return new ZookeeperError('CLOSED', `${what}${path === undefined ? '' : ` ${path}`}: the ZooKeeper client for ${connectString} is closed`, { path });
}

/** No connection within the connection timeout. Retriable: the client keeps trying on its own. */
export function connectTimeoutError(connectString: string, timeoutMs: number, what: string, path?: string): ZookeeperError {
  return new ZookeeperError(
    'TIMEOUT',
    `${what}${path === undefined ? '' : ` ${path}`}: not connected to ZooKeeper at ${connectString} after ${timeoutMs} ms; is the ensemble running and reachable? The client keeps trying.`,
    { path, retriable: true },
  );
}

/**
 * An ephemeral node this client wants to own is held by another session (`ownEphemeral` gave up
 * waiting after `waitedMs`, or `updateEphemeral` found it taken over). The message names the
 * owning session and what an operator can do about it.
 */
export function ephemeralTakenError(path: string, owner: string | undefined, waitedMs?: number): ZookeeperError {
  const held = waitedMs === undefined ? `${path} is held by ZooKeeper session 0x${owner}` : `${path} is still held by ZooKeeper session 0x${owner} after waiting ${waitedMs} ms`;
  const message =
    owner === undefined
      ? `${path} already exists as a persistent node, so it cannot be owned as an ephemeral one; delete it (e.g. 'deleteall ${path}' in zkCli) if nothing uses it`
      : `${held}: another process with the same identity (e.g. broker id) is probably still running. ` +
        `Stop it, or wait until its session expires (the session timeout after it died) and start again.`;
  return new ZookeeperError('NODE_EXISTS', message, { path });
}

/** A request got no answer in time although connected (e.g. a hung server). Retriable. */
export function answerTimeoutError(connectString: string, timeoutMs: number, what: string, path?: string): ZookeeperError {
  return new ZookeeperError('TIMEOUT', `${what}${path === undefined ? '' : ` ${path}`}: no answer from ZooKeeper at ${connectString} within ${timeoutMs} ms`, {
    path,
    retriable: true,
  });
}

/** `updateEphemeral` on a path this client does not own. */
export function notOwnedError(path: string): ZookeeperError {
  return new ZookeeperError('NOT_OWNED', `${path} is not an ephemeral node owned by this client; call ownEphemeral() first`, { path });
}

/**
 * `setInSession` found that the session it was bound to has ended (expired or replaced by a
 * new one); nothing was written. Not retriable as such: whoever bound the write to the session
 * must re-check what it held in it.
 */
export function sessionEndedError(sessionId: string, current: string | undefined, what: string, path: string): ZookeeperError {
  return new ZookeeperError(
    'SESSION_EXPIRED',
    `${what} ${path}: ZooKeeper session 0x${sessionId} has ended${current === undefined ? '' : ` (the client is now in session 0x${current})`}; ` +
      `nothing was written: what was held through that session (its ephemeral nodes) must be checked again first`,
    { path },
  );
}
