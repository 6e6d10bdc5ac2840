/**
 * What a session factory shares with the producers and consumers it creates. Internal.
 */
import type { ClientEmitter } from '../instrumentation.js';
import type { ConnectionPool } from '../transport/connection-pool.js';
import type { BrokerDiscovery } from './broker-discovery.js';

/** Something the factory closes when it closes. */
export interface Closable {
  close(): Promise<void>;
}

/** The factory's shared state. */
export interface SessionContext {
  readonly pool: ConnectionPool;
  readonly discovery: BrokerDiscovery;
  readonly emitter: ClientEmitter;
  /** Default timeout of a request (a send, a stats call) in ms. */
  readonly requestTimeoutMs: number;
  /** A producer or consumer tells the factory it closed. */
  release(client: Closable): void;
}
