/**
 * Exactly-once consumption into PostgreSQL: the handler's writes and the consumer's offset
 * commit happen in one database transaction, so after a crash anywhere (the consumer process,
 * the database connection, the broker) a message has taken effect once — never zero times,
 * never twice.
 *
 * ```ts
 * const offsets = createPostgresOffsetStorage({ pool });
 * const consumer = factory.createConsumer({ group: 'billing' }, offsets);
 * consumer.subscribe('orders', { maxSize: 1024 * 1024 }, exactlyOnce(offsets, async (message, db) => {
 *   await db.query('INSERT INTO orders (id, body) VALUES ($1, $2)', [message.id.toString(), message.data]);
 * }));
 * await consumer.completeSubscribe();
 * ```
 *
 * For each message the consumer checks a client out of the storage's pool and runs:
 *
 * 1. `BEGIN`;
 * 2. the offset step ({@link PostgresOffsetStorage.advanceWith}): the partition's row moves to
 *    the offset after the message **if** it is not already past the message. This reads the
 *    stored offset afresh in every transaction and locks the row until the end of it;
 * 3. if the row was already past the message — its transaction committed before, e.g. a
 *    `COMMIT` whose answer was lost, or another process of the group got there first — nothing
 *    else happens: the message is skipped, its effects are already in the database;
 * 4. otherwise `handler(message, db)` with the transaction's client;
 * 5. `COMMIT`. If the handler (or anything) throws: `ROLLBACK`, and the consumer's usual retries
 *    follow (`maxFetchRetries`, growing delay).
 *
 * Why the offset step comes before the handler (not after it): it takes the row lock first, so
 * two consumers of one partition run one after the other instead of both running the handler,
 * and a message already consumed costs one statement instead of a handler call rolled back.
 *
 * When every retry failed, the message is kept in a recover **table** (by default
 * `<offsets table>_recover`) in one transaction with the offset step past it, and the
 * partition moves on; the consumer re-delivers it every `recoverMessageIntervalInMills` in a
 * transaction that deletes its row together with the handler's writes (postgres-recover-store.ts).
 *
 * The consumer's periodic and final commits still write the positions of messages that had no
 * transaction (filtered out, skipped by the broker); they never move an offset backwards, so
 * they cannot undo a transaction's step (postgres-offset-sql.ts).
 */
import type { PoolClient } from 'pg';
import { IllegalStateError, InvalidArgumentError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ConsumedMessage, MessageListener } from '../message.js';
import { tableNameError } from '../offsets/pg-identifiers.js';
import { inTransaction, type PgIsolationLevel } from '../offsets/pg-transaction.js';
import type { PostgresOffsetStorage } from '../offsets/postgres-offset-storage.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import { LISTENER_BINDING, type BindableListener, type BindingContext, type BoundSubscription, type ListenerBinding } from './listener-binding.js';
import { nextOffsetOf } from './message-extent.js';
import { defaultRecoverTable } from './postgres-recover-sql.js';
import { PostgresRecoverStore } from './postgres-recover-store.js';

/**
 * The application's part of an exactly-once subscription: apply `message` using `db`, a client
 * inside the transaction that will also store the offset. Use `db` (not the pool) for every
 * write that must happen exactly once; do not `COMMIT` or `ROLLBACK` it yourself. Throw to roll
 * back and have the message retried. A query error you catch aborts the transaction all the
 * same (PostgreSQL's rule): let it propagate, or wrap the statement in a `SAVEPOINT`.
 */
export type ExactlyOnceHandler = (message: ConsumedMessage, db: PoolClient) => void | Promise<void>;

/** Options of {@link exactlyOnce}. */
export interface ExactlyOnceOptions {
  /** Isolation of each message's transaction. Default: the server's (read committed). */
  readonly isolationLevel?: PgIsolationLevel;
  /**
   * The table for messages whose handler failed on every retry (created if missing). Default
   * `<offsets table>_recover`, e.g. `metaq_offsets_recover`.
   */
  readonly recoverTable?: string;
}

/** A listener made by {@link exactlyOnce}; pass it to `consumer.subscribe`. */
export interface ExactlyOnceListener extends BindableListener {
  /** The offset storage its transactions commit offsets to. */
  readonly storage: PostgresOffsetStorage;
}

const ISOLATION_LEVELS: readonly PgIsolationLevel[] = ['read committed', 'repeatable read', 'serializable'];

/**
 * Makes a listener that runs `handler` exactly once per message, in a PostgreSQL transaction
 * that also commits the offset (see the module documentation above and docs/client.md).
 *
 * The consumer it is subscribed to must have been created with the same `storage`
 * (`factory.createConsumer(config, storage)`), so that it starts from the offsets the
 * transactions commit; `subscribe` throws {@link IllegalStateError} otherwise. One listener may
 * be subscribed to several topics and consumers.
 *
 * @throws {InvalidArgumentError} for a storage that is not a PostgreSQL one, a missing handler,
 *   an unknown isolation level or a bad recover table name.
 */
export function exactlyOnce(storage: PostgresOffsetStorage, handler: ExactlyOnceHandler, options: ExactlyOnceOptions = {}): ExactlyOnceListener {
  if (storage === null || typeof storage !== 'object' || typeof storage.advanceWith !== 'function' || typeof storage.table !== 'string') {
    throw new InvalidArgumentError('exactlyOnce(storage, handler): storage must come from createPostgresOffsetStorage({ pool })');
  }
  if (typeof handler !== 'function') throw new InvalidArgumentError('exactlyOnce(storage, handler): handler must be a function (message, db) => …');
  const isolation = options.isolationLevel;
  if (isolation !== undefined && !ISOLATION_LEVELS.includes(isolation)) {
    throw new InvalidArgumentError(`exactlyOnce: isolationLevel ${JSON.stringify(isolation)} must be one of ${ISOLATION_LEVELS.map((l) => `'${l}'`).join(', ')}`);
  }
  const recoverTable = options.recoverTable ?? defaultRecoverTable(storage.table);
  const problem = tableNameError(recoverTable);
  if (problem !== undefined) throw new InvalidArgumentError(`exactlyOnce: recoverTable ${JSON.stringify(recoverTable)} is not a valid table name: ${problem}`);

  const binding: ListenerBinding = {
    bind: (context) => bindSubscription({ storage, handler, isolation, recoverTable, context }),
  };
  const unbound: MessageListener = () => {
    throw new IllegalStateError('An exactlyOnce(...) listener runs only inside a consumer: pass it to consumer.subscribe(topic, options, listener)');
  };
  return Object.assign(unbound, { [LISTENER_BINDING]: binding, storage });
}

interface BindSettings {
  readonly storage: PostgresOffsetStorage;
  readonly handler: ExactlyOnceHandler;
  readonly isolation: PgIsolationLevel | undefined;
  readonly recoverTable: string;
  readonly context: BindingContext;
}

function bindSubscription(settings: BindSettings): BoundSubscription {
  const { storage, handler, isolation, recoverTable, context } = settings;
  const { topic, group, log } = context;
  if (context.offsetStorage !== storage) {
    throw new IllegalStateError(
      `subscribe('${topic}'): the exactlyOnce listener commits offsets to the PostgreSQL table ${storage.table}, but this consumer loads them from another offset storage; create the consumer with the same storage: factory.createConsumer(config, storage)`,
    );
  }
  const recoverStore = new PostgresRecoverStore({ storage, table: recoverTable, topic, group, isolation, log });
  return {
    recoverStore,
    listenerFor: (ref) => fetchedListener(settings, ref),
    recoveredListener: async (message) => {
      await recoverStore.ensureTable();
      await inTransaction(
        storage.pool,
        async (db) => {
          // No entry any more: an earlier re-delivery committed (its row deletion with it).
          if (!(await recoverStore.claimWith(db, message))) return;
          await handler(message, db);
        },
        isolation,
      );
    },
  };
}

/** The listener of one partition's fetch loop. */
function fetchedListener(settings: BindSettings, ref: PartitionRef): MessageListener {
  const { storage, handler, isolation, context } = settings;
  const { topic, group } = context;
  const log: Logger = context.log.child({ topic, partition: ref.partition, broker: ref.brokerUrl });
  let skipped = 0;
  return async (message) => {
    const step = { topic, brokerId: ref.brokerId, partition: ref.partition, from: message.offset, to: nextOffsetOf(message), messageId: message.id };
    const applied = await inTransaction(
      storage.pool,
      async (db) => {
        if (!(await storage.advanceWith(db, group, step))) return false;
        await handler(message, db);
        return true;
      },
      isolation,
    );
    if (applied) return;
    // Normal once after an unanswered COMMIT; a steady stream means another process of the
    // group consumes this partition too (direct mode gives every member every partition).
    skipped += 1;
    const fields = { offset: message.offset, messageId: String(message.id), skipped };
    if (skipped === 1 || skipped % 1000 === 0) log.warn(fields, 'message already consumed in a committed transaction; skipped');
    else log.debug(fields, 'message already consumed in a committed transaction; skipped');
  };
}
