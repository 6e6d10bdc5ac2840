/**
 * Discovery through ZooKeeper (MetaQ's `ProducerZooKeeper` + `ConsumerZooKeeper`): the
 * {@link BrokerDiscovery} of a session factory created with `zkConnect` (or given one
 * explicitly). Brokers and partitions come from the broker registrations
 * (broker-registry.ts); consumer groups coordinate through `consumers/<group>/...`
 * (group/, engineer C's `joinConsumerGroup`).
 *
 * ```ts
 * const zk = connectZookeeper({ connectString: '127.0.0.1:2181' });
 * const discovery = createZookeeperDiscovery({ zk, paths: new MetaPaths('/meta'), ownsClient: true });
 * const factory = createMessageSessionFactory({ discovery });
 * ```
 */
import { ClientClosedError, IllegalStateError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { MetaPaths } from '../../zk/meta-paths.js';
import type { ZkClient } from '../../zk/zk-client.js';
import { createZookeeperOffsetStorage } from '../offsets/zookeeper-offset-storage.js';
import type { OffsetStorage } from '../offsets/offset-storage.js';
import type { BrokerDiscovery, GroupMembership, GroupSubscription, PartitionRef } from '../session/broker-discovery.js';
import { createBrokerRegistry, type BrokerRegistry } from './broker-registry.js';
import { joinConsumerGroup } from './group/index.js';
import type { TopicPartitionSource } from './topic-partition-source.js';

/** Default time `publishPartitions` waits for a first broker of a topic, in ms. */
export const DEFAULT_PUBLISH_WAIT_MS = 3_000;

/** What {@link createZookeeperDiscovery} needs. */
export interface ZookeeperDiscoveryOptions {
  /** The ZooKeeper session. */
  readonly zk: ZkClient;
  /** The znode layout; default `new MetaPaths('/meta')`. */
  readonly paths?: MetaPaths;
  /** Close `zk` with the discovery. Default false (the caller's client). */
  readonly ownsClient?: boolean;
  /**
   * How long `publishPartitions` waits for a first broker when none registered the topic yet
   * (a producer started together with its brokers), in ms. Default 3000 (the session factory
   * passes its `requestTimeoutMs`).
   */
  readonly publishWaitMs?: number;
  /** Delay between a change event and the rebuild it causes, in ms. Default 50. */
  readonly coalesceMs?: number;
  /** Delay before a failed read of the registrations is tried again, in ms. Default 1000. */
  readonly retryMs?: number;
  readonly log?: Logger;
  /** Consumer-group membership (tests); default the ZooKeeper group member. */
  readonly joinGroup?: JoinConsumerGroup;
}

/** How a consumer joins its group in ZooKeeper (group/'s `joinConsumerGroup`). */
export type JoinConsumerGroup = (options: {
  readonly zk: ZkClient;
  readonly paths: MetaPaths;
  readonly subscription: GroupSubscription;
  readonly partitions: TopicPartitionSource;
  readonly log?: Logger;
}) => Promise<GroupMembership>;

/** The ZooKeeper discovery: a {@link BrokerDiscovery} with ZooKeeper extras. */
export interface ZookeeperDiscovery extends BrokerDiscovery {
  /** The znode layout in use. */
  readonly paths: MetaPaths;
  /** The ZooKeeper session. */
  readonly zk: ZkClient;
  /** The broker registrations (also the consumer group's partition source). */
  readonly registry: BrokerRegistry & TopicPartitionSource;
  /** MetaQ's default offset storage in ZooKeeper mode (`consumers/<group>/offsets/...`). */
  createOffsetStorage(): OffsetStorage;
  /** Resolves once `brokers/ids` has been read (rejects with the error of the read it waited for). */
  ready(): Promise<void>;
}

/** Creates the discovery; it starts reading `brokers/ids` at once. */
export function createZookeeperDiscovery(options: ZookeeperDiscoveryOptions): ZookeeperDiscovery {
  return new ZkDiscovery(options);
}

class ZkDiscovery implements ZookeeperDiscovery {
  readonly paths: MetaPaths;
  readonly zk: ZkClient;
  readonly registry: BrokerRegistry;
  readonly #ownsClient: boolean;
  readonly #publishWaitMs: number;
  readonly #log: Logger;
  readonly #joinGroup: JoinConsumerGroup;
  readonly #memberships = new Set<GroupMembership>();
  /** publishPartitions calls waiting for a first broker; ended by close(). */
  readonly #waits = new Set<(value: undefined) => void>();
  #closing: Promise<void> | undefined;

  constructor(options: ZookeeperDiscoveryOptions) {
    this.zk = options.zk;
    this.paths = options.paths ?? new MetaPaths();
    this.#ownsClient = options.ownsClient ?? false;
    this.#publishWaitMs = options.publishWaitMs ?? DEFAULT_PUBLISH_WAIT_MS;
    this.#log = options.log ?? componentLogger('client.zk', { zkRoot: this.paths.root });
    this.#joinGroup = options.joinGroup ?? joinConsumerGroup;
    this.registry = createBrokerRegistry({ zk: this.zk, paths: this.paths, coalesceMs: options.coalesceMs, retryMs: options.retryMs, log: this.#log });
  }

  async publishPartitions(topic: string, options?: { readonly waitMs?: number }): Promise<readonly PartitionRef[]> {
    this.#checkOpen();
    const now = await this.registry.publishPartitions(topic);
    if (now.length > 0) return now;
    // No broker yet: wait a little for one (brokers and producers are often started together).
    const waitMs = options?.waitMs ?? this.#publishWaitMs;
    const found = await new Promise<readonly PartitionRef[] | undefined>((resolve) => {
      const timer = setTimeout(() => finish(undefined), waitMs);
      const unsubscribe = this.registry.onPublishPartitionsChange(topic, (partitions) => {
        if (partitions.length > 0) finish(partitions);
      });
      const finish = (value: readonly PartitionRef[] | undefined): void => {
        clearTimeout(timer);
        unsubscribe();
        this.#waits.delete(finish);
        resolve(value);
      };
      this.#waits.add(finish);
    });
    this.#checkOpen();
    if (found !== undefined) return found;
    const last = await this.registry.publishPartitions(topic);
    if (last.length > 0) return last;
    throw new IllegalStateError(await this.#noBrokerMessage(topic));
  }

  onPublishPartitionsChange(topic: string, listener: (partitions: readonly PartitionRef[]) => void): () => void {
    if (this.#closing !== undefined) return () => undefined;
    return this.registry.onPublishPartitionsChange(topic, listener);
  }

  async joinGroup(subscription: GroupSubscription): Promise<GroupMembership> {
    this.#checkOpen();
    const membership = await this.#joinGroup({ zk: this.zk, paths: this.paths, subscription, partitions: this.registry, log: this.#log });
    this.#memberships.add(membership);
    const wrapped: GroupMembership = {
      leave: async () => {
        this.#memberships.delete(membership);
        await membership.leave();
      },
    };
    const permission = membership.commitPermission?.bind(membership);
    return permission === undefined ? wrapped : { ...wrapped, commitPermission: permission };
  }

  brokerUrls(): readonly string[] {
    return this.registry.masterUrls();
  }

  /** Resolves once the broker list was read once (for `getStats` right after start). */
  ready(): Promise<void> {
    return this.registry.ready();
  }

  createOffsetStorage(): OffsetStorage {
    return createZookeeperOffsetStorage({ zk: this.zk, paths: this.paths });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const finish of [...this.#waits]) finish(undefined);
      // Members still in a group (a consumer not closed) leave it, so their ownerships go now.
      await Promise.allSettled([...this.#memberships].map((m) => m.leave()));
      this.#memberships.clear();
      this.registry.close();
      if (this.#ownsClient) await this.zk.close();
    })();
    return this.#closing;
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new ClientClosedError('The ZooKeeper discovery');
  }

  /** Why no partition was found, with what would help the operator. */
  async #noBrokerMessage(topic: string): Promise<string> {
    const where = `${this.paths.brokerTopicsPub}`;
    let detail = '';
    try {
      const [brokers, topics] = await Promise.all([this.zk.children(this.paths.brokerIds), this.zk.children(this.paths.brokerTopicsPub)]);
      const brokerCount = brokers?.length ?? 0;
      const known = (topics ?? []).sort();
      detail =
        brokerCount === 0 && known.length === 0
          ? ` (nothing is registered under ${this.paths.root === '' ? '/' : this.paths.root}/brokers)`
          : ` (${brokerCount} broker id(s) under ${this.paths.brokerIds}; topics registered: ${known.length === 0 ? 'none' : known.slice(0, 20).join(', ')})`;
    } catch (error) {
      this.#log.debug({ err: error }, 'could not list the registrations for the error message');
    }
    return (
      `no broker has registered topic ${topic} under ${where} after waiting ${this.#publishWaitMs} ms${detail}; ` +
      `is the broker started with zk.zkEnable=true and the same zk.zkRoot (${this.paths.root === '' ? '/' : this.paths.root}) and zk.zkConnect (${this.zk.connectString}), ` +
      `and is the topic configured there?`
    );
  }
}
