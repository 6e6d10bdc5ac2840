/**
 * Sweep of orphan PostgreSQL marker rows (transactions.md §5.6): markers that the in-memory
 * {@link MarkerSweeper} never deleted because the manager died — SIGKILLed after COMMIT PREPARED
 * (recovery then ENDs the transaction in another process), or after END but before the batched
 * sweep. Nothing in memory remembers them after a restart, so they are found in the marker table
 * itself: after every recovery scan (at start-up after the first one, then every
 * `recoveryIntervalMs`), one page per resource of this manager's markers (its node ids only: the
 * ones it recovers) is read, and those no transaction needs any more are deleted.
 *
 * Why this is safe — the rule, and why the order of the steps matters:
 * - A marker is read only for a transaction the coordinator log holds without END: recovery's
 *   COMMIT PREPARED of a COMMITTING one ("does not exist": marker present ⇒ committed earlier,
 *   absent ⇒ an administrator rolled it back), and a ROLLBACK PREPARED of a PRESUMED_ABORTING one or
 *   of a commit in flight that failed (marker present ⇒ an administrator committed it). So a marker
 *   is needed while its transaction is pending in the log or in flight in this process, and never
 *   after its END is durable (then nothing calls phase two for it again).
 * - A marker becomes visible only when its branch commits, i.e. after COMMIT PREPARED, which
 *   only happens after COMMITTING is durable (or, by an administrator, while the transaction is
 *   in flight or PRESUMED_ABORTING, both covered above).
 * - Hence FIRST the candidate markers are selected from PostgreSQL, THEN the pending set is read
 *   (every log entry without END, whatever its state, plus what is in flight here), and only
 *   candidates outside it are deleted. A transaction that commits after the SELECT is not a
 *   candidate; one that committed before it was pending (or in flight) at the later read, unless it
 *   had already ended. Reading the pending set first would race a transaction that writes
 *   COMMITTING and commits in between: absent from the pending snapshot, visible to the SELECT.
 * - "Ended" must also mean "END on disk": END is not forced, and a lost END makes recovery
 *   re-drive the commit, which then needs the marker. Every END issued before the pending read
 *   is made durable (log `sync`, or a later forced record) before anything is deleted.
 *
 * Decision rows (decision-row mode, decision-row.ts) are swept the same way, with one more rule:
 * a row is the decision of a transaction whose prepared branches may still be listed by other
 * resources (its process died before phase two), so after the page is read, every other resource
 * is asked for its prepared branches (`recover`), and rows of gtrids still listed are kept. A
 * row is read before the listing, and its branches were prepared before the row committed (or,
 * for a rollback row, were listed when recovery claimed it), so a branch absent from the later
 * listing has been finished. Any resource that does not answer keeps every row of the page. And
 * a row is kept until its transaction began `decisionRowRetentionMs` ago (default a day): a broker
 * that is not registered cannot be asked, yet its branch would need the row once it is.
 *
 * Paging: one page of {@link ORPHAN_MARKER_PAGE} rows per resource and sweep, continuing after
 * the previous page (so markers that must stay cannot hide orphans behind them), back to the
 * start when the end is reached. Best effort, like the MarkerSweeper: failures are logged and
 * the next sweep tries again.
 */
import type { CoordinatorContext } from './coordinator-context.js';
import { isDecisionKeeper, type MarkerPage, type RecoverableResource, type ResourceId } from './resource.js';
import { gtridHex, parseGtrid, type Xid } from './xid.js';

/** Marker rows read per resource and sweep. */
export const ORPHAN_MARKER_PAGE = 1000;

/** What the orphan-marker sweep needs from the manager. */
export interface OrphanMarkerSweepHost {
  readonly ctx: CoordinatorContext;
  /** Node ids whose markers this manager owns (the ones it recovers). */
  readonly nodeIds: readonly Buffer[];
  /** The registered resources. */
  resources(): readonly RecoverableResource[];
  /** True while the transaction is in flight in this process (or its phase two is being driven). */
  inFlight(gtridHex: string): boolean;
  /** Decision rows of transactions begun less than this long ago are kept (see the module comment). */
  readonly decisionRowRetentionMs: number;
  now(): number;
}

/** What one sweep did, summed over the resources. */
export interface OrphanMarkerSweepReport {
  /** Markers of this manager's nodes read. */
  readonly listed: number;
  /** Of those, kept because their transaction is pending or in flight. */
  readonly kept: number;
  /** Of those, deleted. */
  readonly deleted: number;
}

type MarkerResource = RecoverableResource & Required<Pick<RecoverableResource, 'listMarkers' | 'deleteMarkers'>>;

function canSweep(resource: RecoverableResource): resource is MarkerResource {
  return typeof resource.listMarkers === 'function' && typeof resource.deleteMarkers === 'function';
}

/** Finds and deletes orphan markers; see the module comment. */
export class OrphanMarkerSweeper {
  readonly #host: OrphanMarkerSweepHost;
  readonly #pageSize: number;
  /** Where the next page of each resource starts. */
  readonly #cursors = new Map<ResourceId, string>();
  #sweeping: Promise<OrphanMarkerSweepReport> | undefined;

  constructor(host: OrphanMarkerSweepHost, pageSize = ORPHAN_MARKER_PAGE) {
    this.#host = host;
    this.#pageSize = pageSize;
  }

  /** Runs one sweep (a sweep already running is joined). Never rejects. */
  sweep(): Promise<OrphanMarkerSweepReport> {
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  async #sweep(): Promise<OrphanMarkerSweepReport> {
    let listed = 0;
    let kept = 0;
    let deleted = 0;
    for (const resource of this.#host.resources()) {
      if (!canSweep(resource)) continue;
      const result = await this.#sweepOne(resource);
      listed += result.listed;
      kept += result.kept;
      deleted += result.deleted;
    }
    return { listed, kept, deleted };
  }

  async #sweepOne(resource: MarkerResource): Promise<OrphanMarkerSweepReport> {
    const { ctx } = this.#host;
    const id = resource.resourceId;
    // 1. FIRST the candidates, from the resource.
    let page: MarkerPage;
    try {
      page = await resource.listMarkers(this.#host.nodeIds, this.#pageSize, this.#cursors.get(id));
    } catch (error) {
      ctx.logger.warn({ err: error, resourceId: id }, 'listing marker rows failed; orphan markers are swept at a later scan');
      return { listed: 0, kept: 0, deleted: 0 };
    }
    if (page.next === undefined) this.#cursors.delete(id);
    else this.#cursors.set(id, page.next);
    if (page.xids.length === 0) return { listed: 0, kept: 0, deleted: 0 };

    // 2. THEN what is pending: strictly after the listing answered (see the module comment).
    const issued = ctx.log.lastIssued;
    const pending = new Set(ctx.log.pending().map((entry) => gtridHex(entry.gtrid)));
    const orphans: Xid[] = [];
    for (const xid of page.xids) {
      const hex = gtridHex(xid.globalTransactionId);
      if (pending.has(hex) || this.#host.inFlight(hex)) continue;
      if (isDecisionKeeper(resource) && !this.#retentionOver(xid)) continue;
      orphans.push(xid);
    }
    if (isDecisionKeeper(resource) && orphans.length > 0) {
      // 2b. Decision rows: THEN what the other resources still hold prepared (see the module comment).
      const prepared = await this.#preparedElsewhere(resource);
      if (prepared === undefined) return { listed: page.xids.length, kept: page.xids.length, deleted: 0 };
      for (let i = orphans.length - 1; i >= 0; i--) {
        const xid = orphans[i];
        if (xid !== undefined && prepared.has(gtridHex(xid.globalTransactionId))) orphans.splice(i, 1);
      }
    }
    const kept = page.xids.length - orphans.length;
    if (orphans.length === 0) return { listed: page.xids.length, kept, deleted: 0 };

    // 3. The ENDs of the orphans' transactions were issued before the pending read: on disk first.
    if (!(await this.#durable(issued))) return { listed: page.xids.length, kept: page.xids.length, deleted: 0 };

    // 4. Delete.
    try {
      await resource.deleteMarkers(orphans);
    } catch (error) {
      ctx.logger.warn({ err: error, resourceId: id, count: orphans.length }, 'deleting orphan marker rows failed; retrying at a later scan');
      return { listed: page.xids.length, kept, deleted: 0 };
    }
    ctx.counters.orphanMarkersDeleted += orphans.length;
    ctx.logger.info({ resourceId: id, deleted: orphans.length, kept }, 'orphan marker rows deleted (their transactions ended)');
    return { listed: page.xids.length, kept, deleted: orphans.length };
  }

  /** True when the transaction of `xid` began at least `decisionRowRetentionMs` ago (by the start time in its gtrid). */
  #retentionOver(xid: Xid): boolean {
    const startedAt = parseGtrid(xid.globalTransactionId)?.startedAtMs;
    return startedAt !== undefined && this.#host.now() - startedAt >= this.#host.decisionRowRetentionMs;
  }

  /** gtrid hex of every branch the resources other than `keeper` list as prepared; undefined when one of them did not answer. */
  async #preparedElsewhere(keeper: RecoverableResource): Promise<Set<string> | undefined> {
    const { ctx } = this.#host;
    const prepared = new Set<string>();
    for (const resource of this.#host.resources()) {
      if (resource === keeper) continue;
      try {
        for (const xid of await resource.recover()) prepared.add(gtridHex(xid.globalTransactionId));
      } catch (error) {
        ctx.logger.warn({ err: error, resourceId: resource.resourceId }, 'recover() failed; decision rows are kept until every resource answers');
        return undefined;
      }
    }
    return prepared;
  }

  /** True once every log record issued up to `seq` is on disk (syncing the log when it can). */
  async #durable(seq: number): Promise<boolean> {
    const { log, logger } = this.#host.ctx;
    if (log.isDurable(seq)) return true;
    // A log without sync: a later forced record (the next COMMITTING) makes it durable; next sweep.
    if (!log.canSync) return false;
    try {
      await log.sync();
    } catch (error) {
      logger.warn({ err: error }, 'coordinator log sync failed; orphan marker rows are kept for now');
      return false;
    }
    return log.isDurable(seq);
  }
}
