/**
 * Start-up care for the resource's own tables (the marker table of `xa` mode, the decision table
 * of `decision-row` mode): create when missing, then check what the pool's role may do with it,
 * failing with a ConfigError that says which statement a DBA should run.
 */
import type { ClientBase } from 'pg';
import { ConfigError } from '../../common/errors.js';
import { isPostgresConnectionError, sqlStateOf } from './connection-errors.js';
import { describePgError } from './error-mapping.js';

/** One table to set up. */
export interface TableToEnsure {
  /** The resource, for messages (`postgres:<name>`). */
  readonly resourceId: string;
  /** What the table is, for messages: `XA marker table`, `XA decision table`. */
  readonly what: string;
  /** The table as written in SQL. */
  readonly qualifiedName: string;
  /** Its `CREATE TABLE IF NOT EXISTS` statement. */
  readonly create: string;
}

/**
 * Creates `table` when missing, then checks the INSERT, SELECT and DELETE privileges the
 * resource needs on it. Idempotent; safe to run from several processes at once.
 *
 * @throws ConfigError when the table is missing and cannot be created (42501), or when a
 * privilege is missing (the message names the GRANT); pg's error otherwise.
 */
export async function ensureTable(client: ClientBase, table: TableToEnsure): Promise<void> {
  // Checked before CREATE … IF NOT EXISTS so that a table a DBA created does not also need
  // CREATE privilege on its schema.
  if (!(await tableExists(client, table.qualifiedName))) {
    try {
      await client.query(table.create);
    } catch (err) {
      const sqlState = sqlStateOf(err);
      if (sqlState === '42501') {
        throw new ConfigError(`${table.resourceId}: cannot create the ${table.what} ${table.qualifiedName}: ${describePgError(err)}. Create it as a privileged role: ${table.create}`, {}, { cause: err });
      }
      // Another process created it at the same moment (unique violation on pg_type, or 42P07).
      if ((sqlState !== '23505' && sqlState !== '42P07') || isPostgresConnectionError(err)) throw err;
    }
  }
  const privileges = await client.query<{ ins: boolean; sel: boolean; del: boolean }>(
    `SELECT has_table_privilege($1, 'INSERT') AS ins, has_table_privilege($1, 'SELECT') AS sel, has_table_privilege($1, 'DELETE') AS del`,
    [table.qualifiedName],
  );
  const row = privileges.rows[0];
  const missing = row === undefined ? ['INSERT', 'SELECT', 'DELETE'] : [row.ins ? undefined : 'INSERT', row.sel ? undefined : 'SELECT', row.del ? undefined : 'DELETE'].filter((p) => p !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(`${table.resourceId}: the pool's role lacks ${missing.join(', ')} on the ${table.what} ${table.qualifiedName}; grant it: GRANT INSERT, SELECT, DELETE ON ${table.qualifiedName} TO <role>`);
  }
}

/** True when `qualifiedName` resolves to a relation (`to_regclass`, which never raises). */
export async function tableExists(client: ClientBase, qualifiedName: string): Promise<boolean> {
  const result = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [qualifiedName]);
  return (result.rows[0]?.oid ?? null) !== null;
}
