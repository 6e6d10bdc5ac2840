/**
 * Client transactions (docs/transactions.md, "Client API"):
 *
 * - producer-transaction.ts: local transactions (`producer.beginTransaction()`), `TX:` keys;
 * - xa-resource.ts: the producer's XA resource (`producer.getXAResource()`), `XID:` keys;
 * - local-states.ts / xa-states.ts: their explicit client-side state machines (state-machine.ts);
 * - xa-errors.ts: the error mapping (no answer → XAER_RMFAIL / outcome unknown, never a rollback);
 * - xid.ts, session-id.ts, xa-codes.ts: keys, unique qualifiers, X/Open codes and flags.
 */
export {
  createProducerTransaction,
  DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS,
  DEFAULT_TRANSACTION_TIMEOUT_SECONDS,
} from './producer-transaction.js';
export type { LocalTransactionTransition, ProducerTransaction, TransactionOptions } from './producer-transaction.js';
export { LOCAL_TRANSITIONS, LocalTransactionEvent, LocalTransactionState } from './local-states.js';
export type { LocalTransactionEventName, LocalTransactionStateName } from './local-states.js';
export { createXaResource, DEFAULT_XA_TIMEOUT_SECONDS } from './xa-resource.js';
export type { XaBranchTransition, XAResource, XAResourceOptions } from './xa-resource.js';
export { XA_BRANCH_TRANSITIONS, XaBranchEvent, XaBranchState } from './xa-states.js';
export type { XaBranchEventName, XaBranchStateName } from './xa-states.js';
export { isHeuristicCode, isRollbackCode, XaCode, xaCodeName, XaFlags } from './xa-codes.js';
export { classifyLocalRefusal, toXaError } from './xa-errors.js';
export type { LocalRefusal } from './xa-errors.js';
export {
  checkXid,
  DEFAULT_UNIQUE_QUALIFIER_PREFIX,
  defaultUniqueQualifier,
  MAX_UNIQUE_QUALIFIER_LENGTH,
  MAXBQUALSIZE,
  MAXGTRIDSIZE,
  uniqueQualifierError,
  xaKeyText,
  xidEquals,
} from './xid.js';
export type { Xid } from './xid.js';
export { LocalKeyGenerator, localHostToken, newSessionId } from './session-id.js';
export { StateMachine } from './state-machine.js';
export type { StateTransition, TransitionListener, TransitionTable } from './state-machine.js';
