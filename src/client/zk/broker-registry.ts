/**
 * The cluster as clients see it in ZooKeeper (metaq-reference §4): the registered brokers
 * (`brokers/ids/<id>/master`, `.../slave<n>`) and, for the topics asked about, the brokers that
 * accept publishers (`brokers/topics-pub/<topic>/<id>-m`) and subscribers
 * (`brokers/topics-sub/<topic>/<id>-m|-s<n>`).
 *
 * - **Publish partitions** of a topic (MetaQ's `ProducerZooKeeper`): for each `-m` child of
 *   `topics-pub/<topic>` whose master is registered, partitions `0..numParts-1` with the master's
 *   URL, sorted numerically by (brokerId, partition).
 * - **Subscribe partitions** (MetaQ's `ConsumerZooKeeper`): the union over the `topics-sub/<topic>`
 *   children (a master and its slaves give the same partitions once), fetched from the master
 *   when it is registered, otherwise from one of its slaves chosen at random (and kept while it
 *   stays registered, so that an unrelated change does not move fetchers). MetaQ appends
 *   `?slaveId=N` to the slave's URL; metaq's broker needs no such hint.
 *
 * Every watch event only marks what is stale; the registry re-reads it `coalesceMs` later, so a
 * burst of events (a broker registering twenty topics, a session expiry deleting them) makes one
 * rebuild, and listeners are called once, with the result. Reads are serialised: one rebuild at
 * a time, and a rebuild swaps its result in at once (listeners never see a half-read cluster).
 * A rebuild that fails (ZooKeeper unreachable) is retried every `retryMs` until it succeeds; the
 * last good view is kept meanwhile.
 */
import { componentLogger, type Logger } from '../../common/logger.js';
import { ClientClosedError, ZookeeperError } from '../../common/errors.js';
import { decodeTopicBrokerData, parseTopicBrokerName, type BrokerRole, type MetaPaths } from '../../zk/meta-paths.js';
import type { Unsubscribe, ZkClient } from '../../zk/zk-client.js';
import { parseBrokerUrl } from '../broker-url.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import type { TopicPartitionSource } from './topic-partition-source.js';

/** Default delay between a change event and the rebuild it causes, in ms. */
export const DEFAULT_REGISTRY_COALESCE_MS = 50;
/** Default delay before a failed rebuild is tried again, in ms. */
export const DEFAULT_REGISTRY_RETRY_MS = 1_000;

/** What {@link createBrokerRegistry} needs. */
export interface BrokerRegistryOptions {
  readonly zk: ZkClient;
  readonly paths: MetaPaths;
  /** Delay between a change event and the rebuild, in ms; events meanwhile join it. Default 50. */
  readonly coalesceMs?: number;
  /** Delay before a failed rebuild is tried again, in ms. Default 1000. */
  readonly retryMs?: number;
  /** Random source for the choice of a slave (tests). Default `Math.random`. */
  readonly random?: () => number;
  readonly log?: Logger;
}

/** One broker id's registrations under `brokers/ids/<id>`. */
export interface RegisteredBroker {
  readonly brokerId: number;
  /** The master's URL (canonical `meta://host:port`), `undefined` when no master is registered. */
  readonly master: string | undefined;
  /** slaveId → URL of the registered slaves. */
  readonly slaves: ReadonlyMap<number, string>;
}

/** The broker registrations in ZooKeeper, kept up to date. Create with {@link createBrokerRegistry}. */
export interface BrokerRegistry extends TopicPartitionSource {
  /**
   * The publish partitions of `topic` (empty when no master registers it). The first call for a
   * topic starts watching it and reads it; later calls answer from the watched view.
   *
   * @throws (rejects) `ZookeeperError` when the first read fails; {@link ClientClosedError} after close.
   */
  publishPartitions(topic: string): Promise<readonly PartitionRef[]>;
  /** Calls `listener` with the new publish partitions of `topic` after each change. */
  onPublishPartitionsChange(topic: string, listener: (partitions: readonly PartitionRef[]) => void): Unsubscribe;
  /** The registered brokers, by id (as last read; see {@link ready}). */
  brokers(): readonly RegisteredBroker[];
  /** URLs of the registered masters, sorted by broker id (as last read). */
  masterUrls(): readonly string[];
  /**
   * Resolves once the broker list has been read (at once when it has been); otherwise waits for
   * the next read and rejects with its error (reads are retried in the background anyway).
   */
  ready(): Promise<void>;
  /** Stops every watch and timer. Pending calls reject with {@link ClientClosedError}. Idempotent. */
  close(): void;
}

/** Starts watching `brokers/ids` under `options.paths` and returns the registry. */
export function createBrokerRegistry(options: BrokerRegistryOptions): BrokerRegistry {
  return new Registry(options);
}

/** One `topics-pub` / `topics-sub` child. */
interface TopicRegistration {
  readonly brokerId: number;
  readonly role: BrokerRole;
  readonly numParts: number;
}

type PubListener = (partitions: readonly PartitionRef[]) => void;

interface TrackedTopic {
  readonly name: string;
  loaded: boolean;
  /** False until its lists were computed once (the first lists are not a change). */
  derived: boolean;
  pub: readonly TopicRegistration[];
  sub: readonly TopicRegistration[];
  /** Watches on the topic's two parents and each of their children, by `c:`/`d:` + path. */
  readonly watches: Map<string, Unsubscribe>;
  readonly pubListeners: Set<PubListener>;
  readonly subListeners: Set<() => void>;
  /** Derived lists as last computed, with their comparison keys. */
  publish: readonly PartitionRef[];
  subscribe: readonly PartitionRef[];
  publishKey: string;
  subscribeKey: string;
}

interface Waiter {
  /** Resolved by the first rebuild that starts after this generation. */
  readonly afterGeneration: number;
  readonly settle: (error: unknown) => void;
}

function keyOf(refs: readonly PartitionRef[]): string {
  return refs.map((r) => `${r.brokerId}-${r.partition}@${r.brokerUrl}`).join(',');
}

function byBrokerAndPartition(a: PartitionRef, b: PartitionRef): number {
  return a.brokerId - b.brokerId || a.partition - b.partition;
}

class Registry implements BrokerRegistry {
  readonly #zk: ZkClient;
  readonly #paths: MetaPaths;
  readonly #coalesceMs: number;
  readonly #retryMs: number;
  readonly #random: () => number;
  readonly #log: Logger;
  #brokers = new Map<number, RegisteredBroker>();
  #brokersLoaded = false;
  #brokersDirty = true;
  readonly #brokerWatches = new Map<string, Unsubscribe>();
  readonly #topics = new Map<string, TrackedTopic>();
  readonly #dirtyTopics = new Set<string>();
  /** brokerId → slaveId fetched from while the master is away (sticky while registered). */
  readonly #slaveChoice = new Map<number, number>();
  #timer: NodeJS.Timeout | undefined;
  #timerDue = 0;
  #running = false;
  #generation = 0;
  #waiters: Waiter[] = [];
  /** Failed rebuilds in a row. */
  #failures = 0;
  #closed = false;

  constructor(options: BrokerRegistryOptions) {
    this.#zk = options.zk;
    this.#paths = options.paths;
    this.#coalesceMs = options.coalesceMs ?? DEFAULT_REGISTRY_COALESCE_MS;
    this.#retryMs = options.retryMs ?? DEFAULT_REGISTRY_RETRY_MS;
    this.#random = options.random ?? Math.random;
    this.#log = options.log ?? componentLogger('client.zk', { zkRoot: options.paths.root });
    this.#watch(this.#brokerWatches, 'c', this.#paths.brokerIds, () => this.#brokersChanged());
    this.#refreshNow().catch(() => undefined); // logged by #run; ready() reports it
  }

  ready(): Promise<void> {
    if (this.#brokersLoaded) return Promise.resolve();
    return this.#refreshNow();
  }

  brokers(): readonly RegisteredBroker[] {
    return [...this.#brokers.values()].sort((a, b) => a.brokerId - b.brokerId);
  }

  masterUrls(): readonly string[] {
    return this.brokers().flatMap((b) => (b.master === undefined ? [] : [b.master]));
  }

  async publishPartitions(topic: string): Promise<readonly PartitionRef[]> {
    return (await this.#loaded(topic)).publish;
  }

  async subscribePartitions(topic: string): Promise<readonly PartitionRef[]> {
    return (await this.#loaded(topic)).subscribe;
  }

  onPublishPartitionsChange(topic: string, listener: PubListener): Unsubscribe {
    const tracked = this.#track(topic);
    tracked.pubListeners.add(listener);
    return () => {
      tracked.pubListeners.delete(listener);
      this.#untrackIfUnused(tracked);
    };
  }

  onSubscribePartitionsChange(topic: string, listener: () => void): Unsubscribe {
    const tracked = this.#track(topic);
    tracked.subListeners.add(listener);
    return () => {
      tracked.subListeners.delete(listener);
      this.#untrackIfUnused(tracked);
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const unwatch of this.#brokerWatches.values()) unwatch();
    this.#brokerWatches.clear();
    for (const tracked of this.#topics.values()) {
      for (const unwatch of tracked.watches.values()) unwatch();
      tracked.watches.clear();
      tracked.pubListeners.clear();
      tracked.subListeners.clear();
    }
    this.#topics.clear();
    const closed = new ClientClosedError('The broker registry');
    for (const waiter of this.#waiters.splice(0)) waiter.settle(closed);
  }

  // --- tracking -------------------------------------------------------------------------------

  async #loaded(topic: string): Promise<TrackedTopic> {
    if (this.#closed) throw new ClientClosedError('The broker registry');
    const tracked = this.#track(topic);
    if (!tracked.loaded || !this.#brokersLoaded) await this.#refreshNow();
    if (this.#closed) throw new ClientClosedError('The broker registry');
    // Untracked meanwhile (its last listener left): the answer read for it is still current.
    return tracked;
  }

  #track(topic: string): TrackedTopic {
    const existing = this.#topics.get(topic);
    if (existing !== undefined) return existing;
    // Paths are built first: an invalid topic throws before anything is watched.
    const pubPath = this.#paths.topicPub(topic);
    const subPath = this.#paths.topicSub(topic);
    const tracked: TrackedTopic = {
      name: topic,
      loaded: false,
      derived: false,
      pub: [],
      sub: [],
      watches: new Map(),
      pubListeners: new Set(),
      subListeners: new Set(),
      publish: [],
      subscribe: [],
      publishKey: '',
      subscribeKey: '',
    };
    if (this.#closed) return tracked;
    this.#topics.set(topic, tracked);
    const changed = (): void => this.#topicChanged(topic);
    this.#watch(tracked.watches, 'c', pubPath, changed);
    this.#watch(tracked.watches, 'c', subPath, changed);
    this.#dirtyTopics.add(topic);
    this.#schedule(0);
    return tracked;
  }

  #untrackIfUnused(tracked: TrackedTopic): void {
    if (tracked.pubListeners.size > 0 || tracked.subListeners.size > 0) return;
    if (this.#topics.get(tracked.name) !== tracked) return;
    this.#topics.delete(tracked.name);
    this.#dirtyTopics.delete(tracked.name);
    for (const unwatch of tracked.watches.values()) unwatch();
    tracked.watches.clear();
  }

  #watch(watches: Map<string, Unsubscribe>, kind: 'c' | 'd', path: string, listener: () => void): void {
    const key = `${kind}:${path}`;
    if (watches.has(key) || this.#closed) return;
    watches.set(key, kind === 'c' ? this.#zk.watchChildren(path, listener) : this.#zk.watchData(path, listener));
  }

  /** Removes the watches of `watches` whose key is not in `keep`. */
  #unwatchExcept(watches: Map<string, Unsubscribe>, keep: ReadonlySet<string>): void {
    for (const [key, unwatch] of watches) {
      if (keep.has(key)) continue;
      unwatch();
      watches.delete(key);
    }
  }

  #brokersChanged(): void {
    this.#brokersDirty = true;
    this.#schedule(this.#coalesceMs);
  }

  #topicChanged(topic: string): void {
    if (!this.#topics.has(topic)) return;
    this.#dirtyTopics.add(topic);
    this.#schedule(this.#coalesceMs);
  }

  // --- rebuild scheduling ----------------------------------------------------------------------

  /** Resolves after a rebuild that started after this call; rejects with its error. */
  #refreshNow(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClientClosedError('The broker registry'));
    const promise = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ afterGeneration: this.#generation, settle: (error) => (error === undefined ? resolve() : reject(error)) });
    });
    this.#schedule(0);
    return promise;
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#running) return; // a running rebuild looks for more work when it ends
    const due = Date.now() + delayMs;
    if (this.#timer !== undefined) {
      if (due >= this.#timerDue) return;
      clearTimeout(this.#timer);
    }
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, delayMs);
  }

  #hasWork(): boolean {
    return this.#brokersDirty || this.#dirtyTopics.size > 0 || this.#waiters.length > 0;
  }

  async #run(): Promise<void> {
    if (this.#closed || this.#running) return;
    this.#running = true;
    const generation = ++this.#generation;
    let failure: unknown;
    try {
      await this.#rebuild();
    } catch (error) {
      failure = error;
    }
    this.#running = false;
    if (this.#closed) return;
    if (failure === undefined && this.#failures > 0) {
      this.#log.info({ failures: this.#failures }, 'reading the broker registrations from ZooKeeper works again');
      this.#failures = 0;
    }
    const due = this.#waiters.filter((w) => w.afterGeneration < generation);
    this.#waiters = this.#waiters.filter((w) => w.afterGeneration >= generation);
    for (const waiter of due) waiter.settle(failure);
    if (failure !== undefined) {
      if (failure instanceof ZookeeperError && failure.zkCode === 'CLOSED') {
        // The client was closed under us: nothing will ever be read again.
        this.#log.warn({ err: failure }, 'the ZooKeeper client was closed before the broker registry; it stops watching');
        this.close();
        return;
      }
      // Logged once per outage; the registry keeps its last good view meanwhile.
      if (this.#failures++ === 0) this.#log.warn({ err: failure, connectString: this.#zk.connectString }, 'reading the broker registrations from ZooKeeper failed; retrying');
      this.#schedule(this.#retryMs);
    } else if (this.#hasWork()) {
      // Events that came during the rebuild: one more, after the usual delay (waiters: at once).
      this.#schedule(this.#waiters.length > 0 ? 0 : this.#coalesceMs);
    }
  }

  async #rebuild(): Promise<void> {
    const readBrokers = this.#brokersDirty;
    const topics = [...this.#dirtyTopics].flatMap((name) => {
      const tracked = this.#topics.get(name);
      return tracked === undefined ? [] : [tracked];
    });
    this.#brokersDirty = false;
    this.#dirtyTopics.clear();
    try {
      const [brokers, topicReads] = await Promise.all([
        readBrokers ? this.#readBrokers() : undefined,
        Promise.all(topics.map(async (tracked) => ({ tracked, read: await this.#readTopic(tracked) }))),
      ]);
      if (this.#closed) return;
      if (brokers !== undefined) {
        this.#logBrokerChanges(this.#brokers, brokers);
        this.#brokers = brokers;
        this.#brokersLoaded = true;
      }
      for (const { tracked, read } of topicReads) {
        tracked.pub = read.pub;
        tracked.sub = read.sub;
        tracked.loaded = true;
      }
    } catch (error) {
      // Read again next time.
      if (readBrokers) this.#brokersDirty = true;
      for (const tracked of topics) if (this.#topics.get(tracked.name) === tracked) this.#dirtyTopics.add(tracked.name);
      throw error;
    }
    this.#derive();
  }

  #logBrokerChanges(before: ReadonlyMap<number, RegisteredBroker>, after: ReadonlyMap<number, RegisteredBroker>): void {
    const describe = (b: RegisteredBroker): string => [b.master === undefined ? '' : `master ${b.master}`, ...[...b.slaves].map(([id, url]) => `slave${id} ${url}`)].filter((x) => x !== '').join(', ');
    for (const [id, broker] of after) {
      const old = before.get(id);
      const text = describe(broker);
      if (old === undefined) this.#log.info({ brokerId: id, registered: text }, 'broker registered');
      else if (describe(old) !== text) this.#log.info({ brokerId: id, registered: text, before: describe(old) }, 'broker registration changed');
    }
    for (const [id, old] of before) if (!after.has(id)) this.#log.info({ brokerId: id, before: describe(old) }, 'broker left');
  }

  // --- reading -------------------------------------------------------------------------------

  async #readBrokers(): Promise<Map<number, RegisteredBroker>> {
    const keep = new Set([`c:${this.#paths.brokerIds}`]);
    const ids = (await this.#zk.children(this.#paths.brokerIds)) ?? [];
    const brokers = new Map<number, RegisteredBroker>();
    await Promise.all(
      ids.map(async (name) => {
        if (!/^\d+$/.test(name)) return;
        const brokerId = Number(name);
        const idPath = this.#paths.brokerIdNode(brokerId);
        keep.add(`c:${idPath}`);
        this.#watch(this.#brokerWatches, 'c', idPath, () => this.#brokersChanged());
        const children = (await this.#zk.children(idPath)) ?? [];
        let master: string | undefined;
        const slaves = new Map<number, string>();
        await Promise.all(
          children.map(async (child) => {
            const slave = /^slave(\d+)$/.exec(child);
            if (child !== 'master' && slave === null) return;
            const path = `${idPath}/${child}`;
            keep.add(`d:${path}`);
            this.#watch(this.#brokerWatches, 'd', path, () => this.#brokersChanged());
            const url = this.#brokerUrl(path, (await this.#zk.get(path))?.data);
            if (url === undefined) return;
            if (slave === null) master = url;
            else slaves.set(Number(slave[1]), url);
          }),
        );
        if (master !== undefined || slaves.size > 0) brokers.set(brokerId, { brokerId, master, slaves });
      }),
    );
    this.#unwatchExcept(this.#brokerWatches, keep);
    return brokers;
  }

  /** The canonical URL in a master/slave node, or `undefined` (logged) when it is not one. */
  #brokerUrl(path: string, data: string | undefined): string | undefined {
    if (data === undefined || data.trim() === '') return undefined;
    try {
      return parseBrokerUrl(data.trim()).url;
    } catch (error) {
      this.#log.warn({ err: error, path, data }, 'ignoring a broker registration whose data is not a meta:// URL');
      return undefined;
    }
  }

  async #readTopic(tracked: TrackedTopic): Promise<{ pub: TopicRegistration[]; sub: TopicRegistration[] }> {
    const pubPath = this.#paths.topicPub(tracked.name);
    const subPath = this.#paths.topicSub(tracked.name);
    const keep = new Set([`c:${pubPath}`, `c:${subPath}`]);
    const changed = (): void => this.#topicChanged(tracked.name);
    const readParent = async (parent: string, mastersOnly: boolean): Promise<TopicRegistration[]> => {
      const children = (await this.#zk.children(parent)) ?? [];
      const found = await Promise.all(
        children.map(async (child): Promise<TopicRegistration | undefined> => {
          const name = parseTopicBrokerName(child);
          if (name === undefined || (mastersOnly && name.role.kind !== 'master')) return undefined;
          const path = `${parent}/${child}`;
          keep.add(`d:${path}`);
          this.#watch(tracked.watches, 'd', path, changed);
          const node = await this.#zk.get(path);
          if (node === undefined) return undefined; // gone meanwhile; the children watch fires
          const data = decodeTopicBrokerData(node.data);
          if (data === undefined) {
            this.#log.warn({ path, data: node.data }, 'ignoring a topic registration that is not {"numParts":N,"broker":"..."}');
            return undefined;
          }
          return { brokerId: name.brokerId, role: name.role, numParts: data.numParts };
        }),
      );
      return found.filter((r): r is TopicRegistration => r !== undefined);
    };
    const [pub, sub] = await Promise.all([readParent(pubPath, true), readParent(subPath, false)]);
    if (this.#topics.get(tracked.name) === tracked) this.#unwatchExcept(tracked.watches, keep);
    return { pub, sub };
  }

  // --- derived lists ----------------------------------------------------------------------------

  /**
   * Recomputes every tracked topic's lists (broker changes affect all of them) and calls the
   * listeners of those that changed. A topic's first lists are not a change (no event).
   */
  #derive(): void {
    const notify: (() => void)[] = [];
    for (const tracked of this.#topics.values()) {
      if (!tracked.loaded) continue;
      const publish = this.#publishList(tracked);
      const subscribe = this.#subscribeList(tracked);
      const publishKey = keyOf(publish);
      const subscribeKey = keyOf(subscribe);
      const first = !tracked.derived;
      tracked.derived = true;
      if (publishKey !== tracked.publishKey) {
        tracked.publish = publish;
        tracked.publishKey = publishKey;
        if (!first) for (const listener of tracked.pubListeners) notify.push(() => listener(publish));
      }
      if (subscribeKey !== tracked.subscribeKey) {
        tracked.subscribe = subscribe;
        tracked.subscribeKey = subscribeKey;
        if (!first) for (const listener of tracked.subListeners) notify.push(() => listener());
      }
    }
    for (const call of notify) {
      try {
        call();
      } catch (error) {
        this.#log.error({ err: error }, 'a partition-change listener threw');
      }
    }
  }

  #publishList(tracked: TrackedTopic): PartitionRef[] {
    const refs: PartitionRef[] = [];
    const seen = new Set<number>();
    for (const registration of tracked.pub) {
      if (registration.role.kind !== 'master' || seen.has(registration.brokerId)) continue;
      const url = this.#brokers.get(registration.brokerId)?.master;
      if (url === undefined) continue; // its master is not registered (anymore): not a target
      seen.add(registration.brokerId);
      for (let partition = 0; partition < registration.numParts; partition++) refs.push({ brokerId: registration.brokerId, brokerUrl: url, partition });
    }
    return refs.sort(byBrokerAndPartition);
  }

  #subscribeList(tracked: TrackedTopic): PartitionRef[] {
    /** brokerId → partition count (the largest any of its registrations announces) and the slaves that registered. */
    const byBroker = new Map<number, { numParts: number; slaves: Set<number> }>();
    for (const registration of tracked.sub) {
      const entry = byBroker.get(registration.brokerId) ?? { numParts: 0, slaves: new Set<number>() };
      entry.numParts = Math.max(entry.numParts, registration.numParts);
      if (registration.role.kind === 'slave') entry.slaves.add(registration.role.slaveId);
      byBroker.set(registration.brokerId, entry);
    }
    const refs: PartitionRef[] = [];
    for (const [brokerId, entry] of byBroker) {
      const url = this.#fetchUrl(brokerId, entry.slaves);
      if (url === undefined) continue;
      for (let partition = 0; partition < entry.numParts; partition++) refs.push({ brokerId, brokerUrl: url, partition });
    }
    return refs.sort(byBrokerAndPartition);
  }

  /** Master if registered, else a slave (one that registered the topic if any), sticky. */
  #fetchUrl(brokerId: number, topicSlaves: ReadonlySet<number>): string | undefined {
    const broker = this.#brokers.get(brokerId);
    if (broker === undefined) return undefined;
    if (broker.master !== undefined) return broker.master;
    const registered = [...broker.slaves.keys()].sort((a, b) => a - b);
    const preferred = registered.filter((id) => topicSlaves.has(id));
    const candidates = preferred.length > 0 ? preferred : registered;
    if (candidates.length === 0) return undefined;
    let chosen = this.#slaveChoice.get(brokerId);
    if (chosen === undefined || !candidates.includes(chosen)) {
      chosen = candidates[Math.floor(this.#random() * candidates.length) % candidates.length] as number;
      this.#slaveChoice.set(brokerId, chosen);
    }
    return broker.slaves.get(chosen);
  }
}
