/**
 * Recovery (transactions.md §5.6, "Coordinator restart"), run at start and every
 * `recoveryIntervalMs`:
 *
 * 1. ask every registered resource for its prepared branches (`recover()`), keeping the XIDs of
 *    this node (and of `recoveryNodeNames`: renamed predecessors, Narayana's xaRecoveryNodes);
 * 2. every COMMITTING without END in the coordinator log: re-drive the commit on each participant
 *    (retrying forever with back-off, phase-two.ts), then END; every PRESUMED_ABORTING without
 *    END: roll back what the resources still list, then END;
 * 3. orphans, listed XIDs without a log entry (presumed abort: never decided): left alone while
 *    their transaction is in flight in this process or younger than `orphanSafetyIntervalMs`
 *    (from the start time in the gtrid); otherwise the two-sighting rule (Narayana's two passes,
 *    Atomikos' first-sighting delay): the first scan that sees one only remembers it; a later
 *    scan that still sees it forces PRESUMED_ABORTING — which the log refuses (false) if a
 *    COMMITTING appeared meanwhile, and then the transaction is committed instead — and rolls it
 *    back on every resource listing it, then END.
 *    Decision-row mode (transactions.md §5.1, §5.6 step 3): the rows of the candidates are read
 *    first at every decision keeper. A commit row commits the orphan at once (its last resource
 *    committed: decided). Without a row, the claim at the second sighting is a rollback row
 *    inserted at every keeper, whose unique key arbitrates against a commit still in progress
 *    (§5.7 row 23): if the commit won, the orphan is committed instead; if a keeper does not
 *    answer, nothing is decided in this scan.
 *
 * A resource whose `recover()` fails is skipped for this scan; orphan ENDs wait for a scan in
 * which every resource answered (a branch on the silent one could otherwise be forgotten).
 * Heuristic outcomes are recorded and alerted by phase-two.ts; a transaction with an outcome
 * contrary to its decision keeps its log entry until an operator's `forget(gtrid)`.
 */
import { describeXid } from '../client/transaction/xid.js';
import type { PendingEntry } from './coordinator-log.js';
import type { CoordinatorContext } from './coordinator-context.js';
import { completeByDecisionRow } from './decision-row.js';
import { runPhaseTwo, type PhaseTwoTarget } from './phase-two.js';
import { isDecisionKeeper, type DecisionKeeper, type RecordedDecision, type RecoverableResource } from './resource.js';
import { belongsToNode, gtridHex, METAQ_TM_FORMAT_ID, parseGtrid, type Xid } from './xid.js';
import { waitAtMost } from './wait-at-most.js';

/** What one recovery scan did. */
export interface RecoveryReport {
  /** Number of the scan (1 for the first of this manager). */
  readonly scan: number;
  readonly startedAtMs: number;
  readonly durationMs: number;
  /** Resources whose `recover()` answered. */
  readonly resourcesScanned: readonly string[];
  /** Resources whose `recover()` failed, with the error message. */
  readonly resourcesFailed: readonly { readonly resourceId: string; readonly error: string }[];
  /** COMMITTING entries whose phase two was re-driven. */
  readonly committingRedriven: number;
  /** Of those, completed (END written) within the scan's wait. */
  readonly committingCompleted: number;
  /** COMMITTING entries whose participants name a resource that is not registered. */
  readonly unresolvable: readonly string[];
  /** Listed branches of other nodes, ignored. */
  readonly foreignBranches: number;
  /** Orphan transactions seen for the first time (remembered, not touched). */
  readonly orphansFirstSighted: number;
  /** Orphan transactions left alone because they are in flight in this process. */
  readonly orphansInFlight: number;
  /** Orphan transactions left alone because they are younger than the orphan safety interval. */
  readonly orphansTooYoung: number;
  /** Orphan branches rolled back (presumed abort). */
  readonly orphanBranchesRolledBack: number;
  /** Orphans that turned out to be COMMITTING when claimed, and were committed. */
  readonly orphansCommitted: number;
}

/** What recovery needs from the manager. */
export interface RecoveryHost {
  readonly ctx: CoordinatorContext;
  /** Node ids whose XIDs this manager recovers: its own first. */
  readonly nodeIds: readonly Buffer[];
  readonly orphanSafetyIntervalMs: number;
  /** How long a scan waits for a re-driven phase two before moving on (it continues in the background). */
  readonly phaseTwoWaitMs: number;
  /** The registered resources. */
  resources(): readonly RecoverableResource[];
  /** True while the transaction is in flight in this process (or its phase two is being driven). */
  inFlight(gtridHex: string): boolean;
  /** Registers a background phase two (see `GlobalTransactionHost.track`). */
  track(gtridHex: string, work: Promise<unknown>): void;
  now(): number;
}

interface Listed {
  readonly gtrid: Buffer;
  readonly targets: PhaseTwoTarget[];
}

/** Runs recovery scans; remembers first sightings and held transactions between scans. */
export class Recoverer {
  readonly #host: RecoveryHost;
  /** Orphan gtrid hex → the scan that first saw it. */
  readonly #sightings = new Map<string, number>();
  /** gtrid hex of transactions held for an operator (a contrary heuristic): not re-driven again in this process. */
  readonly #held = new Set<string>();
  #scans = 0;

  constructor(host: RecoveryHost) {
    this.#host = host;
  }

  /** Orphans seen once and waiting for their second sighting. */
  get sightings(): ReadonlyMap<string, number> {
    return this.#sightings;
  }

  /** Marks `gtridHex` as held for an operator (a contrary heuristic found by the commit path). */
  hold(gtridHex: string): void {
    this.#held.add(gtridHex);
  }

  /** Forgets that `gtridHex` is held (after an operator's forget). */
  release(gtridHex: string): void {
    this.#held.delete(gtridHex);
  }

  /** Runs one scan (the manager serialises them). */
  async scan(): Promise<RecoveryReport> {
    const host = this.#host;
    const { ctx } = host;
    const scan = ++this.#scans;
    const startedAtMs = host.now();
    const scanned: string[] = [];
    const failedResources: { resourceId: string; error: string }[] = [];
    const listed = new Map<string, Listed>();
    let foreign = 0;

    // 1. What the resources hold.
    const listings = await Promise.all(
      host.resources().map(async (resource) => {
        try {
          return { resource, xids: await resource.recover() };
        } catch (error) {
          ctx.logger.warn({ err: error, resourceId: resource.resourceId }, 'recover() failed; the resource is skipped in this scan');
          failedResources.push({ resourceId: resource.resourceId, error: error instanceof Error ? error.message : String(error) });
          return undefined;
        }
      }),
    );
    for (const listing of listings) {
      if (listing === undefined) continue;
      scanned.push(listing.resource.resourceId);
      for (const xid of listing.xids) {
        if (!host.nodeIds.some((nodeId) => belongsToNode(xid, nodeId))) {
          foreign += 1;
          continue;
        }
        const hex = gtridHex(xid.globalTransactionId);
        let entry = listed.get(hex);
        if (entry === undefined) {
          entry = { gtrid: Buffer.from(xid.globalTransactionId), targets: [] };
          listed.set(hex, entry);
        }
        entry.targets.push({ resource: listing.resource, xid });
      }
    }
    const everyResourceAnswered = failedResources.length === 0;

    // 2. Decisions without END.
    const redrives: Promise<'ended' | 'held' | 'unresolvable' | 'interrupted'>[] = [];
    const unresolvable: string[] = [];
    let rolledBack = 0;
    for (const entry of ctx.log.pending()) {
      const hex = gtridHex(entry.gtrid);
      if (host.inFlight(hex)) continue;
      if (entry.state === 'committing') {
        if (this.#held.has(hex)) continue;
        redrives.push(this.#redriveCommit(entry, unresolvable));
      } else {
        rolledBack += await this.#rollBackClaimed(entry, listed.get(hex)?.targets ?? [], everyResourceAnswered);
      }
    }

    // 3. Orphans. In decision-row mode their decision may be a row at a decision keeper: read
    // the rows of every candidate first (one query per keeper).
    const keepers = host.resources().filter(isDecisionKeeper);
    const candidates = [...listed].filter(([hex, { gtrid }]) => ctx.log.get(gtrid) === undefined && !host.inFlight(hex)).map(([, { gtrid }]) => gtrid);
    const rows = await readDecisions(ctx, keepers, candidates);
    let firstSighted = 0;
    let inFlight = 0;
    let tooYoung = 0;
    let committed = 0;
    for (const [hex, { gtrid, targets }] of listed) {
      if (ctx.log.get(gtrid) !== undefined) continue; // decided or claimed: step 2's business
      if (host.inFlight(hex)) {
        inFlight += 1;
        this.#sightings.delete(hex);
        continue;
      }
      if (this.#held.has(hex)) continue;
      const recorded = rows.decisions.get(hex);
      if (recorded?.outcome === 'commit') {
        // Decided by its last resource's commit: no safety interval, no second sighting needed.
        this.#sightings.delete(hex);
        committed += 1;
        redrives.push(this.#commitByDecisionRow(gtrid, targets, recorded.keeper));
        continue;
      }
      const startedAt = parseGtrid(gtrid)?.startedAtMs ?? 0;
      if (host.now() - startedAt < host.orphanSafetyIntervalMs) {
        tooYoung += 1;
        continue;
      }
      if (recorded === undefined && !this.#sightings.has(hex)) {
        this.#sightings.set(hex, scan);
        firstSighted += 1;
        ctx.logger.info({ gtrid: hex, branches: targets.map((t) => `${t.resource.resourceId} ${describeXid(t.xid)}`) }, 'orphan prepared branch seen; rolled back if still there at the next scan');
        continue;
      }
      if (recorded === undefined && keepers.length > 0) {
        // Decision-row mode: the rollback must win the decision row's key first (the unique key
        // arbitrates against a commit still in progress, §5.7 row 23). Every keeper must answer:
        // the silent one may hold a commit row.
        const claim = rows.complete ? await claimRollback(ctx, keepers, gtrid) : undefined;
        if (claim === undefined) continue; // sighting kept: claimed at a later scan
        if (claim.outcome === 'commit') {
          this.#sightings.delete(hex);
          committed += 1;
          redrives.push(this.#commitByDecisionRow(gtrid, targets, claim.keeper));
          continue;
        }
      }
      this.#sightings.delete(hex);
      let claimed: boolean;
      try {
        claimed = await ctx.log.presumedAborting(gtrid);
      } catch (error) {
        ctx.logger.error({ err: error, gtrid: hex }, 'PRESUMED_ABORTING could not be logged; orphan left for a later scan');
        continue;
      }
      const entry = ctx.log.get(gtrid);
      if (!claimed) {
        // A COMMITTING won the race: this is no orphan, it is a commit to complete.
        if (entry !== undefined && entry.state === 'committing' && !host.inFlight(hex)) {
          committed += 1;
          redrives.push(this.#redriveCommit(entry, unresolvable));
        }
        continue;
      }
      if (entry !== undefined) rolledBack += await this.#rollBackClaimed(entry, targets, everyResourceAnswered);
    }
    // Sightings of orphans that disappeared (completed by someone) are dropped.
    for (const hex of [...this.#sightings.keys()]) {
      if (!listed.has(hex)) this.#sightings.delete(hex);
    }

    const outcomes = await Promise.all(redrives.map((r) => waitAtMost(r, host.phaseTwoWaitMs)));
    ctx.counters.orphanRollbacks += rolledBack;
    const durationMs = host.now() - startedAtMs;
    ctx.counters.recoveryScans += 1;
    ctx.counters.lastRecoveryScanMs = durationMs;
    const report: RecoveryReport = {
      scan,
      startedAtMs,
      durationMs,
      resourcesScanned: scanned,
      resourcesFailed: failedResources,
      committingRedriven: redrives.length,
      committingCompleted: outcomes.filter((o) => o === 'ended').length,
      unresolvable,
      foreignBranches: foreign,
      orphansFirstSighted: firstSighted,
      orphansInFlight: inFlight,
      orphansTooYoung: tooYoung,
      orphanBranchesRolledBack: rolledBack,
      orphansCommitted: committed,
    };
    ctx.logger.debug({ ...report }, 'recovery scan done');
    return report;
  }

  /** Starts (and registers) the phase two of a logged COMMITTING; resolves when it ended, is held, or cannot be done. */
  #redriveCommit(entry: PendingEntry, unresolvable: string[]): Promise<'ended' | 'held' | 'unresolvable' | 'interrupted'> {
    const { ctx } = this.#host;
    const hex = gtridHex(entry.gtrid);
    const targets: PhaseTwoTarget[] = [];
    const missing: string[] = [];
    for (const participant of entry.participants) {
      // A participant that already reported a heuristic outcome is the operator's now.
      if (entry.heuristics.some((h) => h.resourceId === participant.resourceId && h.branchQualifier.equals(participant.branchQualifier))) continue;
      const resource = ctx.resource(participant.resourceId);
      if (resource === undefined) missing.push(participant.resourceId);
      else targets.push({ resource, xid: xidOf(entry.gtrid, participant.branchQualifier) });
    }
    if (missing.length > 0) {
      unresolvable.push(hex);
      ctx.logger.error(
        { gtrid: hex, missing },
        'COMMITTING transaction names resources that are not registered: register them (same resource ids as before the restart) so recovery can commit their branches',
      );
    }
    const work = (async (): Promise<'ended' | 'held' | 'unresolvable' | 'interrupted'> => {
      let result;
      try {
        result = await runPhaseTwo(ctx, entry.gtrid, targets, 'commit');
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: hex }, 'recovery of a COMMITTING transaction interrupted');
        return 'interrupted';
      }
      if (missing.length > 0) return 'unresolvable';
      const damagedBefore = entry.heuristics.some((h) => h.outcome !== 'heuristic-commit');
      if (result.damaged || damagedBefore) {
        this.#held.add(hex);
        return 'held';
      }
      try {
        const endSeq = await ctx.log.endTracked(entry.gtrid);
        ctx.markers.add(result.completed, endSeq);
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: hex }, 'END could not be written after recovery; the next scan re-drives the commit');
        return 'interrupted';
      }
      ctx.counters.recoveredCommits += 1;
      ctx.logger.info({ gtrid: hex, participants: targets.length }, 'recovery committed a transaction decided before');
      return 'ended';
    })();
    this.#host.track(hex, work);
    return work;
  }

  /** Commits the prepared branches of an orphan whose decision row says commit (decision-row.ts); resolves like a re-driven commit. */
  #commitByDecisionRow(gtrid: Buffer, targets: readonly PhaseTwoTarget[], keeper: DecisionKeeper): Promise<'ended' | 'held' | 'unresolvable' | 'interrupted'> {
    const { ctx } = this.#host;
    const hex = gtridHex(gtrid);
    const decisionRow: PhaseTwoTarget = { resource: keeper, xid: xidOf(gtrid, Buffer.alloc(0)) };
    const work = (async (): Promise<'ended' | 'held' | 'interrupted'> => {
      let completion;
      try {
        ({ completion } = await completeByDecisionRow(ctx, gtrid, targets, decisionRow));
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: hex }, 'recovery of a transaction decided by its decision row interrupted');
        return 'interrupted';
      }
      if (completion === 'held') {
        this.#held.add(hex);
        return 'held';
      }
      if (completion === 'end-failed') return 'interrupted';
      ctx.counters.recoveredCommits += 1;
      ctx.counters.decisionRowRecoveries += 1;
      ctx.logger.info({ gtrid: hex, participants: targets.length, keeper: keeper.resourceId }, 'recovery committed a transaction its decision row says committed');
      return 'ended';
    })();
    this.#host.track(hex, work);
    return work;
  }

  /** Rolls back a PRESUMED_ABORTING transaction's listed branches once; ENDs it when nothing is left. Returns branches rolled back. */
  async #rollBackClaimed(entry: PendingEntry, listedTargets: readonly PhaseTwoTarget[], everyResourceAnswered: boolean): Promise<number> {
    const { ctx } = this.#host;
    const hex = gtridHex(entry.gtrid);
    if (this.#held.has(hex)) return 0;
    const targets = listedTargets.filter((t) => !entry.heuristics.some((h) => h.resourceId === t.resource.resourceId && h.branchQualifier.equals(t.xid.branchQualifier)));
    let result;
    try {
      result = await runPhaseTwo(ctx, entry.gtrid, targets, 'rollback', { singleAttempt: true });
    } catch (error) {
      ctx.logger.warn({ err: error, gtrid: hex }, 'orphan rollback interrupted');
      return 0;
    }
    if (result.completed.length > 0) {
      ctx.logger.info({ gtrid: hex, branches: result.completed.map((t) => `${t.resource.resourceId} ${describeXid(t.xid)}`) }, 'orphan branches rolled back (presumed abort)');
    }
    const damaged = result.damaged || entry.heuristics.some((h) => h.outcome !== 'heuristic-rollback');
    if (damaged) {
      this.#held.add(hex);
      return result.completed.length;
    }
    if (result.failed.length === 0 && everyResourceAnswered) {
      try {
        await ctx.log.end(entry.gtrid);
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: hex }, 'END of a rolled-back orphan could not be written; the next scan retries');
      }
    }
    return result.completed.length;
  }
}

/** A decision found at a keeper. */
interface FoundDecision {
  readonly outcome: RecordedDecision;
  readonly keeper: DecisionKeeper;
}

/**
 * The decision rows of `gtrids` at every keeper (a commit row wins over rollback rows elsewhere:
 * the transaction decided at one keeper only, and the others' rollback rows are recovery's own
 * claims). `complete` is false when a keeper did not answer: a gtrid without a row may then have
 * one there.
 */
async function readDecisions(ctx: CoordinatorContext, keepers: readonly DecisionKeeper[], gtrids: readonly Buffer[]): Promise<{ readonly decisions: Map<string, FoundDecision>; readonly complete: boolean }> {
  const decisions = new Map<string, FoundDecision>();
  if (keepers.length === 0 || gtrids.length === 0) return { decisions, complete: true };
  let complete = true;
  const answers = await Promise.all(
    keepers.map(async (keeper) => {
      try {
        return { keeper, found: await keeper.decisionsOf(gtrids) };
      } catch (error) {
        complete = false;
        ctx.logger.warn({ err: error, resourceId: keeper.resourceId }, 'reading decision rows failed; orphans without a row are not rolled back in this scan');
        return undefined;
      }
    }),
  );
  for (const answer of answers) {
    if (answer === undefined) continue;
    for (const [hex, outcome] of answer.found) {
      if (decisions.get(hex)?.outcome !== 'commit') decisions.set(hex, { outcome, keeper: answer.keeper });
    }
  }
  return { decisions, complete };
}

/**
 * Claims `gtrid` for rollback at every keeper. Resolves with the commit row if a commit won at
 * one of them, with `rollback` once every keeper holds a rollback row for it, or undefined when a
 * keeper did not answer or could not settle the claim yet (a commit still in progress).
 */
async function claimRollback(ctx: CoordinatorContext, keepers: readonly DecisionKeeper[], gtrid: Buffer): Promise<FoundDecision | undefined> {
  const hex = gtridHex(gtrid);
  const claims = await Promise.all(
    keepers.map(async (keeper) => {
      try {
        const outcome = (await keeper.claimRollback([gtrid])).get(hex);
        return outcome === undefined ? undefined : { outcome, keeper };
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: hex, resourceId: keeper.resourceId }, 'rollback claim on a decision row failed; the orphan is claimed at a later scan');
        return undefined;
      }
    }),
  );
  const won = claims.find((c) => c?.outcome === 'commit');
  if (won !== undefined) return won;
  if (claims.some((c) => c === undefined)) return undefined;
  return claims[0];
}

function xidOf(gtrid: Buffer, branchQualifier: Buffer): Xid {
  return { formatId: METAQ_TM_FORMAT_ID, globalTransactionId: gtrid, branchQualifier };
}
