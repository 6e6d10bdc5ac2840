/**
 * The recover store of the exactly-once mode: failed messages kept in a PostgreSQL table
 * (postgres-recover-sql.ts) instead of local files, so that setting a message aside and
 * re-delivering it are transactions too.
 *
 * - `save` (after every retry failed) inserts the message **and** moves the partition's offset
 *   past it in one transaction. The local store cannot do that: a crash between saving the file
 *   and committing the offset would leave the message both in the store and unconsumed, and it
 *   could then take effect twice (once re-fetched, once re-delivered).
 * - A re-delivery ({@link PostgresRecoverStore.claimWith}) deletes the entry inside the
 *   transaction that runs the handler: the entry disappears exactly when the handler's effects
 *   commit, and a second re-delivery of the same entry (a crash, another process of the group)
 *   finds nothing and does nothing.
 */
import type { ClientBase } from 'pg';
import type { Logger } from '../../common/logger.js';
import { decodeMessageData, encodeMessageData } from '../../protocol/message-data.js';
import type { ConsumedMessage } from '../message.js';
import { createTableOnce, inTransaction, type PgIsolationLevel } from '../offsets/pg-transaction.js';
import type { PostgresOffsetStorage } from '../offsets/postgres-offset-storage.js';
import { nextOffsetOf } from './message-extent.js';
import { parseRecoverEntryName, recoverEntryName, recoverStatements, type RecoverStatements } from './postgres-recover-sql.js';
import type { RecoverStore, StoredMessage } from './recover-store.js';

/** Settings of {@link PostgresRecoverStore}. */
export interface PostgresRecoverStoreOptions {
  /** The consumer's offset storage: its pool holds the table, its table the offsets to advance. */
  readonly storage: PostgresOffsetStorage;
  /** The recover table (validated). */
  readonly table: string;
  readonly topic: string;
  readonly group: string;
  readonly isolation: PgIsolationLevel | undefined;
  readonly log: Logger;
}

/** A {@link RecoverStore} in a PostgreSQL table, for one topic and group. Internal. */
export class PostgresRecoverStore implements RecoverStore {
  readonly dir: string;
  readonly #o: PostgresRecoverStoreOptions;
  readonly #sql: RecoverStatements;
  #tableReady: Promise<void> | undefined;

  constructor(options: PostgresRecoverStoreOptions) {
    this.#o = options;
    this.#sql = recoverStatements(options.table);
    // Not a directory: where the entries are, for the consumer's log lines.
    this.dir = `postgresql table ${options.table} (${options.topic}@${options.group})`;
  }

  /** Creates the table if missing; memoised (retried after a failure). */
  ensureTable(): Promise<void> {
    this.#tableReady ??= createTableOnce(this.#o.storage.pool, this.#o.table, this.#sql.createTable).catch((error: unknown) => {
      this.#tableReady = undefined;
      throw error;
    });
    return this.#tableReady;
  }

  async save(brokerId: number, message: ConsumedMessage): Promise<void> {
    const { storage, topic, group, isolation, log } = this.#o;
    await this.ensureTable();
    await inTransaction(
      storage.pool,
      async (db) => {
        const advanced = await storage.advanceWith(db, group, {
          topic,
          brokerId,
          partition: message.partition,
          from: message.offset,
          to: nextOffsetOf(message),
          messageId: message.id,
        });
        if (!advanced) {
          // A transaction that committed already consumed it (another process of the group).
          log.warn({ topic, partition: message.partition, offset: message.offset }, 'failed message was consumed meanwhile elsewhere; not kept');
          return;
        }
        const { data, flag } = encodeMessageData(message.data, message.attribute, message.flag);
        await db.query(this.#sql.insert, [group, topic, brokerId, message.partition, String(message.offset), message.id.toString(), flag, data]);
      },
      isolation,
    );
  }

  async names(): Promise<string[]> {
    await this.ensureTable();
    const result = await this.#o.storage.pool.query<{ broker_id: number; partition: number; offset: string }>(this.#sql.list, [this.#o.group, this.#o.topic]);
    return result.rows.map((row) => recoverEntryName({ brokerId: row.broker_id, partition: row.partition, offset: Number(row.offset) }));
  }

  async read(name: string): Promise<StoredMessage | undefined> {
    const key = parseRecoverEntryName(name);
    if (key === undefined) return undefined;
    await this.ensureTable();
    const { group, topic, log } = this.#o;
    const result = await this.#o.storage.pool.query<{ msg_id: string; flag: number; data: Buffer }>(this.#sql.read, [
      group,
      topic,
      key.brokerId,
      key.partition,
      String(key.offset),
    ]);
    const row = result.rows[0];
    if (row === undefined) return undefined;
    let decoded: ReturnType<typeof decodeMessageData>;
    try {
      decoded = decodeMessageData(row.data, row.flag);
    } catch (error) {
      // Written by save() from a decoded message, so only a hand-edited row gets here.
      log.error({ err: error, table: this.#o.table, name }, 'unreadable recover-table row skipped; fix or delete it');
      return undefined;
    }
    const message: ConsumedMessage = {
      id: BigInt(row.msg_id),
      topic,
      partition: key.partition,
      offset: key.offset,
      data: decoded.payload,
      flag: row.flag,
      recovered: true,
      ...(decoded.attribute === undefined ? {} : { attribute: decoded.attribute }),
    };
    return { name, brokerId: key.brokerId, message };
  }

  async remove(name: string): Promise<void> {
    const key = parseRecoverEntryName(name);
    if (key === undefined) return;
    await this.ensureTable();
    await this.#o.storage.pool.query(this.#sql.remove, [this.#o.group, this.#o.topic, key.brokerId, key.partition, String(key.offset)]);
  }

  /**
   * Deletes the entry of `message` on `db` (inside the re-delivery's transaction).
   *
   * @returns false when there is no such entry any more: it was re-delivered already.
   */
  async claimWith(db: ClientBase, message: ConsumedMessage): Promise<boolean> {
    await this.ensureTable();
    const result = await db.query(this.#sql.claim, [this.#o.group, this.#o.topic, message.partition, String(message.offset), message.id.toString()]);
    return (result.rowCount ?? 0) > 0;
  }
}
