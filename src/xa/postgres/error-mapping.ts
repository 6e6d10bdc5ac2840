/**
 * PostgreSQL errors → XA codes (transactions.md §0 item 5, §5.4, §5.6). Pure functions, so the
 * table can be unit-tested without a server.
 *
 * | where | error | XA code |
 * |---|---|---|
 * | anywhere | connection failed/lost, pool or connect timeout ({@link isPostgresConnectionError}) | XAER_RMFAIL (outcome unknown, retry) |
 * | phase one (PREPARE, COMMIT of 1PC) | 23xxx, 40002 integrity | XA_RBINTEGRITY |
 * | phase one | 40P01 deadlock | XA_RBDEADLOCK |
 * | phase one | 40001 serialization failure | XA_RBTRANSIENT |
 * | phase one | anything else | XA_RBROLLBACK (PostgreSQL turned the failed PREPARE into a ROLLBACK) |
 * | phase two | 42501 permission denied | XAER_RMERR (only the preparing role or a superuser can finish it) |
 * | phase two | 28xxx authentication | XAER_RMFAIL (nothing happened; fix the credentials, then retry) |
 * | phase two | 55000 busy, 57014 canceled, 53xxx resources | XA_RETRY |
 * | phase two | anything else | XAER_RMERR |
 *
 * "Prepared transaction does not exist" (42704) in phase two is not an error: the resource
 * resolves it with the marker row.
 */
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import type { XaError } from '../../common/errors.js';
import { isPostgresConnectionError, sqlStateOf } from './connection-errors.js';

/** SQLSTATE undefined_object: `prepared transaction with identifier "…" does not exist`. */
export const SQLSTATE_UNDEFINED_OBJECT = '42704';
/** SQLSTATE insufficient_privilege: e.g. `permission denied to finish prepared transaction`. */
export const SQLSTATE_INSUFFICIENT_PRIVILEGE = '42501';
/** SQLSTATE in_failed_sql_transaction: `current transaction is aborted, commands ignored until end of transaction block`. */
export const SQLSTATE_IN_FAILED_TRANSACTION = '25P02';
/** SQLSTATE undefined_table: the marker table is missing (init() not run against this database). */
export const SQLSTATE_UNDEFINED_TABLE = '42P01';

/**
 * The XA_RB* code of a PostgreSQL error that made a transaction roll back (a failed PREPARE or
 * COMMIT, or a statement before it).
 */
export function rollbackCodeOfSqlState(sqlState: string | undefined): number {
  if (sqlState === undefined) return XaCode.XA_RBROLLBACK;
  if (sqlState.startsWith('23') || sqlState === '40002') return XaCode.XA_RBINTEGRITY;
  if (sqlState === '40P01') return XaCode.XA_RBDEADLOCK;
  if (sqlState === '40001') return XaCode.XA_RBTRANSIENT;
  return XaCode.XA_RBROLLBACK;
}

/**
 * The XA code of a failed phase-two statement (`COMMIT PREPARED`, `ROLLBACK PREPARED`, the
 * marker lookup) other than "does not exist". Never a rollback code: in phase two the branch is
 * prepared, and only PostgreSQL's answer to a completed statement can say what happened to it.
 */
export function phaseTwoCodeOf(err: unknown): number {
  if (isPostgresConnectionError(err)) return XaCode.XAER_RMFAIL;
  const sqlState = sqlStateOf(err);
  if (sqlState === undefined) return XaCode.XAER_RMERR;
  if (sqlState.startsWith('28')) return XaCode.XAER_RMFAIL;
  if (sqlState === '55000' || sqlState === '55006' || sqlState === '57014' || sqlState.startsWith('53')) return XaCode.XA_RETRY;
  return XaCode.XAER_RMERR;
}

/** `message (SQLSTATE x; detail: …; hint: …)` of a pg error, the plain message of anything else. */
export function describePgError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const fields = err as Error & { code?: unknown; detail?: unknown; hint?: unknown; constraint?: unknown };
  const extra: string[] = [];
  const sqlState = sqlStateOf(err);
  if (sqlState !== undefined) extra.push(`SQLSTATE ${sqlState}`);
  if (typeof fields.constraint === 'string' && fields.constraint !== '') extra.push(`constraint ${fields.constraint}`);
  if (typeof fields.detail === 'string' && fields.detail !== '') extra.push(`detail: ${fields.detail}`);
  if (typeof fields.hint === 'string' && fields.hint !== '') extra.push(`hint: ${fields.hint}`);
  if (extra.length === 0 && typeof fields.code === 'string') extra.push(fields.code);
  return extra.length === 0 ? err.message : `${err.message} (${extra.join('; ')})`;
}

/**
 * The error of a failed `PREPARE TRANSACTION` (or one-phase `COMMIT`).
 *
 * A connection loss → XAER_RMFAIL: the statement may or may not have reached the server, so the
 * branch may be prepared; recovery's `pg_prepared_xacts` scan will see it or not. Any SQL error
 * → XA_RB*: PostgreSQL turns a failed PREPARE/COMMIT into a ROLLBACK.
 *
 * @param what - The call, e.g. `prepare of 1297175635_… on postgres:orders`.
 */
export function phaseOneFailure(err: unknown, what: string): XaError {
  if (isPostgresConnectionError(err)) {
    return xaError(XaCode.XAER_RMFAIL, `${what}: the connection to PostgreSQL was lost (${describePgError(err)}); the outcome is unknown`, err);
  }
  return xaError(rollbackCodeOfSqlState(sqlStateOf(err)), `${what}: PostgreSQL rolled the transaction back: ${describePgError(err)}`, err);
}

/**
 * The error of a failed phase-two statement, by {@link phaseTwoCodeOf}, with a message saying
 * what to do about it.
 */
export function phaseTwoFailure(err: unknown, what: string): XaError {
  const code = phaseTwoCodeOf(err);
  const reason = describePgError(err);
  if (code === XaCode.XAER_RMFAIL) {
    return xaError(code, `${what}: PostgreSQL could not be reached or the connection was lost (${reason}); the outcome is unknown, try again`, err);
  }
  if (sqlStateOf(err) === SQLSTATE_INSUFFICIENT_PRIVILEGE) {
    return xaError(
      code,
      `${what}: ${reason}. Only the role that prepared the transaction or a superuser can finish it: connect the pool as that role (see the owner column of pg_prepared_xacts)`,
      err,
    );
  }
  if (sqlStateOf(err) === SQLSTATE_UNDEFINED_TABLE) {
    return xaError(code, `${what}: ${reason}. The marker table is missing: call init() on the resource against this database`, err);
  }
  if (code === XaCode.XA_RETRY) return xaError(code, `${what}: ${reason}; try again later`, err);
  return xaError(code, `${what}: ${reason}`, err);
}
