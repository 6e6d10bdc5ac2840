/**
 * Phase two: telling every prepared participant the decision, until each one has answered
 * (transactions.md §5.4 step 6, §5.6). Shared by `commit()`, the rollback of a failed commit and
 * recovery.
 *
 * - A call that fails is retried with exponential back-off, forever (Seata, Bitronix): the
 *   decision is durable, so giving up would leave a branch prepared and its locks held; the age
 *   of what is stuck shows in the metrics and the log. Only `close()` stops the loop (recovery
 *   finishes the job after a restart).
 * - An answer contrary to the decision, or a heuristic code, is a heuristic outcome: it is
 *   forced into the coordinator log, alerted (error log), counted, and the participant is asked
 *   to `forget` it. {@link judgeOutcome} says whether it is *consistent* with the decision (an
 *   operator committed a branch the manager also commits: no harm) or not (data may differ
 *   between participants: the transaction is held for an operator).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError } from '../common/errors.js';
import { backoffDelay } from '../client/transport/backoff.js';
import { describeXid } from '../client/transaction/xid.js';
import type { LoggedHeuristic } from './coordinator-log.js';
import type { CoordinatorContext } from './coordinator-context.js';
import type { PhaseTwoOutcome, RecoverableResource } from './resource.js';
import { gtridHex, type Xid } from './xid.js';

/** What the manager decided for a transaction. */
export type Decision = 'commit' | 'rollback';

/** A heuristic outcome kind. */
export type HeuristicOutcome = LoggedHeuristic['outcome'];

/** One participant of phase two. */
export interface PhaseTwoTarget {
  readonly resource: RecoverableResource;
  readonly xid: Xid;
}

/** A heuristic outcome found in phase two. */
export interface HeuristicReport {
  readonly resourceId: string;
  /** `formatId:gtridHex:bqualHex`. */
  readonly xid: string;
  readonly outcome: HeuristicOutcome;
  /** True when the outcome agrees with the decision (e.g. heuristic commit of a committing transaction). */
  readonly consistent: boolean;
  readonly detail: string;
}

/** What phase two found. */
export interface PhaseTwoResult {
  /** Heuristic outcomes, in the order they were recorded. */
  readonly heuristics: readonly HeuristicReport[];
  /** True when a heuristic outcome contradicts the decision: the transaction needs an operator. */
  readonly damaged: boolean;
  /** The participants that ended as the decision said without a heuristic. */
  readonly completed: readonly PhaseTwoTarget[];
  /** With `singleAttempt`: the participants whose call failed (left for a later attempt). */
  readonly failed: readonly PhaseTwoTarget[];
}

/** Options of {@link runPhaseTwo}. */
export interface PhaseTwoOptions {
  /** Call the participants one at a time in this order (crash tests) instead of all at once. */
  readonly sequential?: boolean;
  /** Called after each participant answered (sequential mode: where crash points fire). */
  readonly afterEach?: (target: PhaseTwoTarget, outcome: PhaseTwoOutcome) => void;
  /**
   * Makes sure the log has an entry for the gtrid before a heuristic is recorded (an aborted
   * transaction has none under presumed abort). Called at most once per heuristic.
   */
  readonly ensureEntry?: () => Promise<void>;
  /**
   * Call each participant once; a failure is logged and listed in `failed` instead of retried
   * (the rollback of a failed commit, recovery's orphan rollback: the next scan tries again).
   */
  readonly singleAttempt?: boolean;
}

/**
 * How `outcome` relates to `decision`: no heuristic (it did what was decided), or a heuristic
 * outcome and whether it agrees with the decision.
 */
export function judgeOutcome(decision: Decision, outcome: PhaseTwoOutcome): { readonly heuristic?: HeuristicOutcome; readonly consistent: boolean; readonly detail?: string } {
  const wanted = decision === 'commit' ? 'committed' : 'rolled-back';
  if (outcome === wanted) return { consistent: true };
  switch (outcome) {
    case 'committed':
      return { heuristic: 'heuristic-commit', consistent: false, detail: 'the participant answered "committed" to a rollback' };
    case 'rolled-back':
      return { heuristic: 'heuristic-rollback', consistent: false, detail: 'the participant answered "rolled back" to a commit' };
    case 'heuristic-commit':
      return { heuristic: outcome, consistent: decision === 'commit', detail: 'the participant reports a heuristic commit' };
    case 'heuristic-rollback':
      return { heuristic: outcome, consistent: decision === 'rollback', detail: 'the participant reports a heuristic rollback' };
    case 'heuristic-mixed':
      return { heuristic: outcome, consistent: false, detail: 'the participant reports a heuristic mixed outcome (part committed, part rolled back)' };
    case 'heuristic-hazard':
      return { heuristic: outcome, consistent: false, detail: 'the participant reports a heuristic hazard (its outcome is unknown)' };
  }
}

/**
 * Runs `attempt` until it resolves, waiting with back-off between failures and counting retries
 * for `resourceId`.
 *
 * @throws {ClientClosedError} once the manager is closed (the work is left to recovery).
 */
export async function retryForever<T>(ctx: CoordinatorContext, what: { readonly resourceId: string; readonly action: string }, attempt: () => Promise<T>): Promise<T> {
  for (let failures = 0; ; failures++) {
    if (ctx.signal.aborted) throw new ClientClosedError('The transaction manager');
    try {
      return await attempt();
    } catch (error) {
      if (ctx.signal.aborted) throw new ClientClosedError('The transaction manager');
      const delayMs = backoffDelay(failures, ctx.retry);
      ctx.counters.phaseTwoRetry(what.resourceId);
      const level = failures + 1 >= ctx.retry.alertAfterAttempts ? 'error' : 'warn';
      ctx.logger[level]({ err: error, resourceId: what.resourceId, attempt: failures + 1, delayMs }, `${what.action} failed; retrying`);
      try {
        await sleep(delayMs, undefined, { signal: ctx.signal });
      } catch {
        throw new ClientClosedError('The transaction manager');
      }
    }
  }
}

/**
 * Tells every target the decision and waits for all answers (retrying forever, see the module
 * comment), recording heuristic outcomes. Does not write END: the caller does, unless the
 * result is `damaged`.
 *
 * @throws {ClientClosedError} when the manager closes first.
 */
export async function runPhaseTwo(ctx: CoordinatorContext, gtrid: Buffer, targets: readonly PhaseTwoTarget[], decision: Decision, options: PhaseTwoOptions = {}): Promise<PhaseTwoResult> {
  const heuristics: HeuristicReport[] = [];
  const completed: PhaseTwoTarget[] = [];
  const failed: PhaseTwoTarget[] = [];
  const settle = async (target: PhaseTwoTarget): Promise<void> => {
    const { resource, xid } = target;
    const action = `${decision === 'commit' ? 'commit' : 'rollback'} of prepared branch ${describeXid(xid)} on ${resource.resourceId}`;
    const call = (): Promise<PhaseTwoOutcome> => (decision === 'commit' ? resource.commitPrepared(xid) : resource.rollbackPrepared(xid));
    let outcome: PhaseTwoOutcome;
    if (options.singleAttempt === true) {
      try {
        outcome = await call();
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: gtridHex(gtrid), resourceId: resource.resourceId }, `${action} failed; left for recovery`);
        failed.push(target);
        return;
      }
    } else {
      outcome = await retryForever(ctx, { resourceId: resource.resourceId, action }, call);
    }
    const judged = judgeOutcome(decision, outcome);
    if (judged.heuristic === undefined) completed.push(target);
    else {
      try {
        heuristics.push(await recordHeuristic(ctx, gtrid, target, judged.heuristic, judged.consistent, judged.detail ?? '', options));
      } catch (error) {
        if (options.singleAttempt !== true) throw error; // only close() stops the retrying path
        // Not recorded: the branch stays listed at the resource, and the next recovery scan meets it again.
        ctx.logger.error({ err: error, gtrid: gtridHex(gtrid), resourceId: resource.resourceId, outcome: judged.heuristic }, 'HEURISTIC OUTCOME could not be recorded; left for recovery');
        failed.push(target);
        return;
      }
    }
    options.afterEach?.(target, outcome);
  };
  if (options.sequential === true) {
    for (const target of targets) await settle(target);
  } else {
    await Promise.all(targets.map(settle));
  }
  return { heuristics, damaged: heuristics.some((h) => !h.consistent), completed, failed };
}

/** Forces a HEURISTIC record, alerts, counts, and asks the participant to forget the branch. */
async function recordHeuristic(
  ctx: CoordinatorContext,
  gtrid: Buffer,
  target: PhaseTwoTarget,
  outcome: HeuristicOutcome,
  consistent: boolean,
  detail: string,
  options: PhaseTwoOptions,
): Promise<HeuristicReport> {
  const { resource, xid } = target;
  const report: HeuristicReport = { resourceId: resource.resourceId, xid: describeXid(xid), outcome, consistent, detail };
  // Single-attempt callers (a rollback nobody waits to complete) must not hang on a failed log.
  const attempt = <T>(action: string, call: () => Promise<T>): Promise<T> =>
    options.singleAttempt === true ? call() : retryForever(ctx, { resourceId: resource.resourceId, action }, call);
  const ensureEntry = options.ensureEntry;
  if (ensureEntry !== undefined) await attempt('recording an entry for a heuristic outcome', ensureEntry);
  await attempt('forcing a HEURISTIC record', () => ctx.log.heuristic(gtrid, { resourceId: resource.resourceId, branchQualifier: xid.branchQualifier, outcome, detail }));
  ctx.counters.heuristics += 1;
  const fields = { gtrid: gtridHex(gtrid), ...report };
  if (consistent) ctx.logger.warn(fields, `heuristic outcome ${outcome} agrees with the decision; recorded`);
  else ctx.logger.error(fields, `HEURISTIC OUTCOME ${outcome}: participants of this transaction may disagree; an operator must check the data, then call forget(gtrid)`);
  // The log holds it now: the participant's own copy can go (otherwise it answers XA_HEUR* forever).
  try {
    await attempt(`forget of ${describeXid(xid)}`, () => resource.forget(xid));
  } catch (error) {
    // Recorded already: a participant that still remembers only answers XA_HEUR* again later.
    ctx.logger.warn({ err: error, gtrid: gtridHex(gtrid), resourceId: resource.resourceId }, 'forget of a heuristic branch failed');
  }
  return report;
}
