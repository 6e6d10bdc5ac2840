/**
 * metaq's ZooKeeper layer: the {@link ZkClient} interface, its implementation over
 * `node-zookeeper-client` ({@link connectZookeeper}) and MetaQ's znode layout ({@link MetaPaths}).
 */
export type {
  Unsubscribe,
  ZkClient,
  ZkClientEvents,
  ZkClientOptions,
  ZkConnectionState,
  ZkCreateOptions,
  ZkCreateResult,
  ZkNode,
} from './zk-client.js';
export { ZookeeperError } from '../common/errors.js';
export { connectZookeeper, zkSessionCredentials, type ZkSessionCredentials } from './zookeeper-client.js';
export {
  DEFAULT_ZK_ROOT,
  MetaPaths,
  consumerIdString,
  decodeTopicBrokerData,
  decodeZkOffset,
  encodeTopicBrokerData,
  encodeZkOffset,
  normalizeZkRoot,
  parsePartitionName,
  parseTopicBrokerName,
  partitionName,
  topicBrokerName,
  type BrokerRole,
  type TopicBrokerData,
} from './meta-paths.js';
export { ancestorPaths, baseName, checkPath, childPath, parentPath } from './zk-path.js';
