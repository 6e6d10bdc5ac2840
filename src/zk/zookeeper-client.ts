/**
 * `connectZookeeper()`: the {@link ZkClient} over `node-zookeeper-client`.
 *
 * The library keeps reconnecting within a session by itself, but gives up for good when the
 * session expires, never times an operation out, and its watches fire once. This adapter:
 * - owns one library client per session and opens a new one after an expiry;
 * - gates every operation on "connected with an established session", bounded by the
 *   connection timeout, and retries idempotent ones after a connection loss;
 * - re-creates owned ephemeral nodes ({@link EphemeralRegistry}) and re-arms watches
 *   ({@link WatchRegistry}) in every new session before reporting it (`session` event).
 */
import { ZookeeperError } from '../common/errors.js';
import { componentLogger, type Logger } from '../common/logger.js';
import { watchConnection } from './connection-watchdog.js';
import { EphemeralRegistry, type RecreateOutcome } from './ephemeral-registry.js';
import * as zk from './library.js';
import type { LibraryClient } from './library.js';
import { armWatch, createNode, MAX_RACE_ATTEMPTS, removeTree } from './node-ops.js';
import { WatchRegistry, type WatchKind } from './watch-registry.js';
import type { Unsubscribe, ZkClient, ZkClientEvents, ZkClientOptions, ZkConnectionState, ZkCreateOptions, ZkCreateResult, ZkNode } from './zk-client.js';
import { answerTimeoutError, closedError, connectTimeoutError, ephemeralTakenError, notOwnedError, sessionEndedError } from './zk-errors.js';
import { ZkEventHub } from './zk-events.js';
import { checkPath } from './zk-path.js';

const DEFAULT_TIMEOUT_MS = 30_000;
/** Upper bound of the library's random pause between two rounds of connection attempts. */
const SPIN_DELAY_MS = 500;
/** `ownEphemeral` re-checks this often in case a watch notification was lost to a reconnection. */
const GONE_POLL_MS = 1000;
/** How long `close()` waits for the server to confirm the end of the session. */
const CLOSE_WAIT_MS = 3000;

/** The library client an operation runs on and the session it had. */
interface Connection {
  readonly lib: LibraryClient;
  readonly sessionId: string;
}

interface Waiter {
  /** Resolve only on a connection newer than this epoch. */
  readonly afterEpoch: number;
  readonly resolve: (connection: Connection) => void;
  readonly reject: (err: ZookeeperError) => void;
}

/**
 * Sets a node's data (only at `version` when given: false on a mismatch or a missing node),
 * creating it with its parents when missing and unconditional.
 */
async function setOrCreate(c: Connection, path: string, data: string, version: number | undefined): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await zk.setData(c.lib, path, data, version ?? -1);
      return true;
    } catch (err) {
      const code = zk.libraryCode(err);
      if (code === 'BAD_VERSION') return false;
      if (code !== 'NO_NODE' || attempt >= MAX_RACE_ATTEMPTS) throw err;
      if (version !== undefined) return false;
    }
    if ((await createNode(c.lib, path, data, false, true)) === 'created') return true;
  }
}

/**
 * Connects to a ZooKeeper ensemble. Returns at once and never throws for an unreachable
 * ensemble: the client keeps trying, operations wait up to `connectionTimeoutMs` and then reject
 * with a retriable `ZookeeperError` (`TIMEOUT`).
 *
 * @throws ZookeeperError `BAD_ARGUMENTS` for a malformed connect string or option.
 */
export function connectZookeeper(options: ZkClientOptions): ZkClient {
  return new ZookeeperClient(options);
}

/** The library's session id and password of a client made by {@link connectZookeeper}. */
export interface ZkSessionCredentials {
  /** 8 bytes. */
  readonly sessionId: Buffer;
  /** 16 bytes. */
  readonly password: Buffer;
}

/**
 * The current session's id and password, `undefined` while not connected or for a client not
 * made by {@link connectZookeeper}. For tests and tools that must force a session to expire
 * (connecting with the same credentials and closing, as ZooKeeper's own tests do).
 */
export function zkSessionCredentials(client: ZkClient): ZkSessionCredentials | undefined {
  return client instanceof ZookeeperClient ? client.credentials() : undefined;
}

function checkTimeout(name: string, value: number | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(value) || value <= 0) throw new ZookeeperError('BAD_ARGUMENTS', `${name} must be a positive integer (ms), got ${value}`);
  return value;
}

class ZookeeperClient implements ZkClient {
  readonly connectString: string;
  readonly #sessionTimeoutMs: number;
  readonly #connectionTimeoutMs: number;
  readonly #log: Logger;
  readonly #events: ZkEventHub;
  readonly #watches: WatchRegistry;
  readonly #ephemerals = new EphemeralRegistry();
  #state: ZkConnectionState = 'disconnected';
  #sessionId: string | undefined;
  #lib: LibraryClient | undefined;
  /** Stops the {@link watchConnection} watchdog of {@link #lib}. */
  #stopWatchdog: () => void = () => undefined;
  /** Incremented for every library client opened (and on close): events of older ones are ignored. */
  #generation = 0;
  /** The session the current library client connected with, and whether it is fully set up. */
  #libSession: string | undefined;
  #established = false;
  #establishing = false;
  #establishAgain = false;
  /** Incremented on every transition to `connected`. */
  #epoch = 0;
  readonly #waiters = new Set<Waiter>();
  /** Long waits (`ownEphemeral`) that `close()` must end. */
  readonly #aborts = new Set<(err: ZookeeperError) => void>();

  constructor(options: ZkClientOptions) {
    this.connectString = options.connectString;
    this.#sessionTimeoutMs = checkTimeout('sessionTimeoutMs', options.sessionTimeoutMs);
    this.#connectionTimeoutMs = checkTimeout('connectionTimeoutMs', options.connectionTimeoutMs);
    this.#log = componentLogger('zk', { connectString: options.connectString });
    this.#events = new ZkEventHub(this.#log);
    this.#watches = new WatchRegistry((kind, path, fired) => {
      const lib = this.#lib;
      return lib === undefined ? Promise.reject(closedError(this.connectString, 'watch', path)) : armWatch(lib, kind, path, fired);
    }, this.#log);
    this.#open();
  }

  get state(): ZkConnectionState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** See {@link zkSessionCredentials}. */
  credentials(): ZkSessionCredentials | undefined {
    const lib = this.#lib;
    if (lib === undefined || this.#state !== 'connected') return undefined;
    return { sessionId: lib.getSessionId(), password: lib.getSessionPassword() };
  }

  async waitConnected(timeoutMs = this.#connectionTimeoutMs): Promise<void> {
    await this.#ready('waitConnected', undefined, Date.now() + timeoutMs, timeoutMs, -1);
  }

  async create(path: string, data: string, options: ZkCreateOptions = {}): Promise<ZkCreateResult> {
    checkPath(path);
    return this.#run('create', path, true, (c) => createNode(c.lib, path, data, options.mode === 'ephemeral', options.parents ?? true));
  }

  async ensurePath(path: string): Promise<void> {
    checkPath(path);
    await this.#run('ensurePath', path, true, async (c) => (path === '/' ? 'exists' : createNode(c.lib, path, '', false, true)));
  }

  async get(path: string): Promise<ZkNode | undefined> {
    checkPath(path);
    return this.#run('get', path, true, async (c) => {
      try {
        const { data, stat } = await zk.getData(c.lib, path);
        return { data, ephemeralOwner: zk.ownerOf(stat), version: stat.version };
      } catch (err) {
        if (zk.libraryCode(err) === 'NO_NODE') return undefined;
        throw err;
      }
    });
  }

  async set(path: string, data: string, version?: number): Promise<boolean> {
    checkPath(path);
    // A conditional set is not retried after a connection loss: it may have been applied, and
    // the retry would then report a version mismatch for our own write.
    return this.#run('set', path, version === undefined, (c) => setOrCreate(c, path, data, version));
  }

  async setInSession(path: string, data: string, sessionId: string): Promise<void> {
    checkPath(path);
    await this.#run('set', path, true, async (c) => {
      // Checked on every attempt: the retry after a connection loss may be in a new session.
      // (A request of the ended session itself is refused by the server.)
      if (c.sessionId !== sessionId) throw sessionEndedError(sessionId, c.sessionId, 'set', path);
      await setOrCreate(c, path, data, undefined);
    });
  }

  async children(path: string): Promise<string[] | undefined> {
    checkPath(path);
    return this.#run('children', path, true, async (c) => {
      try {
        return await zk.getChildren(c.lib, path);
      } catch (err) {
        if (zk.libraryCode(err) === 'NO_NODE') return undefined;
        throw err;
      }
    });
  }

  async exists(path: string): Promise<boolean> {
    checkPath(path);
    return this.#run('exists', path, true, async (c) => (await zk.exists(c.lib, path)) !== null);
  }

  async remove(path: string): Promise<boolean> {
    checkPath(path);
    // Not retried: a lost delete may have been applied, and the retry would answer "did not exist".
    return this.#run('remove', path, false, (c) => zk.removeIfPresent(c.lib, path));
  }

  async removeRecursive(path: string): Promise<boolean> {
    checkPath(path);
    return this.#run('removeRecursive', path, true, (c) => removeTree(c.lib, path));
  }

  async ownEphemeral(path: string, data: string, options: { readonly waitMs?: number } = {}): Promise<void> {
    checkPath(path);
    const waitMs = options.waitMs ?? this.#sessionTimeoutMs + 5000;
    const deadline = Date.now() + waitMs;
    let logged = false;
    for (;;) {
      const found = await this.#run('ownEphemeral', path, true, async (c) => {
        if ((await createNode(c.lib, path, data, true, true)) === 'created') return { mine: true, owner: c.sessionId };
        const stat = await zk.exists(c.lib, path);
        if (stat === null) return undefined; // deleted meanwhile: try again
        const owner = zk.ownerOf(stat);
        // Ours already (an earlier create whose answer was lost, or a second call): take it over.
        if (owner === c.sessionId) await zk.setData(c.lib, path, data, -1);
        return { mine: owner === c.sessionId, owner };
      });
      if (found === undefined) continue;
      if (found.mine) {
        this.#ephemerals.set(path, data);
        this.#log.debug({ path }, 'owning ephemeral node');
        return;
      }
      if (found.owner === undefined) throw ephemeralTakenError(path, undefined);
      if (!logged) {
        logged = true;
        this.#log.warn({ path, owner: found.owner, waitMs }, 'ephemeral node held by another session (a previous instance?); waiting for it to go away');
      }
      if (!(await this.#waitGone(path, deadline))) throw ephemeralTakenError(path, found.owner, waitMs);
    }
  }

  async updateEphemeral(path: string, data: string): Promise<void> {
    checkPath(path);
    if (!this.#ephemerals.has(path)) throw notOwnedError(path);
    this.#ephemerals.set(path, data);
    await this.#run('updateEphemeral', path, true, async (c) => {
      for (let attempt = 1; ; attempt++) {
        const stat = await zk.exists(c.lib, path);
        if (stat === null) {
          // Gone although owned (someone deleted it): put it back, it is ours.
          if ((await createNode(c.lib, path, data, true, true)) === 'created' || attempt >= MAX_RACE_ATTEMPTS) return;
          continue;
        }
        const owner = zk.ownerOf(stat);
        if (owner === c.sessionId) {
          await zk.setData(c.lib, path, data, -1);
          return;
        }
        this.#ephemerals.delete(path);
        throw ephemeralTakenError(path, owner);
      }
    });
  }

  async releaseEphemeral(path: string): Promise<boolean> {
    checkPath(path);
    this.#ephemerals.delete(path);
    return this.#run('releaseEphemeral', path, true, async (c) => {
      const stat = await zk.exists(c.lib, path);
      if (stat === null || zk.ownerOf(stat) !== c.sessionId) return false;
      return zk.removeIfPresent(c.lib, path);
    });
  }

  watchChildren(path: string, listener: () => void): Unsubscribe {
    return this.#watch('children', path, listener);
  }

  watchData(path: string, listener: () => void): Unsubscribe {
    return this.#watch('data', path, listener);
  }

  on<K extends keyof ZkClientEvents>(event: K, listener: (payload: ZkClientEvents[K]) => void): Unsubscribe {
    return this.#events.on(event, listener);
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#generation++;
    const error = closedError(this.connectString, 'operation');
    for (const waiter of [...this.#waiters]) waiter.reject(error);
    for (const abort of [...this.#aborts]) abort(error);
    this.#watches.clear();
    this.#ephemerals.clear();
    this.#events.clear();
    this.#stopWatchdog();
    const lib = this.#lib;
    this.#lib = undefined;
    if (lib === undefined) return;
    const connected = lib.getState() === zk.lib.State.SYNC_CONNECTED;
    await new Promise<void>((resolve) => {
      // Why wait: the server deletes the session's ephemeral nodes when it processes the close;
      // callers (tests, a broker handing over) expect them gone once close() resolves.
      if (connected) {
        const timer = setTimeout(resolve, CLOSE_WAIT_MS);
        lib.once('disconnected', () => {
          clearTimeout(timer);
          resolve();
        });
      }
      try {
        lib.close();
      } catch (err) {
        // The library throws when closed between two connection attempts (no socket yet).
        this.#log.debug({ err }, 'closing a ZooKeeper client that was not connected');
      }
      if (!connected) resolve();
    });
    this.#log.info({ sessionId: this.#sessionId }, 'ZooKeeper client closed');
  }

  // ---- connection and session ----

  /** Opens a library client (at start and after every expiry) and starts connecting. */
  #open(): void {
    const generation = ++this.#generation;
    this.#libSession = undefined;
    this.#established = false;
    this.#watches.canArm = false;
    this.#watches.resetArms();
    let lib: LibraryClient;
    try {
      lib = zk.lib.createClient(this.connectString, { sessionTimeout: this.#sessionTimeoutMs, spinDelay: SPIN_DELAY_MS, retries: 0 });
    } catch (err) {
      throw new ZookeeperError('BAD_ARGUMENTS', `invalid ZooKeeper connect string ${JSON.stringify(this.connectString)}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    lib.on('state', (state) => {
      if (generation === this.#generation && this.#state !== 'closed') this.#onLibraryState(lib, generation, state);
    });
    this.#lib = lib;
    this.#stopWatchdog();
    this.#stopWatchdog = watchConnection(lib, this.#sessionTimeoutMs, this.#log);
    lib.connect();
  }

  #onLibraryState(lib: LibraryClient, generation: number, state: zk.LibraryState): void {
    const { State } = zk.lib;
    if (state === State.SYNC_CONNECTED) {
      const sessionId = lib.getSessionId().toString('hex');
      if (sessionId !== this.#libSession) {
        this.#libSession = sessionId;
        this.#established = false;
      }
      if (!this.#established) {
        void this.#establish(lib, generation, sessionId);
      } else {
        // Same session: the library re-sent the armed watches (SetWatches); arm what failed.
        this.#log.info({ sessionId }, 'reconnected to ZooKeeper');
        this.#watches.canArm = true;
        this.#markConnected(sessionId);
        this.#watches.armMissing();
      }
    } else if (state === State.DISCONNECTED) {
      this.#watches.canArm = false;
      if (this.#state === 'connected') {
        this.#state = 'disconnected';
        this.#log.warn({ sessionId: this.#sessionId }, 'lost the ZooKeeper connection; reconnecting');
        this.#events.emit('disconnected', {});
      }
    } else if (state === State.EXPIRED) {
      const expired = this.#libSession ?? this.#sessionId ?? '';
      if (this.#state === 'connected') {
        this.#state = 'disconnected';
        this.#events.emit('disconnected', {});
      }
      this.#log.warn({ sessionId: expired }, 'ZooKeeper session expired; its ephemeral nodes are gone. Opening a new session');
      this.#events.emit('expired', { sessionId: expired });
      // The library gives up on an expired session for good: start over with a new client.
      if (this.#state !== 'closed') this.#open();
    } else if (state === State.AUTH_FAILED) {
      this.#log.error('ZooKeeper authentication failed');
    }
  }

  /**
   * Sets up a new session: re-creates the owned ephemerals, re-arms the watches, then reports
   * it. A connection loss midway leaves it unfinished; the next connection of the same session
   * (or the next session) starts it again.
   */
  async #establish(lib: LibraryClient, generation: number, sessionId: string): Promise<void> {
    if (this.#establishing) {
      this.#establishAgain = true;
      return;
    }
    this.#establishing = true;
    try {
      do {
        this.#establishAgain = false;
        if (generation !== this.#generation || this.#libSession !== sessionId || this.#established) return;
        try {
          const connection = { lib, sessionId };
          const report = await this.#ephemerals.recreateAll((path, data) => this.#recreate(connection, path, data));
          this.#watches.canArm = true;
          await this.#watches.armAll();
          if (generation !== this.#generation || this.#libSession !== sessionId) return;
          this.#established = true;
          this.#sessionId = sessionId;
          this.#log.info({ sessionId, recreated: report.recreated }, 'ZooKeeper session established');
          for (const path of report.conflicts) this.#log.warn({ path }, 'an owned ephemeral node is now held by another session; leaving it to that session');
          this.#markConnected(sessionId);
          this.#events.emit('session', { sessionId, recreated: report.recreated, conflicts: report.conflicts });
          // Changes may have been missed while there was no session: listeners re-read.
          this.#watches.notifyAll();
        } catch (err) {
          this.#log.warn({ err, sessionId }, 'could not set up the ZooKeeper session (connection lost?); retrying on the next connection');
        }
      } while (this.#establishAgain && lib.getState() === zk.lib.State.SYNC_CONNECTED);
    } finally {
      this.#establishing = false;
    }
  }

  async #recreate(connection: Connection, path: string, data: string): Promise<RecreateOutcome> {
    try {
      if ((await createNode(connection.lib, path, data, true, true)) === 'created') return 'created';
      const stat = await zk.exists(connection.lib, path);
      if (stat !== null && zk.ownerOf(stat) === connection.sessionId) {
        await zk.setData(connection.lib, path, data, -1); // made by an earlier, interrupted round
        return 'created';
      }
      if (stat === null) return (await createNode(connection.lib, path, data, true, true)) === 'created' ? 'created' : 'conflict';
      return 'conflict';
    } catch (err) {
      const error = zk.toZookeeperError(err, 're-create', path);
      if (error.retriable) throw error;
      this.#log.error({ err: error, path }, 'could not re-create an owned ephemeral node');
      return 'conflict';
    }
  }

  #markConnected(sessionId: string): void {
    this.#state = 'connected';
    this.#epoch++;
    const lib = this.#lib;
    if (lib !== undefined) {
      for (const waiter of [...this.#waiters]) if (this.#epoch > waiter.afterEpoch) waiter.resolve({ lib, sessionId });
    }
    this.#events.emit('connected', { sessionId });
  }

  // ---- operations ----

  /**
   * Resolves with the connection once connected with an established session (on a connection
   * newer than `afterEpoch`); rejects `TIMEOUT` at `deadline`, `CLOSED` on close.
   */
  #ready(what: string, path: string | undefined, deadline: number, timeoutMs: number, afterEpoch: number): Promise<Connection> {
    if (this.#state === 'closed') return Promise.reject(closedError(this.connectString, what, path));
    const lib = this.#lib;
    if (this.#state === 'connected' && this.#epoch > afterEpoch && lib !== undefined && this.#sessionId !== undefined) {
      return Promise.resolve({ lib, sessionId: this.#sessionId });
    }
    return new Promise<Connection>((resolve, reject) => {
      const waiter: Waiter = {
        afterEpoch,
        resolve: (connection) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(connection);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(() => waiter.reject(connectTimeoutError(this.connectString, timeoutMs, what, path)), Math.max(0, deadline - Date.now()));
      this.#waiters.add(waiter);
    });
  }

  /**
   * Runs an operation on a connection, within the connection timeout. With `retry`, a
   * connection loss or session expiry makes it wait for the next connection and run again.
   */
  async #run<T>(what: string, path: string, retry: boolean, operation: (connection: Connection) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#connectionTimeoutMs;
    let afterEpoch = -1;
    for (;;) {
      const connection = await this.#ready(what, path, deadline, this.#connectionTimeoutMs, afterEpoch);
      const epoch = this.#epoch;
      try {
        return await this.#withDeadline(operation(connection), deadline, what, path);
      } catch (err) {
        if (this.#state === 'closed') throw closedError(this.connectString, what, path);
        const error = zk.toZookeeperError(err, what, path);
        if (!retry || !error.retriable || error.zkCode === 'TIMEOUT') throw error;
        this.#log.debug({ err: error, path }, `${what} interrupted; retrying on the next connection`);
        afterEpoch = epoch;
      }
    }
  }

  /** Why: the library never times a request out, e.g. when the server hangs without closing. */
  #withDeadline<T>(promise: Promise<T>, deadline: number, what: string, path: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(answerTimeoutError(this.connectString, this.#connectionTimeoutMs, what, path)), Math.max(0, deadline - Date.now()));
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  #watch(kind: WatchKind, path: string, listener: () => void): Unsubscribe {
    checkPath(path);
    if (this.#state === 'closed') return () => undefined;
    return this.#watches.add(kind, path, listener);
  }

  /** Waits until `path` does not exist: true when gone, false at `deadline`. */
  #waitGone(path: string, deadline: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      let checking = false;
      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        unwatch();
        this.#aborts.delete(abort);
        settle();
      };
      const abort = (err: ZookeeperError): void => finish(() => reject(err));
      const check = (): void => {
        if (checking || settled) return;
        checking = true;
        this.exists(path).then(
          (found) => {
            checking = false;
            if (!found) finish(() => resolve(true));
          },
          () => {
            checking = false;
          },
        );
      };
      const unwatch = this.watchData(path, check);
      // Polling as well: a deletion while disconnected is only seen by a fresh read.
      const poll = setInterval(check, GONE_POLL_MS);
      const timer = setTimeout(() => finish(() => resolve(false)), Math.max(0, deadline - Date.now()));
      this.#aborts.add(abort);
      check();
    });
  }
}
