/**
 * The broker-side state machine of ONE transaction branch, local (`TX:`) or XA (`XID:`).
 *
 * Shaped like kafkajs' `eosManager/transactionStateMachine.js`: the states are `as const` names, the
 * legal moves live in one data table, and a small class applies events and reports every state change
 * through a callback (for logs and metrics). Unlike kafkajs, the table is total: every
 * (kind, state, event) cell is written down, so a cell nobody thought about cannot exist, and the
 * error cells carry the XA code the broker answers (metaq-reference §1.7 / §3.1, transactions.md §5.5).
 *
 * Rules the table encodes (transactions.md §0 and §5.5):
 * - presumed abort: only PREPARED branches survive on their own; anything else rolls back;
 * - the timer never touches a PREPARED branch: `timeout` rolls back ACTIVE/IN_USE only, and is IGNORED
 *   everywhere else (a timer firing after the branch moved on is a benign race, never an error);
 * - outcome tombstones: a repeated commit of a committed branch, or rollback of a rolled-back one,
 *   answers OK (`DUPLICATE`) so a coordinator retrying after a lost reply is not told a lie;
 * - a branch the broker rolled back before prepare answers XA_RBTIMEOUT (timer) or XA_RBROLLBACK
 *   (explicit rollback, or the restart roll-back of in-flight branches) to a later put/end/prepare/commit;
 * - a heuristically completed branch answers XA_HEURCOM / XA_HEURRB to everything until FORGET;
 * - FORGOTTEN behaves exactly like an unknown XID: XAER_NOTA.
 *
 * The full table, cell by cell, is in {@link TRANSITION_TABLE} below and mirrored by
 * `test/unit/tx-state-table.test.ts`.
 */
import { ErrorCode, MetaqError } from '../common/errors.js';
import { XaCode } from '../protocol/transaction-bodies.js';

/** The states of a transaction branch. */
export const TransactionState = {
  /** Begun (BEGIN / `XAResource.start`), nothing staged yet. MetaQ's START. */
  ACTIVE: 'ACTIVE',
  /** At least one message staged. */
  IN_USE: 'IN_USE',
  /** XA only: voted XA_OK, prepare record forced. Only the coordinator (or an admin) resolves it. */
  PREPARED: 'PREPARED',
  /**
   * Commit record written; the staged batches are being appended to the partitions. A commit of an
   * ACTIVE branch skips it (nothing to write or apply) and goes straight to COMMITTED.
   */
  COMMITTING: 'COMMITTING',
  /** Committed (including a read-only XA branch: XA spec, "read-only and has been committed"). */
  COMMITTED: 'COMMITTED',
  /** Rolled back by the client/coordinator, or by the broker's restart recovery. */
  ROLLED_BACK: 'ROLLED_BACK',
  /** Rolled back by the timeout wheel before it was prepared. */
  TIMED_OUT: 'TIMED_OUT',
  /** XA only: a PREPARED branch an administrator committed. */
  HEURISTIC_COMMITTED: 'HEURISTIC_COMMITTED',
  /** XA only: a PREPARED branch an administrator rolled back. */
  HEURISTIC_ROLLED_BACK: 'HEURISTIC_ROLLED_BACK',
  /** XA only: a heuristic branch the coordinator forgot; indistinguishable from an unknown XID. */
  FORGOTTEN: 'FORGOTTEN',
} as const;

/** One of the values of {@link TransactionState}. */
export type TransactionStateName = (typeof TransactionState)[keyof typeof TransactionState];

/** Every state, in declaration order (for exhaustive iteration). */
export const TRANSACTION_STATES: readonly TransactionStateName[] = Object.freeze(Object.values(TransactionState));

/** What can happen to a branch: client/coordinator calls, admin calls and engine-internal events. */
export const TransactionEvent = {
  /** A `put` carrying the transaction key (stages one message). */
  put: 'put',
  /** XA `end` (TMSUCCESS/TMFAIL/TMSUSPEND); MetaQ ignores it. */
  end: 'end',
  /** XA phase one. */
  prepare: 'prepare',
  /** COMMIT_ONE_PHASE: local commit, or the XA one-phase optimisation. */
  commitOnePhase: 'commitOnePhase',
  /** COMMIT_TWO_PHASE: XA phase two. */
  commitTwoPhase: 'commitTwoPhase',
  /** Internal: every staged batch of a COMMITTING branch has been appended. */
  commitApplied: 'commitApplied',
  /** ROLLBACK (client, coordinator or restart recovery of an unprepared branch). */
  rollback: 'rollback',
  /** Internal: the timeout wheel fired for this branch. */
  timeout: 'timeout',
  /** Admin: commit a PREPARED branch without the coordinator. */
  heuristicCommit: 'heuristicCommit',
  /** Admin: roll back a PREPARED branch without the coordinator. */
  heuristicRollback: 'heuristicRollback',
  /** XA `forget` of a heuristically completed branch. */
  forget: 'forget',
} as const;

/** One of the values of {@link TransactionEvent}. */
export type TransactionEventName = (typeof TransactionEvent)[keyof typeof TransactionEvent];

/** Every event, in declaration order (for exhaustive iteration). */
export const TRANSACTION_EVENTS: readonly TransactionEventName[] = Object.freeze(Object.values(TransactionEvent));

/** `local` for `TX:` keys, `xa` for `XID:` keys. */
export type TransactionKind = 'local' | 'xa';

/** Both kinds (for exhaustive iteration). */
export const TRANSACTION_KINDS: readonly TransactionKind[] = Object.freeze(['local', 'xa']);

/**
 * XA_RBROLLBACK (100), "rolled back for an unspecified reason". Missing from {@link XaCode}, which
 * lists only the codes Java MetaQ itself sends; the Java client passes any `code=` through unchanged.
 */
export const XA_RBROLLBACK = 100;

/** Extra facts about an accepted event, beyond the new state. */
export const TransitionOutcome = {
  /** PREPARE of a branch with nothing staged: answer XA_RDONLY; no prepare record, no phase two. */
  READ_ONLY: 'READ_ONLY',
  /**
   * A repeated commit/rollback answered from the outcome: no side effect. From COMMITTING the
   * decision is already durable; the engine should answer once the in-flight apply finishes.
   */
  DUPLICATE: 'DUPLICATE',
  /** Accepted and meaningless here (`end`, or a timer that lost the race): no side effect. */
  IGNORED: 'IGNORED',
} as const;

/** One of the values of {@link TransitionOutcome}. */
export type TransitionOutcomeName = (typeof TransitionOutcome)[keyof typeof TransitionOutcome];

/** An accepted event: the branch is now in `state`; `outcome` is set when the event has no normal effect. */
export interface TransitionOk {
  readonly ok: true;
  readonly state: TransactionStateName;
  readonly outcome?: TransitionOutcomeName;
}

/** A refused event: the branch is unchanged; `xaCode` is what the broker answers. */
export interface TransitionRefused {
  readonly ok: false;
  readonly xaCode: number;
  readonly message: string;
}

/** The result of {@link nextState}. */
export type TransitionResult = TransitionOk | TransitionRefused;

// ---------------------------------------------------------------------------------------------
// The table. Cell constructors keep each row on one screen; `Record<…>` types make TypeScript
// reject a row that forgets an event or a kind that forgets a state.

interface RefusalCell {
  readonly ok: false;
  readonly xaCode: number;
  /** Why, without the event/state prefix (added by {@link nextState}). */
  readonly reason: string;
}
type Cell = TransitionOk | RefusalCell;
type Row = Readonly<Record<TransactionEventName, Cell>>;
type KindTable = Readonly<Record<TransactionStateName, Row>>;

const to = (state: TransactionStateName, outcome?: TransitionOutcomeName): Cell =>
  Object.freeze(outcome === undefined ? { ok: true, state } : { ok: true, state, outcome });
const refuse = (xaCode: number, reason: string): Cell => Object.freeze({ ok: false, xaCode, reason });

const S = TransactionState;
const O = TransitionOutcome;

// Shared refusals. XAER_PROTO = "legal call, wrong moment"; XAER_RMERR = an engine bug or an XA-only
// call on a local transaction (MetaQ answers prepare on a local tx with XAER_RMERR); XAER_NOTA for
// FORGET of a branch that is not heuristically completed, which is the XA spec's wording for xa_forget.
const NOT_PREPARED_2PC = refuse(XaCode.XAER_PROTO, 'two-phase commit of a branch that was not prepared');
const ONLY_PREPARED_HEUR = refuse(XaCode.XAER_PROTO, 'only a prepared branch can be completed heuristically');
const NOT_COMMITTING = refuse(XaCode.XAER_RMERR, 'commitApplied outside COMMITTING (engine bug)');
const NOT_HEURISTIC = refuse(XaCode.XAER_NOTA, 'the branch is not heuristically completed');
const PREPARED_NO_WORK = refuse(XaCode.XAER_PROTO, 'the branch is prepared; only commit or rollback may follow');
const DECIDED = refuse(XaCode.XAER_PROTO, 'the branch is already committing');
const DONE_COMMIT = refuse(XaCode.XAER_PROTO, 'the branch is already committed');
const RB_ROLLBACK = refuse(XA_RBROLLBACK, 'the branch was rolled back');
const RB_TIMEOUT = refuse(XaCode.XA_RBTIMEOUT, 'the branch was rolled back because it timed out');
const HEURCOM = refuse(XaCode.XA_HEURCOM, 'the branch was heuristically committed; forget it first');
const HEURRB = refuse(XaCode.XA_HEURRB, 'the branch was heuristically rolled back; forget it first');
const UNKNOWN = refuse(XaCode.XAER_NOTA, 'the branch is forgotten (unknown)');
const XA_ONLY = refuse(XaCode.XAER_RMERR, 'not supported on a local transaction');
const LOCAL_NEVER = refuse(XaCode.XAER_RMERR, 'a local transaction never reaches this state (engine bug)');

/** XA branches (`XID:` keys). */
const XA_TABLE: KindTable = {
  ACTIVE: {
    put: to(S.IN_USE), end: to(S.ACTIVE, O.IGNORED), prepare: to(S.COMMITTED, O.READ_ONLY),
    commitOnePhase: to(S.COMMITTED), commitTwoPhase: NOT_PREPARED_2PC, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK), timeout: to(S.TIMED_OUT),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  IN_USE: {
    put: to(S.IN_USE), end: to(S.IN_USE, O.IGNORED), prepare: to(S.PREPARED),
    commitOnePhase: to(S.COMMITTING), commitTwoPhase: NOT_PREPARED_2PC, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK), timeout: to(S.TIMED_OUT),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  PREPARED: {
    put: PREPARED_NO_WORK, end: PREPARED_NO_WORK,
    prepare: refuse(XaCode.XAER_PROTO, 'the branch is already prepared'),
    // Deviation from Java MetaQ (which commits): a one-phase commit contradicts a durable prepare vote,
    // so refuse it and leave the branch PREPARED and recoverable; the TM can still send COMMIT_TWO_PHASE.
    commitOnePhase: refuse(XaCode.XAER_PROTO, 'one-phase commit of a prepared branch; use two-phase commit'),
    commitTwoPhase: to(S.COMMITTING), commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK),
    timeout: to(S.PREPARED, O.IGNORED), // never roll back a prepared branch on a timer (§0.1)
    heuristicCommit: to(S.HEURISTIC_COMMITTED), heuristicRollback: to(S.HEURISTIC_ROLLED_BACK),
    forget: NOT_HEURISTIC,
  },
  COMMITTING: {
    put: DECIDED, end: DECIDED, prepare: DECIDED,
    commitOnePhase: to(S.COMMITTING, O.DUPLICATE), commitTwoPhase: to(S.COMMITTING, O.DUPLICATE),
    commitApplied: to(S.COMMITTED),
    rollback: DECIDED, timeout: to(S.COMMITTING, O.IGNORED),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  COMMITTED: {
    put: DONE_COMMIT, end: DONE_COMMIT, prepare: DONE_COMMIT,
    commitOnePhase: to(S.COMMITTED, O.DUPLICATE), commitTwoPhase: to(S.COMMITTED, O.DUPLICATE),
    commitApplied: NOT_COMMITTING,
    // Not OK and not a heuristic code: the broker did what the TM asked; the TM contradicts itself.
    rollback: DONE_COMMIT, timeout: to(S.COMMITTED, O.IGNORED),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  // XA_RB* rather than XAER_NOTA: the outcome is known, and several TMs read XAER_NOTA on a commit
  // retry as "already committed" — which would report a rolled-back branch as committed.
  ROLLED_BACK: {
    put: RB_ROLLBACK, end: RB_ROLLBACK, prepare: RB_ROLLBACK,
    commitOnePhase: RB_ROLLBACK, commitTwoPhase: RB_ROLLBACK, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK, O.DUPLICATE), timeout: to(S.ROLLED_BACK, O.IGNORED),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  TIMED_OUT: {
    put: RB_TIMEOUT, end: RB_TIMEOUT, prepare: RB_TIMEOUT,
    commitOnePhase: RB_TIMEOUT, commitTwoPhase: RB_TIMEOUT, commitApplied: NOT_COMMITTING,
    // The TM's usual reaction to XA_RBTIMEOUT is a rollback: OK, and the state keeps saying "timeout".
    rollback: to(S.TIMED_OUT, O.DUPLICATE), timeout: to(S.TIMED_OUT, O.IGNORED),
    heuristicCommit: ONLY_PREPARED_HEUR, heuristicRollback: ONLY_PREPARED_HEUR, forget: NOT_HEURISTIC,
  },
  // A heuristic branch answers its heuristic code to every external call but FORGET (MetaQ §3.1).
  // XA_HEURMIX is never produced: one branch is applied atomically through its commit record, so it
  // cannot be partly committed; XA_HEURHAZ (MetaQ's "complete heuristically") has no state here.
  HEURISTIC_COMMITTED: {
    put: HEURCOM, end: HEURCOM, prepare: HEURCOM, commitOnePhase: HEURCOM, commitTwoPhase: HEURCOM,
    commitApplied: NOT_COMMITTING, rollback: HEURCOM, timeout: to(S.HEURISTIC_COMMITTED, O.IGNORED),
    heuristicCommit: HEURCOM, heuristicRollback: HEURCOM, forget: to(S.FORGOTTEN),
  },
  HEURISTIC_ROLLED_BACK: {
    put: HEURRB, end: HEURRB, prepare: HEURRB, commitOnePhase: HEURRB, commitTwoPhase: HEURRB,
    commitApplied: NOT_COMMITTING, rollback: HEURRB, timeout: to(S.HEURISTIC_ROLLED_BACK, O.IGNORED),
    heuristicCommit: HEURRB, heuristicRollback: HEURRB, forget: to(S.FORGOTTEN),
  },
  FORGOTTEN: {
    put: UNKNOWN, end: UNKNOWN, prepare: UNKNOWN, commitOnePhase: UNKNOWN, commitTwoPhase: UNKNOWN,
    commitApplied: NOT_COMMITTING, rollback: UNKNOWN, timeout: to(S.FORGOTTEN, O.IGNORED),
    heuristicCommit: UNKNOWN, heuristicRollback: UNKNOWN, forget: UNKNOWN,
  },
};

/**
 * Local transactions (`TX:` keys): XA-only events are XAER_RMERR in every state (MetaQ's answer to
 * PREPARE of a local tx), FORGET is XAER_NOTA (MetaQ: only XIDs are in the heuristic map), and the
 * XA-only states are unreachable, so every call there is an engine bug (the timer stays harmless).
 */
const LOCAL_UNREACHABLE: Row = {
  put: LOCAL_NEVER, end: XA_ONLY, prepare: XA_ONLY, commitOnePhase: LOCAL_NEVER, commitTwoPhase: XA_ONLY,
  commitApplied: LOCAL_NEVER, rollback: LOCAL_NEVER, timeout: to(S.ACTIVE, O.IGNORED),
  heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
};

const LOCAL_TABLE: KindTable = {
  ACTIVE: {
    put: to(S.IN_USE), end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: to(S.COMMITTED), commitTwoPhase: XA_ONLY, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK), timeout: to(S.TIMED_OUT),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  IN_USE: {
    put: to(S.IN_USE), end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: to(S.COMMITTING), commitTwoPhase: XA_ONLY, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK), timeout: to(S.TIMED_OUT),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  PREPARED: withIgnoredTimeout(LOCAL_UNREACHABLE, S.PREPARED),
  COMMITTING: {
    put: DECIDED, end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: to(S.COMMITTING, O.DUPLICATE), commitTwoPhase: XA_ONLY, commitApplied: to(S.COMMITTED),
    rollback: DECIDED, timeout: to(S.COMMITTING, O.IGNORED),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  COMMITTED: {
    put: DONE_COMMIT, end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: to(S.COMMITTED, O.DUPLICATE), commitTwoPhase: XA_ONLY, commitApplied: NOT_COMMITTING,
    rollback: DONE_COMMIT, timeout: to(S.COMMITTED, O.IGNORED),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  ROLLED_BACK: {
    put: RB_ROLLBACK, end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: RB_ROLLBACK, commitTwoPhase: XA_ONLY, commitApplied: NOT_COMMITTING,
    rollback: to(S.ROLLED_BACK, O.DUPLICATE), timeout: to(S.ROLLED_BACK, O.IGNORED),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  TIMED_OUT: {
    put: RB_TIMEOUT, end: XA_ONLY, prepare: XA_ONLY,
    commitOnePhase: RB_TIMEOUT, commitTwoPhase: XA_ONLY, commitApplied: NOT_COMMITTING,
    rollback: to(S.TIMED_OUT, O.DUPLICATE), timeout: to(S.TIMED_OUT, O.IGNORED),
    heuristicCommit: XA_ONLY, heuristicRollback: XA_ONLY, forget: NOT_HEURISTIC,
  },
  HEURISTIC_COMMITTED: withIgnoredTimeout(LOCAL_UNREACHABLE, S.HEURISTIC_COMMITTED),
  HEURISTIC_ROLLED_BACK: withIgnoredTimeout(LOCAL_UNREACHABLE, S.HEURISTIC_ROLLED_BACK),
  FORGOTTEN: withIgnoredTimeout(LOCAL_UNREACHABLE, S.FORGOTTEN),
};

/** `row` with `timeout` ignored in place (an ignored event must not move the branch anywhere). */
function withIgnoredTimeout(row: Row, state: TransactionStateName): Row {
  return Object.freeze({ ...row, timeout: to(state, O.IGNORED) });
}

/**
 * The complete decision table: `TRANSITION_TABLE[kind][state][event]`. Exported read-only for
 * documentation and tests; use {@link nextState} to consult it.
 */
export const TRANSITION_TABLE: Readonly<Record<TransactionKind, KindTable>> = Object.freeze({ local: LOCAL_TABLE, xa: XA_TABLE });

/**
 * The pure transition function: what `event` does to a `kind` branch in `state`. Never throws;
 * a refusal leaves the branch unchanged and says which XA code to answer.
 */
export function nextState(kind: TransactionKind, state: TransactionStateName, event: TransactionEventName): TransitionResult {
  const cell = TRANSITION_TABLE[kind][state][event];
  if (cell.ok) return cell;
  return { ok: false, xaCode: cell.xaCode, message: `cannot ${event} ${kind === 'xa' ? 'an XA' : 'a local'} transaction in state ${state}: ${cell.reason}` };
}

/** True for states no event leaves: the outcome is decided and nothing more will happen. */
export function isFinal(state: TransactionStateName): boolean {
  return state === S.COMMITTED || state === S.ROLLED_BACK || state === S.TIMED_OUT || state === S.FORGOTTEN;
}

/** True for a branch that voted XA_OK and waits for the coordinator's decision. */
export function isPrepared(state: TransactionStateName): boolean {
  return state === S.PREPARED;
}

/** True for a heuristically completed branch (answers XA_HEUR* until FORGET). */
export function isHeuristic(state: TransactionStateName): boolean {
  return state === S.HEURISTIC_COMMITTED || state === S.HEURISTIC_ROLLED_BACK;
}

/** True for the branches RECOVER lists: prepared or heuristically completed (MetaQ §1.7). */
export function isRecoverable(state: TransactionStateName): boolean {
  return isPrepared(state) || isHeuristic(state);
}

/** True when the timeout wheel may roll the branch back (unprepared work only). */
export function canTimeOut(state: TransactionStateName): boolean {
  return state === S.ACTIVE || state === S.IN_USE;
}

/** One accepted event that changed the state, as reported to {@link TransactionStateMachineOptions.onTransition}. */
export interface TransactionTransition {
  /** Local or XA. */
  readonly kind: TransactionKind;
  /** The transaction key, when the machine was given one. */
  readonly key: string | undefined;
  /** The event that caused the change. */
  readonly event: TransactionEventName;
  /** The state before. */
  readonly from: TransactionStateName;
  /** The state after (always different from {@link from}). */
  readonly to: TransactionStateName;
  /** The outcome of the event, if any (READ_ONLY for a read-only prepare). */
  readonly outcome: TransitionOutcomeName | undefined;
}

/** An event the table refuses; `xaCode` is the answer for the client (`XAException:code=…`). */
export class TransactionStateError extends MetaqError {
  /** The XA error code to answer with. */
  readonly xaCode: number;
  /** Local or XA. */
  readonly kind: TransactionKind;
  /** The branch's (unchanged) state. */
  readonly state: TransactionStateName;
  /** The refused event. */
  readonly event: TransactionEventName;

  constructor(kind: TransactionKind, state: TransactionStateName, event: TransactionEventName, refusal: TransitionRefused, key?: string) {
    super(ErrorCode.IllegalState, key === undefined ? refusal.message : `${key}: ${refusal.message}`);
    this.xaCode = refusal.xaCode;
    this.kind = kind;
    this.state = state;
    this.event = event;
  }
}

/** Options of {@link TransactionStateMachine}. */
export interface TransactionStateMachineOptions {
  readonly kind: TransactionKind;
  /** The transaction key, used in error messages and transition reports. */
  readonly key?: string;
  /** Where the branch starts; recovery re-registers replayed branches as IN_USE or PREPARED. Default ACTIVE. */
  readonly initialState?: TransactionStateName;
  /** Called after each state change (not for same-state events such as a second put). */
  readonly onTransition?: (transition: TransactionTransition) => void;
}

/** Holds the state of one branch and applies events to it through {@link nextState}. */
export class TransactionStateMachine {
  /** Local or XA. */
  readonly kind: TransactionKind;
  /** The transaction key, if given. */
  readonly key: string | undefined;
  #state: TransactionStateName;
  readonly #transitions: TransactionTransition[] = [];
  readonly #onTransition: ((transition: TransactionTransition) => void) | undefined;

  constructor(options: TransactionStateMachineOptions) {
    this.kind = options.kind;
    this.key = options.key;
    this.#state = options.initialState ?? S.ACTIVE;
    this.#onTransition = options.onTransition;
  }

  /** The current state. */
  get state(): TransactionStateName {
    return this.#state;
  }

  /**
   * Every state change so far, oldest first. Bounded: the table has no cycles, so a branch changes
   * state at most five times (ACTIVE → IN_USE → PREPARED → HEURISTIC_* → FORGOTTEN).
   */
  get transitions(): readonly TransactionTransition[] {
    return this.#transitions;
  }

  /** What `event` would do now, without doing it. */
  peek(event: TransactionEventName): TransitionResult {
    return nextState(this.kind, this.#state, event);
  }

  /** True when `event` would be accepted now. */
  can(event: TransactionEventName): boolean {
    return this.peek(event).ok;
  }

  /**
   * Applies `event`. The state is updated before the callback runs, so a throwing listener cannot
   * leave the machine half-applied (its error still reaches the caller).
   *
   * @throws {TransactionStateError} when the table refuses the event; the state is unchanged.
   */
  apply(event: TransactionEventName): TransitionOk {
    const from = this.#state;
    const result = nextState(this.kind, from, event);
    if (!result.ok) throw new TransactionStateError(this.kind, from, event, result, this.key);
    if (result.state !== from) {
      this.#state = result.state;
      const transition: TransactionTransition = { kind: this.kind, key: this.key, event, from, to: result.state, outcome: result.outcome };
      this.#transitions.push(transition);
      this.#onTransition?.(transition);
    }
    return result;
  }
}
