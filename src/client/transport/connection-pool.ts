/**
 * One {@link BrokerConnection} per broker URL, shared by everything a session factory creates
 * (MetaQ shares one connection per broker in a `MessageSessionFactory`).
 */
import { ClientClosedError } from '../../common/errors.js';
import { parseBrokerUrl } from '../broker-url.js';
import type { ClientEmitter } from '../instrumentation.js';
import { createBrokerConnection, type BrokerConnection } from './broker-connection.js';
import type { ResolvedConnectionSettings } from './connection-options.js';

/** The connections of one session factory. Internal. */
export class ConnectionPool {
  readonly #settings: ResolvedConnectionSettings;
  readonly #emitter: ClientEmitter;
  readonly #connections = new Map<string, BrokerConnection>();
  #closed = false;

  constructor(settings: ResolvedConnectionSettings, emitter: ClientEmitter) {
    this.#settings = settings;
    this.#emitter = emitter;
  }

  /**
   * The connection to `brokerUrl` (any spelling `parseBrokerUrl` accepts), created on first use.
   *
   * @throws {ClientClosedError} after {@link close}.
   */
  get(brokerUrl: string): BrokerConnection {
    const existing = this.#connections.get(brokerUrl);
    if (existing !== undefined) return existing;
    if (this.#closed) throw new ClientClosedError('The session factory');
    const address = parseBrokerUrl(brokerUrl);
    let connection = this.#connections.get(address.url);
    if (connection === undefined) {
      connection = createBrokerConnection(address, this.#settings, this.#emitter);
      this.#connections.set(address.url, connection);
    }
    if (brokerUrl !== address.url) this.#connections.set(brokerUrl, connection);
    return connection;
  }

  /** Closes every connection (each drains its written requests first). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...new Set(this.#connections.values())].map((c) => c.close()));
  }
}
