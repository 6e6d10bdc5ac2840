/**
 * PostgreSQL helpers of the offset storage and the exactly-once mode: {@link inTransaction}
 * and {@link createTableOnce}.
 *
 * One PostgreSQL transaction on a pool client: check out, `BEGIN`, the work, `COMMIT` (or
 * `ROLLBACK` when the work throws), give the client back.
 *
 * Three details that matter for exactly-once processing:
 *
 * - A `COMMIT` of a transaction that an earlier statement aborted (the work caught a query error
 *   and went on) does not fail: PostgreSQL rolls back and answers with the command tag
 *   `ROLLBACK`. Taking that for success would advance past a message whose effects and offset
 *   were just thrown away, so it is turned into an error.
 * - A client whose `BEGIN`, `COMMIT` or `ROLLBACK` failed is destroyed (`release(err)`), never
 *   handed to the next user in an unknown transaction state.
 * - pg-pool removes its own 'error' listener from a checked-out client, and a pg client whose
 *   backend dies between two statements emits 'error'; without a listener of ours that would be
 *   an uncaught exception killing the process during a database outage.
 */
import type { Pool, PoolClient } from 'pg';
import { IllegalStateError } from '../../common/errors.js';

/** Transaction isolation of {@link inTransaction}. */
export type PgIsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

/** The `BEGIN` statement for `isolation` (PostgreSQL's default, read committed, when undefined). */
export function beginStatement(isolation: PgIsolationLevel | undefined): string {
  return isolation === undefined ? 'BEGIN' : `BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}`;
}

/**
 * Runs `work` inside a transaction on a client of `pool` and commits when it resolves.
 *
 * @returns what `work` returned, once `COMMIT` succeeded.
 * @throws what `work` threw (after `ROLLBACK`); the pool's or the server's error for a failed
 *   `BEGIN`/`COMMIT` (the commit outcome is then unknown: callers must be able to tell from the
 *   database whether it happened); {@link IllegalStateError} when the server rolled back at
 *   `COMMIT` because a statement of `work` had failed.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, isolation?: PgIsolationLevel): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    broken ??= error;
  };
  client.on('error', onError);
  try {
    try {
      await client.query(beginStatement(isolation));
    } catch (error) {
      broken ??= asError(error);
      throw error;
    }
    let result: T;
    try {
      result = await work(client);
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // The server rolls back on its own when the connection goes; the client is discarded.
        broken ??= asError(rollbackError);
      }
      throw error;
    }
    let tag: string;
    try {
      tag = (await client.query('COMMIT')).command;
    } catch (error) {
      broken ??= asError(error);
      throw error;
    }
    if (tag === 'ROLLBACK') {
      throw new IllegalStateError(
        'PostgreSQL rolled the transaction back at COMMIT because a statement in it had failed (an error was caught and ignored inside the transaction); let query errors propagate, or use a SAVEPOINT to recover from one',
      );
    }
    return result;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/**
 * `CREATE TABLE IF NOT EXISTS` under a transaction-scoped advisory lock keyed by the table name.
 * Why the lock: two processes creating the same table at once can make the loser fail with a
 * unique violation on PostgreSQL's catalog despite `IF NOT EXISTS`.
 */
export async function createTableOnce(pool: Pool, table: string, createStatement: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('metaq.create_table:' || $1))", [table]);
    await client.query(createStatement);
  });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
