/**
 * The byte stream under a broker connection, behind a small interface (nats.js's `Transport`)
 * so that the connection logic (correlation, timeouts, reconnect, heartbeats) can be tested
 * over an in-memory pipe or a scripted fake server, and so that another transport (TLS, a
 * proxy) can slot in without touching it.
 */
import type { BrokerAddress } from '../broker-url.js';

/** An open byte stream to one broker. */
export interface Transport {
  /** Queues bytes for the peer. Never throws; a failed write surfaces as `close(error)`. */
  write(data: Buffer): void;
  /** Ends the stream after the queued bytes are written. `close` follows. */
  end(): void;
  /** Tears the stream down at once. `close` follows (if it has not already fired). */
  destroy(error?: Error): void;
}

/** Callbacks a transport drives. `close` is called exactly once, after the last `data`. */
export interface TransportHandlers {
  data(chunk: Buffer): void;
  /** The stream is gone; `error` says why when it did not end cleanly. */
  close(error: Error | undefined): void;
}

/** Options of a connection attempt. */
export interface ConnectOptions {
  /** Give up when the stream is not open after this many milliseconds. */
  readonly timeoutMs: number;
}

/**
 * Opens a transport to a broker. Resolves once bytes can be written; rejects when the attempt
 * fails (the handlers are then never called).
 */
export type TransportConnector = (address: BrokerAddress, handlers: TransportHandlers, options: ConnectOptions) => Promise<Transport>;
