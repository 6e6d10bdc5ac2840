/**
 * Settings of broker connections, with MetaQ's (gecko's) defaults where it has one.
 */
import type { BackoffOptions } from './backoff.js';
import type { TransportConnector } from './transport.js';
import { connectTcp } from './tcp-transport.js';

/** Connect attempt timeout (gecko's default connect timeout). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;
/** Send a heartbeat after the connection has received nothing for this long (gecko `idleTime=10`). */
export const DEFAULT_HEARTBEAT_IDLE_MS = 10_000;
/** How long a heartbeat waits for its answer (gecko: 5 s). */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5_000;
/** Heartbeat failures in a row after which the connection is dropped and re-established (gecko: 3). */
export const DEFAULT_HEARTBEAT_MAX_FAILURES = 3;
/** First reconnect delay. */
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 100;
/**
 * Largest reconnect delay (Kafka's `reconnect.backoff.max.ms`; gecko's heal interval is 2 s).
 * Why 1 s: requests made while a broker restarts wait for the reconnect within their own
 * deadline (3 s by default), so the wait between attempts must leave them several attempts
 * once the broker is back. With 5 s, sends made just after a restart timed out.
 */
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 1_000;
/** Random share of each reconnect delay. */
export const DEFAULT_RECONNECT_JITTER = 0.5;
/** Period of the sweep that fires timeouts and heartbeats: the precision of every timeout. */
export const DEFAULT_TIMER_RESOLUTION_MS = 100;
/** How long `close()` waits for answers to requests already sent. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

/** Connection settings a user may set (all optional). */
export interface ConnectionSettings {
  /** Default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  readonly connectTimeoutMs?: number;
  /** Default {@link DEFAULT_HEARTBEAT_IDLE_MS}; 0 turns heartbeats off. */
  readonly heartbeatIdleMs?: number;
  /** Default {@link DEFAULT_HEARTBEAT_TIMEOUT_MS}. */
  readonly heartbeatTimeoutMs?: number;
  /** Default {@link DEFAULT_HEARTBEAT_MAX_FAILURES}. */
  readonly heartbeatMaxFailures?: number;
  /** Reconnect back-off; defaults {@link DEFAULT_RECONNECT_INITIAL_DELAY_MS}, {@link DEFAULT_RECONNECT_MAX_DELAY_MS}, {@link DEFAULT_RECONNECT_JITTER}. */
  readonly reconnect?: Partial<BackoffOptions>;
  /** Default {@link DEFAULT_TIMER_RESOLUTION_MS}. */
  readonly timerResolutionMs?: number;
  /** Default {@link DEFAULT_DRAIN_TIMEOUT_MS}. */
  readonly drainTimeoutMs?: number;
  /** Opens the byte stream; default plain TCP. Replace it for tests or another transport. */
  readonly connector?: TransportConnector;
}

/** Connection settings with every default applied. */
export interface ResolvedConnectionSettings {
  readonly connectTimeoutMs: number;
  readonly heartbeatIdleMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatMaxFailures: number;
  readonly reconnect: BackoffOptions;
  readonly timerResolutionMs: number;
  readonly drainTimeoutMs: number;
  readonly connector: TransportConnector;
}

/** Applies the defaults. Values are checked by the session factory's option parser. */
export function resolveConnectionSettings(settings: ConnectionSettings = {}): ResolvedConnectionSettings {
  return Object.freeze({
    connectTimeoutMs: settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    heartbeatIdleMs: settings.heartbeatIdleMs ?? DEFAULT_HEARTBEAT_IDLE_MS,
    heartbeatTimeoutMs: settings.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    heartbeatMaxFailures: settings.heartbeatMaxFailures ?? DEFAULT_HEARTBEAT_MAX_FAILURES,
    reconnect: Object.freeze({
      initialDelayMs: settings.reconnect?.initialDelayMs ?? DEFAULT_RECONNECT_INITIAL_DELAY_MS,
      maxDelayMs: settings.reconnect?.maxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS,
      jitter: settings.reconnect?.jitter ?? DEFAULT_RECONNECT_JITTER,
    }),
    timerResolutionMs: settings.timerResolutionMs ?? DEFAULT_TIMER_RESOLUTION_MS,
    drainTimeoutMs: settings.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    connector: settings.connector ?? connectTcp,
  });
}
