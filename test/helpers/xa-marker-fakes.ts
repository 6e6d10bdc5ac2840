/**
 * Fakes for the orphan-marker sweep's unit tests, on top of xa-fakes.ts: a PostgreSQL-like
 * resource whose marker rows behave as PostgreSQL's do (visible once the branch committed;
 * "does not exist" in phase two answered from the marker, so a marker deleted too early shows up
 * as a heuristic outcome), and a resource whose phase-two commit waits at a gate (to hold a
 * transaction between its PostgreSQL commit and its END).
 */
import { belongsToNode, type Xid } from '../../src/xa/xid.js';
import type { MarkerPage, PhaseTwoOutcome } from '../../src/xa/resource.js';
import { FakeResource, keyOf } from './xa-fakes.js';

/** A fake PostgreSQL resource with marker rows (keyed like `keyOf`, which sorts like gids of one node). */
export class FakeMarkerResource extends FakeResource {
  /** Visible marker rows: key → XID. */
  readonly markers = new Map<string, Xid>();
  /** Runs at the start of `listMarkers`, before its rows are read (to race the sweep's SELECT). */
  beforeList: (() => Promise<void>) | undefined;
  /** Makes the next `listMarkers` / `deleteMarkers` calls reject. */
  listFailure: Error | undefined;
  deleteFailure: Error | undefined;
  /** `listMarkers` calls: the `after` argument of each. */
  readonly listCalls: (string | undefined)[] = [];

  /** Adds a visible marker (a branch committed before the test, by a process that is gone). */
  addMarker(xid: Xid): void {
    this.markers.set(keyOf(xid), xid);
  }

  /** Keys of the visible markers, sorted. */
  markerKeys(): string[] {
    return [...this.markers.keys()].sort();
  }

  override async commitPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    const key = keyOf(xid);
    if (this.prepared.has(key)) {
      const outcome = await super.commitPrepared(xid);
      // The marker was inserted inside the branch: it commits with it.
      if (outcome === 'committed') this.markers.set(key, xid);
      return outcome;
    }
    // PostgreSQL: "prepared transaction does not exist"; the marker decides.
    this.note('commitPrepared', xid);
    return this.markers.has(key) ? 'committed' : 'heuristic-rollback';
  }

  override async rollbackPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    const key = keyOf(xid);
    if (this.prepared.has(key)) return super.rollbackPrepared(xid);
    this.note('rollbackPrepared', xid);
    return this.markers.has(key) ? 'heuristic-commit' : 'rolled-back';
  }

  override get deleteMarkers(): (xids: readonly Xid[]) => Promise<void> {
    return async (xids) => {
      if (this.deleteFailure !== undefined) throw this.deleteFailure;
      this.journal.push(`${this.resourceId} deleteMarkers ${xids.map(keyOf).join(',')}`);
      for (const xid of xids) this.markers.delete(keyOf(xid));
      this.markersDeleted.push(...xids);
    };
  }

  async listMarkers(nodeIds: readonly Buffer[], limit: number, after?: string): Promise<MarkerPage> {
    this.listCalls.push(after);
    await this.beforeList?.();
    if (this.listFailure !== undefined) throw this.listFailure;
    // The rows are read now (the SELECT's snapshot); what happens after cannot change them.
    const rows = [...this.markers]
      .filter(([key, xid]) => (after === undefined || key > after) && nodeIds.some((nodeId) => belongsToNode(xid, nodeId)))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, limit);
    this.journal.push(`${this.resourceId} listMarkers ${rows.length}`);
    await Promise.resolve();
    return { xids: rows.map(([, xid]) => xid), next: rows.length < limit ? undefined : rows.at(-1)?.[0] };
  }
}

/** A fake resource whose `commitPrepared` waits until {@link open} (the other calls as FakeResource). */
export class GatedResource extends FakeResource {
  #open: () => void = () => undefined;
  #gate: Promise<void> = new Promise((resolve) => {
    this.#open = resolve;
  });
  /** commitPrepared calls waiting at the gate. */
  waiting = 0;

  /** Lets every waiting and later commitPrepared through. */
  open(): void {
    this.#open();
  }

  override async commitPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    this.waiting += 1;
    await this.#gate;
    this.waiting -= 1;
    return super.commitPrepared(xid);
  }
}

/** Resolves once `check()` is true (polled every ms); rejects after `timeoutMs`. */
export async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
