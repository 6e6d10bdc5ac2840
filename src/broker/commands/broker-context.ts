/**
 * Everything a command handler may use. Handlers get this small interface, not the whole
 * broker, so they can be tested with a real store and no sockets.
 */
import type { BrokerConfig } from '../../common/config/types.js';
import type { MessageIdGenerator } from '../../store/message-id.js';
import type { MessageStoreManager } from '../../store/message-store-manager.js';
import type { ConsumerFilters } from '../filters/filter-loader.js';
import type { PartitionGate } from '../partition-gate.js';
import type { BrokerStats } from '../stats/broker-stats.js';
import type { TransactionHandler } from './transaction-handler.js';

/** What command handlers need from the broker. */
export interface BrokerContext {
  readonly config: BrokerConfig;
  readonly store: MessageStoreManager;
  readonly ids: MessageIdGenerator;
  readonly stats: BrokerStats;
  readonly partitions: PartitionGate;
  /** Transactional puts and the `transaction` command. */
  readonly transactions: TransactionHandler;
  /** `meta://<host>:<port>`, used in error texts. */
  brokerUrl(): string;
  /** The version string `version` answers with. */
  readonly version: string;
  /** Open client connections (TCP). */
  connectionCount(): number;
  /** Server-side consumer filters (`group.<name>=<module>`); none when absent. */
  readonly filters?: ConsumerFilters;
}
