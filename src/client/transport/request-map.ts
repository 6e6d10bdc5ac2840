/**
 * In-flight requests of one connection, keyed by opaque (KafkaJS's `requestQueue`): the only
 * way to match MetaQ's answers, which may come out of order.
 *
 * Timeouts: there is no timer per request (a producer may have thousands in flight); the
 * connection's one sweep timer calls {@link RequestMap.takeExpired}. A `Map` iterates in
 * insertion order, i.e. in start-time order, so the sweep stops at the first request that
 * started less than the shortest timeout ago: no later request can be due yet.
 */
import type { PendingRequest } from './request.js';

/** The in-flight requests of one connection. */
export class RequestMap {
  readonly #byOpaque = new Map<number, PendingRequest>();
  /** Shortest timeout registered so far: every deadline is at least startedAt + this. */
  #minTimeoutMs = Number.POSITIVE_INFINITY;

  /** Requests waiting for an answer (written or not). */
  get size(): number {
    return this.#byOpaque.size;
  }

  /** True when `opaque` is waiting for an answer. */
  has(opaque: number): boolean {
    return this.#byOpaque.has(opaque);
  }

  /** Registers a request. */
  add(request: PendingRequest): void {
    this.#byOpaque.set(request.opaque, request);
    if (request.timeoutMs < this.#minTimeoutMs) this.#minTimeoutMs = request.timeoutMs;
  }

  /** Removes and returns the request answered by `opaque` (undefined for an unknown or late answer). */
  take(opaque: number): PendingRequest | undefined {
    const request = this.#byOpaque.get(opaque);
    if (request !== undefined) this.#byOpaque.delete(opaque);
    return request;
  }

  /** Removes `request` if it is still registered. */
  remove(request: PendingRequest): void {
    if (this.#byOpaque.get(request.opaque) === request) this.#byOpaque.delete(request.opaque);
  }

  /**
   * Removes and returns every request whose deadline is at or before `now` (times from the
   * same monotonic clock as the requests' `startedAt`).
   */
  takeExpired(now: number): PendingRequest[] {
    const expired: PendingRequest[] = [];
    for (const request of this.#byOpaque.values()) {
      if (request.deadline <= now) expired.push(request);
      // Later requests started no earlier, so none of them is due before startedAt + minTimeout.
      if (request.startedAt + this.#minTimeoutMs > now) break;
    }
    for (const request of expired) this.#byOpaque.delete(request.opaque);
    return expired;
  }

  /** Removes and returns the requests matching `predicate`, in insertion order. */
  takeWhere(predicate: (request: PendingRequest) => boolean): PendingRequest[] {
    const taken: PendingRequest[] = [];
    for (const request of this.#byOpaque.values()) if (predicate(request)) taken.push(request);
    for (const request of taken) this.#byOpaque.delete(request.opaque);
    return taken;
  }

  /** The registered requests, in insertion order. */
  values(): IterableIterator<PendingRequest> {
    return this.#byOpaque.values();
  }
}
