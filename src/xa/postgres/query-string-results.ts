/**
 * What node-pg answers to a simple-protocol query string of several statements (`a; b; c`, sent
 * in one round trip): an array with one result per statement. The branch ends its transaction
 * block with such strings (the marker row + `PREPARE TRANSACTION`; the decision row + `COMMIT`)
 * and must read the tag of the last statement, the one that ended the block.
 */
import type { QueryResult } from 'pg';

/**
 * The command tag of the last of `statements` results in `result` (e.g. `PREPARE`, `COMMIT`, or
 * `ROLLBACK` when the block had already failed), or undefined when the answer has another shape
 * (then nobody knows what PostgreSQL did, and the caller reports an unknown outcome).
 */
export function lastStatementTag(result: unknown, statements: number): string | undefined {
  if (!Array.isArray(result) || result.length !== statements) return undefined;
  const last = (result as unknown[])[statements - 1] as Partial<QueryResult> | undefined;
  return typeof last?.command === 'string' ? last.command : undefined;
}
