/**
 * The one interface metaq uses to talk to ZooKeeper. Everything above it (broker registration,
 * client discovery, consumer-group rebalancing, the ZooKeeper offset storage) is written
 * against this interface, so it is unit-tested with an in-memory fake
 * (`test/helpers/fake-zk.ts`) and run against a real ensemble through
 * `connectZookeeper()` (zookeeper-client.ts, over `node-zookeeper-client`).
 *
 * Why an adapter of our own rather than the library's API directly:
 * - the library is callback-based and its watches fire once; here watches are persistent
 *   listeners, re-armed after every event and after a new session;
 * - ZooKeeper deletes a session's ephemeral nodes when the session expires; the adapter keeps
 *   the ephemeral nodes it was asked to own and re-creates them in the next session, so that a
 *   broker or consumer that lost its session re-appears by itself;
 * - errors become {@link ZookeeperError} with ZooKeeper's error name, and "no node" becomes a
 *   plain `undefined`/`false` where that is an ordinary answer.
 *
 * All data is UTF-8 text (MetaQ stores only strings in ZooKeeper).
 */
import type { ZookeeperError } from '../common/errors.js';

/** The connection state of a {@link ZkClient}. */
export type ZkConnectionState =
  /** Not connected yet, or connection lost; the client keeps trying. The session may still be alive. */
  | 'disconnected'
  /** Connected, session alive. */
  | 'connected'
  /** Closed by `close()`. */
  | 'closed';

/** Events of a {@link ZkClient}. */
export interface ZkClientEvents {
  /** Connected (first connection, or reconnected within the same session). */
  connected: { readonly sessionId: string };
  /** The connection was lost; the session may survive if it comes back within the session timeout. */
  disconnected: Record<string, never>;
  /**
   * The session expired: ZooKeeper deleted its ephemeral nodes. The adapter opens a new session
   * on its own; `session` follows once it is established and the owned ephemerals are re-created.
   */
  expired: { readonly sessionId: string };
  /**
   * A new session is established (after the first connection and after every expiry), owned
   * ephemeral nodes were re-created and watches re-armed. Listeners that keep state derived
   * from ZooKeeper should re-read it here.
   */
  session: { readonly sessionId: string; readonly recreated: readonly string[]; readonly conflicts: readonly string[] };
}

/** A znode's data and the facts of its stat that metaq uses. */
export interface ZkNode {
  /** The data as UTF-8 text (`''` for a node without data). */
  readonly data: string;
  /** Session id (hex) of the owner of an ephemeral node; `undefined` for a persistent node. */
  readonly ephemeralOwner: string | undefined;
  /** Data version (for conditional updates). */
  readonly version: number;
}

/** How {@link ZkClient.create} creates a node. */
export interface ZkCreateOptions {
  /** Default `persistent`. */
  readonly mode?: 'persistent' | 'ephemeral';
  /** Create missing parents (persistent, without data). Default true. */
  readonly parents?: boolean;
}

/** The outcome of {@link ZkClient.create}. */
export type ZkCreateResult = 'created' | 'exists';

/** Removes a listener or watch. */
export type Unsubscribe = () => void;

/**
 * A ZooKeeper session, kept alive across connection losses and replaced after expiry.
 *
 * Every operation waits for a connection (up to the client's connection timeout) and then
 * rejects with a retriable {@link ZookeeperError} (`zkCode` `TIMEOUT` or `CONNECTION_LOSS`).
 */
export interface ZkClient {
  /** The current connection state. */
  readonly state: ZkConnectionState;
  /** The current session id in hex, or `undefined` before the first connection. */
  readonly sessionId: string | undefined;
  /** The connect string this client uses (for logs and messages). */
  readonly connectString: string;

  /** Resolves once connected; rejects with a retriable `ZookeeperError` (`TIMEOUT`) after `timeoutMs`. */
  waitConnected(timeoutMs?: number): Promise<void>;

  /**
   * Creates a node. `'exists'` when it already exists (its data is then left unchanged).
   * An ephemeral node created here belongs to the current session only; see
   * {@link ownEphemeral} for one that outlives session expiry.
   */
  create(path: string, data: string, options?: ZkCreateOptions): Promise<ZkCreateResult>;
  /** Creates `path` and its parents as persistent nodes without data if missing. */
  ensurePath(path: string): Promise<void>;
  /** The node's data and stat, or `undefined` when it does not exist. */
  get(path: string): Promise<ZkNode | undefined>;
  /**
   * Sets a node's data; creates it (persistent, with parents) when it does not exist.
   * With `version`, only if the node's version still matches (false otherwise).
   */
  set(path: string, data: string, version?: number): Promise<boolean>;
  /**
   * Like an unconditional {@link set}, but only within the session `sessionId` (hex, as
   * {@link sessionId} gives it): when that session has ended (expired, closed or replaced)
   * before the write is applied, rejects with `SESSION_EXPIRED` and writes nothing. Never
   * retried into another session.
   *
   * Why: ZooKeeper applies a session's writes before it ends the session (and with it the
   * session's ephemeral nodes), so a write made this way happens while the writer still holds
   * whatever it holds through ephemeral nodes, such as a consumer's partition owner nodes. That
   * fences offset commits: a member whose session expired (e.g. a paused process) cannot write
   * its stale positions over the commits of the members that took its partitions over.
   */
  setInSession(path: string, data: string, sessionId: string): Promise<void>;
  /** The names of the node's children (unsorted), or `undefined` when the node does not exist. */
  children(path: string): Promise<string[] | undefined>;
  /** Whether the node exists. */
  exists(path: string): Promise<boolean>;
  /** Deletes a node; false when it did not exist. Fails with `NOT_EMPTY` for a node with children. */
  remove(path: string): Promise<boolean>;
  /** Deletes a node and everything below it; false when it did not exist. */
  removeRecursive(path: string): Promise<boolean>;

  /**
   * An ephemeral node this client owns for as long as it lives: created now (parents too), and
   * re-created in every new session after an expiry (reported in the `session` event; a node
   * that another session created meanwhile is reported in `conflicts` and left alone).
   *
   * If the node already exists and belongs to another, still-live session (a fast restart of
   * the same broker id), the promise waits until that node disappears, up to `waitMs`
   * (default: the session timeout plus a margin), then rejects with `NODE_EXISTS`. A node of
   * this very session is taken over (its data updated).
   */
  ownEphemeral(path: string, data: string, options?: { readonly waitMs?: number }): Promise<void>;
  /** Updates the data of an owned ephemeral node (and what is re-created after expiry). */
  updateEphemeral(path: string, data: string): Promise<void>;
  /** Deletes an owned ephemeral node and stops re-creating it. False when it was not there. */
  releaseEphemeral(path: string): Promise<boolean>;

  /**
   * Calls `listener` whenever the children of `path` may have changed: child added or removed,
   * the node created or deleted, and after every new session (changes may have been missed).
   * The watch is re-armed by itself until the returned function is called. Listeners re-read
   * what they need; events carry no data (ZooKeeper's watches do not either).
   */
  watchChildren(path: string, listener: () => void): Unsubscribe;
  /** Same as {@link watchChildren} for the node's data (changed, created, deleted). */
  watchData(path: string, listener: () => void): Unsubscribe;

  /** Subscribes to a connection event. */
  on<K extends keyof ZkClientEvents>(event: K, listener: (payload: ZkClientEvents[K]) => void): Unsubscribe;

  /**
   * Closes the session: ZooKeeper deletes its ephemeral nodes at once. Idempotent. Pending
   * operations reject with `ZookeeperError` (`CLOSED`).
   */
  close(): Promise<void>;
}

/** Options of `connectZookeeper()`. */
export interface ZkClientOptions {
  /** `host:port[,host:port...][/chroot]`. */
  readonly connectString: string;
  /** Session timeout asked of the server in ms (MetaQ's `zkSessionTimeoutMs`, default 30 000). */
  readonly sessionTimeoutMs?: number;
  /** How long an operation waits for a connection in ms (MetaQ's `zkConnectionTimeoutMs`, default 30 000). */
  readonly connectionTimeoutMs?: number;
}

/** Re-exported for implementers. */
export type { ZookeeperError };
