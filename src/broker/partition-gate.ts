/**
 * Which partitions are closed for puts and gets (MetaQ's `close-partitions` /
 * `open-partitions`): an in-memory flag per topic-partition, not persisted, as in MetaQ.
 * Closed partitions answer 403 so that producers move to other partitions during maintenance.
 */

/** The open/closed state of every partition of a broker. */
export class PartitionGate {
  readonly #closed = new Map<string, Set<number>>();

  /** Closes partitions `start..end` (inclusive) of `topic`. */
  close(topic: string, start: number, end: number): void {
    let set = this.#closed.get(topic);
    if (set === undefined) {
      set = new Set();
      this.#closed.set(topic, set);
    }
    for (let p = start; p <= end; p++) set.add(p);
  }

  /** Opens every partition of `topic`. */
  open(topic: string): void {
    this.#closed.delete(topic);
  }

  /** True when puts and gets of this partition are refused. */
  isClosed(topic: string, partition: number): boolean {
    return this.#closed.get(topic)?.has(partition) ?? false;
  }
}
