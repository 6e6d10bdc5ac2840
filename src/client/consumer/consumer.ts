/**
 * The consumer (MetaQ's `MessageConsumer`): `subscribe()` topics, then `completeSubscribe()`
 * starts one fetch loop per owned partition (direct mode: every partition of the topic on the
 * broker), commits offsets every `commitOffsetPeriodInMills`, and re-delivers recovered
 * messages in the background.
 *
 * Delivery is at-least-once: an offset is committed only after its message was handled, and
 * commits are periodic, so after a crash the messages consumed since the last commit are
 * delivered again. A graceful `close()` commits last, so a restart after it resumes exactly
 * where consumption stopped. For exactly-once processing into PostgreSQL, subscribe a listener
 * made by `exactlyOnce()` (postgres-exactly-once.ts), which commits each message's offset in the
 * handler's own transaction.
 */
import { IllegalStateError, InvalidArgumentError, ZookeeperError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { isValidTopicName, topicNameError } from '../../common/config/index.js';
import { LONG_MAX_OFFSET } from '../../protocol/frames.js';
import type { MessageFilter, MessageListener } from '../message.js';
import { createLocalOffsetStorage } from '../offsets/local-offset-storage.js';
import type { OffsetCommitFence, OffsetStorage, PartitionOffset } from '../offsets/offset-storage.js';
import type { CommitPermission, GroupMembership, PartitionRef } from '../session/broker-discovery.js';
import type { Closable, SessionContext } from '../session/session-context.js';
import { resolveConsumerConfig, type ConsumerConfig, type ResolvedConsumerConfig } from './consumer-config.js';
import { FetchRunner } from './fetch-runner.js';
import { listenerBinding, type BoundSubscription } from './listener-binding.js';
import { openRecoverStore, type RecoverStore } from './recover-store.js';
import { RecoverTask } from './recover-task.js';

/** Options of one subscription. */
export interface SubscribeOptions {
  /** Bytes asked for per fetch (MetaQ's `maxSize`, e.g. 1 MiB); grows by itself for larger messages. */
  readonly maxSize: number;
}

/** Receives messages. Create with `factory.createConsumer(config)`. */
export interface MessageConsumer {
  /** The configuration, defaults applied. */
  readonly config: ResolvedConsumerConfig;
  /** Where offsets are committed. */
  readonly offsetStorage: OffsetStorage;
  /**
   * Subscribes `listener` to `topic` (only recorded; fetching starts with
   * {@link completeSubscribe}). Chainable. A listener from `exactlyOnce(storage, handler)` makes
   * this subscription exactly-once (docs/client.md).
   *
   * @throws {IllegalStateError} after `completeSubscribe()` or for a topic subscribed twice;
   *   {@link InvalidArgumentError} for a bad topic, `maxSize` or listener.
   */
  subscribe(topic: string, options: SubscribeOptions, listener: MessageListener, filter?: MessageFilter): MessageConsumer;
  /**
   * Finds the partitions, loads the committed offsets and starts fetching. Call once, after
   * the `subscribe` calls. If it fails (broker unreachable), nothing keeps running and it may
   * be called again.
   */
  completeSubscribe(): Promise<void>;
  /** Commits the current offsets now (they are also committed periodically and at close). */
  commitOffsets(): Promise<void>;
  /**
   * Stops fetching, waits for the listener calls in progress, commits the offsets, and
   * releases the partitions. Idempotent. A consumer cannot be restarted; create a new one.
   */
  close(): Promise<void>;
}

/** Creates a consumer. Internal: applications use the session factory. */
export function createMessageConsumer(context: SessionContext, config: ConsumerConfig, offsetStorage?: OffsetStorage): MessageConsumer {
  return new Consumer(context, resolveConsumerConfig(config), offsetStorage);
}

interface Subscription {
  readonly topic: string;
  readonly maxSize: number;
  readonly listener: MessageListener;
  readonly filter: MessageFilter | undefined;
  readonly store: RecoverStore;
  /** Set for a listener with a binding (e.g. exactly-once mode, listener-binding.ts). */
  readonly bound: BoundSubscription | undefined;
}

type ConsumerState = 'subscribing' | 'starting' | 'running' | 'closing' | 'closed';

/** Which positions a commit must write (or reject): see Consumer.#commitNow. */
type CommitRequirement = 'all' | 'retired' | 'movable';

/** The permission without a group membership that says otherwise: every fetched partition is ours. */
const OWNED: CommitPermission = { status: 'owned' };

function partitionKey(ref: PartitionRef): string {
  return `${ref.brokerUrl}#${ref.partition}`;
}

class Consumer implements MessageConsumer, Closable {
  readonly config: ResolvedConsumerConfig;
  readonly offsetStorage: OffsetStorage;
  readonly #ownsStorage: boolean;
  readonly #context: SessionContext;
  readonly #log: Logger;
  readonly #subscriptions = new Map<string, Subscription>();
  /** topic → partition key → runner. */
  readonly #runners = new Map<string, Map<string, FetchRunner>>();
  /** Runners stopped by a reassignment whose last position is not committed yet. */
  #retired: FetchRunner[] = [];
  readonly #committedVersion = new WeakMap<FetchRunner, number>();
  #state: ConsumerState = 'subscribing';
  #commitTimer: NodeJS.Timeout | undefined;
  #committing: Promise<void> = Promise.resolve();
  #recoverTask: RecoverTask | undefined;
  #membership: GroupMembership | undefined;
  #closing: Promise<void> | undefined;

  constructor(context: SessionContext, config: ResolvedConsumerConfig, offsetStorage: OffsetStorage | undefined) {
    this.#context = context;
    this.config = config;
    this.#ownsStorage = offsetStorage === undefined;
    this.offsetStorage = offsetStorage ?? createLocalOffsetStorage();
    this.#log = componentLogger('client', { group: config.group, consumerId: config.consumerId });
  }

  subscribe(topic: string, options: SubscribeOptions, listener: MessageListener, filter?: MessageFilter): MessageConsumer {
    if (this.#state !== 'subscribing') throw new IllegalStateError('subscribe() must be called before completeSubscribe()');
    if (!isValidTopicName(topic)) throw new InvalidArgumentError(`subscribe: invalid topic ${JSON.stringify(topic)}: ${topicNameError(topic)}`);
    if (this.#subscriptions.has(topic)) throw new IllegalStateError(`Topic '${topic}' is already subscribed by this consumer`);
    const maxSize = options?.maxSize;
    if (!Number.isSafeInteger(maxSize) || maxSize <= 0 || maxSize > 0x7fffffff) {
      throw new InvalidArgumentError(`subscribe('${topic}'): maxSize must be a positive integer, got ${String(maxSize)}`);
    }
    if (typeof listener !== 'function') throw new InvalidArgumentError(`subscribe('${topic}'): listener must be a function`);
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidArgumentError(`subscribe('${topic}'): filter must be a function`);
    const bound = listenerBinding(listener)?.bind({ topic, group: this.config.group, offsetStorage: this.offsetStorage, log: this.#log });
    const store = bound?.recoverStore ?? openRecoverStore(this.config.recoverPath, topic, this.config.group);
    this.#subscriptions.set(topic, { topic, maxSize, listener, filter, store, bound });
    return this;
  }

  async completeSubscribe(): Promise<void> {
    if (this.#state !== 'subscribing') throw new IllegalStateError('completeSubscribe() may be called only once, before close()');
    if (this.#subscriptions.size === 0) throw new IllegalStateError('subscribe() to at least one topic before completeSubscribe()');
    this.#state = 'starting';
    try {
      this.#membership = await this.#context.discovery.joinGroup({
        group: this.config.group,
        consumerId: this.config.consumerId,
        topics: [...this.#subscriptions.keys()],
        strategy: this.config.loadBalanceStrategy,
        onAssignment: (topic, partitions, options) => {
          const subscription = this.#subscriptions.get(topic);
          if (subscription === undefined) return Promise.reject(new IllegalStateError(`assignment for topic '${topic}', which this consumer did not subscribe`));
          return this.#assign(subscription, partitions, options?.discardPositions === true);
        },
      });
    } catch (error) {
      await this.#stopRunners();
      this.#runners.clear();
      if (this.#state === 'starting') this.#state = 'subscribing';
      throw error;
    }
    if (this.#stopping()) return; // closed meanwhile
    this.#commitTimer = setInterval(() => {
      this.#commit('movable').catch(() => undefined);
    }, this.config.commitOffsetPeriodInMills);
    this.#commitTimer.unref();
    this.#recoverTask = new RecoverTask({
      group: this.config.group,
      intervalMs: this.config.recoverMessageIntervalInMills,
      targets: [...this.#subscriptions.values()].map(({ topic, store, listener, bound }) => ({ topic, store, listener: bound?.recoveredListener ?? listener })),
      emitter: this.#context.emitter,
      log: this.#log,
    });
    this.#recoverTask.start();
    this.#state = 'running';
    this.#log.info({ topics: [...this.#subscriptions.keys()] }, 'consumer started');
  }

  commitOffsets(): Promise<void> {
    return this.#commit('all');
  }

  /** Serialised: a commit never overtakes an earlier one. `required`: see {@link #commitNow}. */
  #commit(required: CommitRequirement): Promise<void> {
    const next = this.#committing.then(() => this.#commitNow(required));
    this.#committing = next.catch(() => undefined);
    return next;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const started = this.#state !== 'subscribing';
    this.#state = 'closing';
    clearInterval(this.#commitTimer);
    let failure: unknown;
    if (started) {
      await Promise.all([this.#recoverTask?.stop(), this.#stopRunners()]);
      await this.commitOffsets().catch((error: unknown) => {
        this.#log.error({ err: error }, 'final offset commit failed; messages since the last commit will be delivered again');
        failure = error;
      });
      await this.#membership?.leave().catch((error: unknown) => {
        this.#log.warn({ err: error }, 'leaving the consumer group failed');
      });
    }
    if (this.#ownsStorage) await this.offsetStorage.close();
    this.#state = 'closed';
    this.#context.release(this);
    this.#log.info('consumer closed');
    if (failure !== undefined) throw failure;
  }

  /** True once close() has begun. (A method, so that TypeScript does not narrow the state across awaits.) */
  #stopping(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  async #stopRunners(): Promise<void> {
    const all: FetchRunner[] = [];
    for (const runners of this.#runners.values()) all.push(...runners.values());
    await Promise.all(all.map((runner) => runner.stop()));
  }

  /**
   * Starts runners for new partitions of `subscription` and stops those no longer assigned
   * (with `discard`, without committing them: see AssignmentOptions.discardPositions).
   */
  async #assign(subscription: Subscription, partitions: readonly PartitionRef[], discard = false): Promise<void> {
    if (this.#stopping()) return;
    const { topic } = subscription;
    const current = this.#runners.get(topic) ?? new Map<string, FetchRunner>();
    this.#runners.set(topic, current);
    const wanted = new Map(partitions.map((ref) => [partitionKey(ref), ref]));
    const removed = [...current].filter(([key]) => !wanted.has(key));
    for (const [key, runner] of removed) {
      current.delete(key);
      await runner.stop();
      if (!discard) this.#retired.push(runner);
    }
    if (discard) {
      const stale = this.#retired.filter((runner) => runner.topic === topic);
      this.#retired = this.#retired.filter((runner) => runner.topic !== topic);
      const dropped = [...removed.map(([, runner]) => runner), ...stale].map((runner) => `${runner.ref.brokerId}-${runner.ref.partition}@${String(runner.position().offset)}`);
      if (dropped.length > 0) this.#log.warn({ topic, partitions: dropped }, 'positions dropped without a commit (the ZooKeeper session expired: other members may have consumed these partitions meanwhile); fetching restarts from the stored offsets');
    }
    // The partitions stopped are handed to another member once this resolves: their offsets must
    // be durable first. A failed commit rejects (the group member retries this call), and the
    // retry commits the runners still retired from the failed attempt.
    if (!discard && (removed.length > 0 || this.#retired.length > 0)) await this.#commit('retired');
    const added = [...wanted].filter(([key]) => !current.has(key)).map(([, ref]) => ref);
    if (added.length === 0) return;
    const stored = await this.offsetStorage.load(topic, this.config.group, added);
    for (const ref of added) {
      // close() may have started while offsets were loading: start nothing it would not stop.
      if (this.#stopping()) return;
      const found = stored.find((o) => o.brokerId === ref.brokerId && o.partition === ref.partition);
      let offset: number | typeof LONG_MAX_OFFSET = found?.offset ?? this.config.offset;
      if (this.config.alwaysConsumeFromMaxOffset) offset = LONG_MAX_OFFSET;
      else if (found === undefined) {
        if (this.config.consumeFromMaxOffset) offset = LONG_MAX_OFFSET;
        else await this.offsetStorage.init(topic, this.config.group, ref, this.config.offset);
      }
      const runner = new FetchRunner({
        topic,
        ref,
        offset,
        messageId: found?.messageId ?? -1n,
        maxSize: subscription.maxSize,
        config: this.config,
        listener: subscription.bound?.listenerFor(ref) ?? subscription.listener,
        filter: subscription.filter,
        connection: this.#context.pool.get(ref.brokerUrl),
        recoverStore: subscription.store,
        emitter: this.#context.emitter,
        log: this.#log.child({ topic, partition: ref.partition, broker: ref.brokerUrl }),
      });
      this.#committedVersion.set(runner, 0);
      current.set(partitionKey(ref), runner);
      this.#log.info({ topic, partition: ref.partition, offset: String(offset), committed: found !== undefined }, 'fetching partition');
      runner.start();
    }
  }

  /**
   * Commits every position that moved since its last commit, as the group membership permits
   * (GroupMembership.commitPermission): a partition another member owns now is dropped, never
   * committed (its new owner is past our position); while ownership is being re-checked after
   * a ZooKeeper session expiry, those positions wait, and this rejects (retriable) if one of
   * them is `required`: any (`all`: the application's commitOffsets, close), a retired runner
   * (`retired`: a hand-off must not proceed without it), or none (`movable`: the timer).
   */
  async #commitNow(required: CommitRequirement): Promise<void> {
    const retired = this.#retired;
    const candidates: FetchRunner[] = [...retired];
    for (const runners of this.#runners.values()) candidates.push(...runners.values());
    /** Fence session (or '' for none) → what to commit under it. */
    const batches = new Map<string, { fence: OffsetCommitFence | undefined; offsets: PartitionOffset[]; versions: [FetchRunner, number][] }>();
    /** Positions to commit once the ownership is confirmed again. */
    const waiting = new Set<FetchRunner>();
    const dropped: string[] = [];
    for (const runner of candidates) {
      const position = runner.position();
      if (position.offset === undefined || position.version === this.#committedVersion.get(runner)) continue;
      const { brokerId, partition } = runner.ref;
      const permission = this.#membership?.commitPermission?.(runner.topic, runner.ref) ?? OWNED;
      if (permission.status === 'lost') {
        dropped.push(`${runner.topic}:${brokerId}-${partition}@${String(position.offset)}`);
        continue;
      }
      if (permission.status === 'unconfirmed') {
        waiting.add(runner);
        continue;
      }
      const key = permission.fence?.zkSessionId ?? '';
      let batch = batches.get(key);
      if (batch === undefined) batches.set(key, (batch = { fence: permission.fence, offsets: [], versions: [] }));
      batch.offsets.push({ topic: runner.topic, brokerId, partition, offset: position.offset, messageId: position.messageId });
      batch.versions.push([runner, position.version]);
    }
    if (dropped.length > 0) {
      this.#log.warn({ partitions: dropped }, 'not committing the positions of partitions that other members own now (our ZooKeeper session expired meanwhile): they would move those offsets back');
    }
    for (const { fence, offsets, versions } of batches.values()) {
      await this.offsetStorage.commit(this.config.group, offsets, fence);
      for (const [runner, version] of versions) this.#committedVersion.set(runner, version);
      const { emitter } = this.#context;
      if (emitter.has('consumer.offsets_committed')) emitter.emit('consumer.offsets_committed', { group: this.config.group, partitions: offsets.length });
    }
    this.#retired = this.#retired.filter((runner) => !retired.includes(runner) || waiting.has(runner));
    const missing = [...waiting].filter((runner) => required === 'all' || (required === 'retired' && retired.includes(runner)));
    if (missing.length > 0) {
      throw new ZookeeperError(
        'SESSION_EXPIRED',
        `offsets of ${missing.length} partition(s) of group '${this.config.group}' not committed: the ZooKeeper session expired and the group member is re-checking which partitions are still ours; a later commit retries them`,
        { retriable: true },
      );
    }
  }
}
