/**
 * The broker process's core: owns the configuration, the data directory lock, the message
 * store, the message id generator, the MetaQ protocol front and the HTTP gateway, and starts
 * and stops them in order.
 *
 * With `zk.zkEnable=true` the broker also registers in ZooKeeper (zk/broker-registration.ts)
 * once its port is open, in the background: an unreachable ZooKeeper never stops it serving.
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
import { ConsumerFilters, loadConsumerFilters } from './filters/filter-loader.js';
import { BrokerStats } from './stats/broker-stats.js';
import type { ZkClient, ZkClientOptions } from '../zk/zk-client.js';
import { MetaPaths } from '../zk/meta-paths.js';
import { BrokerRegistration, type RegistrationState } from './zk/broker-registration.js';
import { brokerUrl } from './zk/broker-url.js';
import { configFileChecksum } from './zk/config-checksum.js';
import { describeTopic, topicsToRegister } from './zk/topic-registration.js';

/** Options of {@link MetaqBroker.start}. */
export interface BrokerStartOptions {
  /** How long shutdown waits for in-flight requests before closing connections (default 10 s). */
  readonly drainTimeoutMs?: number;
  /**
   * Opens the ZooKeeper session when `zk.zkEnable=true`; default `connectZookeeper` of
   * src/zk/zookeeper-client.ts. Tests pass an in-memory fake.
   */
  readonly connectZookeeper?: (options: ZkClientOptions) => ZkClient;
}

/** {@link MetaqBroker.zookeeperState}: `disabled` with `zk.zkEnable=false`. */
export type BrokerZookeeperState = 'disabled' | RegistrationState;

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
  #filters: ConsumerFilters = ConsumerFilters.NONE;
  #stopping: Promise<void> | undefined;
  #registration: BrokerRegistration | undefined;
  #unsubscribeTopicCreated: (() => void) | undefined;

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
    // Server-side consumer filters first: a bad filter module stops the start before anything is locked.
    const filters = await loadConsumerFilters(config);
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
      broker.#filters = filters;
      const self = broker;
      broker.#transactions = TransactionEngine.start({ config, store, ids, stats: broker.stats, context: () => self.#commandContext() }, engine);
      await broker.#listen();
      if (config.zookeeper.zkEnable) await broker.#startRegistration(options.connectZookeeper);
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
      brokerUrl: () => brokerUrl(system.hostName, this.port),
      connectionCount: () => this.#server?.connectionCount ?? 0,
      filters: this.#filters,
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

  /**
   * Starts the ZooKeeper registration (background; returns once it is under way): the broker
   * URL needs the bound port, so this runs after {@link #listen}. Topics a put creates later are
   * registered through the store's topic-created hook.
   */
  async #startRegistration(connect: ((options: ZkClientOptions) => ZkClient) | undefined): Promise<void> {
    const { zookeeper, system } = this.config;
    // Loaded lazily: a standalone broker never loads the ZooKeeper library.
    const open = connect ?? (await import('../zk/zookeeper-client.js')).connectZookeeper;
    const checksum = await configFileChecksum(this.config);
    const client = open({ connectString: zookeeper.zkConnect, sessionTimeoutMs: zookeeper.zkSessionTimeoutMs, connectionTimeoutMs: zookeeper.zkConnectionTimeoutMs });
    const registration = new BrokerRegistration({
      client,
      paths: new MetaPaths(zookeeper.zkRoot),
      brokerId: system.brokerId,
      url: this.url,
      configChecksum: checksum,
      describeTopic: (topic) => describeTopic(this.store, topic),
      syncTimeMs: zookeeper.zkSyncTimeMs,
      unreachableNoticeMs: Math.min(3000, zookeeper.zkConnectionTimeoutMs),
      logger: componentLogger('zk-registration', { brokerId: system.brokerId }),
    });
    this.#registration = registration;
    // Subscribed before the topics are listed, so a topic created in between is not missed.
    this.#unsubscribeTopicCreated = this.store.onTopicCreated((topic) => registration.registerTopic(topic));
    registration.start(topicsToRegister(this.config, this.store));
  }

  /**
   * Where the ZooKeeper registration stands: `disabled` (zk.zkEnable=false), `registering`
   * (also while ZooKeeper is unreachable), `waiting-for-previous-session`, `registered`, `stopped`.
   */
  get zookeeperState(): BrokerZookeeperState {
    return this.#registration?.state ?? 'disabled';
  }

  /** The ZooKeeper registration, when zk.zkEnable=true (for tests and operator tools). */
  get zookeeperRegistration(): BrokerRegistration | undefined {
    return this.#registration;
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
    return brokerUrl(this.config.system.hostName, this.port);
  }

  /**
   * Stops accepting connections, answers requests in progress, then flushes and closes the
   * store and releases the data directory. Idempotent. With ZooKeeper, the broker first
   * deregisters and waits `zk.zkSyncTimeMs` (clients move away while the port still answers),
   * and closes its session once the port is closed.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info('broker stopping');
      this.#ready = false;
      this.#unsubscribeTopicCreated?.();
      const closePort = async (): Promise<void> => {
        await this.#server?.close(this.#drainTimeoutMs);
      };
      if (this.#registration !== undefined) await this.#registration.stop(closePort);
      else await closePort();
      await this.#http?.close();
      await this.#transactions?.close();
      await this.store.close();
      await this.#lock.release();
      this.#log.info('broker stopped');
    })();
    return this.#stopping;
  }
}

