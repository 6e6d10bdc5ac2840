/**
 * Outcomes of finished transactions, kept for a while after they finish so that a repeated
 * COMMIT of a committed branch answers OK, a repeated ROLLBACK of a rolled-back one answers OK,
 * and a COMMIT of a branch that timed out answers XA_RBTIMEOUT instead of XAER_NOTA
 * (transactions.md §5.5: a coordinator that lost a reply retries, and "unknown" would make it
 * guess). Bounded by age and by count, oldest first out.
 */

/** How a finished transaction ended. */
export type Outcome = 'committed' | 'rolled-back' | 'timed-out' | 'read-only';

/** Defaults: XA tombstones live a day (a coordinator's retry horizon); at most a million are kept. */
export const DEFAULT_TOMBSTONE_RETENTION_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_TOMBSTONES = 1_000_000;

/** A remembered outcome. */
export interface Tombstone {
  readonly key: string;
  readonly outcome: Outcome;
  /** When the transaction finished (ms since the epoch). */
  readonly at: number;
}

/** The tombstone table. Insertion order is finishing order, so the oldest are first. */
export class OutcomeTombstones {
  readonly #entries = new Map<string, Tombstone>();
  readonly #retentionMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: { retentionMs?: number; max?: number; now?: () => number } = {}) {
    this.#retentionMs = options.retentionMs ?? DEFAULT_TOMBSTONE_RETENTION_MS;
    this.#max = options.max ?? DEFAULT_MAX_TOMBSTONES;
    this.#now = options.now ?? Date.now;
  }

  /** Remembers that `key` finished with `outcome` (at `at`, default now). */
  record(key: string, outcome: Outcome, at: number = this.#now()): void {
    this.#entries.delete(key);
    this.#entries.set(key, { key, outcome, at });
    this.#expire();
  }

  /** The outcome of `key`, if still remembered. */
  get(key: string): Tombstone | undefined {
    this.#expire();
    return this.#entries.get(key);
  }

  /** Every tombstone, oldest first (for checkpoints). */
  all(): Tombstone[] {
    this.#expire();
    return [...this.#entries.values()];
  }

  /** Number of tombstones. */
  get size(): number {
    return this.#entries.size;
  }

  #expire(): void {
    const cutoff = this.#now() - this.#retentionMs;
    for (const [key, tombstone] of this.#entries) {
      if (this.#entries.size <= this.#max && tombstone.at >= cutoff) break;
      this.#entries.delete(key);
    }
  }
}
