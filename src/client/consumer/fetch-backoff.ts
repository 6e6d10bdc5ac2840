/**
 * The delay before the next fetch of a partition that had nothing new (404, 403, an empty
 * answer) or whose fetch failed: MetaQ grows it by `maxDelayFetchTimeInMills / 10` per such
 * fetch, up to `maxDelayFetchTimeInMills`, and drops it to zero as soon as data arrives.
 */
export class FetchBackoff {
  readonly #maxDelayMs: number;
  #misses = 0;

  constructor(maxDelayMs: number) {
    this.#maxDelayMs = maxDelayMs;
  }

  /** Records one more fetch without data and returns how long to wait before the next. */
  miss(): number {
    this.#misses += 1;
    return Math.min(this.#maxDelayMs, Math.round((this.#maxDelayMs / 10) * this.#misses));
  }

  /** Data arrived: fetch again at once. */
  reset(): void {
    this.#misses = 0;
  }

  /** Fetches without data since the last data. */
  get misses(): number {
    return this.#misses;
  }
}
