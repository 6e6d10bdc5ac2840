/**
 * The broker process's core: owns the configuration, the data directory lock, the message
 * store, the message id generator, the MetaQ protocol front and the HTTP gateway, and starts
 * and stops them in order.
 *
 * ZooKeeper registration attaches here in a later stage.
 */
import type { BrokerConfig } from '../common/config/types.js';
import { componentLogger, type Logger } from '../common/logger.js';
import { metaqVersion } from '../common/version.js';
import { ensureDurableDirectory } from '../store/file-io.js';
import { MessageIdGenerator } from '../store/message-id.js';
import { MessageStoreManager } from '../store/message-store-manager.js';
import type { BrokerContext } from './commands/broker-context.js';
import { TransactionEngine, type RecoveredEngine } from '../transaction/transaction-engine.js';
import { lockDataDirectory, type DataDirLock } from './data-dir-lock.js';
import { HttpGateway } from './http/http-gateway.js';
import { BrokerServer } from './network/broker-server.js';
import { PartitionGate } from './partition-gate.js';
import { BrokerStats } from './stats/broker-stats.js';

/** Options of {@link MetaqBroker.start}. */
export interface BrokerStartOptions {
  /** How long shutdown waits for in-flight requests before closing connections (default 10 s). */
  readonly drainTimeoutMs?: number;
}

/** A running broker. */
export class MetaqBroker {
  readonly config: BrokerConfig;
  readonly store: MessageStoreManager;
  readonly ids: MessageIdGenerator;
  readonly stats: BrokerStats;
  readonly partitions: PartitionGate;
  readonly #lock: DataDirLock;
  readonly #log: Logger;
  readonly #drainTimeoutMs: number;
  #server: BrokerServer | undefined;
  #http: HttpGateway | undefined;
  #ready = false;
  #transactions: TransactionEngine | undefined;
  #context: BrokerContext | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(config: BrokerConfig, store: MessageStoreManager, ids: MessageIdGenerator, lock: DataDirLock, log: Logger, options: BrokerStartOptions) {
    this.config = config;
    this.store = store;
    this.ids = ids;
    this.#lock = lock;
    this.#log = log;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.stats = new BrokerStats((topic) => store.topicConfig(topic)?.stat ?? false);
    this.partitions = new PartitionGate();
  }

  /** The transaction engine (operator actions: list, heuristic commit/rollback, forget). */
  get transactions(): TransactionEngine {
    if (this.#transactions === undefined) throw new Error('the transaction engine is not started');
    return this.#transactions;
  }

  /** Locks the data directory, recovers the store and the transactions, starts background jobs and listens. */
  static async start(config: BrokerConfig, options: BrokerStartOptions = {}): Promise<MetaqBroker> {
    const log = componentLogger('broker', { brokerId: config.system.brokerId });
    await ensureDurableDirectory(config.system.dataPath);
    const lock = await lockDataDirectory(config.system.dataPath);
    let broker: MetaqBroker | undefined;
    try {
      const store = await MessageStoreManager.open(config);
      let engine: RecoveredEngine;
      try {
        // Transactions recover before anything is served: a prepared branch must be listed by
        // the first RECOVER, and a commit interrupted by a crash completed before any read.
        engine = await TransactionEngine.recover(config, store);
      } catch (error) {
        await store.close();
        throw error;
      }
      const storeFloor = await store.messageIdFloor();
      const floor = storeFloor > engine.maxMessageId ? storeFloor : engine.maxMessageId;
      const ids = new MessageIdGenerator(config.system.brokerId, { floor });
      broker = new MetaqBroker(config, store, ids, lock, log, options);
      const self = broker;
      broker.#transactions = TransactionEngine.start({ config, store, ids, stats: broker.stats, context: () => self.#commandContext() }, engine);
      await broker.#listen();
      store.startRetentionSchedule();
      broker.#ready = true;
      log.info(
        { port: broker.port, httpPort: broker.httpPort, dataPath: config.system.dataPath, partitions: store.logs().length, config: config.file },
        'broker started',
      );
      return broker;
    } catch (error) {
      if (broker !== undefined) await broker.stop();
      else await lock.release();
      throw error;
    }
  }

  /** The context command handlers run with (built once). */
  #commandContext(): BrokerContext {
    const { system } = this.config;
    const transactions = this.#transactions;
    if (transactions === undefined) throw new Error('the transaction engine is not started');
    this.#context ??= {
      config: this.config,
      store: this.store,
      ids: this.ids,
      stats: this.stats,
      partitions: this.partitions,
      version: metaqVersion(),
      transactions,
      brokerUrl: () => `meta://${system.hostName}:${this.port}`,
      connectionCount: () => this.#server?.connectionCount ?? 0,
    };
    return this.#context;
  }

  async #listen(): Promise<void> {
    const { system } = this.config;
    const context = this.#commandContext();
    this.#server = await BrokerServer.listen(context, system.serverHost, system.serverPort, componentLogger('network', { brokerId: system.brokerId }));
    if (system.httpPort > 0) {
      this.#http = await HttpGateway.listen(context, system.httpHost, system.httpPort, () => this.#ready, this.transactions, componentLogger('http', { brokerId: system.brokerId }));
    }
  }

  /** The MetaQ protocol port actually bound (useful with serverPort=0). */
  get port(): number {
    return this.#server?.port ?? 0;
  }

  /** The HTTP gateway port, or 0 when it is off. */
  get httpPort(): number {
    return this.#http?.port ?? 0;
  }

  /** `meta://host:port` of this broker. */
  get url(): string {
    return `meta://${this.config.system.hostName}:${this.port}`;
  }

  /**
   * Stops accepting connections, answers requests in progress, then flushes and closes the
   * store and releases the data directory. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info('broker stopping');
      this.#ready = false;
      await this.#server?.close(this.#drainTimeoutMs);
      await this.#http?.close();
      await this.#transactions?.close();
      await this.store.close();
      await this.#lock.release();
      this.#log.info('broker stopped');
    })();
    return this.#stopping;
  }
}

