/**
 * Persistent watches over ZooKeeper's one-shot ones.
 *
 * Each (kind, path) has one entry with any number of listeners and at most one armed library
 * watch. When the library watch fires, the entry re-arms it *before* calling the listeners: the
 * re-arming request is written to the socket first, so any read a listener then makes is
 * ordered after it and no change can slip between the read and the new watch.
 *
 * Arming needs a connection. An arm that fails for a connection reason is retried after the next
 * reconnection ({@link WatchRegistry.armMissing}); a new session or library client invalidates
 * every arm ({@link WatchRegistry.resetArms}), and the adapter re-arms all and notifies every
 * listener, because changes may have been missed while there was no session.
 */
import type { Logger } from '../common/logger.js';
import type { Unsubscribe } from './zk-client.js';

/** What a watch is about: the node's children, or its data (and existence). */
export type WatchKind = 'children' | 'data';

/**
 * Sets one library watch on the current connection and calls `fired` once when it triggers.
 * Resolves when the watch is set, with `true` when arming itself saw a change that no watch
 * covered (the listeners must then be told); rejects (with a `ZookeeperError`) when it could
 * not be set.
 */
export type ArmWatch = (kind: WatchKind, path: string, fired: () => void) => Promise<boolean>;

interface Entry {
  readonly kind: WatchKind;
  readonly path: string;
  readonly listeners: Set<() => void>;
  /**
   * Identifies the library watch being armed or armed; `undefined` when there is none. Why a
   * token and not a flag: a notification can arrive before the arm request's promise settles
   * (the library processes the response and the event in one socket read), and a watch of a
   * previous session or connection must be told apart from the current one.
   */
  token: object | undefined;
}

/** The watches of one adapter; see the module comment. */
export class WatchRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #arm: ArmWatch;
  readonly #log: Logger;
  #canArm = false;

  constructor(arm: ArmWatch, log: Logger) {
    this.#arm = arm;
    this.#log = log;
  }

  /** Adds a listener; arms the entry's library watch now if connected and not armed yet. */
  add(kind: WatchKind, path: string, listener: () => void): Unsubscribe {
    const key = `${kind}:${path}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { kind, path, listeners: new Set(), token: undefined };
      this.#entries.set(key, entry);
    }
    // Wrapped so that one function subscribed twice makes two independent subscriptions.
    const wrapped = (): void => listener();
    entry.listeners.add(wrapped);
    if (this.#canArm && entry.token === undefined) void this.#armEntry(entry);
    const owner = entry;
    return () => {
      owner.listeners.delete(wrapped);
      // The library cannot cancel a watch: an armed entry stays until it fires and is then dropped.
      if (owner.listeners.size === 0 && owner.token === undefined && this.#entries.get(key) === owner) this.#entries.delete(key);
    };
  }

  /** Whether arming is possible (connected). Set false on disconnection, true once connected. */
  set canArm(value: boolean) {
    this.#canArm = value;
  }

  /** A new session or library client: every library watch is gone. */
  resetArms(): void {
    for (const [key, entry] of this.#entries) {
      entry.token = undefined;
      if (entry.listeners.size === 0) this.#entries.delete(key);
    }
  }

  /**
   * Arms every entry that has no library watch (after a new session: all of them).
   * @throws the first connection-type failure (`retriable`), so that a new session is not
   * reported while watches are missing; other failures are logged and left for later.
   */
  async armAll(): Promise<void> {
    const pending = [...this.#entries.values()].filter((entry) => entry.token === undefined).map((entry) => this.#armEntry(entry));
    const results = await Promise.all(pending);
    const failed = results.find((err) => err !== undefined && isRetriable(err));
    if (failed !== undefined) throw failed;
  }

  /** After a reconnection within the same session: arms what failed to arm, and tells its listeners. */
  armMissing(): void {
    for (const entry of [...this.#entries.values()]) {
      if (entry.token !== undefined || entry.listeners.size === 0) continue;
      // Why notify: the arm failed, so a change may have gone unseen since the listener last read.
      void this.#armEntry(entry, true);
    }
  }

  /** Calls every listener (after a new session: changes may have been missed). */
  notifyAll(): void {
    for (const entry of [...this.#entries.values()]) this.#notify(entry);
  }

  /** Forgets everything (close). */
  clear(): void {
    for (const entry of this.#entries.values()) entry.token = undefined;
    this.#entries.clear();
    this.#canArm = false;
  }

  /**
   * Arms one entry; resolves with the failure, if any (never rejects). Once armed, notifies the
   * listeners when arming saw an uncovered change, or in any case with `alwaysNotify`.
   */
  #armEntry(entry: Entry, alwaysNotify = false): Promise<unknown> {
    const token = {};
    entry.token = token;
    return this.#arm(entry.kind, entry.path, () => this.#fired(entry, token)).then(
      (changed) => {
        if (entry.token === token && (changed || alwaysNotify)) this.#notify(entry);
        return undefined;
      },
      (err: unknown) => {
        if (entry.token === token) entry.token = undefined;
        this.#log.debug({ err, path: entry.path, kind: entry.kind }, 'could not arm ZooKeeper watch; retrying after reconnection');
        return err ?? new Error('arm failed');
      },
    );
  }

  #fired(entry: Entry, token: object): void {
    if (entry.token !== token) return;
    entry.token = undefined;
    if (entry.listeners.size === 0) {
      if (this.#entries.get(`${entry.kind}:${entry.path}`) === entry) this.#entries.delete(`${entry.kind}:${entry.path}`);
      return;
    }
    // Re-arm first (the request is written synchronously), then tell the listeners.
    if (this.#canArm) void this.#armEntry(entry);
    this.#notify(entry);
  }

  #notify(entry: Entry): void {
    for (const listener of [...entry.listeners]) {
      try {
        listener();
      } catch (err) {
        this.#log.error({ err, path: entry.path, kind: entry.kind }, 'ZooKeeper watch listener threw');
      }
    }
  }
}

function isRetriable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'retriable' in err && err.retriable === true;
}
