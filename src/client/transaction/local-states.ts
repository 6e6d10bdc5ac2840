/**
 * The client-side state machine of a LOCAL transaction (`producer.beginTransaction()`).
 *
 * ```
 * READY ──send──▶ IN_TRANSACTION ──commit──▶ COMMITTING ──ok──▶ COMMITTED
 *   │                │    │                     ├──no answer──▶ FAILED ──commit──▶ COMMITTING
 *   │                │    │                     └──rolled back by the broker──▶ ROLLED_BACK
 *   │                │    └──send failed / no answer──▶ ABORT_ONLY ──rollback──▶ ABORTING
 *   │                └──rollback──▶ ABORTING ──ok──▶ ROLLED_BACK   (FAILED ──rollback──▶ ABORTING)
 *   └──commit / rollback with nothing sent──▶ COMMITTED / ROLLED_BACK (no wire)
 * ```
 *
 * - FAILED means "the outcome is unknown": a commit (or a rollback after a failed commit) got no
 *   answer. `commit()` (or `rollback()`) may be called again to learn it; the broker answers a
 *   repeated commit of a committed transaction with OK.
 * - ABORT_ONLY: a send failed (committing the others would break "all or none"), or got no
 *   answer, so the message may or may not be staged (committing could publish a message the
 *   application believes failed); only `rollback()` is allowed.
 * - `rolledBack`: also when the broker says the transaction is rolled back (timeout, lost
 *   connection, restart); every open state moves to ROLLED_BACK.
 */
import { IllegalStateError } from '../../common/errors.js';
import type { TransitionTable } from './state-machine.js';

/** The states of a local transaction, as seen by the client. */
export const LocalTransactionState = {
  /** Created; nothing sent yet (BEGIN goes out with the first send). */
  READY: 'READY',
  /** BEGIN sent (or being sent); sends are accepted. */
  IN_TRANSACTION: 'IN_TRANSACTION',
  /** A send's outcome is unknown; the transaction can only be rolled back. */
  ABORT_ONLY: 'ABORT_ONLY',
  /** `commit()` in progress. */
  COMMITTING: 'COMMITTING',
  /** `rollback()` in progress. */
  ABORTING: 'ABORTING',
  /** Committed: its messages are visible (final). */
  COMMITTED: 'COMMITTED',
  /** Rolled back: its messages will never be visible (final). */
  ROLLED_BACK: 'ROLLED_BACK',
  /** A commit or rollback got no answer: the outcome is unknown; call `commit()`/`rollback()` again. */
  FAILED: 'FAILED',
} as const;

/** One of the values of {@link LocalTransactionState}. */
export type LocalTransactionStateName = (typeof LocalTransactionState)[keyof typeof LocalTransactionState];

/** What happens to a local transaction. */
export const LocalTransactionEvent = {
  /** `send()` called. */
  send: 'send',
  /** A send got no answer (timeout, lost connection): it may or may not be staged. */
  sendUncertain: 'sendUncertain',
  /** A send failed: refused by the broker, or before anything was sent (no partition, bad message). */
  sendFailed: 'sendFailed',
  /** `commit()` called. */
  commit: 'commit',
  /** `commit()` found a send with an unknown outcome after waiting for the sends: not committed. */
  commitCancelled: 'commitCancelled',
  /** `rollback()` called. */
  rollback: 'rollback',
  /** The broker confirmed the commit. */
  committed: 'committed',
  /** The broker confirmed the rollback, or said the transaction is rolled back / unknown to it. */
  rolledBack: 'rolledBack',
  /** A commit or rollback got no answer (or an answer that does not settle the outcome). */
  outcomeUnknown: 'outcomeUnknown',
} as const;

/** One of the values of {@link LocalTransactionEvent}. */
export type LocalTransactionEventName = (typeof LocalTransactionEvent)[keyof typeof LocalTransactionEvent];

const S = LocalTransactionState;

/**
 * The complete table. `commit` from READY goes straight to COMMITTED and `rollback` from READY
 * straight to ROLLED_BACK: nothing was sent, so there is nothing to tell the broker (MetaQ threw
 * "No transaction is started" for an empty commit; committing nothing is a success here).
 */
export const LOCAL_TRANSITIONS: TransitionTable<LocalTransactionStateName, LocalTransactionEventName> = Object.freeze({
  READY: { send: S.IN_TRANSACTION, commit: S.COMMITTED, rollback: S.ROLLED_BACK },
  IN_TRANSACTION: {
    send: S.IN_TRANSACTION,
    sendUncertain: S.ABORT_ONLY,
    sendFailed: S.ABORT_ONLY,
    commit: S.COMMITTING,
    rollback: S.ABORTING,
    rolledBack: S.ROLLED_BACK,
  },
  ABORT_ONLY: { sendUncertain: S.ABORT_ONLY, sendFailed: S.ABORT_ONLY, rollback: S.ABORTING, rolledBack: S.ROLLED_BACK },
  COMMITTING: {
    // A send still in flight when commit() was called may fail while commit waits for it; once
    // COMMIT is queued behind it, the broker rolls the commit back for a refused put.
    sendUncertain: S.COMMITTING,
    sendFailed: S.COMMITTING,
    commitCancelled: S.ABORT_ONLY,
    committed: S.COMMITTED,
    rolledBack: S.ROLLED_BACK,
    outcomeUnknown: S.FAILED,
  },
  ABORTING: { sendUncertain: S.ABORTING, sendFailed: S.ABORTING, rolledBack: S.ROLLED_BACK, committed: S.COMMITTED, outcomeUnknown: S.FAILED },
  COMMITTED: {},
  ROLLED_BACK: {},
  FAILED: { commit: S.COMMITTING, rollback: S.ABORTING },
});

const DESCRIPTION: Record<LocalTransactionStateName, string> = {
  READY: 'not started',
  IN_TRANSACTION: 'open',
  ABORT_ONLY: 'abort-only (a send failed, or got no answer so it may or may not be part of the transaction); call rollback()',
  COMMITTING: 'being committed',
  ABORTING: 'being rolled back',
  COMMITTED: 'already committed; begin a new transaction',
  ROLLED_BACK: 'rolled back; begin a new transaction',
  FAILED: 'in doubt (a commit or rollback got no answer); call commit() or rollback() again to learn the outcome',
};

/** The {@link IllegalStateError} for a refused call, naming the transaction and what to do. */
export function localRefusal(key: string): (state: LocalTransactionStateName, event: LocalTransactionEventName) => IllegalStateError {
  return (state, event) => new IllegalStateError(`Cannot ${event} transaction ${key}: it is ${DESCRIPTION[state]}`);
}

/** States in which a `send` may be in progress and the broker still holds the transaction open. */
export function isOpen(state: LocalTransactionStateName): boolean {
  return state === S.IN_TRANSACTION || state === S.ABORT_ONLY;
}
