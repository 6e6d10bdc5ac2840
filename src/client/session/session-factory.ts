/**
 * The entry point (MetaQ's `MessageSessionFactory`, one per application): it owns the shared
 * broker connections and the discovery, and creates producers and consumers.
 *
 * ```ts
 * const factory = createMessageSessionFactory({ serverUrl: 'meta://127.0.0.1:8123' }); // one broker
 * // or, for a cluster: createMessageSessionFactory({ zkConnect: '127.0.0.1:2181', zkRoot: '/meta' })
 * const producer = factory.createProducer();
 * await producer.publish('test');
 * const result = await producer.send({ topic: 'test', data: 'hello' });
 * await factory.close();
 * ```
 */
import { ClientClosedError, IllegalStateError } from '../../common/errors.js';
import { componentLogger } from '../../common/logger.js';
import type { ResponseFrame } from '../../protocol/frames.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { brokerErrorFor, unexpectedResponse } from '../broker-errors.js';
import { createMessageConsumer, type MessageConsumer } from '../consumer/consumer.js';
import type { BroadcastConsumerConfig, ConsumerConfig } from '../consumer/consumer-config.js';
import { ClientEmitter, type ClientEventListener, type ClientEventName, type ClientInstrumentation } from '../instrumentation.js';
import type { OffsetStorage } from '../offsets/offset-storage.js';
import { createMessageProducer, type MessageProducer, type ProducerOptions } from '../producer/producer.js';
import { ConnectionPool } from '../transport/connection-pool.js';
import type { OpaquelessRequest } from '../transport/request.js';
import type { BrokerDiscovery, PartitionRef } from './broker-discovery.js';
import { connectZookeeper } from '../../zk/zookeeper-client.js';
import { MetaPaths } from '../../zk/meta-paths.js';
import { createZookeeperDiscovery } from '../zk/zk-discovery.js';
import { broadcastConsumerConfig } from './broadcast.js';
import { createDirectDiscovery } from './direct-discovery.js';
import { resolveFactoryOptions, type MessageSessionFactoryOptions } from './factory-options.js';
import type { Closable, SessionContext } from './session-context.js';
import { parseStatsBody } from './stats-body.js';

/** Creates producers and consumers that share connections. Create with {@link createMessageSessionFactory}. */
export interface MessageSessionFactory extends ClientInstrumentation {
  /**
   * A new producer.
   *
   * @throws {ClientClosedError} after `close()`.
   */
  createProducer(options?: ProducerOptions): MessageProducer;
  /**
   * A new consumer. Without `offsetStorage`, offsets go to ZooKeeper in cluster mode
   * (`<zkRoot>/consumers/<group>/offsets`, MetaQ's default) and to a local file
   * (`~/.meta_offsets`) in direct mode; the consumer closes that storage with itself. A storage
   * passed in is the caller's to close.
   *
   * @throws {InvalidArgumentError} for a bad configuration (e.g. a group name with `.`);
   *   {@link ClientClosedError} after `close()`.
   */
  createConsumer(config: ConsumerConfig, offsetStorage?: OffsetStorage): MessageConsumer;
  /**
   * A broadcast consumer (MetaQ's `createBroadcastConsumer`, metaq-reference §6.8): its group
   * becomes `<group>-<local IP with . and : replaced by ->` (or `<group>-<broadcastId>`), a group
   * of its own, so every instance gets every message. Without `offsetStorage`, offsets go to a
   * local file (`~/.meta_offsets`), in cluster mode too.
   *
   * @throws {InvalidArgumentError} for a bad configuration; {@link ClientClosedError} after `close()`.
   */
  createBroadcastConsumer(config: BroadcastConsumerConfig, offsetStorage?: OffsetStorage): MessageConsumer;
  /** The partitions a producer sends `topic` to. */
  getPartitionsForTopic(topic: string): Promise<readonly PartitionRef[]>;
  /** The broker's configuration file (`stats config`), raw text. */
  getStats(item: 'config', brokerUrl?: string): Promise<string>;
  /**
   * `stats [item]` of a broker (default: the first known one), as `key → value`
   * (see docs/client.md for repeated keys).
   */
  getStats(item?: string, brokerUrl?: string): Promise<Record<string, string>>;
  /** Closes every producer and consumer created here, then the connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a session factory.
 *
 * @throws {InvalidArgumentError} for invalid options, naming the property.
 */
export function createMessageSessionFactory(options: MessageSessionFactoryOptions): MessageSessionFactory {
  return new SessionFactory(options);
}

const log = componentLogger('client');

/** A `stats` answer's body text; a non-200 answer throws. */
function interpretStats(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): string {
  const context = `${request.type === 'stats' && request.item !== undefined ? `stats ${request.item}` : 'stats'} on ${brokerUrl}`;
  if (response.type !== 'result') throw unexpectedResponse(response, context);
  if (response.code !== ResultCode.Success) throw brokerErrorFor(response.code, response.body, context);
  return response.body.toString('utf8');
}

class SessionFactory implements MessageSessionFactory {
  readonly #emitter = new ClientEmitter();
  readonly #pool: ConnectionPool;
  readonly #discovery: BrokerDiscovery;
  readonly #context: SessionContext;
  readonly #requestTimeoutMs: number;
  readonly #clients = new Set<Closable>();
  #closing: Promise<void> | undefined;

  constructor(options: MessageSessionFactoryOptions) {
    const resolved = resolveFactoryOptions(options);
    this.#requestTimeoutMs = resolved.requestTimeoutMs;
    this.#pool = new ConnectionPool(resolved.connection, this.#emitter);
    const server = resolved.server;
    const zookeeper = resolved.zookeeper;
    if (resolved.discovery !== undefined) this.#discovery = resolved.discovery;
    else if (server !== undefined) {
      this.#discovery = createDirectDiscovery({ brokerUrl: server.url, partitions: resolved.partitions, stats: (item) => this.#stats(item, server.url) });
    } else if (zookeeper !== undefined) {
      const zk = connectZookeeper({
        connectString: zookeeper.connectString,
        sessionTimeoutMs: zookeeper.sessionTimeoutMs,
        connectionTimeoutMs: zookeeper.connectionTimeoutMs,
      });
      this.#discovery = createZookeeperDiscovery({ zk, paths: new MetaPaths(zookeeper.root), ownsClient: true, publishWaitMs: resolved.requestTimeoutMs });
    } else throw new IllegalStateError('unreachable: resolveFactoryOptions requires serverUrl, zkConnect or discovery');
    this.#context = {
      pool: this.#pool,
      discovery: this.#discovery,
      emitter: this.#emitter,
      requestTimeoutMs: resolved.requestTimeoutMs,
      release: (client) => {
        this.#clients.delete(client);
      },
    };
    log.debug({ serverUrl: server?.url, zkConnect: zookeeper?.connectString, zkRoot: zookeeper?.root }, 'session factory created');
  }

  on<K extends ClientEventName>(event: K, listener: ClientEventListener<K>): () => void {
    return this.#emitter.on(event, listener);
  }

  createProducer(options?: ProducerOptions): MessageProducer {
    this.#checkOpen();
    const producer = createMessageProducer(this.#context, options);
    this.#clients.add(producer as MessageProducer & Closable);
    return producer;
  }

  createConsumer(config: ConsumerConfig, offsetStorage?: OffsetStorage): MessageConsumer {
    this.#checkOpen();
    if (offsetStorage !== undefined || this.#discovery.createOffsetStorage === undefined) return this.#consumer(config, offsetStorage);
    // The discovery's default storage (ZooKeeper): made here, so the consumer does not own it;
    // closed here once the consumer has closed (after its last commit).
    const storage = this.#discovery.createOffsetStorage();
    const closeStorage = (): void => {
      storage.close().catch((error: unknown) => log.warn({ err: error }, 'closing an offset storage failed'));
    };
    try {
      return this.#consumer(config, storage, closeStorage);
    } catch (error) {
      closeStorage();
      throw error;
    }
  }

  createBroadcastConsumer(config: BroadcastConsumerConfig, offsetStorage?: OffsetStorage): MessageConsumer {
    this.#checkOpen();
    // No storage given: the consumer makes and owns a local-file one, as MetaQ's broadcast factory.
    return this.#consumer(broadcastConsumerConfig(config), offsetStorage);
  }

  #consumer(config: ConsumerConfig, offsetStorage: OffsetStorage | undefined, closed?: () => void): MessageConsumer {
    const context: SessionContext =
      closed === undefined
        ? this.#context
        : {
            ...this.#context,
            release: (client) => {
              this.#context.release(client);
              closed();
            },
          };
    const consumer = createMessageConsumer(context, config, offsetStorage);
    this.#clients.add(consumer as MessageConsumer & Closable);
    return consumer;
  }

  getPartitionsForTopic(topic: string): Promise<readonly PartitionRef[]> {
    if (this.#closing !== undefined) return Promise.reject(new ClientClosedError('The session factory'));
    return this.#discovery.publishPartitions(topic);
  }

  getStats(item: 'config', brokerUrl?: string): Promise<string>;
  getStats(item?: string, brokerUrl?: string): Promise<Record<string, string>>;
  async getStats(item?: string, brokerUrl?: string): Promise<string | Record<string, string>> {
    this.#checkOpen();
    if (brokerUrl === undefined && this.#discovery.brokerUrls().length === 0) await this.#discovery.ready?.();
    const url = brokerUrl ?? this.#discovery.brokerUrls()[0];
    if (url === undefined) throw new IllegalStateError('No broker is known yet');
    const text = await this.#stats(item, url);
    return item === 'config' ? text : parseStatsBody(text);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#clients].map((client) => client.close()));
      await this.#discovery.close().catch((error: unknown) => log.warn({ err: error }, 'closing the discovery failed'));
      await this.#pool.close();
    })();
    return this.#closing;
  }

  #stats(item: string | undefined, brokerUrl: string): Promise<string> {
    return this.#pool.get(brokerUrl).request({ type: 'stats', item }, this.#requestTimeoutMs, interpretStats);
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new ClientClosedError('The session factory');
  }
}
