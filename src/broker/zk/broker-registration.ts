/**
 * A master broker's registration in ZooKeeper (metaq-reference §4, "Broker registration"), in
 * MetaQ's exact layout, kept up for the life of the broker:
 *
 * - at start: the ephemeral `ids/<id>/master`, the persistent legacy `ids/<id>` (both the URL),
 *   the ephemeral `master_config_checksum`, then the nodes of every topic given to
 *   {@link BrokerRegistration.start} and later to {@link BrokerRegistration.registerTopic};
 * - ephemerals are *owned* by the {@link ZkClient} (`ownEphemeral`), so the client re-creates
 *   them after a session expiry; on every new session the whole registration is run again all
 *   the same (idempotent), which also restores the persistent legacy node and takes back any
 *   node another session held meanwhile;
 * - a fast restart, whose previous session still holds `ids/<id>/master`, waits for that node
 *   to go away instead of aborting (MetaQ's quirk fixed);
 * - ZooKeeper being unreachable never stops the broker: registration runs in the background
 *   and is retried until it succeeds;
 * - {@link BrokerRegistration.stop} deletes the nodes, waits `zkSyncTimeMs` so that clients move
 *   away while the port still answers, closes the port, then the session.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ZookeeperError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import type { MetaPaths } from '../../zk/meta-paths.js';
import type { Unsubscribe, ZkClient } from '../../zk/zk-client.js';
import { brokerZnodes, topicZnodes, type BrokerZnodes, type Znode } from './broker-znodes.js';
import type { TopicRegistration } from './topic-registration.js';

/** Where a {@link BrokerRegistration} stands. */
export type RegistrationState =
  /** Not started. */
  | 'idle'
  /** Registering, or waiting for ZooKeeper to be reachable / for a new session. */
  | 'registering'
  /** Waiting for the node of a previous session of this broker id to disappear. */
  | 'waiting-for-previous-session'
  /** Every node is in place in the current session. */
  | 'registered'
  /** Stopped: nodes deleted (when ZooKeeper could be reached) and session closed. */
  | 'stopped';

/** Options of {@link BrokerRegistration}. */
export interface BrokerRegistrationOptions {
  /** The session to register with; {@link BrokerRegistration.stop} closes it. */
  readonly client: ZkClient;
  /** The layout under `zk.zkRoot`. */
  readonly paths: MetaPaths;
  readonly brokerId: number;
  /** `meta://host:port` with the bound port (see broker-url.ts). */
  readonly url: string;
  /** CRC32 of server.ini, decimal (see config-checksum.ts). */
  readonly configChecksum: string;
  /** How a topic is registered; `undefined` skips it (see topic-registration.ts). */
  readonly describeTopic: (topic: string) => TopicRegistration | undefined;
  /** `zk.zkSyncTimeMs`: the pause between deleting the nodes and closing the port at stop. */
  readonly syncTimeMs: number;
  /**
   * How long to wait for a first connection before logging that ZooKeeper is unreachable
   * (default 3000 ms). The broker serves meanwhile either way.
   */
  readonly unreachableNoticeMs?: number;
  /** Longest pause between two attempts after a failure (default 5000 ms; the first is 250 ms). */
  readonly maxRetryDelayMs?: number;
  /** Longest time {@link BrokerRegistration.stop} spends deleting nodes (default 5000 ms). */
  readonly deregisterTimeoutMs?: number;
  readonly logger?: Logger;
}

/** Thrown inside the registration loop when {@link BrokerRegistration.stop} was called. */
class Stopping extends Error {}

/** The registration of one master broker; see the module comment. */
export class BrokerRegistration {
  readonly #o: BrokerRegistrationOptions;
  readonly #client: ZkClient;
  readonly #log: Logger;
  readonly #nodes: BrokerZnodes;
  /** Where registered, for logs: `<connect string><root>/brokers/ids/<id>`. */
  readonly #where: string;
  /** Topics to register, in arrival order. */
  readonly #wanted = new Set<string>();
  /** Topics whose nodes are in place in the current generation. */
  readonly #doneTopics = new Set<string>();
  /** Ephemeral nodes owned through `ownEphemeral`, in creation order. */
  readonly #owned = new Set<string>();
  #brokerDone = false;
  /** Written the persistent legacy `ids/<id>` (so stop deletes it). */
  #legacyWritten = false;
  /** Bumped on every new session: work done under an older generation is done again. */
  #generation = 0;
  #state: RegistrationState = 'idle';
  #again = false;
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #releasing: Promise<boolean> = Promise.resolve(false);
  #unreachableLogged = false;
  /** The last failure logged at error level (the same one is not repeated at every retry). */
  #lastError: string | undefined;
  #failures = 0;
  /** The session in which the broker nodes were last put in place. */
  #brokerSession: string | undefined;
  readonly #unsubscribe: Unsubscribe[] = [];

  constructor(options: BrokerRegistrationOptions) {
    this.#o = options;
    this.#client = options.client;
    this.#log = options.logger ?? componentLogger('zk-registration', { brokerId: options.brokerId });
    this.#nodes = brokerZnodes(options.paths, options.brokerId, options.url, options.configChecksum);
    this.#where = `${options.client.connectString}${this.#nodes.legacyId.path}`;
  }

  /** Where the registration stands. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** The topics whose nodes are in place (in the current session), in registration order. */
  get registeredTopics(): readonly string[] {
    return [...this.#doneTopics];
  }

  /**
   * Starts registering in the background, with `topics` (configured and stored topics); returns
   * at once. Failures are logged and retried until {@link stop}.
   */
  start(topics: Iterable<string>): void {
    if (this.#state !== 'idle') throw new Error('BrokerRegistration.start() was already called');
    this.#state = 'registering';
    for (const topic of topics) this.#wanted.add(topic);
    const client = this.#client;
    this.#unsubscribe.push(
      client.on('connected', () => this.#wake?.()),
      client.on('disconnected', () => {
        if (this.#stopping) return;
        this.#log.info({ zkConnect: client.connectString }, 'lost the connection to ZooKeeper; serving anyway, the registration stays while the session lives');
      }),
      client.on('expired', ({ sessionId }) => {
        if (this.#stopping) return;
        this.#log.warn({ sessionId }, 'ZooKeeper session expired: its nodes are gone; registering again in a new session');
        this.#setState('registering');
      }),
      client.on('session', ({ sessionId, conflicts }) => this.#onSession(sessionId, conflicts)),
    );
    this.#kick();
  }

  /** Registers `topic` too (a topic first created by a put); no-op when already wanted. */
  registerTopic(topic: string): void {
    if (this.#stopping || this.#state === 'idle' || this.#wanted.has(topic)) return;
    this.#wanted.add(topic);
    this.#kick();
  }

  /**
   * Deregisters and leaves ZooKeeper, MetaQ's way: deletes this broker's nodes, waits
   * `syncTimeMs` (only when nodes were deleted) so that producers and consumers move away while
   * the port still answers, runs `closePort`, then closes the session. Never throws for
   * ZooKeeper problems (the session's ephemerals vanish with it anyway). Idempotent.
   */
  stop(closePort: () => Promise<void> = () => Promise.resolve()): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      this.#wake?.();
      for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
      const removed = await this.#deregister();
      if (removed && this.#o.syncTimeMs > 0) {
        this.#log.info({ zkSyncTimeMs: this.#o.syncTimeMs }, 'waiting zk.zkSyncTimeMs before closing the port so that clients move away');
        await sleep(this.#o.syncTimeMs);
      }
      try {
        await closePort();
      } finally {
        await this.#client.close().catch((err: unknown) => this.#log.warn({ err }, 'closing the ZooKeeper session failed'));
        this.#state = 'stopped';
      }
    })();
    return this.#stopped;
  }

  #setState(state: RegistrationState): void {
    if (this.#stopping) return;
    this.#state = state;
  }

  #onSession(sessionId: string, conflicts: readonly string[]): void {
    if (this.#stopping) return;
    // The first session's event may come after the registration already ran in that session.
    if (conflicts.length === 0 && sessionId === this.#brokerSession) return;
    for (const path of conflicts) {
      if (!this.#owned.has(path)) continue;
      this.#log.error(
        { path, sessionId },
        'another ZooKeeper session holds one of this broker\'s nodes (another broker with the same brokerId?); taking it back once it is gone',
      );
    }
    // Everything is done again: ownEphemeral is idempotent for nodes the client re-created, the
    // persistent legacy node may have been lost with ZooKeeper's data, and nodes another
    // session held are waited for.
    this.#generation++;
    this.#brokerDone = false;
    this.#doneTopics.clear();
    this.#setState('registering');
    this.#kick();
  }

  /** Runs the registration loop, or tells the running one to go round again. */
  #kick(): void {
    if (this.#stopping) return;
    this.#again = true;
    this.#wake?.();
    if (this.#running === undefined) this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (this.#again && !this.#stopping) {
        this.#again = false;
        try {
          await this.#registerPending();
          this.#failures = 0;
        } catch (err) {
          if (this.#stopping || err instanceof Stopping) return;
          this.#failures++;
          this.#reportFailure(err);
          this.#again = true;
          await this.#pause(Math.min(250 * 2 ** (this.#failures - 1), this.#o.maxRetryDelayMs ?? 5000));
        }
      }
    } finally {
      // Synchronously with the loop's end: a kick after this starts a new loop.
      this.#running = undefined;
    }
  }

  /** Sleeps `ms`, cut short by a kick, a (re)connection or stop. */
  async #pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  /** One pass: whatever is not in place yet is put in place. */
  async #registerPending(): Promise<void> {
    const client = this.#client;
    const generation = this.#generation;
    if (client.state !== 'connected') await client.waitConnected(this.#o.unreachableNoticeMs ?? 3000);
    this.#checkStopping();
    let added = 0;
    if (!this.#brokerDone) {
      const sessionId = client.sessionId;
      await this.#noteForeignMaster();
      await this.#own(this.#nodes.master);
      if (this.#state === 'waiting-for-previous-session') this.#setState('registering');
      // Written after `master` exists, so it is the parent MetaQ creates: persistent.
      await client.set(this.#nodes.legacyId.path, this.#nodes.legacyId.data);
      this.#legacyWritten = true;
      this.#checkStopping();
      await this.#own(this.#nodes.configChecksum);
      if (generation === this.#generation) {
        this.#brokerDone = true;
        this.#brokerSession = sessionId;
      }
    }
    for (const topic of [...this.#wanted]) {
      if (this.#doneTopics.has(topic)) continue;
      const registration = this.#o.describeTopic(topic);
      if (registration === undefined) {
        this.#log.warn({ topic }, 'topic neither configured nor stored; not registered in ZooKeeper');
      } else {
        for (const node of topicZnodes(this.#o.paths, this.#o.brokerId, registration)) await this.#own(node);
        if (this.#state === 'registered') {
          this.#log.info({ topic, numPartitions: registration.numPartitions, acceptPublish: registration.acceptPublish, acceptSubscribe: registration.acceptSubscribe }, 'topic registered in ZooKeeper');
        }
      }
      if (generation !== this.#generation) return;
      this.#doneTopics.add(topic);
      added++;
    }
    if (generation !== this.#generation || !this.#brokerDone) return;
    if (this.#state !== 'registered') {
      this.#unreachableLogged = false;
      this.#lastError = undefined;
      this.#log.info(
        { url: this.#o.url, sessionId: client.sessionId, topics: [...this.#doneTopics], added },
        `registered in ZooKeeper at ${this.#where} as ${this.#o.url}`,
      );
      this.#setState('registered');
    }
  }

  /** Tells the operator why start-up registration waits when a previous session holds `master`. */
  async #noteForeignMaster(): Promise<void> {
    const node = await this.#client.get(this.#nodes.master.path);
    this.#checkStopping();
    const owner = node?.ephemeralOwner;
    if (owner === undefined || owner === this.#client.sessionId) return;
    this.#log.warn(
      { path: this.#nodes.master.path, owner, url: node?.data },
      'broker id already registered by another ZooKeeper session (this broker restarted before its previous session expired?); waiting for that node to go away, serving meanwhile',
    );
    this.#setState('waiting-for-previous-session');
  }

  async #own(node: Znode): Promise<void> {
    await this.#client.ownEphemeral(node.path, node.data);
    this.#owned.add(node.path);
    this.#checkStopping();
  }

  /** After every step of the loop: once stopping, undo what the step did and leave. */
  #checkStopping(): void {
    if (!this.#stopping) return;
    void this.#releaseAll();
    throw new Stopping();
  }

  #reportFailure(err: unknown): void {
    const zkError = err instanceof ZookeeperError ? err : undefined;
    if (this.#client.state !== 'connected' || zkError?.retriable === true) {
      if (!this.#unreachableLogged) {
        this.#unreachableLogged = true;
        this.#log.warn({ err }, `ZooKeeper unreachable at ${this.#client.connectString}; serving anyway, will register when it is back`);
      }
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    const level = message === this.#lastError ? 'debug' : 'error';
    this.#lastError = message;
    this.#log[level]({ err, zkCode: zkError?.zkCode }, 'registering in ZooKeeper failed; serving anyway, trying again');
  }

  /** Deletes the nodes within the deregistration timeout; true when any was deleted. */
  async #deregister(): Promise<boolean> {
    if (this.#owned.size === 0 && !this.#legacyWritten) return false;
    if (this.#client.state !== 'connected') {
      this.#log.warn({ zkConnect: this.#client.connectString }, 'not connected to ZooKeeper at stop; the nodes disappear when the session ends');
      return false;
    }
    const limitMs = this.#o.deregisterTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => {
        this.#log.warn({ timeoutMs: limitMs }, 'deleting the ZooKeeper nodes takes too long; leaving them to the end of the session');
        resolve(false);
      }, limitMs);
    });
    try {
      return await Promise.race([this.#releaseAll(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Deletes every node written so far, topics first; serialized, so safe to call again. */
  #releaseAll(): Promise<boolean> {
    const previous = this.#releasing;
    this.#releasing = previous.then(async (removedBefore) => (await this.#releaseNow()) || removedBefore);
    return this.#releasing;
  }

  async #releaseNow(): Promise<boolean> {
    const owned = [...this.#owned].reverse();
    this.#owned.clear();
    let removed = false;
    for (const path of owned) {
      try {
        if (await this.#client.releaseEphemeral(path)) removed = true;
      } catch (err) {
        this.#log.warn({ err, path }, 'could not delete a ZooKeeper node at stop; it disappears when the session ends');
      }
    }
    if (this.#legacyWritten) {
      this.#legacyWritten = false;
      const path = this.#nodes.legacyId.path;
      try {
        if (await this.#client.remove(path)) removed = true;
      } catch (err) {
        if (err instanceof ZookeeperError && err.zkCode === 'NOT_EMPTY') {
          // Slaves are still registered below it: MetaQ leaves it with empty data.
          await this.#client.set(path, '').catch((setErr: unknown) => this.#log.warn({ err: setErr, path }, 'could not clear the legacy broker node'));
          removed = true;
        } else {
          this.#log.warn({ err, path }, 'could not delete the legacy broker node');
        }
      }
    }
    if (removed) this.#log.info({ path: this.#nodes.legacyId.path }, 'deregistered from ZooKeeper');
    return removed;
  }
}
