/**
 * The SQL of the exactly-once mode's recover table (postgres-recover-store.ts) and the names of
 * its entries. Pure, so that it is unit-tested without a server.
 *
 * One row per message whose handler failed on every retry, keyed like the local recover store's
 * files (group, topic, broker, partition, offset); `data` is the message's data block as stored
 * by the broker (attribute block + payload), `flag` its flag word.
 */
import { quoteTableName } from '../offsets/pg-identifiers.js';

/** Suffix of the default recover table: `metaq_offsets` → `metaq_offsets_recover`. */
export const RECOVER_TABLE_SUFFIX = '_recover';

/** The default recover table next to the offsets table `offsetsTable` (same schema). */
export function defaultRecoverTable(offsetsTable: string): string {
  return `${offsetsTable}${RECOVER_TABLE_SUFFIX}`;
}

/** The statements of one recover table. Every one filters on `$1` group and `$2` topic. */
export interface RecoverStatements {
  readonly createTable: string;
  /** `$3` broker, `$4` partition, `$5` offset, `$6` message id, `$7` flag, `$8` data; keeps an existing row. */
  readonly insert: string;
  /** Every entry of the group and topic, in (broker, partition, offset) order. */
  readonly list: string;
  /** `$3` broker, `$4` partition, `$5` offset. */
  readonly read: string;
  /** `$3` broker, `$4` partition, `$5` offset. */
  readonly remove: string;
  /**
   * `$3` partition, `$4` offset, `$5` message id: deletes the entry of a message being
   * re-delivered, inside the re-delivery's transaction. No row = already re-delivered.
   * (The message id stands in for the broker id, which a delivered message does not carry:
   * ids embed their broker's id, so they are unique across brokers.)
   */
  readonly claim: string;
}

/**
 * The statements for `table` (validated and quoted here).
 *
 * @throws {InvalidArgumentError} for a bad table name.
 */
export function recoverStatements(table: string): RecoverStatements {
  const t = quoteTableName(table, 'exactlyOnce: recoverTable');
  const key = 'group_name = $1 AND topic = $2 AND broker_id = $3 AND "partition" = $4 AND "offset" = $5';
  return {
    createTable:
      `CREATE TABLE IF NOT EXISTS ${t} (` +
      'group_name text NOT NULL, topic text NOT NULL, broker_id integer NOT NULL, "partition" integer NOT NULL, ' +
      '"offset" bigint NOT NULL, msg_id bigint NOT NULL, flag integer NOT NULL, data bytea NOT NULL, ' +
      'stored_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (group_name, topic, broker_id, "partition", "offset"))',
    insert:
      `INSERT INTO ${t} (group_name, topic, broker_id, "partition", "offset", msg_id, flag, data) ` +
      'VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING',
    list: `SELECT broker_id, "partition", "offset"::text AS "offset" FROM ${t} WHERE group_name = $1 AND topic = $2 ORDER BY broker_id, "partition", "offset"`,
    read: `SELECT msg_id::text AS msg_id, flag, data FROM ${t} WHERE ${key}`,
    remove: `DELETE FROM ${t} WHERE ${key}`,
    claim: `DELETE FROM ${t} WHERE group_name = $1 AND topic = $2 AND "partition" = $3 AND "offset" = $4 AND msg_id = $5`,
  };
}

/** Where an entry is: its key within the group and topic. */
export interface RecoverEntryKey {
  readonly brokerId: number;
  readonly partition: number;
  readonly offset: number;
}

/** `<brokerId>-<partition>-<offset, 20 digits>`, the local store's file name without `.msg`: sorts by partition and offset. */
export function recoverEntryName(key: RecoverEntryKey): string {
  return `${key.brokerId}-${key.partition}-${String(key.offset).padStart(20, '0')}`;
}

const ENTRY_NAME = /^(-?\d+)-(\d+)-(\d+)$/;

/** The key in an entry name; `undefined` when `name` is not one. */
export function parseRecoverEntryName(name: string): RecoverEntryKey | undefined {
  const match = ENTRY_NAME.exec(name);
  if (match === null) return undefined;
  const brokerId = Number(match[1]);
  const partition = Number(match[2]);
  const offset = Number(match[3]);
  if (!Number.isSafeInteger(brokerId) || !Number.isSafeInteger(partition) || !Number.isSafeInteger(offset)) return undefined;
  return { brokerId, partition, offset };
}
