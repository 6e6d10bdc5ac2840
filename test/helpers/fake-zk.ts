/**
 * An in-memory ZooKeeper ensemble for unit tests: one shared znode tree, any number of
 * {@link ZkClient}s each with its own session, and controls to make the things happen that a
 * real ensemble does to its clients (connection loss, session expiry, a process dying).
 *
 * It implements the whole `ZkClient` contract (src/zk/zk-client.ts), and the same conformance
 * suite (test/helpers/zk-conformance.ts) runs against it and against a real ZooKeeper, so code
 * tested against the fake behaves the same on a real ensemble.
 *
 * Deterministic: server-side operations are synchronous, watch listeners run in a microtask
 * (coalesced per client, like ZooKeeper's one-shot watches), and the only timers are the
 * connection timeout of an operation waiting while its client is disconnected and the `waitMs`
 * of an `ownEphemeral` waiting for another session's node.
 *
 * @example
 * ```ts
 * const zk = new FakeZookeeper();
 * const a = zk.client(), b = zk.client();
 * await a.ownEphemeral('/meta/brokers/ids/1/master', 'meta://h:8123');
 * await zk.expireSession(a);          // ephemerals gone, then re-created in a's new session
 * zk.disconnect(b);                   // b's operations now wait (TIMEOUT after connectionTimeoutMs)
 * await zk.reconnect(b);
 * assert.deepEqual(zk.dump(), new Map([...]));
 * ```
 */
import { setImmediate as immediate } from 'node:timers/promises';
import { ZookeeperError } from '../../src/common/errors.js';
import type { Unsubscribe, ZkClient, ZkClientEvents, ZkConnectionState, ZkCreateOptions, ZkCreateResult, ZkNode } from '../../src/zk/zk-client.js';
import { closedError, connectTimeoutError, ephemeralTakenError, notOwnedError, sessionEndedError } from '../../src/zk/zk-errors.js';
import { ZkEventHub } from '../../src/zk/zk-events.js';
import { ancestorPaths, baseName, checkPath, childPath, parentPath } from '../../src/zk/zk-path.js';

/** Options of a {@link FakeZookeeper} and of its clients. */
export interface FakeZookeeperOptions {
  /** Reported as the clients' `connectString`. Default `fake-zk:2181`. */
  readonly connectString?: string;
  /** Session timeout in ms; only used for `ownEphemeral`'s default wait (plus 5 s). Default 30 000. */
  readonly sessionTimeoutMs?: number;
  /** How long an operation of a disconnected client waits before `TIMEOUT`. Default 30 000. */
  readonly connectionTimeoutMs?: number;
}

/** Options of {@link FakeZookeeper.client}. */
export interface FakeClientOptions extends Omit<FakeZookeeperOptions, 'connectString'> {
  /** Start disconnected (as with an unreachable ensemble) until {@link FakeZookeeper.reconnect}. Default false. */
  readonly startDisconnected?: boolean;
}

interface TreeNode {
  data: string;
  version: number;
  ephemeralOwner: string | undefined;
  readonly children: Set<string>;
}

type ChangeKind = 'created' | 'deleted' | 'data';
type ChangeListener = (path: string, kind: ChangeKind) => void;

/** The server side: the tree and the set of live sessions. All operations are synchronous. */
class FakeTree {
  readonly #nodes = new Map<string, TreeNode>([['/', { data: '', version: 0, ephemeralOwner: undefined, children: new Set() }]]);
  readonly #alive = new Set<string>();
  readonly #listeners = new Set<ChangeListener>();
  #nextSession = 1;

  openSession(): string {
    const id = `f00d${(this.#nextSession++).toString(16).padStart(12, '0')}`;
    this.#alive.add(id);
    return id;
  }

  isAlive(sessionId: string): boolean {
    return this.#alive.has(sessionId);
  }

  /** Ends a session (close or expiry): its ephemeral nodes are deleted, watchers told. */
  endSession(sessionId: string): void {
    if (!this.#alive.delete(sessionId)) return;
    for (const [path, node] of [...this.#nodes]) {
      if (node.ephemeralOwner === sessionId && this.#nodes.has(path)) this.#delete(path);
    }
  }

  onChange(listener: ChangeListener): Unsubscribe {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  create(sessionId: string, path: string, data: string, ephemeral: boolean, parents: boolean): ZkCreateResult {
    if (this.#nodes.has(path)) return 'exists';
    if (parents) for (const ancestor of ancestorPaths(path)) if (!this.#nodes.has(ancestor)) this.#insert(sessionId, ancestor, '', false);
    this.#insert(sessionId, path, data, ephemeral);
    return 'created';
  }

  get(path: string): ZkNode | undefined {
    const node = this.#nodes.get(path);
    return node === undefined ? undefined : { data: node.data, ephemeralOwner: node.ephemeralOwner, version: node.version };
  }

  /** ZooKeeper's setData: `NO_NODE` when missing, false on a version mismatch. */
  setData(path: string, data: string, version?: number): boolean {
    const node = this.#nodes.get(path);
    if (node === undefined) throw new ZookeeperError('NO_NODE', `set ${path}: no such node`, { path });
    if (version !== undefined && version !== node.version) return false;
    node.data = data;
    node.version++;
    this.#emit(path, 'data');
    return true;
  }

  children(path: string): string[] | undefined {
    const node = this.#nodes.get(path);
    return node === undefined ? undefined : [...node.children];
  }

  remove(path: string): boolean {
    const node = this.#nodes.get(path);
    if (node === undefined) return false;
    if (node.children.size > 0) throw new ZookeeperError('NOT_EMPTY', `remove ${path}: the node has children`, { path });
    this.#delete(path);
    return true;
  }

  removeRecursive(path: string): boolean {
    const node = this.#nodes.get(path);
    if (node === undefined) return false;
    for (const child of [...node.children]) this.removeRecursive(childPath(path, child));
    if (path !== '/') this.#delete(path);
    return true;
  }

  dump(): Map<string, string> {
    const paths = [...this.#nodes.keys()].filter((path) => path !== '/').sort();
    return new Map(paths.map((path) => [path, this.#nodes.get(path)?.data ?? '']));
  }

  #insert(sessionId: string, path: string, data: string, ephemeral: boolean): void {
    const parent = parentPath(path) ?? '/';
    const parentNode = this.#nodes.get(parent);
    if (parentNode === undefined) throw new ZookeeperError('NO_NODE', `create ${path}: parent ${parent} does not exist`, { path });
    if (parentNode.ephemeralOwner !== undefined) {
      throw new ZookeeperError('NO_CHILDREN_FOR_EPHEMERALS', `create ${path}: parent ${parent} is ephemeral and cannot have children`, { path });
    }
    this.#nodes.set(path, { data, version: 0, ephemeralOwner: ephemeral ? sessionId : undefined, children: new Set() });
    parentNode.children.add(baseName(path));
    this.#emit(path, 'created');
  }

  #delete(path: string): void {
    this.#nodes.delete(path);
    this.#nodes.get(parentPath(path) ?? '/')?.children.delete(baseName(path));
    this.#emit(path, 'deleted');
  }

  #emit(path: string, kind: ChangeKind): void {
    for (const listener of [...this.#listeners]) listener(path, kind);
  }
}

/** One client (one session at a time) of a {@link FakeZookeeper}. */
class FakeZkClient implements ZkClient {
  readonly connectString: string;
  readonly #tree: FakeTree;
  readonly #events = new ZkEventHub();
  readonly #sessionTimeoutMs: number;
  readonly #connectionTimeoutMs: number;
  #state: ZkConnectionState = 'disconnected';
  #sessionId: string | undefined;
  /** Set by `crash()`: the process is gone, its session lingers until expired. */
  #crashed = false;
  /** True between an expiry and the next session: notifications of the dead session are dropped. */
  #expired = false;
  readonly #owned = new Map<string, string>();
  readonly #dataWatches = new Map<string, Set<() => void>>();
  readonly #childWatches = new Map<string, Set<() => void>>();
  /** Listeners due to fire; collected so that one burst of changes fires each listener once. */
  readonly #due = new Set<() => void>();
  #flushScheduled = false;
  /** Operations waiting for a connection, and `ownEphemeral` waits; rejected by close(). */
  readonly #waiters = new Set<(err: ZookeeperError) => void>();
  readonly #connectedWaiters = new Set<() => void>();
  readonly #unsubscribeTree: Unsubscribe;

  constructor(tree: FakeTree, connectString: string, options: FakeClientOptions) {
    this.#tree = tree;
    this.connectString = connectString;
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.#connectionTimeoutMs = options.connectionTimeoutMs ?? 30_000;
    this.#unsubscribeTree = tree.onChange((path, kind) => this.#onChange(path, kind));
    // Why a microtask: a real client connects asynchronously, so listeners subscribed right
    // after construction must still see the first `connected`/`session` events.
    if (options.startDisconnected !== true) queueMicrotask(() => this._reconnect());
  }

  get state(): ZkConnectionState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  waitConnected(timeoutMs = this.#connectionTimeoutMs): Promise<void> {
    return this.#ready('waitConnected', undefined, timeoutMs);
  }

  async create(path: string, data: string, options: ZkCreateOptions = {}): Promise<ZkCreateResult> {
    checkPath(path);
    const session = await this.#session('create', path);
    return this.#tree.create(session, path, data, options.mode === 'ephemeral', options.parents ?? true);
  }

  async ensurePath(path: string): Promise<void> {
    checkPath(path);
    const session = await this.#session('ensurePath', path);
    if (path !== '/') this.#tree.create(session, path, '', false, true);
  }

  async get(path: string): Promise<ZkNode | undefined> {
    checkPath(path);
    await this.#session('get', path);
    return this.#tree.get(path);
  }

  async set(path: string, data: string, version?: number): Promise<boolean> {
    checkPath(path);
    const session = await this.#session('set', path);
    if (this.#tree.get(path) === undefined) {
      if (version !== undefined) return false;
      this.#tree.create(session, path, data, false, true);
      return true;
    }
    return this.#tree.setData(path, data, version);
  }

  async setInSession(path: string, data: string, sessionId: string): Promise<void> {
    checkPath(path);
    const session = await this.#session('set', path);
    if (session !== sessionId) throw sessionEndedError(sessionId, session, 'set', path);
    if (this.#tree.get(path) === undefined) this.#tree.create(session, path, data, false, true);
    else this.#tree.setData(path, data, undefined);
  }

  async children(path: string): Promise<string[] | undefined> {
    checkPath(path);
    await this.#session('children', path);
    return this.#tree.children(path);
  }

  async exists(path: string): Promise<boolean> {
    checkPath(path);
    await this.#session('exists', path);
    return this.#tree.get(path) !== undefined;
  }

  async remove(path: string): Promise<boolean> {
    checkPath(path);
    await this.#session('remove', path);
    return this.#tree.remove(path);
  }

  async removeRecursive(path: string): Promise<boolean> {
    checkPath(path);
    await this.#session('removeRecursive', path);
    return this.#tree.removeRecursive(path);
  }

  async ownEphemeral(path: string, data: string, options: { readonly waitMs?: number } = {}): Promise<void> {
    checkPath(path);
    const waitMs = options.waitMs ?? this.#sessionTimeoutMs + 5000;
    const deadline = Date.now() + waitMs;
    for (;;) {
      const session = await this.#session('ownEphemeral', path);
      if (this.#tree.create(session, path, data, true, true) === 'created') {
        this.#owned.set(path, data);
        return;
      }
      const node = this.#tree.get(path);
      if (node === undefined) continue;
      if (node.ephemeralOwner === session) {
        this.#tree.setData(path, data);
        this.#owned.set(path, data);
        return;
      }
      if (node.ephemeralOwner === undefined) throw ephemeralTakenError(path, undefined);
      await this.#waitGone(path, node.ephemeralOwner, deadline, waitMs);
    }
  }

  async updateEphemeral(path: string, data: string): Promise<void> {
    checkPath(path);
    if (!this.#owned.has(path)) throw notOwnedError(path);
    this.#owned.set(path, data);
    const session = await this.#session('updateEphemeral', path);
    const node = this.#tree.get(path);
    if (node === undefined) {
      this.#tree.create(session, path, data, true, true);
    } else if (node.ephemeralOwner === session) {
      this.#tree.setData(path, data);
    } else {
      this.#owned.delete(path);
      throw ephemeralTakenError(path, node.ephemeralOwner);
    }
  }

  async releaseEphemeral(path: string): Promise<boolean> {
    checkPath(path);
    this.#owned.delete(path);
    const session = await this.#session('releaseEphemeral', path);
    if (this.#tree.get(path)?.ephemeralOwner !== session) return false;
    return this.#tree.remove(path);
  }

  watchChildren(path: string, listener: () => void): Unsubscribe {
    return this.#watch(this.#childWatches, path, listener);
  }

  watchData(path: string, listener: () => void): Unsubscribe {
    return this.#watch(this.#dataWatches, path, listener);
  }

  on<K extends keyof ZkClientEvents>(event: K, listener: (payload: ZkClientEvents[K]) => void): Unsubscribe {
    return this.#events.on(event, listener);
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#stop('close');
    if (this.#sessionId !== undefined) this.#tree.endSession(this.#sessionId);
  }

  // ---- controls, called by FakeZookeeper ----

  /** The connection drops; the session lives on in the tree. */
  _disconnect(): void {
    if (this.#state !== 'connected') return;
    this.#state = 'disconnected';
    this.#events.emit('disconnected', {});
  }

  /** The connection comes back: same session if still alive, else expired + new session. */
  _reconnect(): void {
    if (this.#state !== 'disconnected' || this._connectionDown) return;
    if (this.#sessionId !== undefined && this.#tree.isAlive(this.#sessionId)) {
      this.#connected();
      // Changes seen while disconnected were queued; deliver them now (the real server
      // re-sends triggered watches on reconnection within the same session).
      this.#scheduleFlush();
      return;
    }
    if (this.#sessionId !== undefined) this._expired();
    else this.#newSession();
  }

  /** The session ended on the server (the tree already deleted its ephemerals). */
  _expired(): void {
    if (this.#state === 'closed' || this.#sessionId === undefined) return;
    this.#expired = true;
    this.#due.clear();
    if (this.#state === 'connected') {
      this.#state = 'disconnected';
      this.#events.emit('disconnected', {});
    }
    if (this._connectionDown) return; // learnt on reconnection, as with a real client
    this.#events.emit('expired', { sessionId: this.#sessionId });
    this.#newSession();
  }

  /** Set while the test holds the connection down (disconnect() without reconnect()). */
  _connectionDown = false;

  /** The process died: nothing more from this client; its session lingers until expired. */
  _crash(): void {
    if (this.#state === 'closed') return;
    this.#crashed = true;
    this.#stop('crash');
  }

  get _crashed(): boolean {
    return this.#crashed;
  }

  // ---- internals ----

  #newSession(): void {
    this.#sessionId = this.#tree.openSession();
    this.#expired = false;
    const recreated: string[] = [];
    const conflicts: string[] = [];
    for (const [path, data] of [...this.#owned]) {
      if (this.#tree.create(this.#sessionId, path, data, true, true) === 'created') {
        recreated.push(path);
      } else {
        // Another session holds it now (e.g. a second instance took over): leave it alone and
        // stop claiming it, as the real adapter does.
        conflicts.push(path);
        this.#owned.delete(path);
      }
    }
    this.#connected();
    this.#events.emit('session', { sessionId: this.#sessionId, recreated, conflicts });
    // Changes may have been missed while there was no session: every listener re-reads.
    for (const set of [...this.#childWatches.values(), ...this.#dataWatches.values()]) for (const listener of set) this.#due.add(listener);
    this.#scheduleFlush();
  }

  #connected(): void {
    this.#state = 'connected';
    for (const resolve of [...this.#connectedWaiters]) resolve();
    if (this.#sessionId !== undefined) this.#events.emit('connected', { sessionId: this.#sessionId });
  }

  #stop(what: string): void {
    this.#state = 'closed';
    this.#unsubscribeTree();
    const error = closedError(this.connectString, what);
    for (const reject of [...this.#waiters]) reject(error);
    this.#waiters.clear();
    this.#connectedWaiters.clear();
    this.#childWatches.clear();
    this.#dataWatches.clear();
    this.#due.clear();
    this.#owned.clear();
    this.#events.clear();
  }

  /** Waits for a connection and returns the current session id. */
  async #session(what: string, path: string): Promise<string> {
    await this.#ready(what, path, this.#connectionTimeoutMs);
    if (this.#sessionId === undefined) throw closedError(this.connectString, what, path);
    return this.#sessionId;
  }

  #ready(what: string, path: string | undefined, timeoutMs: number): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(closedError(this.connectString, what, path));
    if (this.#state === 'connected') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(fail);
        this.#connectedWaiters.delete(ok);
      };
      const ok = (): void => {
        done();
        resolve();
      };
      const fail = (err: ZookeeperError): void => {
        done();
        reject(err);
      };
      const timer = setTimeout(() => fail(connectTimeoutError(this.connectString, timeoutMs, what, path)), timeoutMs);
      this.#waiters.add(fail);
      this.#connectedWaiters.add(ok);
    });
  }

  /** Waits until `path` is deleted, or rejects `NODE_EXISTS` at `deadline`. */
  #waitGone(path: string, owner: string, deadline: number, waitMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        this.#waiters.delete(fail);
      };
      const fail = (err: ZookeeperError): void => {
        done();
        reject(err);
      };
      const unsubscribe = this.#tree.onChange((changed, kind) => {
        if (changed === path && kind === 'deleted') {
          done();
          resolve();
        }
      });
      const timer = setTimeout(() => fail(ephemeralTakenError(path, owner, waitMs)), Math.max(0, deadline - Date.now()));
      this.#waiters.add(fail);
    });
  }

  #watch(map: Map<string, Set<() => void>>, path: string, listener: () => void): Unsubscribe {
    checkPath(path);
    if (this.#state === 'closed') return () => undefined;
    // Wrapped so that the same function registered twice is two independent subscriptions.
    const entry = (): void => listener();
    let set = map.get(path);
    if (set === undefined) map.set(path, (set = new Set()));
    set.add(entry);
    return () => {
      set.delete(entry);
      this.#due.delete(entry);
      if (set.size === 0 && map.get(path) === set) map.delete(path);
    };
  }

  #onChange(path: string, kind: ChangeKind): void {
    if (this.#expired || this.#crashed) return;
    const add = (set: Set<() => void> | undefined): void => {
      if (set !== undefined) for (const listener of set) this.#due.add(listener);
    };
    add(this.#dataWatches.get(path));
    if (kind !== 'data') {
      add(this.#childWatches.get(path));
      const parent = parentPath(path);
      if (parent !== undefined) add(this.#childWatches.get(parent));
    }
    if (this.#state === 'connected') this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#due.size === 0) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      if (this.#state !== 'connected') return;
      const due = [...this.#due];
      this.#due.clear();
      for (const listener of due) {
        try {
          listener();
        } catch {
          // A throwing listener must not stop the others (the real adapter logs it).
        }
      }
    });
  }
}

/**
 * An in-memory ZooKeeper ensemble. {@link client} hands out clients sharing one tree; the other
 * methods are test controls.
 */
export class FakeZookeeper {
  readonly connectString: string;
  readonly #options: FakeZookeeperOptions;
  readonly #tree = new FakeTree();
  readonly #clients = new Set<FakeZkClient>();

  constructor(options: FakeZookeeperOptions = {}) {
    this.#options = options;
    this.connectString = options.connectString ?? 'fake-zk:2181';
  }

  /** A new client with its own session; it connects in a microtask (unless `startDisconnected`). */
  client(options: FakeClientOptions = {}): ZkClient {
    const client = new FakeZkClient(this.#tree, this.connectString, { ...this.#options, ...options });
    if (options.startDisconnected === true) client._connectionDown = true;
    this.#clients.add(client);
    return client;
  }

  /**
   * Expires the client's session as the ensemble would: its ephemeral nodes are deleted (other
   * clients' watches fire), then the client emits `disconnected` (if connected) and `expired`,
   * opens a new session, re-creates its owned ephemerals and emits `connected` and `session`.
   * A disconnected client learns of the expiry when {@link reconnect}ed; a {@link crash}ed one
   * never does (this is how a dead process's session finally ends).
   * Resolves once the client's new session is established (at once if it cannot be now).
   */
  async expireSession(client: ZkClient): Promise<void> {
    const fake = this.#own(client);
    const sessionId = fake.sessionId;
    if (sessionId === undefined) return;
    this.#tree.endSession(sessionId);
    fake._expired();
    await this.flush();
  }

  /**
   * The client loses its connection (the session stays alive): it emits `disconnected`, its
   * operations wait (rejecting `TIMEOUT` after the connection timeout), watch notifications are
   * held back until {@link reconnect}.
   */
  disconnect(client: ZkClient): void {
    const fake = this.#own(client);
    fake._connectionDown = true;
    fake._disconnect();
  }

  /** Ends {@link disconnect} (or `startDisconnected`); resolves once the client is connected and notified. */
  async reconnect(client: ZkClient): Promise<void> {
    const fake = this.#own(client);
    fake._connectionDown = false;
    fake._reconnect();
    await this.flush();
  }

  /**
   * The client's process dies without closing (SIGKILL): the client stops (`state` `closed`,
   * pending operations reject `CLOSED`) but its session and ephemeral nodes stay until
   * {@link expireSession} is called for it, as on a real ensemble until the session timeout.
   */
  crash(client: ZkClient): void {
    this.#own(client)._crash();
  }

  /** Whether a session (hex id, as in `ZkNode.ephemeralOwner`) is alive. */
  isSessionAlive(sessionId: string): boolean {
    return this.#tree.isAlive(sessionId);
  }

  /** Every znode except `/`, sorted by path, with its data. */
  dump(): Map<string, string> {
    return this.#tree.dump();
  }

  /** Resolves after pending microtasks (connections, watch listeners) have run. */
  async flush(): Promise<void> {
    await immediate();
  }

  #own(client: ZkClient): FakeZkClient {
    if (!(client instanceof FakeZkClient) || !this.#clients.has(client)) throw new Error('not a client of this FakeZookeeper');
    return client;
  }
}
