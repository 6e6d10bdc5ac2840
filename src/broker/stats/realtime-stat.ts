/**
 * MetaQ's realtime statistic: a count and a summed value over a window that restarts every
 * 30 minutes (or on `stats reset`), printed as
 * `Count=<c>,Value=<v>,Value/Count=<avg|invalid>,Count/Duration=<rate|invalid>,Duration=<secs>`.
 */

/** Length of a realtime window before it restarts, as in MetaQ. */
export const REALTIME_WINDOW_MS = 30 * 60 * 1000;

/** One realtime counter. */
export class RealtimeStat {
  #count = 0;
  #value = 0;
  #since: number;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#since = now();
  }

  /** Adds `count` events carrying `value` in total. */
  add(count: number, value = count): void {
    this.#roll();
    this.#count += count;
    this.#value += value;
  }

  /** Starts a new window now. */
  reset(): void {
    this.#count = 0;
    this.#value = 0;
    this.#since = this.#now();
  }

  /** MetaQ's text, or `null` when nothing was recorded in this window. */
  format(): string {
    this.#roll();
    if (this.#count === 0) return 'null';
    const seconds = Math.max(0, Math.floor((this.#now() - this.#since) / 1000));
    const average = (this.#value / this.#count).toFixed(2);
    const rate = seconds > 0 ? (this.#count / seconds).toFixed(2) : 'invalid';
    return `Count=${this.#count},Value=${this.#value},Value/Count=${average},Count/Duration=${rate},Duration=${seconds}`;
  }

  #roll(): void {
    if (this.#now() - this.#since >= REALTIME_WINDOW_MS) this.reset();
  }
}
