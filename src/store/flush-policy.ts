/**
 * When a partition log forces its writes to disk.
 *
 * - `unflushThreshold <= 0` is **group commit**: an append is acknowledged only after an
 *   fdatasync that covers it; appends that arrive while one write + fdatasync is in progress
 *   are written and synced together by the next one, so they share its cost.
 * - `unflushThreshold > 0`: an append is acknowledged once written to the page cache, and the
 *   log is fsynced in the background after `unflushThreshold` appends or when `unflushInterval`
 *   ms have passed since the last fsync, whichever comes first. (MetaQ compared with `>`, so a
 *   threshold of N synced every N+1 messages; here N means N.)
 */

/** The flush settings of one partition log. */
export interface FlushSettings {
  readonly unflushThreshold: number;
  readonly unflushInterval: number;
}

/** True when acknowledgements must wait for fdatasync. */
export function isGroupCommit(settings: FlushSettings): boolean {
  return settings.unflushThreshold <= 0;
}

/** Counts unflushed appends and says when a background flush is due (threshold mode). */
export class FlushCounter {
  readonly #settings: FlushSettings;
  readonly #now: () => number;
  #unflushed = 0;
  #lastFlushAt: number;

  constructor(settings: FlushSettings, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
    this.#lastFlushAt = now();
  }

  /** Records `count` appended records; returns true when a flush is due now. */
  appended(count: number): boolean {
    this.#unflushed += count;
    return this.#unflushed >= this.#settings.unflushThreshold || this.#now() - this.#lastFlushAt >= this.#settings.unflushInterval;
  }

  /** Appends not yet covered by a flush. */
  get unflushed(): number {
    return this.#unflushed;
  }

  /** Call when a flush starts: the appends counted so far are covered by it. */
  flushStarted(): void {
    this.#unflushed = 0;
    this.#lastFlushAt = this.#now();
  }
}
