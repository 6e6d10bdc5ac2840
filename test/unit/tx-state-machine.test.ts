import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  TransactionStateError,
  TransactionStateMachine,
  XA_RBROLLBACK,
  type TransactionEventName,
  type TransactionTransition,
} from '../../src/transaction/transaction-state.js';
import { XaCode } from '../../src/protocol/transaction-bodies.js';
import { ErrorCode, MetaqError } from '../../src/common/errors.js';

const KEY = 'XID:1:0102:ab:XAMessageProducer-host1';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return assert.fail('expected a throw');
}

function run(machine: TransactionStateMachine, events: readonly TransactionEventName[]): void {
  for (const event of events) machine.apply(event);
}

describe('TransactionStateMachine', () => {
  it('starts ACTIVE and walks an XA two-phase commit, reporting each state change once', () => {
    const seen: TransactionTransition[] = [];
    const machine = new TransactionStateMachine({ kind: 'xa', key: KEY, onTransition: (t) => seen.push(t) });
    assert.equal(machine.state, 'ACTIVE');
    run(machine, ['put', 'put', 'end', 'prepare', 'timeout', 'commitTwoPhase', 'commitApplied']);
    assert.equal(machine.state, 'COMMITTED');
    const path = seen.map((t) => `${t.event}:${t.from}->${t.to}`);
    assert.deepEqual(path, ['put:ACTIVE->IN_USE', 'prepare:IN_USE->PREPARED', 'commitTwoPhase:PREPARED->COMMITTING', 'commitApplied:COMMITTING->COMMITTED']);
    assert.deepEqual(machine.transitions, seen);
    assert.deepEqual(seen[0], { kind: 'xa', key: KEY, event: 'put', from: 'ACTIVE', to: 'IN_USE', outcome: undefined });
  });

  it('returns the outcome of accepted events', () => {
    const machine = new TransactionStateMachine({ kind: 'xa' });
    assert.deepEqual(machine.apply('end'), { ok: true, state: 'ACTIVE', outcome: 'IGNORED' });
    assert.deepEqual(machine.apply('prepare'), { ok: true, state: 'COMMITTED', outcome: 'READ_ONLY' });
    assert.deepEqual(machine.apply('commitTwoPhase'), { ok: true, state: 'COMMITTED', outcome: 'DUPLICATE' });
    assert.equal(machine.transitions.length, 1);
    assert.equal(machine.transitions[0]?.outcome, 'READ_ONLY');
  });

  it('throws a typed error carrying the XA code and leaves the state unchanged', () => {
    const seen: TransactionTransition[] = [];
    const machine = new TransactionStateMachine({ kind: 'xa', key: KEY, onTransition: (t) => seen.push(t) });
    machine.apply('put');
    const error = caught(() => machine.apply('commitTwoPhase'));
    assert.ok(error instanceof TransactionStateError, 'a TransactionStateError');
    assert.ok(error instanceof MetaqError);
    assert.equal(error.code, ErrorCode.IllegalState);
    assert.equal(error.xaCode, XaCode.XAER_PROTO);
    assert.deepEqual([error.kind, error.state, error.event], ['xa', 'IN_USE', 'commitTwoPhase']);
    assert.match(error.message, new RegExp(`^${KEY}: cannot commitTwoPhase an XA transaction in state IN_USE`));
    assert.equal(machine.state, 'IN_USE');
    assert.equal(seen.length, 1);
  });

  it('a local transaction: commit, duplicate commit, and XA-only calls refused with XAER_RMERR', () => {
    const machine = new TransactionStateMachine({ kind: 'local', key: 'TX:s:1' });
    machine.apply('put');
    assert.throws(() => machine.apply('prepare'), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XaCode.XAER_RMERR);
    assert.deepEqual(machine.apply('commitOnePhase'), { ok: true, state: 'COMMITTING' });
    assert.deepEqual(machine.apply('commitOnePhase'), { ok: true, state: 'COMMITTING', outcome: 'DUPLICATE' });
    machine.apply('commitApplied');
    assert.equal(machine.state, 'COMMITTED');
    assert.throws(() => machine.apply('rollback'), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XaCode.XAER_PROTO);
  });

  it('timeout rolls back an unprepared branch; later calls answer XA_RBTIMEOUT, rollback is OK', () => {
    const machine = new TransactionStateMachine({ kind: 'xa' });
    run(machine, ['put', 'timeout']);
    assert.equal(machine.state, 'TIMED_OUT');
    for (const event of ['put', 'prepare', 'commitOnePhase', 'commitTwoPhase'] as const) {
      assert.throws(() => machine.apply(event), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XaCode.XA_RBTIMEOUT);
    }
    assert.deepEqual(machine.apply('rollback'), { ok: true, state: 'TIMED_OUT', outcome: 'DUPLICATE' });
  });

  it('a rolled-back branch answers XA_RBROLLBACK to a commit', () => {
    const machine = new TransactionStateMachine({ kind: 'xa' });
    run(machine, ['put', 'rollback', 'rollback']);
    assert.throws(() => machine.apply('commitOnePhase'), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XA_RBROLLBACK);
  });

  it('a prepared branch ignores the timer and can be completed heuristically, then forgotten', () => {
    const machine = new TransactionStateMachine({ kind: 'xa', initialState: 'PREPARED' });
    assert.equal(machine.state, 'PREPARED');
    assert.equal(machine.can('timeout'), true);
    assert.deepEqual(machine.peek('timeout'), { ok: true, state: 'PREPARED', outcome: 'IGNORED' });
    assert.equal(machine.can('commitOnePhase'), false);
    machine.apply('heuristicRollback');
    assert.throws(() => machine.apply('commitTwoPhase'), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XaCode.XA_HEURRB);
    machine.apply('forget');
    assert.equal(machine.state, 'FORGOTTEN');
    assert.throws(() => machine.apply('forget'), (e: unknown) => e instanceof TransactionStateError && e.xaCode === XaCode.XAER_NOTA);
    assert.deepEqual(
      machine.transitions.map((t) => t.to),
      ['HEURISTIC_ROLLED_BACK', 'FORGOTTEN'],
    );
  });

  it('peek and can do not change anything', () => {
    const seen: TransactionTransition[] = [];
    const machine = new TransactionStateMachine({ kind: 'xa', onTransition: (t) => seen.push(t) });
    assert.equal(machine.can('put'), true);
    assert.equal(machine.can('forget'), false);
    assert.deepEqual(machine.peek('put'), { ok: true, state: 'IN_USE' });
    assert.equal(machine.state, 'ACTIVE');
    assert.equal(seen.length, 0);
  });

  it('a throwing listener does not leave the machine half-applied', () => {
    const machine = new TransactionStateMachine({
      kind: 'xa',
      onTransition: () => {
        throw new Error('listener bug');
      },
    });
    assert.throws(() => machine.apply('put'), /listener bug/);
    assert.equal(machine.state, 'IN_USE');
    assert.equal(machine.transitions.length, 1);
  });
});
