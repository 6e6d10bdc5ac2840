/**
 * The last-resource commit of a decision-row branch (transactions.md §5.1): the commit row of
 * the gtrid and `COMMIT`, sent as ONE simple-protocol query, so the decision costs a single
 * round trip. Pure helpers; the branch (branch.ts) runs the statement and owns the state.
 *
 * What PostgreSQL does with `INSERT …; COMMIT` inside the branch's open transaction block:
 * - both succeed: node-pg resolves with two results, the second tagged `COMMIT`;
 * - the INSERT fails (the key is taken by recovery's rollback claim: 23505 on the decision table;
 *   or the block was already aborted: 25P02): PostgreSQL skips the rest of the query string, so
 *   COMMIT never runs and the block stays open and aborted — the branch must `ROLLBACK`;
 * - COMMIT fails (a deferred constraint, a serialization failure): the transaction is rolled back;
 * - COMMIT in a block that is already aborted answers `ROLLBACK` without an error (checked too);
 * - the connection is lost: the outcome is unknown — and, unlike a plain one-phase commit,
 *   knowable later: the decision row exists iff it committed, and a rollback claim
 *   (`claimRollback`) settles it for good.
 */
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import type { XaError } from '../../common/errors.js';
import { sqlStateOf } from './connection-errors.js';
import { describePgError, SQLSTATE_IN_FAILED_TRANSACTION, SQLSTATE_UNDEFINED_TABLE } from './error-mapping.js';
import { decisionKeyLiteral, type DecisionTableSql } from './decision-table.js';
import type { LiteralEscaper } from './gid.js';
import { lastStatementTag } from './query-string-results.js';

/** SQLSTATE unique_violation. */
export const SQLSTATE_UNIQUE_VIOLATION = '23505';

/**
 * Makes the COMMIT of the current transaction wait for its WAL flush when the session has
 * `synchronous_commit = off` (a stronger setting, e.g. `remote_apply`, is kept): `set_config`
 * with `is_local` is `SET LOCAL`, so it ends with the transaction.
 *
 * Why: this commit IS the global decision, and the broker branch is committed once it is
 * acknowledged. With `synchronous_commit = off` (a common tuning, per server, database, role or
 * session) PostgreSQL acknowledges a commit before its WAL is on disk, and a crash can lose it:
 * the order row and the decision row vanish while the message has been committed (the XA soak
 * found exactly that against a test server running with it off). `PREPARE TRANSACTION` and
 * `COMMIT PREPARED` always flush, which is why mode `xa` never needed this.
 */
export const DURABLE_COMMIT_SETTING =
  "SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit') WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, true)";

/**
 * `<durable commit setting>; INSERT INTO <table> (gtrid, outcome) VALUES ('<key>', 'C'); COMMIT`
 * — no bind parameters (a multi-statement query cannot take any), the key escaped by `escaper`.
 *
 * @throws InvalidArgumentError for a key outside `[A-Za-z0-9+/=_]`.
 */
export function decisionCommitStatement(escaper: LiteralEscaper, table: DecisionTableSql, key: string): string {
  return `${DURABLE_COMMIT_SETTING}; ${table.commitRow(decisionKeyLiteral(escaper, key))}; COMMIT`;
}

/** How many results node-pg gives for {@link decisionCommitStatement}: the setting, the INSERT, the COMMIT. */
const DECISION_COMMIT_RESULTS = 3;

/**
 * The command tag of the statement that ended the block, from what node-pg answered to
 * {@link decisionCommitStatement}: the last of its results (`COMMIT`, or `ROLLBACK` when the
 * block had failed), or undefined when the answer has another shape (the outcome is then unknown).
 */
export function decisionCommitEndTag(result: unknown): string | undefined {
  return lastStatementTag(result, DECISION_COMMIT_RESULTS);
}

/**
 * True when `err` is the unique violation of the decision row's own key: a rollback claim
 * (recovery's, or the manager's after an unanswered commit) committed the key first.
 *
 * Why look at the table: a deferred unique constraint of the application's tables also fails
 * with 23505, at COMMIT; that one is an ordinary integrity rollback. PostgreSQL names the table
 * (and schema) of a unique violation in the error, so the two cannot be confused. (The decision
 * table's own key is immediate — init() checks it — so it can only fail at the INSERT.)
 */
export function isDecisionKeyConflict(err: unknown, table: DecisionTableSql): boolean {
  if (sqlStateOf(err) !== SQLSTATE_UNIQUE_VIOLATION) return false;
  const fields = err as { table?: unknown; schema?: unknown };
  if (fields.table !== table.tableName) return false;
  return table.schemaName === undefined || fields.schema === table.schemaName;
}

/**
 * The XA_RB* error of a decision commit that failed with an SQL error (not a connection loss)
 * for the reasons specific to it, or undefined to use the one-phase mapping (`phaseOneFailure`).
 *
 * @param what - The call, e.g. `commitAsDecision of 1297175635_… on postgres:orders`.
 */
export function decisionCommitFailure(err: unknown, table: DecisionTableSql, what: string): XaError | undefined {
  if (isDecisionKeyConflict(err, table)) {
    return xaError(
      XaCode.XA_RBROLLBACK,
      `${what}: recovery had already claimed this transaction for rollback (its rollback row holds the decision key in ${table.qualifiedName}), so the branch rolled back instead of committing (${describePgError(err)})`,
      err,
    );
  }
  const sqlState = sqlStateOf(err);
  if (sqlState === SQLSTATE_IN_FAILED_TRANSACTION) {
    return xaError(XaCode.XA_RBROLLBACK, `${what}: a statement of the branch failed, so PostgreSQL aborted the transaction (${describePgError(err)})`, err);
  }
  if (sqlState === SQLSTATE_UNDEFINED_TABLE) {
    return xaError(XaCode.XA_RBROLLBACK, `${what}: cannot insert the decision row: ${describePgError(err)}. Call init() on the resource (mode 'decision-row') against this database first`, err);
  }
  return undefined;
}
