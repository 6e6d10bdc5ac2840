/**
 * How much a partition asks for per fetch (`maxSize`), as MetaQ's `FetchRequest` adjusts it
 * (metaq-reference §1.6): a broker answers at most `min(maxTransferSize, maxSize)` bytes, so
 * a message larger than `maxSize` never arrives whole. After more than
 * `maxIncreaseFetchDataRetries` answers without one complete message the size doubles, up to
 * 2 MiB; once answers are small again (under half the size) it halves back toward the
 * subscription's `maxSize`.
 */

/** The largest `maxSize` growth reaches (MetaQ's `MAX_READ_BUFFER_SIZE`, 2 MiB). */
export const MAX_FETCH_SIZE = 2 * 1024 * 1024;

/** The adaptive `maxSize` of one partition. */
export class FetchSizeTuner {
  readonly #initial: number;
  readonly #maxRetries: number;
  readonly #ceiling: number;
  #current: number;
  #incomplete = 0;

  /**
   * @param initial - The subscription's `maxSize`.
   * @param maxIncreaseRetries - Answers without a whole message tolerated before doubling.
   */
  constructor(initial: number, maxIncreaseRetries: number, ceiling = MAX_FETCH_SIZE) {
    this.#initial = initial;
    this.#current = initial;
    this.#maxRetries = maxIncreaseRetries;
    this.#ceiling = Math.max(ceiling, initial);
  }

  /** The `maxSize` to ask for next. */
  get current(): number {
    return this.#current;
  }

  /** True when the size cannot grow any more. */
  get atCeiling(): boolean {
    return this.#current >= this.#ceiling;
  }

  /**
   * Records a `value` answer of `bodyLength` bytes that did (`complete`) or did not contain a
   * whole message. Returns true when the size changed.
   */
  record(bodyLength: number, complete: boolean): boolean {
    if (!complete) {
      this.#incomplete += 1;
      if (this.#incomplete <= this.#maxRetries || this.atCeiling) return false;
      this.#incomplete = 0;
      this.#current = Math.min(this.#ceiling, this.#current * 2);
      return true;
    }
    this.#incomplete = 0;
    if (this.#current > this.#initial && bodyLength < this.#current / 2) {
      this.#current = Math.max(this.#initial, Math.floor(this.#current / 2));
      return true;
    }
    return false;
  }
}
