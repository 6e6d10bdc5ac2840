/**
 * The PostgreSQL resource of the XA transaction manager (transactions.md §2.5, §5.4, §5.6):
 * `createPostgresResource({ pool })`, `init()`, then `begin(xid)` for each transaction's branch;
 * the manager uses `recover` / `commitPrepared` / `rollbackPrepared` for phase two and recovery,
 * and `deleteMarkers` / `listMarkers` for housekeeping of the marker rows. In
 * `mode: 'decision-row'` the branches are last resources (`commitAsDecision`) and the resource
 * keeps the decisions (`decisionsOf` / `claimRollback`; housekeeping on the decision rows).
 */
export { createPostgresResource, PostgresResource, type PostgresResourceMode, type PostgresResourceOptions } from './resource.js';
export { PostgresBranch, type PostgresBranchState } from './branch.js';
export { isPostgresConnectionError, sqlStateOf } from './connection-errors.js';
export { describePgError, phaseOneFailure, phaseTwoCodeOf, phaseTwoFailure, rollbackCodeOfSqlState } from './error-mapping.js';
export { OWN_GID_LIKE_PATTERN, pgGidFor, pgGidLiteral, pgGidProblem } from './gid.js';
export { DEFAULT_MARKER_TABLE, MARKER_DELETE_BATCH, markerGidPatterns, markerTableSql, type MarkerTableSql } from './marker-table.js';
export { preparedTransactionsDisabledError } from './prepared-transactions-check.js';
export { ownXidsOf } from './recover-filter.js';
export {
  DEFAULT_DECISION_TABLE,
  decisionKeyLiteral,
  decisionKeyOf,
  decisionKeyPatterns,
  decisionTableSql,
  MAX_GTRID_BYTES,
  parseDecisionKey,
  recordedDecisionOf,
  type DecisionOutcomeCode,
  type DecisionTableSql,
} from './decision-table.js';
export { decisionCommitEndTag, decisionCommitFailure, decisionCommitStatement, DURABLE_COMMIT_SETTING, isDecisionKeyConflict } from './decision-commit.js';
export { DECISION_ROW_BQUAL, DEFAULT_CLAIM_WAIT_MS, MAX_CLAIM_WAIT_MS } from './decision-store.js';
