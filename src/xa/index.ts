/**
 * The XA transaction manager (transactions.md §5): commits message sends and PostgreSQL work
 * atomically with two-phase commit, a durable coordinator log (presumed abort) and recovery.
 * A curated list: what is not exported here is internal.
 *
 * - transaction-manager.ts: `createTransactionManager`, `tm.run`, `tm.begin`, recovery, metrics;
 * - global-transaction-api.ts / global-transaction.ts: the transaction (`enlist`, `enlistPostgres`,
 *   `send`, `commit`, `rollback`) and its commit protocol;
 * - broker-resource.ts: the broker (a producer's XA resource) as a participant;
 * - postgres/: a PostgreSQL database as a participant; log/: the coordinator log;
 * - xid.ts, resource.ts, coordinator-log.ts: the contracts;
 * - `xaTransform` (consume-transform-produce: a consumed message, its PostgreSQL writes, its sends
 *   and its offset in one global transaction) lives with the consumer
 *   (client/consumer/xa-transform.ts) and is only re-exported here.
 */
export {
  createTransactionManager,
  DEFAULT_XA_TRANSACTION_TIMEOUT_MS,
  DEFAULT_XA_MAX_TIMEOUT_MS,
  DEFAULT_RECOVERY_INTERVAL_MS,
  DEFAULT_PHASE_TWO_WAIT_MS,
  DEFAULT_DECISION_ROW_RETENTION_MS,
  ORPHAN_SAFETY_MARGIN_MS,
} from './transaction-manager.js';
export type { TransactionManager, TransactionManagerOptions } from './transaction-manager.js';
export { BROKER_TIMEOUT_MARGIN_SECONDS } from './global-transaction.js';
export type { BeginOptions, CommitResult, EnlistedBranchInfo, GlobalTransaction, PostgresTarget, TransactionOutcome } from './global-transaction-api.js';
export { GlobalTransactionState, GlobalTransactionEvent, GLOBAL_TRANSITIONS } from './global-transaction-states.js';
export type { GlobalTransactionStateName, GlobalTransactionEventName } from './global-transaction-states.js';
export { createBrokerResource, isBrokerResourceId, BROKER_RESOURCE_PREFIX } from './broker-resource.js';
export type { BrokerBranch, BrokerResource, BrokerResourceOptions, BrokerResourceStats, XaCapableProducer } from './broker-resource.js';
export { DEFAULT_PHASE_TWO_RETRY } from './coordinator-context.js';
export type { PhaseTwoRetryOptions } from './coordinator-context.js';
export type { HeuristicOutcome, HeuristicReport } from './phase-two.js';
export type { RecoveryReport } from './recovery.js';
export type { TransactionManagerMetrics } from './metrics.js';
export type { ManagerDescription, PendingParticipantInfo, PendingTransactionInfo } from './pending-view.js';
export { XA_CRASH_POINTS, XA_CRASH_POINT_ENV } from './crash-points.js';
export type { XaCrashPoint } from './crash-points.js';
export {
  METAQ_TM_FORMAT_ID,
  GTRID_LENGTH,
  NODE_ID_LENGTH,
  nodeIdOf,
  makeGtrid,
  parseGtrid,
  branchXid,
  belongsToNode,
  gtridHex,
  pgGidOf,
  parsePgGid,
} from './xid.js';
export type { GtridParts } from './xid.js';
export type { Branch, EnlistableResource, MarkerPage, PhaseTwoOutcome, PrepareVote, RecoverableResource, ResourceId } from './resource.js';
export type { CoordinatorLog, LoggedHeuristic, LoggedParticipant, PendingEntry } from './coordinator-log.js';
export { createPostgresResource, PostgresResource, PostgresBranch, DEFAULT_DECISION_TABLE, DEFAULT_CLAIM_WAIT_MS } from './postgres/index.js';
export type { PostgresResourceOptions, PostgresResourceMode, PostgresBranchState } from './postgres/index.js';
export { openCoordinatorLog, FileCoordinatorLog, MemoryCoordinatorLog } from './log/index.js';
export type { FileCoordinatorLogOptions } from './log/index.js';
export { xaTransform } from '../client/consumer/xa-transform.js';
export type { XaTransformHandler, XaTransformListener, XaTransformOptions } from '../client/consumer/xa-transform.js';
