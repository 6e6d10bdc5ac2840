/**
 * Deletes the PostgreSQL marker rows (transactions.md §5.6) of committed transactions, in
 * batches, once their END is durable (see tracked-log.ts for why that matters). Resources without
 * `deleteMarkers` are skipped. Best effort: a failed delete is logged and retried at the next
 * sweep. What it holds is in memory only: markers of a process that died before its sweep are
 * found in the table and deleted by the orphan-marker sweep (orphan-marker-sweeper.ts).
 */
import type { Logger } from '../common/logger.js';
import type { RecoverableResource } from './resource.js';
import type { TrackedLog } from './tracked-log.js';
import type { Xid } from './xid.js';

/** Sweep on its own once this many XIDs wait. */
export const MARKER_SWEEP_BATCH = 256;

interface Waiting {
  readonly resource: RecoverableResource;
  readonly xid: Xid;
  /** Sequence number of the END record after which the marker may go. */
  readonly endSeq: number;
}

/** Collects committed branches whose markers can go, and deletes them in batches. */
export class MarkerSweeper {
  readonly #log: TrackedLog;
  readonly #logger: Logger;
  #waiting: Waiting[] = [];
  #sweeping: Promise<void> | undefined;

  constructor(log: TrackedLog, logger: Logger) {
    this.#log = log;
    this.#logger = logger;
  }

  /** How many markers wait for deletion. */
  get size(): number {
    return this.#waiting.length;
  }

  /**
   * Queues the markers of `branches` (committed branches of a transaction whose END has sequence
   * number `endSeq`); only resources with `deleteMarkers` are kept.
   */
  add(branches: readonly { readonly resource: RecoverableResource; readonly xid: Xid }[], endSeq: number): void {
    for (const { resource, xid } of branches) {
      if (typeof resource.deleteMarkers === 'function') this.#waiting.push({ resource, xid, endSeq });
    }
    if (this.#waiting.length >= MARKER_SWEEP_BATCH) void this.sweep();
  }

  /** Deletes every marker whose END is durable (syncing the log first when it can). Never rejects. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    if (this.#waiting.length === 0) return;
    if (this.#waiting.some((w) => !this.#log.isDurable(w.endSeq)) && this.#log.canSync) {
      try {
        await this.#log.sync();
      } catch (error) {
        this.#logger.warn({ err: error }, 'coordinator log sync failed; PostgreSQL markers are kept for now');
        return;
      }
    }
    const ready = this.#waiting.filter((w) => this.#log.isDurable(w.endSeq));
    if (ready.length === 0) return;
    this.#waiting = this.#waiting.filter((w) => !this.#log.isDurable(w.endSeq));
    const byResource = new Map<RecoverableResource, Waiting[]>();
    for (const w of ready) {
      const list = byResource.get(w.resource);
      if (list === undefined) byResource.set(w.resource, [w]);
      else list.push(w);
    }
    await Promise.all(
      [...byResource].map(async ([resource, items]) => {
        try {
          await resource.deleteMarkers?.(items.map((w) => w.xid));
        } catch (error) {
          this.#logger.warn({ err: error, resourceId: resource.resourceId, count: items.length }, 'deleting marker rows failed; retrying at the next sweep');
          this.#waiting.push(...items);
        }
      }),
    );
  }
}
