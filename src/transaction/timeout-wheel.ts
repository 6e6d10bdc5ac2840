/**
 * A hashed timing wheel for transaction timeouts (MetaQ uses gecko's `HashedWheelTimer`: 500 ms
 * ticks, 512 buckets, `maxTxTimeoutTimerCapacity` 30 000; metaq-reference §3.1).
 *
 * Why a wheel and not one `setTimeout` per transaction: tens of thousands of armed timeouts would
 * each hold a libuv timer; the wheel holds one unref'd interval, makes schedule/cancel O(1), and its
 * capacity gives the broker MetaQ's back-pressure ("Timer size N is great than maxTimerCapacity M").
 *
 * Tick `k` (0-based from construction) is processed once the clock reaches `start + (k + 1) * tickMs`,
 * and covers deadlines in `(start + k * tickMs, start + (k + 1) * tickMs]`; so a timeout never fires
 * early and fires at most one tick late (plus interval jitter). Delays longer than one revolution
 * (`tickMs * wheelSize`) wait in their bucket for the right number of rounds.
 */
import { InvalidArgumentError } from '../common/errors.js';

/** Options of {@link TimeoutWheel}. */
export interface TimeoutWheelOptions {
  /** Tick length in ms (> 0). MetaQ: 500. */
  readonly tickMs: number;
  /** Number of buckets (a positive integer). MetaQ: 512. */
  readonly wheelSize: number;
  /** Most timeouts armed at once (a positive integer). MetaQ: `maxTxTimeoutTimerCapacity`, 30 000. */
  readonly capacity: number;
  /** The clock, ms; injectable for deterministic tests. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Receives an error thrown by an expiry callback. Without it the first such error is rethrown by
   * {@link TimeoutWheel.tick} after every due callback has run (one bad callback must not starve the rest).
   */
  readonly onError?: (error: unknown, key: string) => void;
}

/** Called when a timeout expires, with the key it was scheduled under. */
export type ExpiryCallback = (key: string) => void;

interface Entry {
  readonly key: string;
  readonly deadline: number;
  /** Schedule order: breaks deadline ties so equal deadlines fire first-scheduled first. */
  readonly seq: number;
  readonly bucket: number;
  /** Revolutions still to wait when the wheel next reaches {@link bucket}. */
  rounds: number;
  readonly onExpire: ExpiryCallback;
}

/** Hashed timing wheel keyed by transaction key; see the module comment for the timing contract. */
export class TimeoutWheel {
  /** Tick length, ms. */
  readonly tickMs: number;
  /** Number of buckets. */
  readonly wheelSize: number;
  /** Most timeouts armed at once. */
  readonly capacity: number;
  readonly #now: () => number;
  readonly #onError: ((error: unknown, key: string) => void) | undefined;
  readonly #buckets: Set<Entry>[];
  readonly #entries = new Map<string, Entry>();
  readonly #startTime: number;
  /** Ticks processed so far, i.e. the index of the next tick to process. */
  #ticks = 0;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TimeoutWheelOptions) {
    if (!(Number.isFinite(options.tickMs) && options.tickMs > 0)) throw new InvalidArgumentError(`tickMs must be a positive number, got ${options.tickMs}`);
    if (!(Number.isSafeInteger(options.wheelSize) && options.wheelSize > 0)) throw new InvalidArgumentError(`wheelSize must be a positive integer, got ${options.wheelSize}`);
    if (!(Number.isSafeInteger(options.capacity) && options.capacity > 0)) throw new InvalidArgumentError(`capacity must be a positive integer, got ${options.capacity}`);
    this.tickMs = options.tickMs;
    this.wheelSize = options.wheelSize;
    this.capacity = options.capacity;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError;
    this.#buckets = Array.from({ length: options.wheelSize }, () => new Set<Entry>());
    this.#startTime = this.#now();
  }

  /** Number of armed timeouts. */
  get size(): number {
    return this.#entries.size;
  }

  /** True between {@link start} and {@link stop}. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** True when a timeout is armed under `key`. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /**
   * Arms a timeout: `onExpire(key)` runs once, `delayMs` from now (rounded up to the tick). Scheduling
   * a key that is already armed replaces its timeout (and never counts against the capacity twice).
   *
   * @returns false, arming nothing, when `capacity` timeouts are already armed — the engine then refuses
   *   BEGIN with `timerCapacityExceededBody(wheel.size, wheel.capacity)`.
   * @throws {InvalidArgumentError} when `delayMs` is negative or not finite.
   */
  schedule(key: string, delayMs: number, onExpire: ExpiryCallback): boolean {
    if (!(Number.isFinite(delayMs) && delayMs >= 0)) throw new InvalidArgumentError(`timeout delay must be a finite number ≥ 0, got ${delayMs}`);
    const previous = this.#entries.get(key);
    if (previous === undefined && this.#entries.size >= this.capacity) return false;
    if (previous !== undefined) this.#remove(previous);

    const deadline = this.#now() + delayMs;
    // The first tick whose end reaches the deadline, but never a tick already processed (a deadline
    // in the past, or a clock that ran ahead of tick(), fires at the next tick).
    const target = Math.max(Math.ceil((deadline - this.#startTime) / this.tickMs) - 1, this.#ticks);
    const bucket = target % this.wheelSize;
    const entry: Entry = { key, deadline, seq: this.#seq++, bucket, rounds: Math.floor((target - this.#ticks) / this.wheelSize), onExpire };
    this.#buckets[bucket]!.add(entry);
    this.#entries.set(key, entry);
    return true;
  }

  /** Disarms the timeout of `key`; false when none was armed (already fired or never scheduled). */
  cancel(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#remove(entry);
    return true;
  }

  /**
   * Processes every tick that has ended by `now` and runs the due callbacks in deadline order (ties:
   * schedule order). Called by the interval after {@link start}; tests call it with a fake clock.
   *
   * @returns how many callbacks ran.
   */
  tick(now: number = this.#now()): number {
    const due: Entry[] = [];
    if (this.#entries.size === 0) {
      // Nothing armed: jump straight to the current tick instead of walking empty buckets.
      this.#ticks = Math.max(this.#ticks, Math.floor((now - this.#startTime) / this.tickMs));
    }
    while (this.#startTime + (this.#ticks + 1) * this.tickMs <= now) {
      const bucket = this.#buckets[this.#ticks % this.wheelSize]!;
      for (const entry of bucket) {
        if (entry.rounds > 0) {
          entry.rounds--;
        } else {
          bucket.delete(entry);
          due.push(entry);
        }
      }
      this.#ticks++;
    }
    due.sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
    return this.#fire(due);
  }

  /** Starts the single interval that drives {@link tick}; unref'd so it never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.tick(), this.tickMs);
    this.#timer.unref();
  }

  /** Stops the interval. Armed timeouts stay armed and fire after a later {@link start} (or {@link tick}). */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #remove(entry: Entry): void {
    this.#buckets[entry.bucket]!.delete(entry);
    this.#entries.delete(entry.key);
  }

  #fire(due: readonly Entry[]): number {
    let fired = 0;
    let firstError: { error: unknown } | undefined;
    for (const entry of due) {
      // An earlier callback of this batch may have cancelled or re-armed this key: only the entry
      // still registered under the key is live.
      if (this.#entries.get(entry.key) !== entry) continue;
      this.#entries.delete(entry.key);
      fired++;
      try {
        entry.onExpire(entry.key);
      } catch (error) {
        if (this.#onError !== undefined) this.#onError(error, entry.key);
        else firstError ??= { error };
      }
    }
    if (firstError !== undefined) throw firstError.error;
    return fired;
  }
}
