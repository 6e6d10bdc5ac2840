/**
 * MetaQ's znode layout (metaq-reference §4), in one place: every path metaq reads or writes in
 * ZooKeeper is built here, so that the layout the MetaQ 1.4 Java client expects cannot drift
 * between the broker, the producer and the consumer.
 *
 * ```
 * <root>/brokers/ids/<brokerId>                         persistent, "meta://host:port" (legacy)
 * <root>/brokers/ids/<brokerId>/master                  ephemeral,  "meta://host:port"
 * <root>/brokers/ids/<brokerId>/slave<slaveId>          ephemeral,  "meta://host:port"
 * <root>/brokers/ids/<brokerId>/master_config_checksum  ephemeral,  CRC32 of server.ini, decimal
 * <root>/brokers/topics/<topic>/<brokerId>-m            ephemeral,  partition count, decimal (legacy)
 * <root>/brokers/topics-pub/<topic>/<brokerId>-m        ephemeral,  {"numParts":N,"broker":"<brokerId>-m"}
 * <root>/brokers/topics-sub/<topic>/<brokerId>-m        ephemeral,  same JSON
 * <root>/consumers/<group>/ids/<group>_<consumerId>     ephemeral,  subscribed topics, comma-separated
 * <root>/consumers/<group>/owners/<topic>/<b>-<p>       ephemeral,  owner's <group>_<consumerId>
 * <root>/consumers/<group>/offsets/<topic>/<b>-<p>      persistent, "<msgId>-<offset>"
 * ```
 */
import { InvalidArgumentError } from '../common/errors.js';

/** MetaQ's default `zkRoot`. */
export const DEFAULT_ZK_ROOT = '/meta';

/**
 * MetaQ's normalisation of `zkRoot`: a leading `/` is added and a trailing `/` removed
 * (`meta/` → `/meta`). An empty root is the default.
 */
export function normalizeZkRoot(root: string | undefined): string {
  let value = (root ?? '').trim();
  if (value === '' || value === '/') return value === '/' ? '' : DEFAULT_ZK_ROOT;
  if (!value.startsWith('/')) value = `/${value}`;
  while (value.endsWith('/')) value = value.slice(0, -1);
  return value;
}

/** The role part of a broker's registration under a topic: `-m` for a master, `-s<n>` for slave n. */
export type BrokerRole = { readonly kind: 'master' } | { readonly kind: 'slave'; readonly slaveId: number };

/** `<brokerId>-m` or `<brokerId>-s<slaveId>`. */
export function topicBrokerName(brokerId: number, role: BrokerRole = { kind: 'master' }): string {
  return role.kind === 'master' ? `${brokerId}-m` : `${brokerId}-s${role.slaveId}`;
}

/** Parses a `topics-pub`/`topics-sub` child name; `undefined` for anything else. */
export function parseTopicBrokerName(name: string): { readonly brokerId: number; readonly role: BrokerRole } | undefined {
  const match = /^(\d+)-(m|s(\d+))$/.exec(name);
  if (match === null) return undefined;
  const brokerId = Number(match[1]);
  if (match[2] === 'm') return { brokerId, role: { kind: 'master' } };
  return { brokerId, role: { kind: 'slave', slaveId: Number(match[3]) } };
}

/** The data of a `topics-pub`/`topics-sub` node (MetaQ's `TopicBroker` JSON). */
export interface TopicBrokerData {
  readonly numParts: number;
  /** `<brokerId>-m` or `<brokerId>-s<slaveId>`. */
  readonly broker: string;
}

/** MetaQ's JSON, keys in MetaQ's order: `{"numParts":N,"broker":"<id>-m"}`. */
export function encodeTopicBrokerData(data: TopicBrokerData): string {
  return JSON.stringify({ numParts: data.numParts, broker: data.broker });
}

/** Parses a `topics-pub`/`topics-sub` node's JSON; `undefined` when it is not valid. */
export function decodeTopicBrokerData(text: string): TopicBrokerData | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object') return undefined;
    const { numParts, broker } = value as Record<string, unknown>;
    if (typeof numParts !== 'number' || !Number.isSafeInteger(numParts) || numParts < 0 || typeof broker !== 'string') return undefined;
    return { numParts, broker };
  } catch {
    return undefined;
  }
}

/** A partition's identity in ZooKeeper and in offset storages: `<brokerId>-<partition>`. */
export function partitionName(brokerId: number, partition: number): string {
  return `${brokerId}-${partition}`;
}

/** Parses `<brokerId>-<partition>`; `undefined` for anything else. */
export function parsePartitionName(name: string): { readonly brokerId: number; readonly partition: number } | undefined {
  const match = /^(\d+)-(\d+)$/.exec(name);
  if (match === null) return undefined;
  return { brokerId: Number(match[1]), partition: Number(match[2]) };
}

/** MetaQ's offset node data since 1.4: `<msgId>-<offset>`. */
export function encodeZkOffset(messageId: bigint, offset: number): string {
  return `${messageId}-${offset}`;
}

/**
 * Parses an offset node: `<msgId>-<offset>` split at the **last** `-` (the id may be negative),
 * or the legacy bare `<offset>` (message id then `-1`). `undefined` when unreadable.
 */
export function decodeZkOffset(text: string): { readonly messageId: bigint; readonly offset: number } | undefined {
  const value = text.trim();
  const cut = value.lastIndexOf('-');
  const offsetText = cut > 0 ? value.slice(cut + 1) : value;
  const idText = cut > 0 ? value.slice(0, cut) : '-1';
  if (!/^\d+$/.test(offsetText) || !/^-?\d+$/.test(idText)) return undefined;
  const offset = Number(offsetText);
  if (!Number.isSafeInteger(offset)) return undefined;
  return { messageId: BigInt(idText), offset };
}

/** MetaQ's consumer id string: `<group>_<consumerId>`. */
export function consumerIdString(group: string, consumerId: string): string {
  return `${group}_${consumerId}`;
}

function checkSegment(what: string, value: string): string {
  if (value === '' || value.includes('/')) throw new InvalidArgumentError(`${what} ${JSON.stringify(value)} cannot be used in a ZooKeeper path`);
  return value;
}

/** Builds every path of the layout under one root. */
export class MetaPaths {
  /** The normalised root, e.g. `/meta` (`''` for the ZooKeeper root itself). */
  readonly root: string;

  constructor(root?: string) {
    this.root = normalizeZkRoot(root);
  }

  /** `<root>/brokers/ids` */
  get brokerIds(): string {
    return `${this.root}/brokers/ids`;
  }

  /** `<root>/brokers/ids/<brokerId>` (persistent; data: the master URL, legacy). */
  brokerIdNode(brokerId: number): string {
    return `${this.brokerIds}/${brokerId}`;
  }

  /** `<root>/brokers/ids/<brokerId>/master` */
  brokerMaster(brokerId: number): string {
    return `${this.brokerIdNode(brokerId)}/master`;
  }

  /** `<root>/brokers/ids/<brokerId>/slave<slaveId>` */
  brokerSlave(brokerId: number, slaveId: number): string {
    return `${this.brokerIdNode(brokerId)}/slave${slaveId}`;
  }

  /** `<root>/brokers/ids/<brokerId>/master_config_checksum` */
  brokerConfigChecksum(brokerId: number): string {
    return `${this.brokerIdNode(brokerId)}/master_config_checksum`;
  }

  /** `<root>/brokers/topics` (legacy). */
  get brokerTopics(): string {
    return `${this.root}/brokers/topics`;
  }

  /** `<root>/brokers/topics-pub` */
  get brokerTopicsPub(): string {
    return `${this.root}/brokers/topics-pub`;
  }

  /** `<root>/brokers/topics-sub` */
  get brokerTopicsSub(): string {
    return `${this.root}/brokers/topics-sub`;
  }

  /** `<root>/brokers/topics/<topic>/<brokerId>-m` (legacy, data: partition count). */
  legacyTopicBroker(topic: string, brokerId: number, role?: BrokerRole): string {
    return `${this.brokerTopics}/${checkSegment('topic', topic)}/${topicBrokerName(brokerId, role)}`;
  }

  /** `<root>/brokers/topics-pub/<topic>` */
  topicPub(topic: string): string {
    return `${this.brokerTopicsPub}/${checkSegment('topic', topic)}`;
  }

  /** `<root>/brokers/topics-sub/<topic>` */
  topicSub(topic: string): string {
    return `${this.brokerTopicsSub}/${checkSegment('topic', topic)}`;
  }

  /** `<root>/consumers/<group>` */
  group(group: string): string {
    return `${this.root}/consumers/${checkSegment('group', group)}`;
  }

  /** `<root>/consumers/<group>/ids` */
  groupIds(group: string): string {
    return `${this.group(group)}/ids`;
  }

  /** `<root>/consumers/<group>/ids/<group>_<consumerId>` */
  groupMember(group: string, consumerId: string): string {
    return `${this.groupIds(group)}/${checkSegment('consumer id', consumerIdString(group, consumerId))}`;
  }

  /** `<root>/consumers/<group>/owners/<topic>` */
  groupOwners(group: string, topic: string): string {
    return `${this.group(group)}/owners/${checkSegment('topic', topic)}`;
  }

  /** `<root>/consumers/<group>/owners/<topic>/<brokerId>-<partition>` */
  partitionOwner(group: string, topic: string, brokerId: number, partition: number): string {
    return `${this.groupOwners(group, topic)}/${partitionName(brokerId, partition)}`;
  }

  /** `<root>/consumers/<group>/offsets/<topic>` */
  groupOffsets(group: string, topic: string): string {
    return `${this.group(group)}/offsets/${checkSegment('topic', topic)}`;
  }

  /** `<root>/consumers/<group>/offsets/<topic>/<brokerId>-<partition>` */
  partitionOffset(group: string, topic: string, brokerId: number, partition: number): string {
    return `${this.groupOffsets(group, topic)}/${partitionName(brokerId, partition)}`;
  }
}
