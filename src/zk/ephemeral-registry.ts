/**
 * The ephemeral nodes an adapter owns (`ownEphemeral`), with the data to re-create them with in
 * the next session after an expiry.
 *
 * Why the adapter keeps them rather than its callers: ZooKeeper deletes a session's ephemeral
 * nodes when it expires, and every caller (broker registration, consumer ids, partition owners)
 * would otherwise have to re-implement "put my nodes back" on the `expired` event.
 */

/** What re-creating one node came to. */
export type RecreateOutcome = 'created' | 'conflict';

/** The paths re-created and the paths found owned by another session. */
export interface RecreateReport {
  readonly recreated: string[];
  readonly conflicts: string[];
}

/** Owned ephemeral nodes, path → data. */
export class EphemeralRegistry {
  readonly #owned = new Map<string, string>();

  has(path: string): boolean {
    return this.#owned.has(path);
  }

  /** Records (or updates) an owned node's data. */
  set(path: string, data: string): void {
    this.#owned.set(path, data);
  }

  /** Stops owning a node; true when it was owned. */
  delete(path: string): boolean {
    return this.#owned.delete(path);
  }

  clear(): void {
    this.#owned.clear();
  }

  /** The owned paths, in the order they were first owned. */
  paths(): string[] {
    return [...this.#owned.keys()];
  }

  /**
   * Re-creates every owned node with `recreate` (in the order they were owned, so parents owned
   * before children come first). A node held by another session is a conflict: it is left
   * alone and no longer owned (the other session is its rightful owner now).
   * Errors of `recreate` propagate (the caller retries the whole round on a new connection;
   * nodes already re-created are then found to be this session's and count as re-created).
   */
  async recreateAll(recreate: (path: string, data: string) => Promise<RecreateOutcome>): Promise<RecreateReport> {
    const recreated: string[] = [];
    const conflicts: string[] = [];
    for (const [path, data] of [...this.#owned]) {
      if (!this.#owned.has(path)) continue;
      if ((await recreate(path, data)) === 'created') {
        recreated.push(path);
      } else {
        conflicts.push(path);
        this.#owned.delete(path);
      }
    }
    return { recreated, conflicts };
  }
}
