/**
 * The exactly-once mode without a server: the transaction wrapper (BEGIN / work / COMMIT,
 * ROLLBACK on error, a COMMIT the server turned into a rollback, broken clients discarded), the
 * statement order of one message (offset step, then handler, on one client), skipping a message
 * already consumed, re-deliveries that claim their recover-table row, argument checks, and the
 * consumer refusing an exactly-once listener on another offset storage.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IllegalStateError, InvalidArgumentError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import {
  createLocalOffsetStorage,
  createMessageSessionFactory,
  createPostgresOffsetStorage,
  exactlyOnce,
  type ConsumedMessage,
  type PostgresOffsetStorage,
} from '../../src/client/index.js';
import { LISTENER_BINDING, listenerBinding, type BoundSubscription } from '../../src/client/consumer/listener-binding.js';
import { beginStatement, inTransaction } from '../../src/client/offsets/pg-transaction.js';
import { FakePgPool } from '../helpers/fake-pg-pool.js';

const log = componentLogger('test');

function message(overrides: Partial<ConsumedMessage> = {}): ConsumedMessage {
  return { id: 77n, topic: 'orders', partition: 1, offset: 1000, data: Buffer.from('hello'), flag: 0, recovered: false, ...overrides };
}

function bind(storage: PostgresOffsetStorage, handler: Parameters<typeof exactlyOnce>[1]): BoundSubscription {
  const listener = exactlyOnce(storage, handler);
  return listener[LISTENER_BINDING].bind({ topic: 'orders', group: 'billing', offsetStorage: storage, log });
}

/** A pool whose tables exist (no DDL in the statement lists) and whose offset step succeeds unless told otherwise. */
function scriptedPool(advanced = true): FakePgPool {
  const fake = new FakePgPool();
  fake.respond = (text) => {
    if (text.startsWith('INSERT') && text.includes('$5::bigint')) return { rowCount: advanced ? 1 : 0 };
    return {};
  };
  return fake;
}

/** The statements after table creation (which runs on its own clients first). */
function workStatements(fake: FakePgPool): { client: number; text: string }[] {
  const ddlClients = new Set(fake.queries.filter((q) => q.text.startsWith('CREATE TABLE')).map((q) => q.client));
  return fake.queries.filter((q) => !ddlClients.has(q.client)).map((q) => ({ client: q.client, text: q.text.split(' ')[0] ?? '' }));
}

describe('inTransaction', () => {
  it('BEGIN, work, COMMIT on one client, released cleanly', async () => {
    const fake = new FakePgPool();
    const result = await inTransaction(fake.pool, async (client) => {
      await client.query('SELECT 1');
      return 42;
    });
    assert.equal(result, 42);
    assert.deepEqual(fake.texts(), ['BEGIN', 'SELECT 1', 'COMMIT']);
    assert.deepEqual(fake.releases, [{ client: 1, arg: undefined }]);
    assert.equal(fake.clients[0]?.listenerCount('error'), 0, 'its error listener is removed');
  });

  it('rolls back and rethrows what the work threw; the client stays usable', async () => {
    const fake = new FakePgPool();
    await assert.rejects(
      inTransaction(fake.pool, async () => {
        throw new Error('handler failed');
      }),
      /handler failed/,
    );
    assert.deepEqual(fake.texts(), ['BEGIN', 'ROLLBACK']);
    assert.deepEqual(fake.releases, [{ client: 1, arg: undefined }]);
  });

  it('discards a client whose BEGIN, ROLLBACK or COMMIT failed', async () => {
    for (const failing of ['BEGIN', 'ROLLBACK', 'COMMIT']) {
      const fake = new FakePgPool();
      const broken = new Error(`${failing}: connection terminated`);
      fake.respond = (text) => (text === failing ? broken : {});
      await assert.rejects(
        inTransaction(fake.pool, async () => {
          if (failing === 'ROLLBACK') throw new Error('handler failed');
        }),
        failing === 'ROLLBACK' ? /handler failed/ : /connection terminated/,
      );
      assert.deepEqual(fake.releases, [{ client: 1, arg: broken }], failing);
    }
  });

  it('treats a COMMIT that the server answered with ROLLBACK as a failure', async () => {
    const fake = new FakePgPool();
    fake.respond = (text) => (text === 'COMMIT' ? { command: 'ROLLBACK' } : {});
    await assert.rejects(
      inTransaction(fake.pool, async () => undefined),
      (error: unknown) => error instanceof IllegalStateError && /rolled the transaction back at COMMIT/.test(error.message),
    );
  });

  it('discards a client that emitted an error while checked out', async () => {
    const fake = new FakePgPool();
    const dead = new Error('terminating connection due to administrator command');
    await inTransaction(fake.pool, async () => {
      fake.clients[0]?.emit('error', dead);
    }).catch(() => undefined);
    assert.equal(fake.releases[0]?.arg, dead);
  });

  it('sets the isolation level', () => {
    assert.equal(beginStatement(undefined), 'BEGIN');
    assert.equal(beginStatement('serializable'), 'BEGIN ISOLATION LEVEL SERIALIZABLE');
    assert.equal(beginStatement('repeatable read'), 'BEGIN ISOLATION LEVEL REPEATABLE READ');
  });
});

describe('exactlyOnce', () => {
  it('runs the offset step, then the handler, on the client of one transaction', async () => {
    const fake = scriptedPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool, table: 'offs' });
    const seen: unknown[] = [];
    const bound = bind(storage, async (m, db) => {
      seen.push(m.offset);
      await db.query('INSERT INTO app_rows VALUES ($1)', [m.offset]);
    });
    await bound.listenerFor({ brokerId: 3, brokerUrl: 'meta://h:1', partition: 1 })(message());
    assert.deepEqual(seen, [1000]);
    const work = workStatements(fake);
    assert.deepEqual(
      work.map((q) => q.text),
      ['BEGIN', 'INSERT', 'INSERT', 'COMMIT'],
    );
    assert.equal(new Set(work.map((q) => q.client)).size, 1, 'one client');
    const step = fake.queries.find((q) => q.text.includes('$5::bigint'));
    // group, topic, broker, partition, from, to (1000 + 20-byte header + 5 bytes), id
    assert.deepEqual(step?.values, ['billing', 'orders', 3, 1, '1000', '1025', '77']);
  });

  it('skips a message whose offset step finds the row already past it (no handler call)', async () => {
    const fake = scriptedPool(false);
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    let calls = 0;
    const bound = bind(storage, () => {
      calls += 1;
    });
    await bound.listenerFor({ brokerId: 0, brokerUrl: 'meta://h:1', partition: 1 })(message());
    assert.equal(calls, 0);
    assert.deepEqual(
      workStatements(fake).map((q) => q.text),
      ['BEGIN', 'INSERT', 'COMMIT'],
    );
  });

  it('rolls back and rethrows when the handler fails, so that the consumer retries', async () => {
    const fake = scriptedPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    const bound = bind(storage, () => {
      throw new Error('not now');
    });
    await assert.rejects(async () => bound.listenerFor({ brokerId: 0, brokerUrl: 'meta://h:1', partition: 1 })(message()), /not now/);
    assert.deepEqual(
      workStatements(fake).map((q) => q.text),
      ['BEGIN', 'INSERT', 'ROLLBACK'],
    );
  });

  it('re-delivers a recovered message in the transaction that deletes its recover-table row', async () => {
    const fake = new FakePgPool();
    let rowThere = true;
    fake.respond = (text) => (text.startsWith('DELETE') ? { rowCount: rowThere ? 1 : 0 } : {});
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    let calls = 0;
    const bound = bind(storage, () => {
      calls += 1;
    });
    await bound.recoveredListener(message({ recovered: true }));
    assert.equal(calls, 1);
    const claim = fake.queries.find((q) => q.text.startsWith('DELETE'));
    assert.match(claim?.text ?? '', /"metaq_offsets_recover"/);
    assert.deepEqual(claim?.values, ['billing', 'orders', 1, '1000', '77']);
    rowThere = false; // re-delivered already (an earlier round committed)
    await bound.recoveredListener(message({ recovered: true }));
    assert.equal(calls, 1, 'not run twice');
  });

  it('keeps a failed message in the recover table in one transaction with the offset step', async () => {
    const fake = scriptedPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    const bound = bind(storage, () => undefined);
    await bound.recoverStore.save(5, message({ attribute: 'a' }));
    const work = workStatements(fake);
    assert.deepEqual(
      work.map((q) => q.text),
      ['BEGIN', 'INSERT', 'INSERT', 'COMMIT'],
    );
    const [step, insert] = fake.queries.filter((q) => q.text.startsWith('INSERT'));
    assert.deepEqual(step?.values, ['billing', 'orders', 5, 1, '1000', String(1000 + 20 + 4 + 1 + 5), '77']);
    assert.match(insert?.text ?? '', /"metaq_offsets_recover"/);
    assert.equal(insert?.values?.[6], 1, 'flag with the attribute bit');
    assert.deepEqual(insert?.values?.[7], Buffer.from([0, 0, 0, 1, 0x61, ...Buffer.from('hello')]));
  });

  it('reads recover-table entries back as recovered messages', async () => {
    const fake = new FakePgPool();
    fake.respond = (text) => {
      if (text.startsWith('SELECT broker_id')) return { rows: [{ broker_id: 5, partition: 1, offset: '1000' }] };
      if (text.startsWith('SELECT msg_id')) return { rows: [{ msg_id: '77', flag: 1, data: Buffer.from([0, 0, 0, 1, 0x61, 0x68, 0x69]) }] };
      return {};
    };
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    const { recoverStore } = bind(storage, () => undefined);
    const names = await recoverStore.names();
    assert.deepEqual(names, ['5-1-00000000000000001000']);
    const stored = await recoverStore.read(names[0] ?? '');
    assert.deepEqual(stored, {
      name: '5-1-00000000000000001000',
      brokerId: 5,
      message: { id: 77n, topic: 'orders', partition: 1, offset: 1000, data: Buffer.from('hi'), attribute: 'a', flag: 1, recovered: true },
    });
    assert.equal(await recoverStore.read('not-a-name'), undefined);
  });

  it('checks its arguments', () => {
    const storage = createPostgresOffsetStorage({ pool: new FakePgPool().pool });
    assert.throws(() => exactlyOnce(createLocalOffsetStorage('/tmp/x') as never, () => undefined), InvalidArgumentError);
    assert.throws(() => exactlyOnce(storage, undefined as never), /handler must be a function/);
    assert.throws(() => exactlyOnce(storage, () => undefined, { isolationLevel: 'chaos' as never }), /isolationLevel "chaos" must be one of/);
    assert.throws(() => exactlyOnce(storage, () => undefined, { recoverTable: 'Bad' }), /recoverTable "Bad" is not a valid table name/);
    const listener = exactlyOnce(storage, () => undefined);
    assert.equal(listener.storage, storage);
    assert.ok(listenerBinding(listener) !== undefined);
    assert.equal(listenerBinding(() => undefined), undefined, 'plain listeners have no binding');
    assert.throws(() => listener(message()), (error: unknown) => error instanceof IllegalStateError && /pass it to consumer\.subscribe/.test(error.message));
  });

  it('is refused by a consumer created with another offset storage, accepted with the same one', async () => {
    const factory = createMessageSessionFactory({ serverUrl: 'meta://127.0.0.1:1' });
    try {
      const storage = createPostgresOffsetStorage({ pool: new FakePgPool().pool });
      const listener = exactlyOnce(storage, () => undefined);
      const other = factory.createConsumer({ group: 'g1' }, createPostgresOffsetStorage({ pool: new FakePgPool().pool }));
      assert.throws(
        () => other.subscribe('orders', { maxSize: 1024 }, listener),
        (error: unknown) => error instanceof IllegalStateError && /factory\.createConsumer\(config, storage\)/.test(error.message),
      );
      const same = factory.createConsumer({ group: 'g2' }, storage);
      assert.equal(same.subscribe('orders', { maxSize: 1024 }, listener), same);
    } finally {
      await factory.close();
    }
  });
});
