/**
 * The consume-transform-produce mode (`xaTransform`, client/consumer/xa-transform.ts) without a
 * server: a real transaction manager (memory coordinator log), a real XA PostgreSQL resource and
 * a real PostgreSQL offset storage, both on one scripted pool (xa-ctp-fakes.ts), and a fake
 * "broker" resource from xa-fakes.ts standing in for `tx.send`.
 *
 * Checked: the offset step runs on the branch's own client, before the handler, and is prepared
 * and committed with the handler's statements and the other participant (two-phase); with no
 * other participant the branch commits in one phase; a message at or below the stored offset is
 * skipped inside the transaction (rolled back, handler not called, nothing sent); a failing
 * handler or a "no" vote rolls the whole global transaction back (offset included); re-deliveries
 * claim their recover-table row in the branch; argument and binding checks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IllegalStateError, InvalidArgumentError, TransactionRolledBackError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { createLocalOffsetStorage, createMessageSessionFactory, createPostgresOffsetStorage, type ConsumedMessage, type PostgresOffsetStorage } from '../../src/client/index.js';
import { LISTENER_BINDING, type BoundSubscription } from '../../src/client/consumer/listener-binding.js';
import { createPostgresResource, createTransactionManager, xaTransform, type TransactionManager, type XaTransformHandler } from '../../src/xa/index.js';
import { xaTransform as fromRoot } from '../../src/index.js';
import { ScriptedPgPool } from '../helpers/xa-ctp-fakes.js';
import { FAST_RETRY, FakeResource, RecordingLog, xaFail } from '../helpers/xa-fakes.js';

const log = componentLogger('test');
const REF = { brokerId: 3, brokerUrl: 'meta://h:1', partition: 1 };

function message(overrides: Partial<ConsumedMessage> = {}): ConsumedMessage {
  return { id: 77n, topic: 'orders', partition: 1, offset: 1000, data: Buffer.from('hello'), flag: 0, recovered: false, ...overrides };
}

/** The offset step (`advanceWith`): the only statement with a `$5::bigint` guard. */
function isAdvance(text: string): boolean {
  return text.startsWith('INSERT') && text.includes('"metaq_offsets"') && text.includes('$5::bigint');
}

interface Rig {
  readonly fake: ScriptedPgPool;
  readonly storage: PostgresOffsetStorage;
  readonly broker: FakeResource;
  readonly journal: string[];
  readonly tm: TransactionManager;
  /** Whether the next offset steps find the row behind the message (advance) or past it. */
  advance: boolean;
  /** Whether a recover-table row is there to claim. */
  claimable: boolean;
}

async function rig(): Promise<Rig> {
  const fake = new ScriptedPgPool();
  const journal: string[] = [];
  const broker = new FakeResource('metaq:meta://h:1#ctp', journal);
  const database = createPostgresResource({ pool: fake.pool, name: 'ctp' });
  const storage = createPostgresOffsetStorage({ pool: fake.pool });
  const tm = await createTransactionManager({
    nodeName: 'ctp-unit',
    log: new RecordingLog(journal),
    resources: [broker, database],
    recoveryIntervalMs: 0,
    recoverOnStart: false,
    phaseTwoRetry: FAST_RETRY,
  });
  const r: Rig = { fake, storage, broker, journal, tm, advance: true, claimable: true };
  fake.respond = (text) => {
    if (isAdvance(text)) return { rowCount: r.advance ? 1 : 0 };
    if (text.startsWith('DELETE') && text.includes('"metaq_offsets_recover"')) return { rowCount: r.claimable ? 1 : 0 };
    return undefined;
  };
  return r;
}

function bind(r: Rig, handler: XaTransformHandler, storage: PostgresOffsetStorage = r.storage): BoundSubscription {
  return xaTransform(r.tm, { storage }, handler)[LISTENER_BINDING].bind({ topic: 'orders', group: 'billing', offsetStorage: r.storage, log });
}

/** A handler that writes a row through the branch and "sends" (works on the fake broker branch). */
function produceHandler(r: Rig, calls: ConsumedMessage[] = []): XaTransformHandler {
  return async (m, tx, db) => {
    calls.push(m);
    await db.query('INSERT INTO invoices (order_id) VALUES ($1)', [String(m.id)]);
    const branch = await tx.enlist(r.broker);
    branch.work();
  };
}

/** Statements not on the clients that created the tables (which run first, on their own clients). */
function txTexts(r: Rig): string[] {
  const ddl = new Set(r.fake.queries.filter((q) => q.text.startsWith('CREATE TABLE')).map((q) => q.client));
  return r.fake.queries.filter((q) => !ddl.has(q.client)).map((q) => q.text);
}

/** Statements of the branch's client (the one that ran the offset step), by first word(s). */
function branchStatements(r: Rig): string[] {
  const client = r.fake.queries.find((q) => isAdvance(q.text))?.client;
  assert.ok(client !== undefined && client !== 0, 'the offset step ran on a checked-out client');
  return r.fake.queries.filter((q) => q.client === client).map((q) => (isAdvance(q.text) ? 'ADVANCE' : q.text.split(' ').slice(0, 2).join(' ')));
}

describe('xaTransform: one message in one global transaction', () => {
  it('advances the offset on the branch client, before the handler, and commits both participants in two phases', async () => {
    const r = await rig();
    const calls: ConsumedMessage[] = [];
    const bound = bind(r, produceHandler(r, calls));
    await bound.listenerFor(REF)(message({ attribute: 'a' }));
    assert.equal(calls.length, 1);
    assert.deepEqual(branchStatements(r), ['BEGIN', 'ADVANCE', 'INSERT INTO', 'INSERT INTO', 'PREPARE TRANSACTION']);
    const step = r.fake.queries.find((q) => isAdvance(q.text));
    const marker = r.fake.queries.find((q) => q.text.includes('metaq_xa_marker') && q.text.startsWith('INSERT'));
    assert.equal(marker?.client, step?.client, 'the marker row (prepare) is on the same client as the offset step');
    assert.deepEqual(step?.values, ['billing', 'orders', 3, 1, '1000', String(1000 + 20 + 4 + 1 + 5), '77'], 'from the message to the offset after it');
    // Phase two: COMMIT PREPARED of the PostgreSQL branch after the decision, and the broker's commit.
    assert.ok(r.fake.texts().some((t) => t.startsWith('COMMIT PREPARED')), 'the PostgreSQL branch committed in phase two');
    const committing = r.journal.findIndex((l) => l.startsWith('log committing'));
    assert.ok(committing > r.journal.findIndex((l) => l.includes(' prepare ')), 'decision after the prepares');
    assert.ok(r.journal.findIndex((l) => l.includes(' commitPrepared ')) > committing, 'broker committed after the decision');
    assert.equal(r.broker.committed.size, 1);
    assert.equal(r.tm.metrics().commits, 1);
    assert.equal(r.tm.metrics().inFlight, 0);
    await r.tm.close();
  });

  it('commits in one phase when the handler sends nothing (PostgreSQL is the only participant)', async () => {
    const r = await rig();
    const bound = bind(r, async (_m, _tx, db) => {
      await db.query('INSERT INTO invoices (order_id) VALUES (1)');
    });
    await bound.listenerFor(REF)(message());
    assert.deepEqual(branchStatements(r), ['BEGIN', 'ADVANCE', 'INSERT INTO', 'COMMIT']);
    assert.equal(r.tm.metrics().onePhaseCommits, 1);
    await r.tm.close();
  });

  it('skips a message at or below the stored offset inside the transaction: rolled back, handler not called, nothing sent', async () => {
    const r = await rig();
    r.advance = false;
    const calls: ConsumedMessage[] = [];
    const bound = bind(r, produceHandler(r, calls));
    await bound.listenerFor(REF)(message());
    assert.equal(calls.length, 0, 'the handler is not called');
    assert.deepEqual(branchStatements(r), ['BEGIN', 'ADVANCE', 'ROLLBACK']);
    assert.equal(r.broker.branches.length, 0, 'no broker branch begun');
    assert.equal(r.journal.filter((l) => l.startsWith('log ')).length, 0, 'nothing logged');
    assert.equal(r.tm.metrics().commits + r.tm.metrics().onePhaseCommits, 0);
    await r.tm.close();
  });

  it('a failing handler rolls back the offset step, its rows and its sends; the error reaches the consumer (which retries)', async () => {
    const r = await rig();
    const bound = bind(r, async (m, tx, db) => {
      await produceHandler(r)(m, tx, db);
      throw new Error('transform failed');
    });
    await assert.rejects(async () => bound.listenerFor(REF)(message()), /transform failed/);
    assert.deepEqual(branchStatements(r), ['BEGIN', 'ADVANCE', 'INSERT INTO', 'ROLLBACK']);
    assert.equal(r.broker.rolledBack.size, 1, 'the broker branch rolled back');
    assert.equal(r.broker.committed.size, 0);
    assert.ok(!txTexts(r).some((t) => t.startsWith('PREPARE') || t.startsWith('COMMIT')), 'nothing prepared or committed');
    // The retry: a new global transaction (new gid) that now commits.
    const retry = bind(r, produceHandler(r));
    await retry.listenerFor(REF)(message());
    assert.equal(r.broker.committed.size, 1);
    await r.tm.close();
  });

  it('a "no" vote of the other participant rolls back the prepared offset step too', async () => {
    const r = await rig();
    r.broker.script.prepare = xaFail(XaCode.XA_RBROLLBACK, 'broker said no');
    const bound = bind(r, produceHandler(r));
    await assert.rejects(async () => bound.listenerFor(REF)(message()), TransactionRolledBackError);
    const texts = txTexts(r);
    assert.ok(!texts.some((t) => t.startsWith('COMMIT')), `no commit of the offset step: ${texts.join(' | ')}`);
    assert.ok(texts.some((t) => t === 'ROLLBACK' || t.startsWith('ROLLBACK PREPARED')), 'the PostgreSQL branch rolled back');
    await r.tm.close();
  });

  it('re-delivers a recovered message in a global transaction that claims its recover-table row through the branch', async () => {
    const r = await rig();
    const calls: ConsumedMessage[] = [];
    const bound = bind(r, produceHandler(r, calls));
    await bound.recoveredListener(message({ recovered: true }));
    assert.equal(calls.length, 1);
    const claim = r.fake.queries.find((q) => q.text.startsWith('DELETE') && q.text.includes('"metaq_offsets_recover"'));
    assert.equal(claim?.client, r.fake.queries.find((q) => q.text.startsWith('PREPARE TRANSACTION'))?.client, 'the claim is prepared with the rest');
    assert.deepEqual(claim?.values, ['billing', 'orders', 1, '1000', '77']);
    assert.equal(r.broker.committed.size, 1);
    r.claimable = false; // an earlier re-delivery committed
    await bound.recoveredListener(message({ recovered: true }));
    assert.equal(calls.length, 1, 'not run twice');
    assert.equal(r.broker.branches.length, 1, 'nothing sent the second time');
    await r.tm.close();
  });

  it('checks its arguments and is exported from src/xa and the package root', async () => {
    const r = await rig();
    assert.equal(fromRoot, xaTransform);
    assert.throws(() => xaTransform(undefined as never, { storage: r.storage }, () => undefined), /tm must come from createTransactionManager/);
    assert.throws(() => xaTransform(r.tm, { storage: createLocalOffsetStorage('/tmp/x') as never }, () => undefined), InvalidArgumentError);
    assert.throws(() => xaTransform(r.tm, { storage: r.storage }, undefined as never), /handler must be a function/);
    assert.throws(() => xaTransform(r.tm, { storage: r.storage, timeoutMs: 0 }, () => undefined), /timeoutMs must be a positive integer/);
    assert.throws(() => xaTransform(r.tm, { storage: r.storage, recoverTable: 'Bad' }, () => undefined), /recoverTable "Bad" is not a valid table name/);
    const listener = xaTransform(r.tm, { storage: r.storage }, () => undefined);
    assert.equal(listener.storage, r.storage);
    assert.equal(listener.transactionManager, r.tm);
    assert.throws(() => listener(message()), (error: unknown) => error instanceof IllegalStateError && /pass it to consumer\.subscribe/.test(error.message));
    await r.tm.close();
  });

  it('refuses a manager without a PostgreSQL resource on the storage pool, and a consumer on another storage', async () => {
    const r = await rig();
    const elsewhere = createPostgresOffsetStorage({ pool: new ScriptedPgPool().pool });
    assert.throws(
      () => xaTransform(r.tm, { storage: elsewhere }, () => undefined)[LISTENER_BINDING].bind({ topic: 'orders', group: 'g', offsetStorage: elsewhere, log }),
      (error: unknown) => error instanceof IllegalStateError && /no PostgreSQL resource on the offset storage's pool/.test(error.message),
    );
    const factory = createMessageSessionFactory({ serverUrl: 'meta://127.0.0.1:1' });
    try {
      const listener = xaTransform(r.tm, { storage: r.storage }, () => undefined);
      const other = factory.createConsumer({ group: 'g1' }, elsewhere);
      assert.throws(
        () => other.subscribe('orders', { maxSize: 1024 }, listener),
        (error: unknown) => error instanceof IllegalStateError && /factory\.createConsumer\(config, storage\)/.test(error.message),
      );
      const same = factory.createConsumer({ group: 'g2' }, r.storage);
      assert.equal(same.subscribe('orders', { maxSize: 1024 }, listener), same);
    } finally {
      await factory.close();
      await r.tm.close();
    }
  });
});
