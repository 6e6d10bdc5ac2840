/**
 * Operations in flight, held until each settles, and a wait for all of them — including those
 * added during the wait. Why not `Promise.allSettled` over a snapshot: work keeps arriving while
 * a caller waits (a send started while a commit waits for the earlier ones must be waited for
 * too), so the wait loops until the set is empty.
 */
export class InFlight {
  readonly #held = new Set<Promise<void>>();

  /** How many operations have not settled yet. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * Holds `operation` until it settles. Its rejection is observed here (so it never counts as
   * unhandled); whoever else awaits the same promise still gets it.
   */
  add(operation: Promise<unknown>): void {
    const held = operation.then(
      () => undefined,
      () => undefined,
    );
    this.#held.add(held);
    void held.then(() => this.#held.delete(held));
  }

  /** Resolves once no operation is left; never rejects. */
  async settled(): Promise<void> {
    while (this.#held.size > 0) await Promise.all([...this.#held]);
  }
}
