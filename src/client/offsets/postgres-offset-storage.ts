/**
 * MetaQ's `MysqlOffsetStorage` for PostgreSQL (metaq-reference §6.7): a group's offsets in one
 * table shared by every process of the group, created on first use:
 *
 * ```sql
 * CREATE TABLE metaq_offsets (group_name text, topic text, broker_id int, "partition" int,
 *   "offset" bigint, msg_id bigint, updated_at timestamptz,
 *   PRIMARY KEY (group_name, topic, broker_id, "partition"))
 * ```
 *
 * A commit is one statement (an upsert of the whole batch), hence one transaction: all the
 * batch's offsets are stored or none. Writes are forward-only (postgres-offset-sql.ts says
 * why). The storage uses the application's `pg.Pool` and never ends it; `close()` only waits
 * for the operations in flight.
 *
 * {@link PostgresOffsetStorage.commitWith} and {@link PostgresOffsetStorage.advanceWith} run the
 * same upserts on a client the caller has in a transaction, so that the caller's own writes and
 * the consumer's offset commit together or not at all: the building block of the exactly-once
 * mode (consumer/postgres-exactly-once.ts).
 */
import type { ClientBase, Pool } from 'pg';
import { ClientClosedError, InvalidArgumentError } from '../../common/errors.js';
import type { OffsetStorage, PartitionOffset, StoredPartition } from './offset-storage.js';
import { tableNameError } from './pg-identifiers.js';
import { createTableOnce } from './pg-transaction.js';
import {
  checkOffset,
  commitParameters,
  DEFAULT_POSTGRES_OFFSETS_TABLE,
  loadParameters,
  offsetStatements,
  parseOffsetRow,
  type OffsetRow,
  type OffsetStatements,
} from './postgres-offset-sql.js';

/** Options of {@link createPostgresOffsetStorage}. */
export interface PostgresOffsetStorageOptions {
  /** The application's pool (node-postgres). The storage never ends it. */
  readonly pool: Pool;
  /**
   * The table, `name` or `schema.name`: lower-case letters, digits and `_`. Default
   * `metaq_offsets`.
   */
  readonly table?: string;
  /**
   * Create the table when it is missing (on first use). Default true; pass false when the
   * application's role may not create tables and a DBA created it.
   */
  readonly createTable?: boolean;
}

/** One partition's step past one message, for {@link PostgresOffsetStorage.advanceWith}. */
export interface OffsetAdvance {
  readonly topic: string;
  readonly brokerId: number;
  readonly partition: number;
  /** Offset of the message consumed: the stored offset must not be past it. */
  readonly from: number;
  /** The offset after that message (the next one to fetch). */
  readonly to: number;
  /** Id of the message consumed. */
  readonly messageId: bigint;
}

/** An {@link OffsetStorage} in a PostgreSQL table; see {@link createPostgresOffsetStorage}. */
export interface PostgresOffsetStorage extends OffsetStorage {
  /** The pool given at creation. */
  readonly pool: Pool;
  /** The table name as given (unquoted). */
  readonly table: string;
  /** Creates the table if missing (done on first use anyway). Idempotent and safe across processes. */
  ensureTable(): Promise<void>;
  /**
   * Upserts `offsets` of `group` (one statement, forward-only) on `client`, typically inside the
   * caller's transaction: they become visible, and durable, with the caller's `COMMIT`.
   */
  commitWith(client: ClientBase, group: string, offsets: readonly PartitionOffset[]): Promise<void>;
  /**
   * Moves one partition's offset from `step.from` to `step.to` on `client`, only if the stored
   * offset is at most `step.from` (or there is none yet). The row stays locked until the
   * caller's transaction ends, so concurrent transactions for the same partition run one after
   * the other.
   *
   * @returns true when advanced; false when the stored offset is already past `step.from` (the
   *   message was consumed in a transaction that committed).
   */
  advanceWith(client: ClientBase, group: string, step: OffsetAdvance): Promise<boolean>;
}

/**
 * Creates a PostgreSQL offset storage on `pool`. Pass it to `factory.createConsumer(config,
 * storage)`; it belongs to the caller, who closes it (after the consumers) and ends the pool.
 *
 * @throws {InvalidArgumentError} for a missing pool or a bad table name.
 */
export function createPostgresOffsetStorage(options: PostgresOffsetStorageOptions): PostgresOffsetStorage {
  if (options === null || typeof options !== 'object' || options.pool === null || typeof options.pool?.connect !== 'function' || typeof options.pool.query !== 'function') {
    throw new InvalidArgumentError('createPostgresOffsetStorage needs { pool }: a pg.Pool of the database that holds the offsets');
  }
  const table = options.table ?? DEFAULT_POSTGRES_OFFSETS_TABLE;
  const problem = tableNameError(table);
  if (problem !== undefined) throw new InvalidArgumentError(`createPostgresOffsetStorage: table ${JSON.stringify(table)} is not a valid table name: ${problem}`);
  return new PgOffsetStorage(options.pool, table, options.createTable ?? true);
}

class PgOffsetStorage implements PostgresOffsetStorage {
  readonly pool: Pool;
  readonly table: string;
  readonly #sql: OffsetStatements;
  readonly #createTable: boolean;
  #tableReady: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(pool: Pool, table: string, createTable: boolean) {
    this.pool = pool;
    this.table = table;
    this.#sql = offsetStatements(table);
    this.#createTable = createTable;
  }

  load(topic: string, group: string, partitions: readonly StoredPartition[]): Promise<PartitionOffset[]> {
    return this.#track(async () => {
      if (partitions.length === 0) return [];
      const result = await this.pool.query<OffsetRow>(this.#sql.load, [group, topic, ...loadParameters(partitions)]);
      return result.rows.map((row) => parseOffsetRow(row, topic, this.table));
    });
  }

  commit(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    return this.#track(async () => {
      if (offsets.length === 0) return;
      await this.pool.query(this.#sql.commit, [group, ...commitParameters(offsets)]);
    });
  }

  init(topic: string, group: string, partition: StoredPartition, offset: number): Promise<void> {
    return this.#track(async () => {
      checkOffset(offset, { topic, ...partition });
      await this.pool.query(this.#sql.init, [group, topic, partition.brokerId, partition.partition, String(offset)]);
    });
  }

  async commitWith(client: ClientBase, group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    this.#checkOpen();
    if (offsets.length === 0) return;
    await this.ensureTable();
    await client.query(this.#sql.commit, [group, ...commitParameters(offsets)]);
  }

  async advanceWith(client: ClientBase, group: string, step: OffsetAdvance): Promise<boolean> {
    this.#checkOpen();
    checkOffset(step.from, step);
    checkOffset(step.to, step);
    if (step.to <= step.from) {
      throw new InvalidArgumentError(`advanceWith: 'to' (${step.to}) must be past 'from' (${step.from}) for topic '${step.topic}' partition ${step.partition}`);
    }
    await this.ensureTable();
    const result = await client.query(this.#sql.advance, [
      group,
      step.topic,
      step.brokerId,
      step.partition,
      String(step.from),
      String(step.to),
      step.messageId.toString(),
    ]);
    return result.rowCount === 1;
  }

  ensureTable(): Promise<void> {
    if (!this.#createTable) return Promise.resolve();
    this.#tableReady ??= createTableOnce(this.pool, this.table, this.#sql.createTable).catch((error: unknown) => {
      this.#tableReady = undefined; // try again next time (the database may have been down)
      throw error;
    });
    return this.#tableReady;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): ClientClosedError {
    return new ClientClosedError(`The PostgreSQL offset storage on table ${this.table}`);
  }

  /** Runs `operation` after the table exists, counted as in flight for close(). */
  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const running = this.ensureTable().then(operation);
    this.#inFlight.add(running);
    const forget = (): void => {
      this.#inFlight.delete(running);
    };
    running.then(forget, forget);
    return running;
  }
}
