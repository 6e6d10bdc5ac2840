/**
 * Typed instrumentation events (KafkaJS's instrumentation emitter, nats.js's `status()`): what
 * a client does that an application may want to log or count, without the client depending on
 * a metrics library. `on()` returns the function that removes the listener; events are only
 * built when someone listens, so an unobserved client pays one map lookup per event.
 *
 * Every event and its payload is listed in docs/client.md.
 */
import { componentLogger } from '../common/logger.js';

/** Event name → payload. */
export interface ClientEvents {
  /** A connection to a broker opened (first time or after a reconnect). */
  'connection.connect': { readonly brokerUrl: string; readonly reconnect: boolean };
  /** An open connection was lost; `failedRequests` in-flight requests failed with a ConnectionError. */
  'connection.disconnect': { readonly brokerUrl: string; readonly error: Error | undefined; readonly failedRequests: number };
  /** The next connection attempt is scheduled (after a failed attempt or a lost connection). */
  'connection.reconnect_scheduled': { readonly brokerUrl: string; readonly attempt: number; readonly delayMs: number; readonly error: Error | undefined };
  /** A heartbeat (`version`) failed; after `heartbeatMaxFailures` in a row the connection is dropped. */
  'connection.heartbeat_failed': { readonly brokerUrl: string; readonly failures: number; readonly error: unknown };
  /** A request got no answer in time. */
  'request.timeout': { readonly brokerUrl: string; readonly opaque: number; readonly request: string; readonly waitedMs: number };
  /** A consumer's listener threw (or rejected) for a message; it will be retried or recovered. */
  'consumer.listener_failed': ConsumerMessageEvent & { readonly attempt: number; readonly error: unknown };
  /** A message that failed every retry was written to the local recover store. */
  'consumer.message_recovered': ConsumerMessageEvent;
  /** A message from the recover store was delivered successfully and removed from the store. */
  'consumer.message_redelivered': ConsumerMessageEvent;
  /** A fetch failed (timeout, connection, broker error); the partition backs off and retries. */
  'consumer.fetch_error': { readonly topic: string; readonly group: string; readonly partition: number; readonly error: unknown };
  /**
   * A partition's offset was beyond the end of its log (data deleted, log recreated, failover to a
   * broker with less data); the consumer moved to `to` per `offsetOutOfRange` (`policy`).
   */
  'consumer.offset_reset': {
    readonly topic: string;
    readonly group: string;
    readonly partition: number;
    readonly from: number;
    readonly to: number;
    readonly policy: 'max' | 'min';
    /** The end of the log the broker reported. */
    readonly maxOffset: number;
  };
  /** Offsets were committed to the offset storage. */
  'consumer.offsets_committed': { readonly group: string; readonly partitions: number };
}

/** Which message a consumer event is about. */
export interface ConsumerMessageEvent {
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  readonly offset: number;
  readonly messageId: bigint;
}

/** The name of an instrumentation event. */
export type ClientEventName = keyof ClientEvents;

/** A listener for event `K`. */
export type ClientEventListener<K extends ClientEventName> = (payload: ClientEvents[K]) => void;

/** Subscribing to instrumentation events. */
export interface ClientInstrumentation {
  /** Calls `listener` for every `event`; returns the function that removes it. */
  on<K extends ClientEventName>(event: K, listener: ClientEventListener<K>): () => void;
}

const log = componentLogger('client');

/** The emitter shared by a session factory and everything it creates. Internal. */
export class ClientEmitter implements ClientInstrumentation {
  readonly #listeners = new Map<ClientEventName, Set<(payload: never) => void>>();

  on<K extends ClientEventName>(event: K, listener: ClientEventListener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  /** True when `event` has a listener: build the payload only then. */
  has(event: ClientEventName): boolean {
    const set = this.#listeners.get(event);
    return set !== undefined && set.size > 0;
  }

  /** Calls the listeners of `event`; a listener that throws is logged and does not stop the others. */
  emit<K extends ClientEventName>(event: K, payload: ClientEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as ClientEventListener<K>)(payload);
      } catch (error) {
        log.warn({ err: error, event }, 'instrumentation listener threw');
      }
    }
  }
}
