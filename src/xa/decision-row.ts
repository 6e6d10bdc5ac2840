/**
 * Phase two of a transaction decided by a decision row (transactions.md §5.1, decision-row mode):
 * the last resource committed with the row `(gtrid, commit)` in its transaction, so the decision
 * is durable there and the coordinator log holds nothing. Shared by the commit path
 * (global-transaction.ts) and by recovery, which commits prepared orphans whose row says commit.
 *
 * - The prepared participants are committed, retried until each answers (phase-two.ts).
 * - A heuristic outcome needs a log entry to be recorded, held and forgotten like any other: a
 *   COMMITTING entry is created for it (it tells the truth: the transaction was decided to
 *   commit) with the prepared participants only (the last resource has nothing to re-drive).
 * - Then the decision row may go: no participant needs it any more. With an entry, the row goes
 *   after its END is durable, as markers do; without one, at the next marker sweep.
 */
import type { CoordinatorContext } from './coordinator-context.js';
import { runPhaseTwo, type PhaseTwoOptions, type PhaseTwoResult, type PhaseTwoTarget } from './phase-two.js';

/** How {@link completeByDecisionRow} ended. */
export type DecisionRowCompletion =
  /** Every participant committed; END written where there was an entry; the row is queued for deletion. */
  | 'ended'
  /** A heuristic outcome contrary to the decision: the entry stays for an operator's forget. */
  | 'held'
  /** Every participant committed, but END could not be written: recovery re-drives the entry. */
  | 'end-failed';

/**
 * Commits `targets` (the prepared participants) of the transaction `gtrid` whose decision row is
 * kept by `decisionRow.resource`, then queues the row for deletion (see the module comment).
 *
 * @throws {ClientClosedError} when the manager closes first (recovery finishes after a restart).
 */
export async function completeByDecisionRow(
  ctx: CoordinatorContext,
  gtrid: Buffer,
  targets: readonly PhaseTwoTarget[],
  decisionRow: PhaseTwoTarget,
  options: Pick<PhaseTwoOptions, 'sequential' | 'afterEach'> & { readonly beforeEnd?: () => void } = {},
): Promise<{ readonly result: PhaseTwoResult; readonly completion: DecisionRowCompletion }> {
  const participants = targets.map((t) => ({ resourceId: t.resource.resourceId, branchQualifier: t.xid.branchQualifier }));
  const { beforeEnd, ...phaseTwoOptions } = options;
  const result = await runPhaseTwo(ctx, gtrid, targets, 'commit', {
    ...phaseTwoOptions,
    ensureEntry: async () => {
      if (ctx.log.get(gtrid) === undefined) await ctx.log.committing(gtrid, participants);
    },
  });
  if (result.damaged) return { result, completion: 'held' };
  beforeEnd?.();
  if (ctx.log.get(gtrid) === undefined) {
    // Nothing logged, so nothing can re-drive these branches: sequence 0 is durable by definition.
    ctx.markers.add([...result.completed, decisionRow], 0);
    return { result, completion: 'ended' };
  }
  try {
    const endSeq = await ctx.log.endTracked(gtrid);
    ctx.markers.add([...result.completed, decisionRow], endSeq);
  } catch (error) {
    ctx.logger.warn({ err: error }, 'END could not be written after a decision-row commit; recovery re-drives the (idempotent) commit');
    return { result, completion: 'end-failed' };
  }
  return { result, completion: 'ended' };
}
