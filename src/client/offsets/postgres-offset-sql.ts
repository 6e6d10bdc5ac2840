/**
 * The SQL of the PostgreSQL offset storage and the conversions between its rows and
 * {@link PartitionOffset}s. Pure (no I/O), so that it is unit-tested without a server.
 *
 * The table is MetaQ's `MysqlOffsetStorage` table (metaq-reference §6.7) with its quirk fixed:
 * `offset` and `msg_id` are `BIGINT` (MetaQ's documented `int(11)` overflows), and the key is a
 * real primary key on (group, topic, broker, partition) instead of an index next to an
 * auto-increment id, so that commits are single-statement upserts.
 *
 * Every write of an offset is **forward-only**: an upsert never replaces a stored offset by a
 * smaller one. Why: the consumer commits its positions periodically from one connection while
 * exactly-once transactions advance the same rows from others; a periodic commit that read a
 * position just before a transaction committed would otherwise land after it and move the
 * offset back, and the messages in between would be processed twice after a restart.
 */
import { IllegalStateError } from '../../common/errors.js';
import type { PartitionOffset, StoredPartition } from './offset-storage.js';
import { quoteTableName } from './pg-identifiers.js';

/** The default table name. */
export const DEFAULT_POSTGRES_OFFSETS_TABLE = 'metaq_offsets';

/** The statements of one offsets table; parameters are listed with each. */
export interface OffsetStatements {
  /** Idempotent `CREATE TABLE IF NOT EXISTS`. */
  readonly createTable: string;
  /** `$1` group, `$2` topic, `$3` int[] broker ids, `$4` int[] partitions (pairwise). */
  readonly load: string;
  /** `$1` group, `$2` topic, `$3` broker id, `$4` partition, `$5` offset; keeps an existing row. */
  readonly init: string;
  /** `$1` group, `$2`–`$6` arrays from {@link commitParameters}; forward-only. */
  readonly commit: string;
  /**
   * `$1` group, `$2` topic, `$3` broker id, `$4` partition, `$5` from, `$6` to, `$7` message id:
   * sets the offset to `to` only if the stored one is at most `from` (or there is none). One row
   * affected = advanced; none = the stored offset is already past `from`.
   */
  readonly advance: string;
}

const COLUMNS = 'group_name, topic, broker_id, "partition", "offset", msg_id, updated_at';
const KEY = '(group_name, topic, broker_id, "partition")';
const SET_FROM_EXCLUDED = '"offset" = EXCLUDED."offset", msg_id = EXCLUDED.msg_id, updated_at = EXCLUDED.updated_at';

/**
 * The statements for `table` (validated and quoted here).
 *
 * @throws {InvalidArgumentError} for a bad table name.
 */
export function offsetStatements(table: string): OffsetStatements {
  const t = quoteTableName(table, 'createPostgresOffsetStorage: table');
  return {
    createTable:
      `CREATE TABLE IF NOT EXISTS ${t} (` +
      'group_name text NOT NULL, topic text NOT NULL, broker_id integer NOT NULL, "partition" integer NOT NULL, ' +
      '"offset" bigint NOT NULL, msg_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), ' +
      `PRIMARY KEY ${KEY})`,
    // ::text: exact 64-bit values whatever type parser the application installed for int8.
    load:
      `SELECT broker_id, "partition", "offset"::text AS "offset", msg_id::text AS msg_id FROM ${t} ` +
      'WHERE group_name = $1 AND topic = $2 AND (broker_id, "partition") IN (SELECT * FROM unnest($3::int[], $4::int[]))',
    init: `INSERT INTO ${t} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, -1, now()) ON CONFLICT ${KEY} DO NOTHING`,
    commit:
      `INSERT INTO ${t} AS o (${COLUMNS}) ` +
      'SELECT $1::text, r.topic, r.broker_id, r.p, r.o, r.m, now() ' +
      'FROM unnest($2::text[], $3::int[], $4::int[], $5::bigint[], $6::bigint[]) AS r(topic, broker_id, p, o, m) ' +
      `ON CONFLICT ${KEY} DO UPDATE SET ${SET_FROM_EXCLUDED} WHERE o."offset" <= EXCLUDED."offset"`,
    advance:
      `INSERT INTO ${t} AS o (${COLUMNS}) VALUES ($1, $2, $3, $4, $6, $7, now()) ` +
      `ON CONFLICT ${KEY} DO UPDATE SET ${SET_FROM_EXCLUDED} WHERE o."offset" <= $5::bigint`,
  };
}

/** The array parameters (`$2`–`$6`) of {@link OffsetStatements.commit}. */
export type CommitParameters = [topics: string[], brokerIds: number[], partitions: number[], offsets: string[], messageIds: string[]];

function offsetKey(o: { topic: string; brokerId: number; partition: number }): string {
  return `${o.topic}\u0000${o.brokerId}\u0000${o.partition}`;
}

/**
 * Turns a commit batch into the array parameters of the commit statement: one entry per
 * partition (the furthest offset when a partition appears twice, since one upsert may not touch
 * a row twice), sorted by topic, broker and partition so that concurrent commits lock rows in
 * the same order and cannot deadlock. 64-bit values are passed as decimal strings (pg sends
 * them as text; JavaScript numbers would lose precision for message ids).
 *
 * @throws {IllegalStateError} for an offset that is not a non-negative safe integer.
 */
export function commitParameters(offsets: readonly PartitionOffset[]): CommitParameters {
  const furthest = new Map<string, PartitionOffset>();
  for (const o of offsets) {
    checkOffset(o.offset, o);
    const k = offsetKey(o);
    const seen = furthest.get(k);
    if (seen === undefined || seen.offset <= o.offset) furthest.set(k, o);
  }
  const sorted = [...furthest.values()].sort(
    (a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.brokerId - b.brokerId || a.partition - b.partition),
  );
  return [
    sorted.map((o) => o.topic),
    sorted.map((o) => o.brokerId),
    sorted.map((o) => o.partition),
    sorted.map((o) => String(o.offset)),
    sorted.map((o) => o.messageId.toString()),
  ];
}

/** The pairwise array parameters (`$3`, `$4`) of {@link OffsetStatements.load}. */
export function loadParameters(partitions: readonly StoredPartition[]): [brokerIds: number[], partitions: number[]] {
  return [partitions.map((p) => p.brokerId), partitions.map((p) => p.partition)];
}

/** A row of {@link OffsetStatements.load}. */
export interface OffsetRow {
  readonly broker_id: unknown;
  readonly partition: unknown;
  readonly offset: unknown;
  readonly msg_id: unknown;
}

/**
 * Converts a loaded row.
 *
 * @throws {IllegalStateError} naming the table and row when a value is out of range (an offset
 *   beyond 2^53 cannot be a real log position: the row was edited by hand).
 */
export function parseOffsetRow(row: OffsetRow, topic: string, table: string): PartitionOffset {
  const where = `${table} row (topic ${JSON.stringify(topic)}, broker ${String(row.broker_id)}, partition ${String(row.partition)})`;
  const offsetText = String(row.offset);
  const idText = String(row.msg_id);
  const offset = /^\d+$/.test(offsetText) ? Number(offsetText) : Number.NaN;
  if (!Number.isInteger(row.broker_id) || !Number.isInteger(row.partition) || !Number.isSafeInteger(offset) || !/^-?\d+$/.test(idText)) {
    throw new IllegalStateError(`The ${where} holds offset ${offsetText} / msg_id ${idText}; an offset must be a non-negative integer below 2^53. Fix or delete the row`);
  }
  return { topic, brokerId: row.broker_id as number, partition: row.partition as number, offset, messageId: BigInt(idText) };
}

/** @throws {IllegalStateError} unless `offset` is a non-negative safe integer. */
export function checkOffset(offset: number, where: { topic: string; brokerId: number; partition: number }): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new IllegalStateError(`Offset ${String(offset)} of topic '${where.topic}' broker ${where.brokerId} partition ${where.partition} is not a non-negative integer`);
  }
}
