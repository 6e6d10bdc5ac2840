/**
 * The workload of the exactly-once tests (client-postgres-offsets.test.ts and its child
 * process exactly-once-child.ts): numbered messages, a handler that records each one as a row
 * and fails on purpose on some, and the checks of the resulting table.
 */
import type { Pool, PoolClient } from 'pg';
import type { ConsumedMessage } from '../../src/index.js';
import { RECORD_HEADER_SIZE } from '../../src/protocol/record.js';

/** The payload of message `seq` (varying length so that offsets are irregular). */
export function eoPayload(seq: number): string {
  return `eo-${seq}-` + 'x'.repeat((seq * 37) % 300);
}

/** The number in a payload made by {@link eoPayload}. */
export function seqOf(message: Pick<ConsumedMessage, 'data'>): number {
  const seq = Number(message.data.toString('utf8').split('-')[1]);
  if (!Number.isSafeInteger(seq)) throw new Error(`not an exactly-once test message: ${message.data.toString('utf8').slice(0, 40)}`);
  return seq;
}

/** The offset after message `seq` stored at `offset` (no attribute). */
export function endOf(offset: number, seq: number): number {
  return offset + RECORD_HEADER_SIZE + Buffer.byteLength(eoPayload(seq));
}

/** Fails the first attempt in this process. */
export const FLAKY_EVERY = 13;
/** Fails every fetch-path attempt: succeeds only when re-delivered from the recover table. */
export const POISON_EVERY = 97;

/** Creates the rows table: no unique key, so that a message handled twice shows as two rows. */
export async function createRowsTable(pool: Pool, table: string): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS ${table} (seq integer NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, recovered boolean NOT NULL, pid integer NOT NULL)`);
}

/**
 * The test handler: writes the message's row on `db`, then maybe throws (so that only a
 * rollback removes the row) or sleeps inside the transaction. `attempts` counts calls per seq.
 */
export async function handleTestMessage(message: ConsumedMessage, db: PoolClient, table: string, attempts: Map<number, number>): Promise<void> {
  const seq = seqOf(message);
  const attempt = (attempts.get(seq) ?? 0) + 1;
  attempts.set(seq, attempt);
  await db.query(`INSERT INTO ${table} (seq, "partition", "offset", recovered, pid) VALUES ($1, $2, $3, $4, $5)`, [
    seq,
    message.partition,
    String(message.offset),
    message.recovered,
    process.pid,
  ]);
  if (seq % POISON_EVERY === 0 && !message.recovered) throw new Error(`planned failure of poison message ${seq}`);
  if (seq % FLAKY_EVERY === 0 && attempt === 1) throw new Error(`planned first-attempt failure of message ${seq}`);
  if (seq % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** Row counts of the rows table. */
export interface RowCounts {
  readonly rows: number;
  readonly distinct: number;
}

/** Counts the rows and the distinct seqs. */
export async function countRows(pool: Pool, table: string): Promise<RowCounts> {
  const result = await pool.query<{ rows: string; uniq: string }>(`SELECT count(*) AS rows, count(DISTINCT seq) AS uniq FROM ${table}`);
  const row = result.rows[0];
  return { rows: Number(row?.rows ?? 0), distinct: Number(row?.uniq ?? 0) };
}

/** Seqs that have more than one row, with their counts. */
export async function duplicateSeqs(pool: Pool, table: string): Promise<{ seq: number; n: number }[]> {
  const result = await pool.query<{ seq: number; n: string }>(`SELECT seq, count(*) AS n FROM ${table} GROUP BY seq HAVING count(*) > 1 ORDER BY seq LIMIT 20`);
  return result.rows.map((r) => ({ seq: r.seq, n: Number(r.n) }));
}
