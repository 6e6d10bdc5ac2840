/**
 * The broker process's core: owns the configuration, the data directory lock, the message
 * store and the message id generator, and shuts them down in order.
 *
 * The network front (MetaQ protocol on `serverPort`, HTTP gateway), transactions and ZooKeeper
 * registration attach here in later stages.
 */
import type { BrokerConfig } from '../common/config/types.js';
import { componentLogger, type Logger } from '../common/logger.js';
import { ensureDurableDirectory } from '../store/file-io.js';
import { MessageIdGenerator } from '../store/message-id.js';
import { MessageStoreManager } from '../store/message-store-manager.js';
import { lockDataDirectory, type DataDirLock } from './data-dir-lock.js';

/** A running broker. */
export class MetaqBroker {
  readonly config: BrokerConfig;
  readonly store: MessageStoreManager;
  readonly ids: MessageIdGenerator;
  readonly #lock: DataDirLock;
  readonly #log: Logger;
  #stopping: Promise<void> | undefined;

  private constructor(config: BrokerConfig, store: MessageStoreManager, ids: MessageIdGenerator, lock: DataDirLock, log: Logger) {
    this.config = config;
    this.store = store;
    this.ids = ids;
    this.#lock = lock;
    this.#log = log;
  }

  /** Locks the data directory, recovers the store and starts background jobs. */
  static async start(config: BrokerConfig): Promise<MetaqBroker> {
    const log = componentLogger('broker', { brokerId: config.system.brokerId });
    await ensureDurableDirectory(config.system.dataPath);
    const lock = await lockDataDirectory(config.system.dataPath);
    try {
      const store = await MessageStoreManager.open(config);
      const ids = new MessageIdGenerator(config.system.brokerId, { floor: await store.messageIdFloor() });
      store.startRetentionSchedule();
      const broker = new MetaqBroker(config, store, ids, lock, log);
      log.info({ dataPath: config.system.dataPath, partitions: store.logs().length, config: config.file }, 'broker started');
      return broker;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Flushes and closes the store, then releases the data directory. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info('broker stopping');
      await this.store.close();
      await this.#lock.release();
      this.#log.info('broker stopped');
    })();
    return this.#stopping;
  }
}
