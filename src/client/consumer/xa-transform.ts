/**
 * Consume-transform-produce in one XA transaction: each consumed message is processed inside one
 * global transaction of the XA transaction manager (src/xa) that (a) writes to PostgreSQL,
 * (b) sends zero or more messages to other topics and (c) advances the consumer's offset. After
 * a crash anywhere — the process, the broker, PostgreSQL, at any step of two-phase commit — a
 * message's effects (its rows and its output messages) exist exactly once, and nothing of an
 * attempt that did not commit is ever visible (rows roll back; the broker never shows messages
 * of a transaction that did not commit).
 *
 * ```ts
 * const offsets = createPostgresOffsetStorage({ pool });
 * const database = createPostgresResource({ pool, name: 'billing' });   // the same pool
 * await database.init();
 * const tm = await createTransactionManager({ nodeName: 'billing-1', logDir, resources: [database, createBrokerResource(producer, {...})] });
 * const consumer = factory.createConsumer({ group: 'billing' }, offsets);
 * consumer.subscribe('orders', { maxSize: 1024 * 1024 }, xaTransform(tm, { storage: offsets }, async (message, tx, db) => {
 *   await db.query('INSERT INTO invoices (order_id) VALUES ($1)', [orderIdOf(message)]);
 *   await tx.send(producer, { topic: 'invoices', data: ... });
 * }));
 * await consumer.completeSubscribe();
 * ```
 *
 * For each fetched message:
 *
 * 1. `tm.begin()`, then the PostgreSQL branch is enlisted on the offset storage's pool (the
 *    manager must have a `PostgresResource` registered on that pool);
 * 2. the offset step ({@link PostgresOffsetStorage.advanceWith}) runs **on the branch's client**:
 *    the partition's offset row moves past the message only if it is not already past it, and
 *    stays locked until the branch ends;
 * 3. row already past the message — a transaction that consumed it committed (the consumer's
 *    in-memory offset was behind: a crash after the commit decision, recovery completing it
 *    after the consumer loaded its offsets, another process of the group): the global
 *    transaction is rolled back, the handler is not called, the message is skipped;
 * 4. otherwise `handler(message, tx, db)`: its statements on `db` and its `tx.send`s are part of
 *    the same global transaction as the offset row;
 * 5. `tx.commit()`: one phase when nothing was sent (PostgreSQL only), two-phase otherwise.
 *    Whatever throws rolls the whole global transaction back, and the consumer's usual retries
 *    follow (`maxFetchRetries`, growing delay), each in a new global transaction.
 *
 * Why this is exactly once: the offset row, the rows and the output messages commit or roll back
 * together (one PostgreSQL branch holds the first two, two-phase commit ties it to the broker
 * branch), and every attempt decides inside the transaction, under the row lock, whether the
 * message was consumed already. Recovery commits a decided transaction's offset with its sends.
 *
 * When every retry failed, the message goes to the recover table exactly as with `exactlyOnce`
 * (postgres-recover-store.ts: one PostgreSQL transaction stores it and moves the offset past it),
 * and each re-delivery runs in a global transaction that deletes its entry from the recover table
 * through the same branch, together with the handler's rows and sends: a re-delivered message
 * also takes effect once.
 *
 * Locks in doubt: a PostgreSQL branch prepared by a process that then died before the commit
 * decision keeps the partition's offset row locked until recovery rolls it back (once it is older
 * than `orphanSafetyIntervalMs`); the partition waits that long (every other partition goes on).
 * Keep the pool large enough for one pinned client per partition being consumed, plus the
 * consumer's offset commits and the manager's phase two and recovery (partitions + 4 is plenty).
 *
 * Why this module lives with the consumer rather than in src/xa: it is a delivery mode of the
 * consumer, built like `exactlyOnce` from consumer internals (listener-binding.ts, the PostgreSQL
 * recover store, message-extent.ts). It uses the transaction manager only through its public
 * types (`TransactionManager`, `GlobalTransaction`, `PostgresBranch`), so src/xa keeps no
 * dependency on consumer internals; src/xa/index.ts only re-exports it.
 */
import { IllegalStateError, InvalidArgumentError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { BeginOptions, GlobalTransaction } from '../../xa/global-transaction-api.js';
import type { GlobalTransactionStateName } from '../../xa/global-transaction-states.js';
import type { PostgresBranch } from '../../xa/postgres/branch.js';
import type { TransactionManager } from '../../xa/transaction-manager.js';
import type { ConsumedMessage, MessageListener } from '../message.js';
import { tableNameError } from '../offsets/pg-identifiers.js';
import type { PostgresOffsetStorage } from '../offsets/postgres-offset-storage.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import { LISTENER_BINDING, type BindableListener, type BindingContext, type BoundSubscription, type ListenerBinding } from './listener-binding.js';
import { nextOffsetOf } from './message-extent.js';
import { defaultRecoverTable } from './postgres-recover-sql.js';
import { PostgresRecoverStore } from './postgres-recover-store.js';

/**
 * The application's part of a consume-transform-produce subscription: process `message` inside
 * the global transaction `tx`. Write to PostgreSQL through `db` (the transaction's PostgreSQL
 * branch, which also holds the offset row) and send through `tx.send(producer, message)`. Do not
 * commit or roll back `tx` (or `db`) yourself. Throw to roll everything back and have the message
 * retried. A query error you catch still aborts the PostgreSQL transaction (PostgreSQL's rule),
 * so the commit then rolls back: let it propagate, or use a `SAVEPOINT`.
 */
export type XaTransformHandler = (message: ConsumedMessage, tx: GlobalTransaction, db: PostgresBranch) => void | Promise<void>;

/** Options of {@link xaTransform}. */
export interface XaTransformOptions {
  /**
   * The consumer's offset storage (`createPostgresOffsetStorage({ pool })`). The transaction
   * manager must have a `PostgresResource` registered on the same pool: its branch writes the
   * offset rows.
   */
  readonly storage: PostgresOffsetStorage;
  /** Timeout of each message's global transaction. Default: the manager's `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
  /**
   * The table for messages whose handler failed on every retry (created if missing). Default
   * `<offsets table>_recover`, e.g. `metaq_offsets_recover` (shared with `exactlyOnce`'s layout).
   */
  readonly recoverTable?: string;
}

/** A listener made by {@link xaTransform}; pass it to `consumer.subscribe`. */
export interface XaTransformListener extends BindableListener {
  /** The offset storage whose rows its transactions advance. */
  readonly storage: PostgresOffsetStorage;
  /** The transaction manager its transactions belong to. */
  readonly transactionManager: TransactionManager;
}

/**
 * Makes a listener that runs `handler` for each message inside one global transaction of `tm`
 * together with the consumer's offset step (see the module documentation and docs/xa.md).
 *
 * The consumer must have been created with the same storage (`factory.createConsumer(config,
 * storage)`), and `tm` must have a PostgreSQL resource registered on `storage.pool`;
 * `subscribe` throws {@link IllegalStateError} otherwise. Close the consumer before the manager.
 *
 * @throws {InvalidArgumentError} for a missing manager, storage or handler, a bad timeout or a bad
 *   recover table name.
 */
export function xaTransform(tm: TransactionManager, options: XaTransformOptions, handler: XaTransformHandler): XaTransformListener {
  if (tm === null || typeof tm !== 'object' || typeof tm.begin !== 'function' || typeof tm.resources !== 'function') {
    throw new InvalidArgumentError('xaTransform(tm, options, handler): tm must come from createTransactionManager(...)');
  }
  const storage = options?.storage;
  if (storage === null || typeof storage !== 'object' || typeof storage.advanceWith !== 'function' || typeof storage.table !== 'string') {
    throw new InvalidArgumentError('xaTransform(tm, { storage }, handler): storage must come from createPostgresOffsetStorage({ pool })');
  }
  if (typeof handler !== 'function') throw new InvalidArgumentError('xaTransform(tm, options, handler): handler must be a function (message, tx, db) => …');
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1)) {
    throw new InvalidArgumentError(`xaTransform: timeoutMs must be a positive integer (ms), got ${String(timeoutMs)}`);
  }
  const recoverTable = options.recoverTable ?? defaultRecoverTable(storage.table);
  const problem = tableNameError(recoverTable);
  if (problem !== undefined) throw new InvalidArgumentError(`xaTransform: recoverTable ${JSON.stringify(recoverTable)} is not a valid table name: ${problem}`);

  const settings: Omit<BindSettings, 'context' | 'recoverStore'> = {
    tm,
    storage,
    handler,
    begin: timeoutMs === undefined ? {} : { timeoutMs },
    recoverTable,
  };
  const binding: ListenerBinding = { bind: (context) => bindSubscription(settings, context) };
  const unbound: MessageListener = () => {
    throw new IllegalStateError('An xaTransform(...) listener runs only inside a consumer: pass it to consumer.subscribe(topic, options, listener)');
  };
  return Object.assign(unbound, { [LISTENER_BINDING]: binding, storage, transactionManager: tm });
}

interface BindSettings {
  readonly tm: TransactionManager;
  readonly storage: PostgresOffsetStorage;
  readonly handler: XaTransformHandler;
  readonly begin: BeginOptions;
  readonly recoverTable: string;
  readonly context: BindingContext;
  readonly recoverStore: PostgresRecoverStore;
}

/** True when `tm` has a registered resource working on `pool` (a PostgresResource). */
function hasResourceOnPool(tm: TransactionManager, pool: PostgresOffsetStorage['pool']): boolean {
  return tm.resources().some((resource) => (resource as { readonly pool?: unknown }).pool === pool);
}

function bindSubscription(base: Omit<BindSettings, 'context' | 'recoverStore'>, context: BindingContext): BoundSubscription {
  const { storage, tm, recoverTable } = base;
  const { topic, group, log } = context;
  if (context.offsetStorage !== storage) {
    throw new IllegalStateError(
      `subscribe('${topic}'): the xaTransform listener advances offsets in the PostgreSQL table ${storage.table}, but this consumer loads them from another offset storage; create the consumer with the same storage: factory.createConsumer(config, storage)`,
    );
  }
  if (!hasResourceOnPool(tm, storage.pool)) {
    throw new IllegalStateError(
      `subscribe('${topic}'): the transaction manager ${tm.nodeName} has no PostgreSQL resource on the offset storage's pool; register one: createTransactionManager({ resources: [createPostgresResource({ pool: storage.pool, name }), ...] })`,
    );
  }
  const recoverStore = new PostgresRecoverStore({ storage, table: recoverTable, topic, group, isolation: undefined, log });
  const settings: BindSettings = { ...base, context, recoverStore };
  return {
    recoverStore,
    listenerFor: (ref) => fetchedListener(settings, ref),
    recoveredListener: async (message) => {
      await recoverStore.ensureTable();
      // No entry any more: an earlier re-delivery committed (its deletion with it).
      await inGlobalTransaction(settings, log, async (tx, db) => {
        if (!(await recoverStore.claimWith(db.client, message))) return false;
        await settings.handler(message, tx, db);
        return true;
      });
    },
  };
}

/** The listener of one partition's fetch loop. */
function fetchedListener(settings: BindSettings, ref: PartitionRef): MessageListener {
  const { storage, handler, context } = settings;
  const { topic, group } = context;
  const log: Logger = context.log.child({ topic, partition: ref.partition, broker: ref.brokerUrl });
  let skipped = 0;
  return async (message) => {
    const step = { topic, brokerId: ref.brokerId, partition: ref.partition, from: message.offset, to: nextOffsetOf(message), messageId: message.id };
    const applied = await inGlobalTransaction(settings, log, async (tx, db) => {
      // On the branch's own client: the offset row commits (or rolls back) with everything else.
      if (!(await storage.advanceWith(db.client, group, step))) return false;
      await handler(message, tx, db);
      return true;
    });
    if (applied) return;
    // Normal after a crash past the commit decision (recovery completed it after the consumer
    // loaded its offsets); a steady stream means another process of the group consumes this
    // partition too.
    skipped += 1;
    const fields = { offset: message.offset, messageId: String(message.id), skipped };
    if (skipped === 1 || skipped % 1000 === 0) log.warn(fields, 'message already consumed in a committed transaction; skipped');
    else log.debug(fields, 'message already consumed in a committed transaction; skipped');
  };
}

const ROLLBACK_STATES: readonly GlobalTransactionStateName[] = ['ACTIVE', 'ABORTING'];

/**
 * Runs `work` in a new global transaction with the storage's PostgreSQL branch enlisted; commits
 * when it resolves true, rolls back when it resolves false (nothing to do) or throws.
 *
 * @returns what `work` returned, once committed (true) or rolled back (false).
 * @throws what `work` threw (after the rollback); what `tx.commit()` rejects with.
 */
async function inGlobalTransaction(settings: BindSettings, log: Logger, work: (tx: GlobalTransaction, db: PostgresBranch) => Promise<boolean>): Promise<boolean> {
  const { tm, storage, begin } = settings;
  // Before a client is pinned: the table creation borrows one of its own from the pool.
  await storage.ensureTable();
  const tx = tm.begin(begin);
  let commit: boolean;
  try {
    const db = await tx.enlistPostgres(storage.pool);
    commit = await work(tx, db);
  } catch (error) {
    await rollbackQuietly(tx, log);
    throw error;
  }
  if (!commit) {
    await rollbackQuietly(tx, log);
    return false;
  }
  await tx.commit();
  return true;
}

/** Rolls `tx` back if it can still be; a failure is logged (the branches roll back on their own: timeout, lost session). */
async function rollbackQuietly(tx: GlobalTransaction, log: Logger): Promise<void> {
  if (!ROLLBACK_STATES.includes(tx.state)) return;
  try {
    await tx.rollback();
  } catch (error) {
    log.warn({ err: error, gtrid: tx.gtridHex }, 'rollback of a consume-transform-produce transaction failed');
  }
}
