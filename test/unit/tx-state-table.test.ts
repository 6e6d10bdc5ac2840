import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  canTimeOut,
  isFinal,
  isHeuristic,
  isPrepared,
  isRecoverable,
  nextState,
  TRANSACTION_EVENTS,
  TRANSACTION_KINDS,
  TRANSACTION_STATES,
  XA_RBROLLBACK,
  type TransactionEventName,
  type TransactionKind,
  type TransactionStateName,
  type TransitionResult,
} from '../../src/transaction/transaction-state.js';
import { XaCode } from '../../src/protocol/transaction-bodies.js';

/*
 * The expected decision table, written independently of the implementation so a change to either
 * side fails here. One line per state, one token per event in this column order:
 *
 *   put  end  prepare  commitOnePhase  commitTwoPhase  commitApplied  rollback  timeout  heuristicCommit  heuristicRollback  forget
 *
 * Tokens: `STATE` = accepted, moves to STATE; `STATE:RO|DUP|IGN` = accepted with outcome READ_ONLY /
 * DUPLICATE / IGNORED; `!CODE` = refused with that XA code (PROTO = XAER_PROTO, RMERR = XAER_RMERR,
 * NOTA = XAER_NOTA, RBROLLBACK = XA_RBROLLBACK, RBTIMEOUT = XA_RBTIMEOUT, HEURCOM / HEURRB = XA_HEUR*).
 */
const COLUMNS: readonly TransactionEventName[] = [
  'put', 'end', 'prepare', 'commitOnePhase', 'commitTwoPhase', 'commitApplied',
  'rollback', 'timeout', 'heuristicCommit', 'heuristicRollback', 'forget',
];

const EXPECTED: Record<TransactionKind, Record<TransactionStateName, string>> = {
  xa: {
    //                     put            end            prepare        commit1         commit2         applied    rollback          timeout                    heurCommit             heurRollback             forget
    ACTIVE:                'IN_USE        ACTIVE:IGN     COMMITTED:RO   COMMITTED       !PROTO          !RMERR     ROLLED_BACK       TIMED_OUT                  !PROTO                 !PROTO                   !NOTA',
    IN_USE:                'IN_USE        IN_USE:IGN     PREPARED       COMMITTING      !PROTO          !RMERR     ROLLED_BACK       TIMED_OUT                  !PROTO                 !PROTO                   !NOTA',
    PREPARED:              '!PROTO        !PROTO         !PROTO         !PROTO          COMMITTING      !RMERR     ROLLED_BACK       PREPARED:IGN               HEURISTIC_COMMITTED    HEURISTIC_ROLLED_BACK    !NOTA',
    COMMITTING:            '!PROTO        !PROTO         !PROTO         COMMITTING:DUP  COMMITTING:DUP  COMMITTED  !PROTO            COMMITTING:IGN             !PROTO                 !PROTO                   !NOTA',
    COMMITTED:             '!PROTO        !PROTO         !PROTO         COMMITTED:DUP   COMMITTED:DUP   !RMERR     !PROTO            COMMITTED:IGN              !PROTO                 !PROTO                   !NOTA',
    ROLLED_BACK:           '!RBROLLBACK   !RBROLLBACK    !RBROLLBACK    !RBROLLBACK     !RBROLLBACK     !RMERR     ROLLED_BACK:DUP   ROLLED_BACK:IGN            !PROTO                 !PROTO                   !NOTA',
    TIMED_OUT:             '!RBTIMEOUT    !RBTIMEOUT     !RBTIMEOUT     !RBTIMEOUT      !RBTIMEOUT      !RMERR     TIMED_OUT:DUP     TIMED_OUT:IGN              !PROTO                 !PROTO                   !NOTA',
    HEURISTIC_COMMITTED:   '!HEURCOM      !HEURCOM       !HEURCOM       !HEURCOM        !HEURCOM        !RMERR     !HEURCOM          HEURISTIC_COMMITTED:IGN    !HEURCOM               !HEURCOM                 FORGOTTEN',
    HEURISTIC_ROLLED_BACK: '!HEURRB       !HEURRB        !HEURRB        !HEURRB         !HEURRB         !RMERR     !HEURRB           HEURISTIC_ROLLED_BACK:IGN  !HEURRB                !HEURRB                  FORGOTTEN',
    FORGOTTEN:             '!NOTA         !NOTA          !NOTA          !NOTA           !NOTA           !RMERR     !NOTA             FORGOTTEN:IGN              !NOTA                  !NOTA                    !NOTA',
  },
  local: {
    //                     put            end            prepare        commit1         commit2         applied    rollback          timeout                    heurCommit             heurRollback             forget
    ACTIVE:                'IN_USE        !RMERR         !RMERR         COMMITTED       !RMERR          !RMERR     ROLLED_BACK       TIMED_OUT                  !RMERR                 !RMERR                   !NOTA',
    IN_USE:                'IN_USE        !RMERR         !RMERR         COMMITTING      !RMERR          !RMERR     ROLLED_BACK       TIMED_OUT                  !RMERR                 !RMERR                   !NOTA',
    PREPARED:              '!RMERR        !RMERR         !RMERR         !RMERR          !RMERR          !RMERR     !RMERR            PREPARED:IGN               !RMERR                 !RMERR                   !NOTA',
    COMMITTING:            '!PROTO        !RMERR         !RMERR         COMMITTING:DUP  !RMERR          COMMITTED  !PROTO            COMMITTING:IGN             !RMERR                 !RMERR                   !NOTA',
    COMMITTED:             '!PROTO        !RMERR         !RMERR         COMMITTED:DUP   !RMERR          !RMERR     !PROTO            COMMITTED:IGN              !RMERR                 !RMERR                   !NOTA',
    ROLLED_BACK:           '!RBROLLBACK   !RMERR         !RMERR         !RBROLLBACK     !RMERR          !RMERR     ROLLED_BACK:DUP   ROLLED_BACK:IGN            !RMERR                 !RMERR                   !NOTA',
    TIMED_OUT:             '!RBTIMEOUT    !RMERR         !RMERR         !RBTIMEOUT      !RMERR          !RMERR     TIMED_OUT:DUP     TIMED_OUT:IGN              !RMERR                 !RMERR                   !NOTA',
    HEURISTIC_COMMITTED:   '!RMERR        !RMERR         !RMERR         !RMERR          !RMERR          !RMERR     !RMERR            HEURISTIC_COMMITTED:IGN    !RMERR                 !RMERR                   !NOTA',
    HEURISTIC_ROLLED_BACK: '!RMERR        !RMERR         !RMERR         !RMERR          !RMERR          !RMERR     !RMERR            HEURISTIC_ROLLED_BACK:IGN  !RMERR                 !RMERR                   !NOTA',
    FORGOTTEN:             '!RMERR        !RMERR         !RMERR         !RMERR          !RMERR          !RMERR     !RMERR            FORGOTTEN:IGN              !RMERR                 !RMERR                   !NOTA',
  },
};

const CODES: Record<string, number> = {
  PROTO: XaCode.XAER_PROTO,
  RMERR: XaCode.XAER_RMERR,
  NOTA: XaCode.XAER_NOTA,
  RBROLLBACK: XA_RBROLLBACK,
  RBTIMEOUT: XaCode.XA_RBTIMEOUT,
  HEURCOM: XaCode.XA_HEURCOM,
  HEURRB: XaCode.XA_HEURRB,
};
const OUTCOMES: Record<string, string> = { RO: 'READ_ONLY', DUP: 'DUPLICATE', IGN: 'IGNORED' };

/** The expected cell in the same shape as {@link nextState}'s result, minus the message text. */
function expectedCell(kind: TransactionKind, state: TransactionStateName, event: TransactionEventName): string {
  const tokens = EXPECTED[kind][state].trim().split(/\s+/);
  assert.equal(tokens.length, COLUMNS.length, `row ${kind}/${state} must have ${COLUMNS.length} cells`);
  const token = tokens[COLUMNS.indexOf(event)]!;
  if (token.startsWith('!')) {
    const code = CODES[token.slice(1)];
    assert.notEqual(code, undefined, `unknown code token ${token}`);
    return `refused ${code}`;
  }
  const [to, outcome] = token.split(':');
  return `ok ${to}${outcome === undefined ? '' : ` ${OUTCOMES[outcome] ?? `?${outcome}`}`}`;
}

function actualCell(result: TransitionResult): string {
  return result.ok ? `ok ${result.state}${result.outcome === undefined ? '' : ` ${result.outcome}`}` : `refused ${result.xaCode}`;
}

function allCells(): { kind: TransactionKind; state: TransactionStateName; event: TransactionEventName; result: TransitionResult }[] {
  return TRANSACTION_KINDS.flatMap((kind) =>
    TRANSACTION_STATES.flatMap((state) => TRANSACTION_EVENTS.map((event) => ({ kind, state, event, result: nextState(kind, state, event) }))),
  );
}

describe('transaction state table: every (kind, state, event) cell', () => {
  it('enumerates 2 kinds × 10 states × 11 events, and the test columns match the events', () => {
    assert.deepEqual([...TRANSACTION_KINDS].sort(), ['local', 'xa']);
    assert.equal(TRANSACTION_STATES.length, 10);
    assert.deepEqual([...TRANSACTION_EVENTS].sort(), [...COLUMNS].sort());
    assert.deepEqual(Object.keys(EXPECTED.xa).sort(), [...TRANSACTION_STATES].sort());
    assert.deepEqual(Object.keys(EXPECTED.local).sort(), [...TRANSACTION_STATES].sort());
    assert.equal(allCells().length, 220);
  });

  for (const kind of TRANSACTION_KINDS) {
    for (const state of TRANSACTION_STATES) {
      it(`${kind} ${state}`, () => {
        const mismatches: string[] = [];
        for (const event of TRANSACTION_EVENTS) {
          const expected = expectedCell(kind, state, event);
          const actual = actualCell(nextState(kind, state, event));
          if (expected !== actual) mismatches.push(`${event}: expected ${expected}, got ${actual}`);
        }
        assert.deepEqual(mismatches, []);
      });
    }
  }

  it('refusals carry a message naming the event, the kind and the state', () => {
    for (const { kind, state, event, result } of allCells()) {
      if (result.ok) continue;
      assert.match(result.message, new RegExp(`^cannot ${event} ${kind === 'xa' ? 'an XA' : 'a local'} transaction in state ${state}: \\S`));
    }
  });
});

describe('transaction state table: invariants', () => {
  it('the timer never fails and only rolls back unprepared branches', () => {
    for (const { state, event, result } of allCells()) {
      if (event !== 'timeout') continue;
      assert.ok(result.ok);
      assert.equal(result.state, canTimeOut(state) ? 'TIMED_OUT' : state);
      if (!canTimeOut(state)) assert.equal(result.outcome, 'IGNORED');
    }
  });

  it('isFinal is exactly "no event leaves the state", for both kinds', () => {
    for (const state of TRANSACTION_STATES) {
      const reachable = new Set(TRANSACTION_KINDS.filter((kind) => reachableStates(kind).has(state)));
      const leaves = allCells().some((cell) => cell.state === state && reachable.has(cell.kind) && cell.result.ok && cell.result.state !== state);
      assert.equal(isFinal(state), !leaves, state);
    }
  });

  it('an accepted event with an outcome never changes the state, except a read-only prepare', () => {
    for (const { state, event, result } of allCells()) {
      if (!result.ok || result.outcome === undefined) continue;
      if (result.outcome === 'READ_ONLY') assert.deepEqual([state, event, result.state], ['ACTIVE', 'prepare', 'COMMITTED']);
      else assert.equal(result.state, state);
    }
  });

  it('has no cycles, so a branch changes state a bounded number of times', () => {
    for (const kind of TRANSACTION_KINDS) {
      const visiting = new Set<TransactionStateName>();
      const done = new Set<TransactionStateName>();
      const visit = (state: TransactionStateName): void => {
        assert.ok(!visiting.has(state), `${kind}: cycle through ${state}`);
        if (done.has(state)) return;
        visiting.add(state);
        for (const next of successors(kind, state)) visit(next);
        visiting.delete(state);
        done.add(state);
      };
      visit('ACTIVE');
    }
  });

  it('a local transaction never reaches an XA-only state', () => {
    assert.deepEqual([...reachableStates('local')].sort(), ['ACTIVE', 'COMMITTED', 'COMMITTING', 'IN_USE', 'ROLLED_BACK', 'TIMED_OUT']);
    assert.deepEqual([...reachableStates('xa')].sort(), [...TRANSACTION_STATES].sort());
  });

  it('only PREPARED moves to a heuristic state, and only a heuristic state is forgotten', () => {
    for (const { state, event, result } of allCells()) {
      if (!result.ok || result.state === state) continue;
      if (isHeuristic(result.state)) assert.equal(state, 'PREPARED');
      if (result.state === 'FORGOTTEN') assert.ok(isHeuristic(state) && event === 'forget');
    }
  });

  it('classifies states', () => {
    assert.deepEqual(TRANSACTION_STATES.filter(isPrepared), ['PREPARED']);
    assert.deepEqual(TRANSACTION_STATES.filter(isHeuristic), ['HEURISTIC_COMMITTED', 'HEURISTIC_ROLLED_BACK']);
    assert.deepEqual(TRANSACTION_STATES.filter(isRecoverable), ['PREPARED', 'HEURISTIC_COMMITTED', 'HEURISTIC_ROLLED_BACK']);
    assert.deepEqual(TRANSACTION_STATES.filter(canTimeOut), ['ACTIVE', 'IN_USE']);
    assert.deepEqual(TRANSACTION_STATES.filter(isFinal), ['COMMITTED', 'ROLLED_BACK', 'TIMED_OUT', 'FORGOTTEN']);
  });
});

function successors(kind: TransactionKind, state: TransactionStateName): TransactionStateName[] {
  return TRANSACTION_EVENTS.flatMap((event) => {
    const result = nextState(kind, state, event);
    return result.ok && result.state !== state ? [result.state] : [];
  });
}

function reachableStates(kind: TransactionKind): Set<TransactionStateName> {
  const seen = new Set<TransactionStateName>(['ACTIVE']);
  const queue: TransactionStateName[] = ['ACTIVE'];
  for (let state = queue.shift(); state !== undefined; state = queue.shift()) {
    for (const next of successors(kind, state)) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}
