/**
 * transactions.md §5.7 row 25, end to end: the answer to a send inside a transaction is lost.
 * The put reaches a real broker process and is staged there, but a proxy in front of the broker
 * (test/helpers/tcp-proxy.ts) swallows the answer, so the client times out not knowing whether the
 * message is part of the transaction.
 *
 * Our design does not retry such a send (so there is nothing to deduplicate by producer id and
 * sequence): the transaction can only roll back, and the application runs it again whole.
 *
 * - Local transaction: it becomes ABORT_ONLY; sending again in it (the producer-retry) and
 *   `commit()` are refused; `rollback()` succeeds and the broker really dropped it (a late COMMIT
 *   of its key is refused); no message of it is ever stored; a new transaction with the same
 *   messages stores exactly one copy of each.
 * - XA through the transaction manager, with a PostgreSQL row in the same global transaction:
 *   whether the application lets the error out of `run()`, retries the send in the same
 *   transaction, or swallows the error and returns, the global transaction rolls back: no row, no
 *   message, nothing prepared; the branch with the unanswered put is never committed. Running the
 *   orders again commits each row and message exactly once.
 *
 * Stored messages are read with raw `get`s straight from the broker (not through the proxy):
 * exactly what any consumer fetches.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  createMessageSessionFactory,
  IllegalStateError,
  RequestTimeoutError,
  TransactionRolledBackError,
  XaError,
  type MessageProducer,
  type MessageSessionFactory,
} from '../../src/index.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { decodeMessageData } from '../../src/protocol/message-data.js';
import type { ResponseFrame } from '../../src/protocol/frames.js';
import { formatTransactionKey } from '../../src/protocol/transaction-key.js';
import { createBrokerResource, createPostgresResource, createTransactionManager, type GlobalTransaction, type PostgresResource, type TransactionManager } from '../../src/xa/index.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import { isTransactionalPut, startFrameProxy, type FrameProxy, type LostAnswer } from '../helpers/tcp-proxy.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { countTags, readAll, TxBrokerHome, TxClient, xaCodeOf, type TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, readOrderState } from '../helpers/xa-agreement.js';
import { ORDER_TABLE_DDL, orderKey, orderMessageBody } from '../helpers/xa-worker-protocol.js';

const TABLE = 'lost_answer_orders';
/** Timeout of the send whose answer is swallowed: it can only end by this timeout, so short is safe. */
const LOST_SEND_TIMEOUT_MS = 300;

/** Checks that the swallowed answer is the broker staging the put (`200 "<id> <partition> -1"`); returns the put's payload. */
function assertStaged(lost: LostAnswer): string {
  const { request, answer } = lost;
  assert.equal(request.type, 'put');
  assert.equal(answer.type, 'result');
  const result = answer as Extract<ResponseFrame, { type: 'result' }>;
  assert.equal(result.code, 200, `the broker accepted the put whose answer was lost: ${result.body.toString()}`);
  assert.match(result.body.toString(), /^-?\d+ \d+ -1$/, 'staged in the transaction (offset -1), not stored');
  return request.type === 'put' ? decodeMessageData(request.data, request.flag).payload.toString() : '';
}

/** The transaction key the swallowed put carried. */
function keyOf(lost: LostAnswer): string {
  assert.ok(lost.request.type === 'put' && lost.request.transactionKey !== undefined && lost.request.transactionKey !== null);
  return formatTransactionKey(lost.request.transactionKey);
}

describe('§5.7 row 25: a send inside a transaction loses its answer (real broker behind a proxy)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let pool: pg.Pool;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let proxy: FrameProxy;
  let factory: MessageSessionFactory;

  before(async () => {
    root = await makeTempDir('metaq-tx-lost-answer-');
    [pgServer, home] = await Promise.all([startPostgres({ maxPreparedTransactions: 8 }), TxBrokerHome.create(join(root.path, 'broker'))]);
    broker = await home.start();
    proxy = await startFrameProxy(broker.port);
    pool = new pg.Pool({ connectionString: pgServer.connectionString, max: 4, idleTimeoutMillis: 1000 });
    pool.on('error', () => undefined);
    await pool.query(ORDER_TABLE_DDL(TABLE));
    factory = createMessageSessionFactory({ serverUrl: proxy.url, partitions: { orders: 3, test: 2 } });
  });

  after(async () => {
    await factory?.close();
    await proxy?.close();
    await pool?.end().catch(() => undefined);
    await home?.kill();
    await pgServer?.stop();
    await root?.remove();
  });

  it('local transaction: ABORT_ONLY — no retry inside it, commit refused, rollback drops it; the transaction run again stores each message once', async () => {
    const run = 'local';
    const tags = [`${run}-0`, `${run}-1`, `${run}-2`];
    const producer = factory.createProducer();
    await producer.publish('test');

    const tx = producer.beginTransaction();
    await tx.send({ topic: 'test', data: tags[0] ?? '' });
    const lost = proxy.loseNextAnswer(isTransactionalPut);
    await assert.rejects(tx.send({ topic: 'test', data: tags[1] ?? '' }, { timeoutMs: LOST_SEND_TIMEOUT_MS }), RequestTimeoutError);
    const swallowed = await lost;
    assert.equal(assertStaged(swallowed), tags[1], 'the broker staged the message whose answer was lost');
    assert.equal(keyOf(swallowed), tx.transactionKey);
    assert.equal(tx.state, 'ABORT_ONLY');

    // The producer-retry of the lost send, inside the same transaction, is refused: no duplicate can arise.
    await assert.rejects(tx.send({ topic: 'test', data: tags[1] ?? '' }), (error: unknown) => error instanceof IllegalStateError && /abort-only/.test(error.message));
    await assert.rejects(tx.send({ topic: 'test', data: tags[2] ?? '' }), IllegalStateError);
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof IllegalStateError && /abort-only.*call rollback\(\)/.test(error.message));
    assert.equal(tx.state, 'ABORT_ONLY', 'a refused commit changes nothing');
    let stored = await readAll(broker.port);
    assert.deepEqual(tags.map((tag) => countTags(stored).get(tag) ?? 0), [0, 0, 0], 'nothing is visible while it is open');

    await tx.rollback();
    assert.equal(tx.state, 'ROLLED_BACK');
    // The broker dropped it for good: a late COMMIT of its key (on another connection) is refused.
    const raw = await TxClient.connect(broker.port);
    try {
      const commit = await raw.tx(tx.transactionKey, 'COMMIT_ONE_PHASE');
      assert.equal(commit.code, 500, `a late COMMIT of the rolled-back transaction is refused: ${commit.text}`);
      assert.match(commit.text, /ROLLED_BACK/);
    } finally {
      raw.close();
    }
    stored = await readAll(broker.port);
    assert.deepEqual(tags.map((tag) => countTags(stored).get(tag) ?? 0), [0, 0, 0], 'no message of the rolled-back transaction is stored');

    // The application's answer to the rollback: the same messages in a new transaction.
    const again = producer.beginTransaction();
    for (const tag of tags) await again.send({ topic: 'test', data: tag });
    await again.commit();
    stored = await readAll(broker.port);
    assert.deepEqual(tags.map((tag) => countTags(stored).get(tag) ?? 0), [1, 1, 1], 'each message is stored exactly once');
  });

  describe('XA through the transaction manager, with PostgreSQL', () => {
    const run = 'xa';
    const node = 'lost-answer';
    const uniqueQualifier = `xa-${node}`;
    let producer: MessageProducer;
    let postgres: PostgresResource;
    let tm: TransactionManager;

    before(async () => {
      producer = factory.createProducer();
      await producer.publish('orders');
      await producer.publish('test');
      postgres = createPostgresResource({ pool, name: 'orders' });
      await postgres.init();
      const brokerResource = createBrokerResource(producer, { brokerUrl: proxy.url, uniqueQualifier, requestTimeoutMs: 5000 });
      tm = await createTransactionManager({ nodeName: node, logDir: join(root.path, 'xa-log'), resources: [brokerResource, postgres], recoveryIntervalMs: 0, orphanSafetyIntervalMs: 300 });
    });

    after(() => tm?.close());

    /** Row `id` in the transaction's PostgreSQL branch. */
    async function insertRow(tx: GlobalTransaction, id: number): Promise<void> {
      const db = await tx.enlistPostgres(postgres);
      await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, `item-${id}`]);
    }

    /** The order's message, sent with the short timeout (its answer is the one to lose). */
    function sendOrder(tx: GlobalTransaction, id: number): Promise<unknown> {
      return tx.send(producer, { topic: 'orders', data: orderMessageBody(run, id) }, { timeoutMs: LOST_SEND_TIMEOUT_MS });
    }

    /** After a global rollback: the order has no row and no message, and its broker branch is gone for good. */
    async function assertRolledBack(id: number, branchKey: string, context: string): Promise<void> {
      const state = await readOrderState(pool, TABLE, broker.port, (r) => r === run);
      assert.equal(state.rows.has(orderKey(run, id)), false, `${context}: no row`);
      assert.equal(state.messages.has(orderKey(run, id)), false, `${context}: no message`);
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, context);
      const raw = await TxClient.connect(broker.port);
      try {
        const commit = await raw.send(TxClient.txHeader(branchKey, 'COMMIT_ONE_PHASE'));
        assert.equal(xaCodeOf(commit), XaCode.XA_RBROLLBACK, `${context}: a late commit of the branch is refused, it was rolled back (${commit.text})`);
      } finally {
        raw.close();
      }
    }

    it('the application lets the send error out of run(): the global transaction rolls back', async () => {
      const lost = proxy.loseNextAnswer(isTransactionalPut);
      const error = await tm
        .run(async (tx) => {
          await insertRow(tx, 1);
          await sendOrder(tx, 1);
        })
        .then(
          () => assert.fail('run() must reject'),
          (e: unknown) => e,
        );
      assert.ok(error instanceof RequestTimeoutError, `run() rejects with the send's error, got ${String(error)}`);
      const swallowed = await lost;
      assertStaged(swallowed);
      await assertRolledBack(1, keyOf(swallowed), 'order 1 (error out of run)');
    });

    it('the application retries the send in the same transaction, then gives up silently: the retry is refused and the commit rolls back', async () => {
      const lost = proxy.loseNextAnswer(isTransactionalPut);
      const seen: unknown[] = [];
      const error = await tm
        .run(async (tx) => {
          await insertRow(tx, 2);
          try {
            await sendOrder(tx, 2);
          } catch (first) {
            seen.push(first);
            // The producer-retry: the same message again, in the same branch.
            await sendOrder(tx, 2).catch((second: unknown) => seen.push(second));
          }
          // ...and the application carries on as if the message were sent.
        })
        .then(
          () => assert.fail('a global transaction with an unanswered send must not commit'),
          (e: unknown) => e,
        );
      assert.ok(seen[0] instanceof RequestTimeoutError, `the first send timed out: ${String(seen[0])}`);
      assert.ok(seen[1] instanceof XaError && seen[1].xaCode === XaCode.XAER_PROTO, `the retry is refused, the branch is rollback-only: ${String(seen[1])}`);
      assert.ok(error instanceof TransactionRolledBackError, `run() rejects with a rollback, got ${String(error)}`);
      assert.match(error.message, /XA_RBCOMMFAIL|got no answer/, 'naming the unanswered send');
      const swallowed = await lost;
      assertStaged(swallowed);
      await assertRolledBack(2, keyOf(swallowed), 'order 2 (retried, then ignored)');
    });

    it('a send is answered, the next one is lost and ignored: prepare refuses the branch and everything rolls back', async () => {
      const seen: unknown[] = [];
      let lost: Promise<LostAnswer> | undefined;
      const error = await tm
        .run(async (tx) => {
          await insertRow(tx, 3);
          await sendOrder(tx, 3);
          lost = proxy.loseNextAnswer(isTransactionalPut);
          await tx.send(producer, { topic: 'test', data: `${run}-audit-3` }, { timeoutMs: LOST_SEND_TIMEOUT_MS }).catch((e: unknown) => seen.push(e));
        })
        .then(
          () => assert.fail('a global transaction with an unanswered send must not commit'),
          (e: unknown) => e,
        );
      assert.ok(seen[0] instanceof RequestTimeoutError, String(seen[0]));
      assert.ok(error instanceof TransactionRolledBackError, `run() rejects with a rollback, got ${String(error)}`);
      assert.ok(lost !== undefined);
      const swallowed = await lost;
      assert.equal(assertStaged(swallowed), `${run}-audit-3`);
      await assertRolledBack(3, keyOf(swallowed), 'order 3 (one answered send, one lost)');
      assert.equal(countTags(await readAll(broker.port)).get(`${run}-audit-3`), undefined, 'the lost message is not stored');
    });

    it('the broker is the only participant and its one send is lost and ignored: the one-phase commit rolls back instead of reporting success', async () => {
      let lost: Promise<LostAnswer> | undefined;
      const error = await tm
        .run(async (tx) => {
          lost = proxy.loseNextAnswer(isTransactionalPut);
          await tx.send(producer, { topic: 'test', data: `${run}-alone-4` }, { timeoutMs: LOST_SEND_TIMEOUT_MS }).catch(() => undefined);
        })
        .then(
          () => assert.fail('a transaction whose only send is in doubt must not report a commit'),
          (e: unknown) => e,
        );
      assert.ok(error instanceof TransactionRolledBackError, `run() rejects with a rollback, got ${String(error)}`);
      assert.ok(lost !== undefined);
      const swallowed = await lost;
      assert.equal(assertStaged(swallowed), `${run}-alone-4`);
      await assertRolledBack(4, keyOf(swallowed), 'send-only transaction');
      assert.equal(countTags(await readAll(broker.port)).get(`${run}-alone-4`), undefined, 'the lost message is not stored');
    });

    it('the orders run again commit exactly once each: nothing of the lost sends is duplicated', async () => {
      for (const id of [1, 2, 3]) {
        await tm.run(async (tx) => {
          await insertRow(tx, id);
          await sendOrder(tx, id);
          if (id === 3) await tx.send(producer, { topic: 'test', data: `${run}-audit-3` });
        });
      }
      const state = await readOrderState(pool, TABLE, broker.port, (r) => r === run);
      assertAgreement(state, { committed: [1, 2, 3].map((id) => orderKey(run, id)) }, 'after the orders ran again');
      assert.equal(state.rows.size, 3);
      assert.equal(countTags(await readAll(broker.port)).get(`${run}-audit-3`), 1);
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'at the end');
      assert.equal(tm.metrics().heuristics, 0);
    });
  });
});
