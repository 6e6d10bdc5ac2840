/**
 * The state machine of a global transaction in the transaction manager (transactions.md §5.3,
 * "In-memory states"), run by the {@link StateMachine} of the client's transactions.
 *
 * ```
 * ACTIVE ──commit──▶ PREPARING ──decide (COMMITTING forced)──▶ COMMITTING ──committed──▶ ENDED
 *   │                   │  │  └──readOnly (no branch left to commit)──▶ ENDED        └──heuristic──▶ HEURISTIC ──forget──▶ ENDED
 *   │                   │  ├──onePhase (one branch with work)──▶ COMMITTING_ONE_PHASE ──committed / rolledBack / outcomeUnknown──▶ ENDED
 *   │                   │  │                                                          └──heuristic──▶ HEURISTIC
 *   │                   │  └──lastResource (others prepared)──▶ COMMITTING_LAST_RESOURCE ──decide (its commit)──▶ COMMITTING
 *   │                   │                                            ├──abort (it rolled back)──▶ ABORTING
 *   │                   │                                            └──outcomeUnknown──▶ ENDED (recovery settles it)
 *   │                   └──abort (a "no" vote, an error, the log refused)──▶ ABORTING
 *   └──abort (rollback(), timeout)──▶ ABORTING ──rolledBack──▶ ENDED
 *                                       └──heuristic──▶ HEURISTIC
 * ```
 *
 * Only ACTIVE accepts work (enlistment, sends). Presumed abort: nothing is logged before
 * COMMITTING, so PREPARING can still turn into ABORTING, and COMMITTING can never. In
 * decision-row mode (a last resource, transactions.md §5.1) the decision is the last resource's
 * own one-phase commit, with the decision row in it: until it answers, the transaction can still
 * abort; if it never answers, the outcome is whatever the decision row says, which recovery reads.
 */
import { IllegalStateError } from '../common/errors.js';
import type { TransitionTable } from '../client/transaction/state-machine.js';

/** The states of a global transaction. */
export const GlobalTransactionState = {
  /** Begun: resources can be enlisted and used. */
  ACTIVE: 'ACTIVE',
  /** `commit()` called: branches ending and preparing; nothing decided yet (presumed abort). */
  PREPARING: 'PREPARING',
  /** One branch with work: committing it in one phase, no coordinator log record. */
  COMMITTING_ONE_PHASE: 'COMMITTING_ONE_PHASE',
  /**
   * Decision-row mode: the other participants are prepared; the last resource is committing
   * one-phase with the decision row in its transaction. That commit is the decision.
   */
  COMMITTING_LAST_RESOURCE: 'COMMITTING_LAST_RESOURCE',
  /** Decided (the COMMITTING record is durable, or the last resource committed): phase two in progress. */
  COMMITTING: 'COMMITTING',
  /** Rolling back (rollback(), timeout, a "no" vote, a failed decision). */
  ABORTING: 'ABORTING',
  /** A participant reported an outcome contrary to the decision; an operator must look (final until `forget`). */
  HEURISTIC: 'HEURISTIC',
  /** Finished (see the transaction's `outcome`). */
  ENDED: 'ENDED',
} as const;

/** One of the values of {@link GlobalTransactionState}. */
export type GlobalTransactionStateName = (typeof GlobalTransactionState)[keyof typeof GlobalTransactionState];

/** What happens to a global transaction. */
export const GlobalTransactionEvent = {
  /** `commit()` called. */
  commit: 'commit',
  /** Exactly one branch did work: commit it in one phase. */
  onePhase: 'onePhase',
  /** Other branches prepared; the last resource (decision-row mode) commits and so decides. */
  lastResource: 'lastResource',
  /** The COMMITTING record was forced (or the last resource committed with the decision row). */
  decide: 'decide',
  /** No branch is left to commit (no work, or only read-only votes). */
  readOnly: 'readOnly',
  /** The transaction is to be rolled back. */
  abort: 'abort',
  /** Every participant committed. */
  committed: 'committed',
  /** Every participant rolled back. */
  rolledBack: 'rolledBack',
  /** The one-phase commit (or the last resource's commit) got no answer: whether it happened is unknown. */
  outcomeUnknown: 'outcomeUnknown',
  /** A participant reported an outcome contrary to the decision. */
  heuristic: 'heuristic',
  /** The operator acknowledged the heuristic outcome. */
  forget: 'forget',
} as const;

/** One of the values of {@link GlobalTransactionEvent}. */
export type GlobalTransactionEventName = (typeof GlobalTransactionEvent)[keyof typeof GlobalTransactionEvent];

const S = GlobalTransactionState;

/** The complete table; a missing cell is a refused (illegal) transition. */
export const GLOBAL_TRANSITIONS: TransitionTable<GlobalTransactionStateName, GlobalTransactionEventName> = Object.freeze({
  ACTIVE: { commit: S.PREPARING, abort: S.ABORTING },
  PREPARING: { onePhase: S.COMMITTING_ONE_PHASE, lastResource: S.COMMITTING_LAST_RESOURCE, decide: S.COMMITTING, readOnly: S.ENDED, abort: S.ABORTING },
  COMMITTING_LAST_RESOURCE: { decide: S.COMMITTING, abort: S.ABORTING, outcomeUnknown: S.ENDED },
  COMMITTING_ONE_PHASE: { committed: S.ENDED, rolledBack: S.ENDED, outcomeUnknown: S.ENDED, heuristic: S.HEURISTIC },
  COMMITTING: { committed: S.ENDED, heuristic: S.HEURISTIC },
  ABORTING: { rolledBack: S.ENDED, heuristic: S.HEURISTIC },
  HEURISTIC: { forget: S.ENDED },
  ENDED: {},
});

/** The error of a refused transition. */
export function globalTransactionRefusal(gtridHex: string): (state: GlobalTransactionStateName, event: GlobalTransactionEventName) => Error {
  return (state, event) => new IllegalStateError(`global transaction ${gtridHex}: ${event} is not allowed in state ${state}`);
}
