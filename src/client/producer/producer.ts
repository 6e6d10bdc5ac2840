/**
 * The producer (MetaQ's `MessageProducer`): `publish(topic)` once, then `send()` as many
 * messages as you like, concurrently. Sends share the factory's connection to each broker and
 * are pipelined on it; nothing is retried automatically, because a send that failed with a
 * connection error may still have been stored (MetaQ retries nothing either).
 *
 * Transactions (docs/transactions.md, "Client API"): `beginTransaction()` for a local
 * transaction, `getXAResource()` for a branch of a two-phase commit; both live in
 * src/client/transaction/ and reach the broker through this producer (its {@link TransactionHost}
 * side), so that `close()` waits for their requests and rolls back open local transactions.
 */
import { ClientClosedError, IllegalStateError, InvalidArgumentError } from '../../common/errors.js';
import { componentLogger } from '../../common/logger.js';
import { topicNameError } from '../../common/config/index.js';
import { encodeMessageData } from '../../protocol/message-data.js';
import { messageChecksum } from '../../protocol/record.js';
import type { TransactionKey } from '../../protocol/transaction-key.js';
import type { Message, SendResult } from '../message.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import type { Closable, SessionContext } from '../session/session-context.js';
import type { OpaquelessRequest, RequestOwner, ResponseInterpreter } from '../transport/request.js';
import { createProducerTransaction, type ProducerTransaction, type TransactionOptions } from '../transaction/producer-transaction.js';
import { LocalKeyGenerator } from '../transaction/session-id.js';
import type { ProducerBound, TransactionHost } from '../transaction/transaction-host.js';
import { createXaResource, type XAResource, type XAResourceOptions } from '../transaction/xa-resource.js';
import { roundRobinSelector, type PartitionSelector } from './partition-selectors.js';
import { interpretPut } from './put-response.js';

const log = componentLogger('client.producer');

/** Options of `createProducer`. */
export interface ProducerOptions {
  /** How messages are spread over partitions; default {@link roundRobinSelector}. */
  readonly selector?: PartitionSelector;
  /** Default timeout of a send in ms (default: the factory's `requestTimeoutMs`, 3000). */
  readonly sendTimeoutMs?: number;
  /**
   * MetaQ's `setDefaultTopic` (cluster mode): a topic that no broker has registered yet is sent
   * to the brokers that serve this topic, with partition `-1` so that the broker picks one
   * (and creates the topic from a wildcard `[topic=...]` section). Once a broker registers the
   * topic, its own partitions are used. Without it, sends to an unregistered topic fail.
   */
  readonly defaultTopic?: string;
}

/** Options of one send. */
export interface SendOptions {
  /** How long to wait for the broker's answer, reconnect included (default: the producer's). */
  readonly timeoutMs?: number;
}

/** Sends messages. Create with `factory.createProducer()`. */
export interface MessageProducer {
  /** The partition selector in use. */
  readonly selector: PartitionSelector;
  /**
   * Declares that this producer sends to `topic` (MetaQ requires it before any send) and finds
   * the topic's partitions. Idempotent; resolves when the partitions are known.
   *
   * @throws (rejects) when the broker cannot be asked (the topic stays declared; the next send
   *   asks again).
   */
  publish(topic: string): Promise<void>;
  /**
   * Sends one message; resolves once the broker stored it (with group commit, once it is on
   * disk). Many sends may be in flight at once.
   *
   * @throws (rejects) {@link IllegalStateError} when `publish(topic)` was not called;
   *   {@link InvalidArgumentError} for a malformed message; `BrokerError` when the broker
   *   refused it (`METAQ_ERR_PARTITION_CLOSED` for a closed partition); `RequestTimeoutError`
   *   or `ConnectionError` (both retriable; the message may or may not have been stored);
   *   {@link ClientClosedError} after `close()`.
   */
  send(message: Message, options?: SendOptions): Promise<SendResult>;
  /**
   * Starts a local transaction (nothing is sent before its first `send`). Several may be open
   * at once; each has its own key `TX:<sessionId>:<n>`. See docs/transactions.md "Client API".
   *
   * @throws {InvalidArgumentError} for bad options; {@link ClientClosedError} after `close()`.
   */
  beginTransaction(options?: TransactionOptions): ProducerTransaction;
  /**
   * An XA resource (`javax.transaction.xa.XAResource`) on one broker, for a transaction
   * manager; `xaResource.send(xid, message)` puts messages into a branch. Call after
   * `publish()` of the topics you will send, so the broker can be chosen among those hosting
   * all of them.
   *
   * @throws {InvalidArgumentError} for a bad unique qualifier or option; {@link IllegalStateError}
   *   when no broker is known yet; {@link ClientClosedError} after `close()`.
   */
  getXAResource(options?: XAResourceOptions): XAResource;
  /** The producer's session id, `<host>-<epochMs>-<pid>.<n>` (the middle of its local transaction keys). */
  readonly sessionId: string;
  /**
   * Refuses new sends, rolls back this producer's open local transactions (XA branches are left
   * to their transaction manager), and resolves once every request in flight has settled.
   * Idempotent.
   */
  close(): Promise<void>;
}

/** Creates a producer. Internal: applications use the session factory. */
export function createMessageProducer(context: SessionContext, options: ProducerOptions = {}): MessageProducer {
  return new Producer(context, options);
}

/** What the producer knows about a published topic. */
interface TopicState {
  /** The partitions sends choose from; kept fresh by the discovery's change events. */
  partitions: readonly PartitionRef[] | undefined;
  resolving: Promise<readonly PartitionRef[]> | undefined;
  /** Incremented by every change event: an answer asked before it is stale. */
  version: number;
  /** Stops the change events (at close). */
  unsubscribe: () => void;
}

class Producer implements MessageProducer, TransactionHost, RequestOwner, Closable {
  readonly selector: PartitionSelector;
  readonly #context: SessionContext;
  readonly #timeoutMs: number;
  readonly #defaultTopic: string | undefined;
  readonly #topics = new Map<string, TopicState>();
  readonly #bound = new Set<ProducerBound>();
  #keys: LocalKeyGenerator | undefined;
  #inFlight = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(context: SessionContext, options: ProducerOptions) {
    this.#context = context;
    this.selector = options.selector ?? roundRobinSelector();
    this.#timeoutMs = options.sendTimeoutMs ?? context.requestTimeoutMs;
    const defaultTopic = options.defaultTopic;
    if (defaultTopic !== undefined && (typeof defaultTopic !== 'string' || topicNameError(defaultTopic) !== undefined)) {
      throw new InvalidArgumentError(`ProducerOptions.defaultTopic ${JSON.stringify(defaultTopic)} is not a valid topic name`);
    }
    this.#defaultTopic = defaultTopic;
  }

  async publish(topic: string): Promise<void> {
    if (this.#closed) throw new ClientClosedError('The producer');
    const problem = typeof topic === 'string' ? topicNameError(topic) : 'it is not a string';
    if (problem !== undefined) throw new InvalidArgumentError(`publish: invalid topic ${JSON.stringify(topic)}: ${problem}`);
    let state = this.#topics.get(topic);
    if (state === undefined) {
      const created: TopicState = { partitions: undefined, resolving: undefined, version: 0, unsubscribe: () => undefined };
      // Subscribed before the first answer is asked for, so that no change can fall in between.
      // A broker that registers later is used from its event on, one that leaves is no longer
      // chosen (its sends in flight fail or succeed on their own).
      created.unsubscribe = this.#context.discovery.onPublishPartitionsChange(topic, (partitions) => {
        created.version += 1;
        created.partitions = partitions;
        log.debug({ topic, partitions: partitions.length, brokers: [...new Set(partitions.map((p) => p.brokerUrl))] }, 'partitions of a published topic changed');
      });
      this.#topics.set(topic, (state = created));
    }
    await this.#resolve(topic, state);
  }

  send(message: Message, options?: SendOptions): Promise<SendResult> {
    if (this.#closed) return Promise.reject(new ClientClosedError('The producer'));
    const state = this.#topics.get(message.topic);
    if (state === undefined) {
      return Promise.reject(new IllegalStateError(`Call producer.publish('${message.topic}') before sending to topic '${message.topic}'`));
    }
    const partitions = state.partitions;
    // Unknown yet, or none available right now (every broker of the topic left): ask the
    // discovery, which waits a little for a broker and then says why there is none.
    const timeoutMs = options?.timeoutMs ?? this.#timeoutMs;
    if (partitions === undefined || partitions.length === 0) {
      return this.#resolve(message.topic, state).then((resolved) => {
        if (this.#closed) throw new ClientClosedError('The producer');
        return this.#put(message, resolved, timeoutMs);
      });
    }
    try {
      return this.#put(message, partitions, timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  beginTransaction(options?: TransactionOptions): ProducerTransaction {
    if (this.#closed) throw new ClientClosedError('The producer');
    return createProducerTransaction(this, options);
  }

  getXAResource(options?: XAResourceOptions): XAResource {
    if (this.#closed) throw new ClientClosedError('The producer');
    return createXaResource(this, options);
  }

  get sessionId(): string {
    return this.keys.sessionId;
  }

  // TransactionHost: what transactions and XA resources use (see transaction-host.ts).

  get keys(): LocalKeyGenerator {
    // Created on first use: finding the local address is not free, and most producers never need it.
    this.#keys ??= new LocalKeyGenerator();
    return this.#keys;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get sendTimeoutMs(): number {
    return this.#timeoutMs;
  }

  async partitionsFor(topic: string): Promise<readonly PartitionRef[]> {
    if (this.#closed) throw new ClientClosedError('The producer');
    const state = this.#topics.get(topic);
    if (state === undefined) throw new IllegalStateError(`Call producer.publish('${topic}') before sending to topic '${topic}'`);
    return this.#resolve(topic, state);
  }

  publishedBrokerUrls(): readonly string[] {
    let common: Set<string> | undefined;
    for (const state of this.#topics.values()) {
      if (state.partitions === undefined) continue;
      const urls = new Set(state.partitions.map((p) => p.brokerUrl));
      common = common === undefined ? urls : new Set([...common].filter((url) => urls.has(url)));
    }
    return common === undefined ? [] : [...common].sort();
  }

  knownBrokerUrls(): readonly string[] {
    return this.#context.discovery.brokerUrls();
  }

  putInTransaction(ref: PartitionRef, message: Message, key: TransactionKey, timeoutMs: number): Promise<SendResult> {
    try {
      const { topic, data, flag } = encodeOutgoing(message);
      const connection = this.#context.pool.get(ref.brokerUrl);
      this.#inFlight += 1;
      return connection.request({ type: 'put', topic, partition: ref.partition, data, flag, checksum: messageChecksum(data), transactionKey: key }, timeoutMs, interpretPut, this);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  request<T>(brokerUrl: string, frame: OpaquelessRequest, timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T> {
    try {
      const connection = this.#context.pool.get(brokerUrl);
      this.#inFlight += 1;
      return connection.request(frame, timeoutMs, interpret, this);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  bind(bound: ProducerBound): () => void {
    this.#bound.add(bound);
    return () => {
      this.#bound.delete(bound);
    };
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      // Open local transactions are rolled back explicitly: the connection is shared, so the
      // broker would otherwise keep them until they time out.
      for (const state of this.#topics.values()) state.unsubscribe();
      await Promise.all([...this.#bound].map((bound) => bound.producerClosing()));
      if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      this.#context.release(this);
    })();
    return this.#closing;
  }

  /** Called by the connection as each send settles. */
  requestSettled(): void {
    this.#inFlight -= 1;
    if (this.#inFlight === 0) this.#idle?.();
  }

  #put(message: Message, partitions: readonly PartitionRef[], timeoutMs: number): Promise<SendResult> {
    const { topic, data, flag } = encodeOutgoing(message);
    if (partitions.length === 0) throw new IllegalStateError(`No partition of topic '${topic}' is available: no broker serves it at the moment`);
    const ref = partitions.length === 1 ? (partitions[0] as PartitionRef) : this.selector.select(topic, partitions, message);
    const connection = this.#context.pool.get(ref.brokerUrl);
    this.#inFlight += 1;
    return connection.request(
      { type: 'put', topic, partition: ref.partition, data, flag, checksum: messageChecksum(data), transactionKey: undefined },
      timeoutMs,
      interpretPut,
      this,
    );
  }

  #resolve(topic: string, state: TopicState): Promise<readonly PartitionRef[]> {
    if (state.partitions !== undefined && state.partitions.length > 0) return Promise.resolve(state.partitions);
    const version = state.version;
    state.resolving ??= this.#publishPartitions(topic).then(
      (partitions) => {
        state.resolving = undefined;
        // A change event that came meanwhile is newer than this answer.
        if (state.version === version || state.partitions === undefined || state.partitions.length === 0) state.partitions = partitions;
        return state.partitions;
      },
      (error: unknown) => {
        state.resolving = undefined;
        throw error;
      },
    );
    return state.resolving;
  }

  /** The topic's partitions, or the default topic's brokers (partition -1) when no broker serves it yet. */
  async #publishPartitions(topic: string): Promise<readonly PartitionRef[]> {
    const fallback = this.#defaultTopic;
    const { discovery } = this.#context;
    if (fallback === undefined || fallback === topic) return discovery.publishPartitions(topic);
    try {
      return await discovery.publishPartitions(topic, { waitMs: 0 });
    } catch (error) {
      if (!(error instanceof IllegalStateError)) throw error;
      const brokers = new Map<string, PartitionRef>();
      for (const ref of await discovery.publishPartitions(fallback)) brokers.set(ref.brokerUrl, { brokerId: ref.brokerId, brokerUrl: ref.brokerUrl, partition: -1 });
      log.info({ topic, defaultTopic: fallback, brokers: [...brokers.keys()] }, 'topic not registered by any broker yet; sending through the default topic\'s brokers');
      return [...brokers.values()];
    }
  }
}

/**
 * A message's wire data and flag (the attribute block first when there is one).
 *
 * @throws {InvalidArgumentError} for data that is not a Buffer or string, or a non-string attribute.
 */
function encodeOutgoing(message: Message): { topic: string; data: Buffer; flag: number } {
  const { topic, data: raw } = message;
  const payload = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  if (!Buffer.isBuffer(payload)) throw new InvalidArgumentError(`send: message.data must be a Buffer or a string (topic '${topic}')`);
  if (message.attribute !== undefined && typeof message.attribute !== 'string') {
    throw new InvalidArgumentError(`send: message.attribute must be a string (topic '${topic}')`);
  }
  if (message.attribute === undefined) return { topic, data: payload, flag: 0 };
  const encoded = encodeMessageData(payload, message.attribute);
  return { topic, data: encoded.data, flag: encoded.flag };
}
