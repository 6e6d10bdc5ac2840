/**
 * The client-side state machine of one XA branch on one `XAResource` (the association states of
 * the XA spec, plus what the broker told us). The broker keeps its own, authoritative machine
 * (src/transaction/transaction-state.ts); this one only refuses calls that cannot be right in
 * this process (a send after `end`, a prepare before `end`, a second `start` of the same XID)
 * with XAER_PROTO / XAER_DUPID, before anything goes on the wire.
 *
 * ```
 *   start ─▶ ACTIVE ──end(TMSUSPEND)──▶ SUSPENDED ──start(TMRESUME)──▶ ACTIVE
 *              │ end(TMSUCCESS)              │ end(TMSUCCESS)
 *              ▼                             ▼
 *             IDLE ──prepare: XA_OK──▶ PREPARED ──commit──▶ COMMITTED
 *              │  └─prepare: XA_RDONLY / commit(onePhase)──▶ COMMITTED
 *              └──rollback──▶ ROLLED_BACK
 *   ACTIVE/SUSPENDED ──end(TMFAIL), a send without answer, or one that failed before it was
 *                      written──▶ ROLLBACK_ONLY ──rollback──▶ ROLLED_BACK
 *   IDLE ──a send queued before END that got no answer or was never written──▶ ROLLBACK_ONLY
 * ```
 *
 * A branch this resource never started (recovered after a restart, or started through another
 * resource for which `isSameRM` is true) has no client-side machine: prepare, commit, rollback and
 * forget go straight to the broker, which decides.
 */
import type { TransitionTable } from './state-machine.js';
import { XaCode } from './xa-codes.js';
import { xaError } from './xa-errors.js';
import type { XaError } from '../../common/errors.js';

/** Client-side states of an XA branch. */
export const XaBranchState = {
  /** Associated (`start`): sends are accepted. */
  ACTIVE: 'ACTIVE',
  /** `end(TMSUSPEND)`: resumable with `start(xid, TMRESUME)`. */
  SUSPENDED: 'SUSPENDED',
  /** `end(TMSUCCESS)`: ready for prepare or a one-phase commit. */
  IDLE: 'IDLE',
  /** `end(TMFAIL)`, or a send got no answer or failed before it was written: only rollback is possible (prepare answers XA_RB*). */
  ROLLBACK_ONLY: 'ROLLBACK_ONLY',
  /** Voted XA_OK; waits for commit or rollback. */
  PREPARED: 'PREPARED',
  /** Committed (final). */
  COMMITTED: 'COMMITTED',
  /** Rolled back (final). */
  ROLLED_BACK: 'ROLLED_BACK',
} as const;

/** One of the values of {@link XaBranchState}. */
export type XaBranchStateName = (typeof XaBranchState)[keyof typeof XaBranchState];

/** What happens to an XA branch on the client. */
export const XaBranchEvent = {
  /** `start(xid, TMJOIN)`. */
  join: 'join',
  /** `start(xid, TMRESUME)`. */
  resume: 'resume',
  /** `send(xid, message)`. */
  send: 'send',
  /** A send got no answer: it may or may not be staged. */
  sendUncertain: 'sendUncertain',
  /** A send failed before its put was written (unpublished topic, no partition, a malformed message). */
  sendFailed: 'sendFailed',
  /** `end(xid, TMSUSPEND)`. */
  suspend: 'suspend',
  /** `end(xid, TMSUCCESS)`. */
  endSuccess: 'endSuccess',
  /** `end(xid, TMFAIL)`. */
  endFail: 'endFail',
  /** `prepare` voted XA_OK. */
  prepared: 'prepared',
  /** Committed: one-phase commit, two-phase commit, or a read-only prepare vote. */
  committed: 'committed',
  /** Rolled back (by rollback, or the broker answered XA_RB*). */
  rolledBack: 'rolledBack',
} as const;

/** One of the values of {@link XaBranchEvent}. */
export type XaBranchEventName = (typeof XaBranchEvent)[keyof typeof XaBranchEvent];

const S = XaBranchState;

/** The complete table. */
export const XA_BRANCH_TRANSITIONS: TransitionTable<XaBranchStateName, XaBranchEventName> = Object.freeze({
  ACTIVE: {
    join: S.ACTIVE,
    send: S.ACTIVE,
    sendUncertain: S.ROLLBACK_ONLY,
    sendFailed: S.ROLLBACK_ONLY,
    suspend: S.SUSPENDED,
    endSuccess: S.IDLE,
    endFail: S.ROLLBACK_ONLY,
    rolledBack: S.ROLLED_BACK,
  },
  SUSPENDED: {
    resume: S.ACTIVE,
    sendUncertain: S.ROLLBACK_ONLY,
    sendFailed: S.ROLLBACK_ONLY,
    endSuccess: S.IDLE,
    endFail: S.ROLLBACK_ONLY,
    rolledBack: S.ROLLED_BACK,
  },
  // A send queued before END whose answer came after it (END waits for puts to be queued, not
  // answered): the prepare or one-phase commit in flight checks for this and rolls back.
  IDLE: { join: S.ACTIVE, sendUncertain: S.ROLLBACK_ONLY, sendFailed: S.ROLLBACK_ONLY, prepared: S.PREPARED, committed: S.COMMITTED, rolledBack: S.ROLLED_BACK },
  ROLLBACK_ONLY: { sendUncertain: S.ROLLBACK_ONLY, sendFailed: S.ROLLBACK_ONLY, suspend: S.ROLLBACK_ONLY, endSuccess: S.ROLLBACK_ONLY, endFail: S.ROLLBACK_ONLY, rolledBack: S.ROLLED_BACK },
  PREPARED: { committed: S.COMMITTED, rolledBack: S.ROLLED_BACK },
  COMMITTED: {},
  ROLLED_BACK: {},
});

/** The XAER_PROTO error for a call the branch's state does not allow. */
export function xaRefusal(keyText: string): (state: XaBranchStateName, event: XaBranchEventName) => XaError {
  return (state, event) => xaError(XaCode.XAER_PROTO, `cannot ${event} branch ${keyText}: it is ${state} on this resource`);
}
