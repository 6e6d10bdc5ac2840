/**
 * The znodes one master broker writes, with their data (metaq-reference §4), built from
 * {@link MetaPaths} so the layout cannot drift from what the clients read.
 */
import { encodeTopicBrokerData, topicBrokerName, type MetaPaths } from '../../zk/meta-paths.js';
import type { TopicRegistration } from './topic-registration.js';

/** A znode path and the UTF-8 text it holds. */
export interface Znode {
  readonly path: string;
  readonly data: string;
}

/** The broker-level nodes of a master. */
export interface BrokerZnodes {
  /** `ids/<id>/master` (ephemeral): the URL. */
  readonly master: Znode;
  /** `ids/<id>` (persistent, legacy "compat for old clients"): the URL. */
  readonly legacyId: Znode;
  /** `ids/<id>/master_config_checksum` (ephemeral): CRC32 of server.ini, decimal. */
  readonly configChecksum: Znode;
}

/** The broker-level nodes of master `brokerId` reachable at `url`. */
export function brokerZnodes(paths: MetaPaths, brokerId: number, url: string, configChecksum: string): BrokerZnodes {
  return {
    master: { path: paths.brokerMaster(brokerId), data: url },
    legacyId: { path: paths.brokerIdNode(brokerId), data: url },
    configChecksum: { path: paths.brokerConfigChecksum(brokerId), data: configChecksum },
  };
}

/**
 * The ephemeral nodes of one topic on master `brokerId`, in the order MetaQ writes them: the
 * legacy `topics/<topic>/<id>-m` (partition count), then `topics-pub/<topic>/<id>-m` if the
 * topic accepts publishers and `topics-sub/<topic>/<id>-m` if it accepts subscribers (both
 * `{"numParts":N,"broker":"<id>-m"}`).
 */
export function topicZnodes(paths: MetaPaths, brokerId: number, topic: TopicRegistration): Znode[] {
  const name = topicBrokerName(brokerId);
  const json = encodeTopicBrokerData({ numParts: topic.numPartitions, broker: name });
  const nodes: Znode[] = [{ path: paths.legacyTopicBroker(topic.topic, brokerId), data: String(topic.numPartitions) }];
  if (topic.acceptPublish) nodes.push({ path: `${paths.topicPub(topic.topic)}/${name}`, data: json });
  if (topic.acceptSubscribe) nodes.push({ path: `${paths.topicSub(topic.topic)}/${name}`, data: json });
  return nodes;
}
