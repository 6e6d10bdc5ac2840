/**
 * The broker side of metaq, for embedding a broker in a Node.js process
 * (`import { MetaqBroker, loadBrokerConfig } from 'metaq/server'`).
 */
export { MetaqBroker } from './broker/broker.js';
export { loadBrokerConfig, parseBrokerConfig, topicConfigFor, parseDeletePolicy } from './common/config/index.js';
export type { BrokerConfig, SystemConfig, TopicConfig, ZookeeperConfig, DeletePolicy } from './common/config/index.js';
export { MessageStoreManager } from './store/message-store-manager.js';
export { PartitionLog, type AppendedBatch, type ReadResult } from './store/partition-log.js';
export { MessageIdGenerator, decodeMessageId, type MessageIdParts } from './store/message-id.js';
export { encodeRecord, decodeRecordAt, messageChecksum, RECORD_HEADER_SIZE, type RecordInput, type DecodedRecord } from './protocol/record.js';
export * from './common/errors.js';
