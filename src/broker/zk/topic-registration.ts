/**
 * Which topics a broker registers in ZooKeeper and how (metaq-reference §4, "Broker
 * registration"): every concrete topic of the configuration and every topic with a store on
 * disk, with its partition count and whether it takes publishers and subscribers.
 */
import { configuredTopicNames } from '../../common/config/topic-lookup.js';
import type { BrokerConfig, TopicConfig } from '../../common/config/types.js';

/** How one topic is registered. */
export interface TopicRegistration {
  readonly topic: string;
  /** The `numParts` published (decimal in the legacy node, in the JSON of the others). */
  readonly numPartitions: number;
  /** Registered under `topics-pub` only when true. */
  readonly acceptPublish: boolean;
  /** Registered under `topics-sub` only when true. */
  readonly acceptSubscribe: boolean;
}

/** What the registration needs to know of the store (a subset of `MessageStoreManager`). */
export interface TopicCatalog {
  /** The topic's configuration after inheritance (wildcard sections included), if configured. */
  topicConfig(topic: string): TopicConfig | undefined;
  /** Every partition log on disk. */
  logs(): readonly { readonly topic: string; readonly partition: number }[];
}

/** Configured concrete topics (file order), then the other topics with a store, sorted; no duplicates. */
export function topicsToRegister(config: BrokerConfig, catalog: TopicCatalog): string[] {
  const configured = configuredTopicNames(config);
  const stored = [...new Set(catalog.logs().map((log) => log.topic))].filter((topic) => !configured.includes(topic)).sort();
  return [...configured, ...stored];
}

/**
 * How `topic` is registered, or `undefined` when the broker neither has it configured nor has
 * a store for it.
 *
 * A configured topic (an exact or a wildcard section) publishes its configured partition count
 * and accept flags, as MetaQ. A topic found on disk without any section is not one MetaQ could
 * register (it failed on the missing config); metaq registers what the broker actually serves
 * for it: gets of the partitions on disk (`topics-sub`, and the legacy node), never puts (a put
 * to an unconfigured topic is refused, so no `topics-pub`).
 */
export function describeTopic(catalog: TopicCatalog, topic: string): TopicRegistration | undefined {
  const config = catalog.topicConfig(topic);
  if (config !== undefined) {
    return { topic, numPartitions: config.numPartitions, acceptPublish: config.acceptPublish, acceptSubscribe: config.acceptSubscribe };
  }
  let highest = -1;
  for (const log of catalog.logs()) if (log.topic === topic && log.partition > highest) highest = log.partition;
  if (highest < 0) return undefined;
  return { topic, numPartitions: highest + 1, acceptPublish: false, acceptSubscribe: true };
}
