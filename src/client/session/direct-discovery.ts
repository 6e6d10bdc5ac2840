/**
 * Discovery in direct-URL mode (`serverUrl`, no ZooKeeper): one broker serves every topic.
 *
 * How many partitions a topic has, in order of preference:
 * 1. the factory's `partitions: { [topic]: n }` option;
 * 2. the broker's own configuration, fetched once with `stats config` and read with the same
 *    parser as the broker (`[topic=…]` sections, wildcard patterns, `[system] numPartitions`);
 * 3. producers: partition `-1` (the broker picks one at random for every message);
 *    consumers: the partitions the broker has data for (`stats offsets`).
 *
 * (2) can fail on a broker whose server.ini this parser does not accept (a Java MetaQ broker
 * with keys metaq does not know): that is remembered, and (3) is used.
 */
import { IllegalStateError } from '../../common/errors.js';
import { componentLogger } from '../../common/logger.js';
import { parseBrokerConfig, topicConfigFor } from '../../common/config/index.js';
import type { BrokerConfig } from '../../common/config/types.js';
import type { BrokerDiscovery, GroupMembership, GroupSubscription, PartitionRef } from './broker-discovery.js';
import { parseStatsBody, statsLines } from './stats-body.js';

/** What {@link createDirectDiscovery} needs. */
export interface DirectDiscoveryOptions {
  /** The broker, `meta://host:port` (canonical form). */
  readonly brokerUrl: string;
  /** Partition counts that take precedence over the broker's configuration. */
  readonly partitions?: Readonly<Record<string, number>>;
  /** Sends `stats [item]` to the broker and resolves with the answer's body text. */
  readonly stats: (item: string | undefined) => Promise<string>;
}

const log = componentLogger('client');

/** A {@link BrokerDiscovery} for one broker reached directly. */
export function createDirectDiscovery(options: DirectDiscoveryOptions): BrokerDiscovery {
  return new DirectDiscovery(options);
}

class DirectDiscovery implements BrokerDiscovery {
  readonly #options: DirectDiscoveryOptions;
  /** The broker's parsed configuration; `null` when it cannot be parsed. Failed fetches are not cached. */
  #config: Promise<BrokerConfig | null> | undefined;
  #brokerId: number | undefined;

  constructor(options: DirectDiscoveryOptions) {
    this.#options = options;
  }

  async publishPartitions(topic: string): Promise<readonly PartitionRef[]> {
    const count = this.#options.partitions?.[topic] ?? (await this.#configuredPartitions(topic));
    const brokerId = this.#brokerId ?? -1;
    if (count === undefined) return [{ brokerId, brokerUrl: this.#options.brokerUrl, partition: -1 }];
    return this.#refs(brokerId, range(count));
  }

  onPublishPartitionsChange(): () => void {
    // One broker, configured partitions: nothing changes while the client runs.
    return () => undefined;
  }

  async joinGroup(subscription: GroupSubscription): Promise<GroupMembership> {
    // No coordination in direct mode: every member fetches every partition.
    for (const topic of subscription.topics) await subscription.onAssignment(topic, await this.subscribePartitions(topic));
    return { leave: async () => undefined };
  }

  /** Every partition of `topic` on the broker (exported for tests through joinGroup). */
  async subscribePartitions(topic: string): Promise<readonly PartitionRef[]> {
    const brokerId = await this.#resolveBrokerId();
    const count = this.#options.partitions?.[topic] ?? (await this.#configuredPartitions(topic));
    if (count !== undefined) return this.#refs(brokerId, range(count));
    const existing = await this.#partitionsWithData(topic);
    if (existing.length === 0) {
      const config = await this.#config;
      const why =
        config === null || config === undefined
          ? "the broker's configuration is not readable and the topic has no data yet; pass the session factory option " +
            `partitions: { '${topic}': <n> }`
          : `the broker is not configured for this topic (no [topic=...] section matches '${topic}') and it has no data`;
      throw new IllegalStateError(`Cannot tell how many partitions topic '${topic}' has on ${this.#options.brokerUrl}: ${why}`);
    }
    return this.#refs(brokerId, existing);
  }

  brokerUrls(): readonly string[] {
    return [this.#options.brokerUrl];
  }

  async close(): Promise<void> {
    // No watches or sessions in direct mode.
  }

  #refs(brokerId: number, partitions: readonly number[]): PartitionRef[] {
    return partitions.map((partition) => ({ brokerId, brokerUrl: this.#options.brokerUrl, partition }));
  }

  async #configuredPartitions(topic: string): Promise<number | undefined> {
    const config = await this.#brokerConfig();
    if (config === null) return undefined;
    return topicConfigFor(config, topic)?.numPartitions;
  }

  #brokerConfig(): Promise<BrokerConfig | null> {
    if (this.#config !== undefined) return this.#config;
    const pending = this.#options.stats('config').then((text) => {
      try {
        const config = parseBrokerConfig(text, { file: `${this.#options.brokerUrl} (stats config)` });
        this.#brokerId = config.system.brokerId;
        return config;
      } catch (error) {
        log.warn({ err: error, broker: this.#options.brokerUrl }, "cannot read the broker's configuration; partition counts come from other sources");
        return null;
      }
    });
    this.#config = pending;
    // A failed request (broker unreachable) is not an answer: ask again next time.
    pending.catch(() => {
      if (this.#config === pending) this.#config = undefined;
    });
    return pending;
  }

  async #resolveBrokerId(): Promise<number> {
    if (this.#brokerId !== undefined) return this.#brokerId;
    await this.#brokerConfig();
    if (this.#brokerId !== undefined) return this.#brokerId;
    const id = Number(parseStatsBody(await this.#options.stats(undefined))['broker_id']);
    this.#brokerId = Number.isInteger(id) ? id : 0;
    return this.#brokerId;
  }

  async #partitionsWithData(topic: string): Promise<number[]> {
    // Lines look like `<topic> part <p> min_offset <n> max_offset <n>`.
    const partitions: number[] = [];
    for (const line of statsLines(await this.#options.stats('offsets'))) {
      const [name, part, partition] = line.split(' ');
      if (name === topic && part === 'part' && partition !== undefined && /^\d+$/.test(partition)) partitions.push(Number(partition));
    }
    return partitions.sort((a, b) => a - b);
  }
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
