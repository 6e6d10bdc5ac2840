/**
 * One shared connection to one broker: every producer and consumer of a session factory that
 * talks to `meta://host:port` multiplexes its requests over it (as MetaQ's gecko client).
 *
 * - **Correlation**: each request gets an opaque; answers are matched by opaque in a
 *   {@link RequestMap}, in whatever order they arrive. Many requests may be in flight.
 * - **Write coalescing**: requests made in one turn of the event loop are written with one
 *   `write` on `setImmediate` (one syscall for a burst of pipelined puts).
 * - **Timeouts**: one sweep timer per connection (no timer per request) fails requests whose
 *   deadline passed with a {@link RequestTimeoutError} naming the request, broker, opaque and
 *   the time waited. A late answer is dropped.
 * - **Reconnect**: when the connection drops, requests already written fail at once with a
 *   retriable {@link ConnectionError} (the broker may or may not have processed them: the
 *   client cannot know, so it never resends them by itself). Requests not yet written stay
 *   queued and go out after the reconnect, or fail when their own timeout passes first. The
 *   connection is re-established with jittered exponential back-off until `close()`.
 * - **Heartbeat**: after `heartbeatIdleMs` without receiving anything, a `version` request is
 *   sent (gecko's heartbeat); `heartbeatMaxFailures` failures in a row drop the connection,
 *   which then reconnects.
 * - **Corrupt input**: bytes that are not a MetaQ answer make the stream unusable (the decoder
 *   cannot resynchronise); the connection is dropped and re-established like a lost one.
 */
import { ClientClosedError, ConnectionError, RequestTimeoutError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { encodeQuit } from '../../protocol/encode.js';
import { FrameDecoder } from '../../protocol/frame-decoder.js';
import type { ResponseFrame } from '../../protocol/frames.js';
import type { BrokerAddress } from '../broker-url.js';
import type { ClientEmitter } from '../instrumentation.js';
import { backoffDelay } from './backoff.js';
import type { ResolvedConnectionSettings } from './connection-options.js';
import { encodeRequestHead, requestBody } from './encode-request.js';
import { interpretHeartbeat } from './heartbeat.js';
import { OpaqueCounter } from './opaque-counter.js';
import { describeRequest, type OpaquelessRequest, type PendingRequest, type RequestOwner, type ResponseInterpreter } from './request.js';
import { RequestMap } from './request-map.js';
import type { Transport, TransportHandlers } from './transport.js';
import { writeCoalesced } from './write-batch.js';

/**
 * Where a connection is in its life:
 * `idle` (never used) → `connecting` → `connected` ⇄ `reconnecting` (waiting for the next
 * attempt) → `closing` → `closed`.
 */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closing' | 'closed';

/** A shared connection to one broker. Create with {@link createBrokerConnection}. */
export interface BrokerConnection {
  /** The broker, `meta://host:port`. */
  readonly url: string;
  readonly state: ConnectionState;
  /** Requests waiting for an answer, written or not. */
  readonly inFlight: number;
  /**
   * Sends a request and resolves with `interpret(answer)`. Opens the connection on first use.
   *
   * @param timeoutMs - Deadline for the answer, counted from now (it includes waiting for a
   *   reconnect).
   * @param owner - Told exactly once when the request settles, including a request refused
   *   at once (already closed, unencodable frame): count before calling.
   * @throws (rejects) {@link RequestTimeoutError} when no answer came in time;
   *   {@link ConnectionError} when the connection dropped after the request was written, or
   *   could not be (re-)established before the deadline; {@link ClientClosedError} after
   *   `close()`; whatever `interpret` throws.
   */
  request<T>(frame: OpaquelessRequest, timeoutMs: number, interpret: ResponseInterpreter<T>, owner?: RequestOwner): Promise<T>;
  /**
   * Refuses new requests, fails those not yet written, waits up to `drainTimeoutMs` for the
   * answers to those already written, then says `quit` and closes. Idempotent.
   */
  close(): Promise<void>;
}

/** Opens (lazily) a shared connection to `address`. */
export function createBrokerConnection(address: BrokerAddress, settings: ResolvedConnectionSettings, emitter: ClientEmitter): BrokerConnection {
  return new Connection(address, settings, emitter);
}

/** How long `close()` waits for the socket to close after `quit` before destroying it. */
const CLOSE_LINGER_MS = 1_000;

class Connection implements BrokerConnection {
  readonly url: string;
  readonly #address: BrokerAddress;
  readonly #settings: ResolvedConnectionSettings;
  readonly #emitter: ClientEmitter;
  readonly #log: Logger;
  readonly #requests = new RequestMap();
  readonly #opaques = new OpaqueCounter();
  readonly #inUse = (opaque: number): boolean => this.#requests.has(opaque);
  readonly #flushBound = (): void => this.#flush();
  #state: ConnectionState = 'idle';
  #transport: Transport | undefined;
  #decoder: FrameDecoder | undefined;
  /** Bumped whenever a transport is abandoned, so that its late callbacks are ignored. */
  #generation = 0;
  /** Requests to write on the next flush (their `head` is still set). */
  #outbox: PendingRequest[] = [];
  #flushScheduled = false;
  #attempt = 0;
  #everConnected = false;
  #lastError: Error | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #lastReadAt = 0;
  #heartbeatPending = false;
  #heartbeatFailures = 0;
  #closing: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;
  #onTransportClosed: (() => void) | undefined;

  constructor(address: BrokerAddress, settings: ResolvedConnectionSettings, emitter: ClientEmitter) {
    this.url = address.url;
    this.#address = address;
    this.#settings = settings;
    this.#emitter = emitter;
    this.#log = componentLogger('client', { broker: address.url });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get inFlight(): number {
    return this.#requests.size;
  }

  request<T>(frame: OpaquelessRequest, timeoutMs: number, interpret: ResponseInterpreter<T>, owner?: RequestOwner): Promise<T> {
    if (this.#state === 'closing' || this.#state === 'closed') {
      owner?.requestSettled();
      return Promise.reject(new ClientClosedError(`The connection to ${this.url}`));
    }
    const opaque = this.#opaques.next(this.#inUse);
    let head: string | Buffer;
    try {
      head = encodeRequestHead(frame, opaque);
    } catch (error) {
      owner?.requestSettled();
      return Promise.reject(error);
    }
    const body = requestBody(frame, head);
    const size = (typeof head === 'string' ? Buffer.byteLength(head, 'utf8') : head.length) + (body === undefined ? 0 : body.length);
    return new Promise<T>((resolve, reject) => {
      const now = performance.now();
      const request: PendingRequest = {
        opaque,
        frame,
        startedAt: now,
        timeoutMs,
        deadline: now + timeoutMs,
        interpret,
        owner,
        resolve: resolve as (value: unknown) => void,
        reject,
        head,
        body,
        size,
        settled: false,
      };
      this.#requests.add(request);
      this.#ensureSweep();
      if (this.#state === 'connected') this.#queue(request);
      else if (this.#state === 'idle') this.#connect();
      // connecting / reconnecting: it waits in the map; #onOpen queues it.
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    // Requests queued for the next write still go out; only those waiting for a connection fail.
    this.#flush();
    for (const request of this.#requests.takeWhere((r) => r.head !== undefined)) {
      this.#fail(request, new ClientClosedError(`The connection to ${this.url} (${describeRequest(request.frame)} was never sent)`));
    }
    if (this.#transport !== undefined && this.#requests.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#settings.drainTimeoutMs);
        this.#onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#onDrained = undefined;
    }
    for (const request of this.#requests.takeWhere(() => true)) {
      this.#fail(request, new ClientClosedError(`The connection to ${this.url} (closed before ${describeRequest(request.frame)} was answered)`));
    }
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    const transport = this.#transport;
    if (transport !== undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          transport.destroy();
          resolve();
        }, CLOSE_LINGER_MS);
        this.#onTransportClosed = () => {
          clearTimeout(timer);
          resolve();
        };
        transport.write(encodeQuit());
        transport.end();
      });
    }
    this.#generation++;
    this.#transport = undefined;
    this.#decoder = undefined;
    this.#state = 'closed';
  }

  #connect(): void {
    this.#state = 'connecting';
    const generation = ++this.#generation;
    const handlers: TransportHandlers = {
      data: (chunk) => {
        if (generation === this.#generation) this.#onData(chunk);
      },
      close: (error) => {
        if (generation === this.#generation) this.#onClose(error);
      },
    };
    this.#settings.connector(this.#address, handlers, { timeoutMs: this.#settings.connectTimeoutMs }).then(
      (transport) => this.#onOpen(transport, generation),
      (error: unknown) => this.#onConnectFailed(error, generation),
    );
  }

  #onOpen(transport: Transport, generation: number): void {
    if (generation !== this.#generation || this.#state !== 'connecting') {
      transport.destroy();
      return;
    }
    const reconnect = this.#everConnected;
    this.#transport = transport;
    this.#decoder = new FrameDecoder({ accept: 'responses' });
    this.#state = 'connected';
    this.#everConnected = true;
    this.#attempt = 0;
    this.#heartbeatFailures = 0;
    this.#heartbeatPending = false;
    this.#lastReadAt = performance.now();
    this.#log.debug({ reconnect }, 'connected');
    // Requests made while there was no connection go out now, in the order they were made.
    for (const request of this.#requests.values()) if (request.head !== undefined) this.#outbox.push(request);
    if (this.#outbox.length > 0) this.#scheduleFlush();
    if (this.#emitter.has('connection.connect')) this.#emitter.emit('connection.connect', { brokerUrl: this.url, reconnect });
  }

  #onConnectFailed(error: unknown, generation: number): void {
    if (generation !== this.#generation || this.#state !== 'connecting') return;
    const cause = error instanceof Error ? error : new Error(String(error));
    this.#lastError = cause;
    this.#log.debug({ err: cause, attempt: this.#attempt }, 'connect failed');
    this.#scheduleReconnect(cause);
  }

  #scheduleReconnect(error: Error | undefined): void {
    this.#state = 'reconnecting';
    const attempt = this.#attempt++;
    const delayMs = backoffDelay(attempt, this.#settings.reconnect);
    if (this.#emitter.has('connection.reconnect_scheduled')) {
      this.#emitter.emit('connection.reconnect_scheduled', { brokerUrl: this.url, attempt: attempt + 1, delayMs, error });
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state === 'reconnecting') this.#connect();
    }, delayMs);
    // Pending requests keep the process alive through the sweep timer; an unused connection does not.
    this.#reconnectTimer.unref();
  }

  #onData(chunk: Buffer): void {
    this.#lastReadAt = performance.now();
    const decoder = this.#decoder;
    if (decoder === undefined) return;
    try {
      for (const frame of decoder.push(chunk)) {
        const response = frame as ResponseFrame;
        const request = this.#requests.take(response.opaque);
        if (request === undefined) {
          // An answer to a request that timed out, or a stray opaque: nobody is waiting for it.
          this.#log.debug({ opaque: response.opaque, type: response.type }, 'answer for an unknown or expired request dropped');
          continue;
        }
        this.#settle(request, response);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.#drop(new ConnectionError(`${this.url} sent bytes that are not a MetaQ answer (${message}); reconnecting`, error));
    }
  }

  /** Abandons the current transport at once and handles it as a lost connection. */
  #drop(error: Error): void {
    const transport = this.#transport;
    if (transport === undefined) return;
    this.#generation++;
    this.#onClose(error);
    transport.destroy();
  }

  #onClose(error: Error | undefined): void {
    const closing = this.#state === 'closing';
    this.#transport = undefined;
    this.#decoder = undefined;
    this.#outbox = [];
    this.#heartbeatPending = false;
    if (error !== undefined) this.#lastError = error;
    // Written requests: the broker may or may not have processed them, and their answers are lost.
    const lost = this.#requests.takeWhere((r) => r.head === undefined);
    for (const request of lost) {
      const what = describeRequest(request.frame);
      const reason = error === undefined ? 'the broker closed the connection' : error.message;
      this.#fail(
        request,
        new ConnectionError(`${what} on ${this.url} (opaque ${request.opaque}) failed: connection lost before the answer (${reason}); it may or may not have been processed`, error),
      );
    }
    if (closing) {
      this.#onTransportClosed?.();
      return;
    }
    this.#log.info({ err: error, failedRequests: lost.length }, 'connection lost; reconnecting');
    if (this.#emitter.has('connection.disconnect')) this.#emitter.emit('connection.disconnect', { brokerUrl: this.url, error, failedRequests: lost.length });
    this.#scheduleReconnect(error);
  }

  #queue(request: PendingRequest): void {
    this.#outbox.push(request);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushBound);
  }

  /** Writes every queued request (coalesced, see write-batch.ts). */
  #flush(): void {
    this.#flushScheduled = false;
    const transport = this.#transport;
    if (transport === undefined || this.#outbox.length === 0) return;
    const queued = this.#outbox;
    this.#outbox = [];
    writeCoalesced(transport, queued);
  }

  #settle(request: PendingRequest, response: ResponseFrame): void {
    request.settled = true;
    let value: unknown;
    try {
      value = request.interpret(response, request.frame, this.url);
    } catch (error) {
      request.reject(error);
      this.#afterSettle(request);
      return;
    }
    request.resolve(value);
    this.#afterSettle(request);
  }

  #fail(request: PendingRequest, error: unknown): void {
    request.settled = true;
    request.head = undefined;
    request.body = undefined;
    request.reject(error);
    this.#afterSettle(request);
  }

  #afterSettle(request: PendingRequest): void {
    request.owner?.requestSettled();
    if (this.#onDrained !== undefined && this.#requests.size === 0) this.#onDrained();
  }

  #ensureSweep(): void {
    if (this.#sweepTimer === undefined) {
      this.#sweepTimer = setInterval(() => this.#sweep(), this.#settings.timerResolutionMs);
    } else if (this.#requests.size === 1) {
      this.#sweepTimer.ref();
    }
  }

  /** Fires timeouts and heartbeats. */
  #sweep(): void {
    const now = performance.now();
    if (this.#requests.size > 0) for (const request of this.#requests.takeExpired(now)) this.#timeOut(request, now);
    const idleMs = this.#settings.heartbeatIdleMs;
    if (idleMs > 0 && this.#state === 'connected' && !this.#heartbeatPending && now - this.#lastReadAt >= idleMs) this.#heartbeat();
    // Only pending requests keep the process alive; an idle connection does not.
    if (this.#requests.size === 0) this.#sweepTimer?.unref();
  }

  #timeOut(request: PendingRequest, now: number): void {
    const waitedMs = Math.round(now - request.startedAt);
    const what = describeRequest(request.frame);
    let error: Error;
    if (request.head !== undefined && this.#state !== 'connected') {
      const last = this.#lastError === undefined ? '' : `; last error: ${this.#lastError.message}`;
      error = new ConnectionError(
        `${what} on ${this.url} (opaque ${request.opaque}) was not sent: no connection to the broker within ${request.timeoutMs} ms (waited ${waitedMs} ms)${last}`,
        this.#lastError,
      );
    } else {
      error = new RequestTimeoutError(`${what} on ${this.url} (opaque ${request.opaque}) got no answer within ${request.timeoutMs} ms (waited ${waitedMs} ms)`);
    }
    if (this.#emitter.has('request.timeout')) {
      this.#emitter.emit('request.timeout', { brokerUrl: this.url, opaque: request.opaque, request: what, waitedMs });
    }
    this.#fail(request, error);
  }

  #heartbeat(): void {
    this.#heartbeatPending = true;
    const generation = this.#generation;
    this.request({ type: 'version' }, this.#settings.heartbeatTimeoutMs, interpretHeartbeat).then(
      () => {
        if (generation !== this.#generation) return;
        this.#heartbeatPending = false;
        this.#heartbeatFailures = 0;
      },
      (error: unknown) => {
        if (generation !== this.#generation) return;
        this.#heartbeatPending = false;
        this.#heartbeatFailures += 1;
        this.#log.warn({ err: error, failures: this.#heartbeatFailures }, 'heartbeat failed');
        if (this.#emitter.has('connection.heartbeat_failed')) {
          this.#emitter.emit('connection.heartbeat_failed', { brokerUrl: this.url, failures: this.#heartbeatFailures, error });
        }
        if (this.#heartbeatFailures >= this.#settings.heartbeatMaxFailures) {
          this.#drop(new ConnectionError(`${this.#heartbeatFailures} heartbeats to ${this.url} failed in a row; reconnecting`, error));
        }
      },
    );
  }
}
