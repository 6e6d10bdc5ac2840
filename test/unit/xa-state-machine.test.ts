/**
 * The global transaction's state machine: every legal transition of the table, and every other
 * (state, event) pair refused with an IllegalStateError that leaves the state unchanged.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IllegalStateError } from '../../src/common/errors.js';
import { StateMachine } from '../../src/client/transaction/state-machine.js';
import {
  GLOBAL_TRANSITIONS,
  GlobalTransactionEvent,
  GlobalTransactionState,
  globalTransactionRefusal,
  type GlobalTransactionEventName,
  type GlobalTransactionStateName,
} from '../../src/xa/global-transaction-states.js';

const S = GlobalTransactionState;
const LEGAL: readonly [GlobalTransactionStateName, GlobalTransactionEventName, GlobalTransactionStateName][] = [
  [S.ACTIVE, 'commit', S.PREPARING],
  [S.ACTIVE, 'abort', S.ABORTING],
  [S.PREPARING, 'onePhase', S.COMMITTING_ONE_PHASE],
  [S.PREPARING, 'decide', S.COMMITTING],
  [S.PREPARING, 'readOnly', S.ENDED],
  [S.PREPARING, 'abort', S.ABORTING],
  [S.PREPARING, 'lastResource', S.COMMITTING_LAST_RESOURCE],
  [S.COMMITTING_LAST_RESOURCE, 'decide', S.COMMITTING],
  [S.COMMITTING_LAST_RESOURCE, 'abort', S.ABORTING],
  [S.COMMITTING_LAST_RESOURCE, 'outcomeUnknown', S.ENDED],
  [S.COMMITTING_ONE_PHASE, 'committed', S.ENDED],
  [S.COMMITTING_ONE_PHASE, 'rolledBack', S.ENDED],
  [S.COMMITTING_ONE_PHASE, 'outcomeUnknown', S.ENDED],
  [S.COMMITTING_ONE_PHASE, 'heuristic', S.HEURISTIC],
  [S.COMMITTING, 'committed', S.ENDED],
  [S.COMMITTING, 'heuristic', S.HEURISTIC],
  [S.ABORTING, 'rolledBack', S.ENDED],
  [S.ABORTING, 'heuristic', S.HEURISTIC],
  [S.HEURISTIC, 'forget', S.ENDED],
];

function machineIn(state: GlobalTransactionStateName): StateMachine<GlobalTransactionStateName, GlobalTransactionEventName> {
  return new StateMachine(GLOBAL_TRANSITIONS, state, globalTransactionRefusal('00ff'));
}

describe('global transaction state machine', () => {
  it('accepts exactly the legal transitions', () => {
    for (const state of Object.values(S)) {
      for (const event of Object.values(GlobalTransactionEvent)) {
        const legal = LEGAL.find(([from, on]) => from === state && on === event);
        const machine = machineIn(state);
        if (legal !== undefined) {
          assert.equal(machine.apply(event), legal[2], `${state} --${event}-->`);
        } else {
          assert.throws(() => machine.apply(event), (error: unknown) => error instanceof IllegalStateError && error.message.includes(`${event} is not allowed in state ${state}`), `${state} --${event}--> must be refused`);
          assert.equal(machine.state, state);
        }
      }
    }
  });

  it('never leaves COMMITTING for ABORTING: the decision is final (presumed abort ends at COMMITTING)', () => {
    assert.equal(machineIn(S.COMMITTING).can('abort'), false);
    assert.equal(machineIn(S.ENDED).can('commit'), false);
    assert.equal(machineIn(S.ACTIVE).can('decide'), false, 'no decision without prepare');
  });
});
