/**
 * The start-up check of a PostgreSQL resource (transactions.md §2.5, §5.6): two-phase commit
 * needs `max_prepared_transactions > 0`, which PostgreSQL ships as 0 (off) and only changes on
 * restart. Failing fast at start-up with the fix in the message beats failing the first
 * `PREPARE TRANSACTION` in production.
 */
import type { ClientBase } from 'pg';
import { ConfigError } from '../../common/errors.js';

/** What the message of {@link preparedTransactionsDisabledError} can tell about the server. */
export interface ServerSettings {
  /** `max_prepared_transactions` as reported (normally `0`). */
  readonly maxPreparedTransactions: string;
  /** `max_connections`, when known. */
  readonly maxConnections?: string | undefined;
  /** `config_file` (readable by superusers and `pg_read_all_settings` only), when known. */
  readonly configFile?: string | undefined;
  /** The size of the application's pool (`pool.options.max`), when known. */
  readonly poolSize?: number | undefined;
}

/** The {@link ConfigError} for a server with prepared transactions disabled. */
export function preparedTransactionsDisabledError(resourceId: string, settings: ServerSettings): ConfigError {
  const minimum = [
    settings.poolSize === undefined ? 'the pool size' : `the pool size (${settings.poolSize})`,
    settings.maxConnections === undefined ? 'ideally max_connections' : `ideally max_connections (${settings.maxConnections})`,
  ].join(', ');
  const where = settings.configFile === undefined ? 'postgresql.conf' : `postgresql.conf (${settings.configFile})`;
  return new ConfigError(
    `${resourceId}: prepared transactions are disabled on this PostgreSQL server (max_prepared_transactions = ${settings.maxPreparedTransactions}), ` +
      `so it cannot take part in XA two-phase commit. Set max_prepared_transactions to a nonzero value — at least ${minimum} — in ${where} ` +
      `(or with ALTER SYSTEM) and restart PostgreSQL: a reload is not enough. A standby server needs a value at least as large as the primary's.`,
  );
}

/**
 * Reads `max_prepared_transactions` on `client`.
 *
 * @returns The setting (> 0).
 * @throws ConfigError (see {@link preparedTransactionsDisabledError}) when it is 0; pg's error when a query fails.
 */
export async function checkPreparedTransactions(client: ClientBase, resourceId: string, poolSize: number | undefined): Promise<number> {
  const shown = await showSetting(client, 'max_prepared_transactions');
  const value = Number(shown);
  if (shown !== undefined && Number.isFinite(value) && value > 0) return value;
  const maxConnections = await showSetting(client, 'max_connections');
  // Only superusers and pg_read_all_settings members may read config_file: best effort.
  const configFile = await showSetting(client, 'config_file').catch(() => undefined);
  throw preparedTransactionsDisabledError(resourceId, { maxPreparedTransactions: shown ?? 'unknown', maxConnections, configFile, poolSize });
}

async function showSetting(client: ClientBase, name: 'max_prepared_transactions' | 'max_connections' | 'config_file'): Promise<string | undefined> {
  const result = await client.query<Record<string, unknown>>(`SHOW ${name}`);
  const value = result.rows[0]?.[name];
  return typeof value === 'string' ? value : undefined;
}
