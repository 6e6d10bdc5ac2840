/**
 * The MetaQ client (docs/client.md): a session factory that owns one shared connection per
 * broker, producers, consumers, partition selectors and offset storages.
 *
 * - transport/: the connection (opaque-keyed request map, timeouts, reconnect, heartbeat,
 *   write coalescing) behind a small Transport interface;
 * - session/: the factory, its options, broker discovery in direct mode, broadcast groups;
 * - zk/: discovery through ZooKeeper (broker registrations, consumer groups);
 * - producer/: `publish`/`send`, partition selectors;
 * - consumer/: the fetch loop per partition, retries, the recover store, and the exactly-once
 *   mode with PostgreSQL;
 * - offsets/: the OffsetStorage interface, the local-file and the PostgreSQL storages;
 * - transaction/: local transactions and the XA resource of a producer.
 */
export { createMessageSessionFactory } from './session/session-factory.js';
export type { MessageSessionFactory } from './session/session-factory.js';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './session/factory-options.js';
export type { MessageSessionFactoryOptions } from './session/factory-options.js';
export type { BrokerDiscovery, PartitionRef } from './session/broker-discovery.js';
export { createDirectDiscovery } from './session/direct-discovery.js';
export type { DirectDiscoveryOptions } from './session/direct-discovery.js';
export { parseStatsBody } from './session/stats-body.js';
export { DEFAULT_ZK_CONNECTION_TIMEOUT_MS, DEFAULT_ZK_SESSION_TIMEOUT_MS } from './session/factory-options.js';
export { localBroadcastId } from './session/broadcast.js';
export { createZookeeperDiscovery, DEFAULT_PUBLISH_WAIT_MS } from './zk/zk-discovery.js';
export type { JoinConsumerGroup, ZookeeperDiscovery, ZookeeperDiscoveryOptions } from './zk/zk-discovery.js';
export { createBrokerRegistry, DEFAULT_REGISTRY_COALESCE_MS, DEFAULT_REGISTRY_RETRY_MS } from './zk/broker-registry.js';
export type { BrokerRegistry, BrokerRegistryOptions, RegisteredBroker } from './zk/broker-registry.js';
export type { TopicPartitionSource } from './zk/topic-partition-source.js';
export { DEFAULT_BROKER_PORT, parseBrokerUrl } from './broker-url.js';
export type { BrokerAddress } from './broker-url.js';
export type { ConsumedMessage, Message, MessageFilter, MessageListener, SendResult } from './message.js';
export type { MessageProducer, ProducerOptions, SendOptions } from './producer/producer.js';
export { hashKey, keyHashSelector, randomSelector, roundRobinSelector } from './producer/partition-selectors.js';
export type { PartitionSelector } from './producer/partition-selectors.js';
export type { MessageConsumer, SubscribeOptions } from './consumer/consumer.js';
export {
  DEFAULT_COMMIT_OFFSET_PERIOD_MS,
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_MAX_DELAY_FETCH_MS,
  DEFAULT_MAX_FETCH_RETRIES,
  DEFAULT_MAX_INCREASE_FETCH_DATA_RETRIES,
  DEFAULT_RECOVER_MESSAGE_INTERVAL_MS,
  defaultRecoverPath,
} from './consumer/consumer-config.js';
export type { ConsumerConfig, ResolvedConsumerConfig } from './consumer/consumer-config.js';
export type { BroadcastConsumerConfig } from './consumer/consumer-config.js';
export { FORBIDDEN_GROUP_CHARACTERS, groupNameError } from './consumer/group-name.js';
export { MAX_FETCH_SIZE } from './consumer/fetch-size.js';
export { recoverStoreDir } from './consumer/recover-store.js';
export type { OffsetCommitFence, OffsetStorage, PartitionOffset, StoredPartition } from './offsets/offset-storage.js';
export { createLocalOffsetStorage, defaultLocalOffsetsFile } from './offsets/local-offset-storage.js';
export type { LocalOffsetStorage } from './offsets/local-offset-storage.js';
export { createPostgresOffsetStorage } from './offsets/postgres-offset-storage.js';
export { createZookeeperOffsetStorage } from './offsets/zookeeper-offset-storage.js';
export type { ZookeeperOffsetStorage, ZookeeperOffsetStorageOptions } from './offsets/zookeeper-offset-storage.js';
export type { OffsetAdvance, PostgresOffsetStorage, PostgresOffsetStorageOptions } from './offsets/postgres-offset-storage.js';
export { DEFAULT_POSTGRES_OFFSETS_TABLE } from './offsets/postgres-offset-sql.js';
export type { PgIsolationLevel } from './offsets/pg-transaction.js';
export { exactlyOnce } from './consumer/postgres-exactly-once.js';
export type { ExactlyOnceHandler, ExactlyOnceListener, ExactlyOnceOptions } from './consumer/postgres-exactly-once.js';
export { defaultRecoverTable } from './consumer/postgres-recover-sql.js';
export type { ClientEventListener, ClientEventName, ClientEvents, ClientInstrumentation, ConsumerMessageEvent } from './instrumentation.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_IDLE_MS,
  DEFAULT_HEARTBEAT_MAX_FAILURES,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_RECONNECT_INITIAL_DELAY_MS,
  DEFAULT_RECONNECT_JITTER,
  DEFAULT_RECONNECT_MAX_DELAY_MS,
  DEFAULT_TIMER_RESOLUTION_MS,
} from './transport/connection-options.js';
export type { ConnectionSettings } from './transport/connection-options.js';
export type { BackoffOptions } from './transport/backoff.js';
export type { ConnectOptions, Transport, TransportConnector, TransportHandlers } from './transport/transport.js';
export { connectTcp } from './transport/tcp-transport.js';
export {
  DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS,
  DEFAULT_TRANSACTION_TIMEOUT_SECONDS,
  DEFAULT_UNIQUE_QUALIFIER_PREFIX,
  DEFAULT_XA_TIMEOUT_SECONDS,
  defaultUniqueQualifier,
  LocalTransactionState,
  uniqueQualifierError,
  XaBranchState,
  XaCode,
  xaCodeName,
  XaFlags,
  xidEquals,
} from './transaction/index.js';
export type {
  LocalTransactionStateName,
  LocalTransactionTransition,
  ProducerTransaction,
  TransactionOptions,
  XaBranchStateName,
  XaBranchTransition,
  XAResource,
  XAResourceOptions,
  Xid,
} from './transaction/index.js';
