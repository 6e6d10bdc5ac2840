/**
 * The PostgreSQL offset storage without a server: table-name validation and quoting, the SQL
 * and its parameters (forward-only upserts, sorted and de-duplicated batches, exact 64-bit
 * values), row parsing, the storage's statements and life cycle on a scripted pool, and the
 * record-size arithmetic that gives the offset after a message.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClientClosedError, IllegalStateError, InvalidArgumentError } from '../../src/common/errors.js';
import { createPostgresOffsetStorage, DEFAULT_POSTGRES_OFFSETS_TABLE } from '../../src/client/index.js';
import { quoteTableName, tableNameError } from '../../src/client/offsets/pg-identifiers.js';
import { commitParameters, offsetStatements, parseOffsetRow } from '../../src/client/offsets/postgres-offset-sql.js';
import { nextOffsetOf, recordSizeOf } from '../../src/client/consumer/message-extent.js';
import { defaultRecoverTable, parseRecoverEntryName, recoverEntryName, recoverStatements } from '../../src/client/consumer/postgres-recover-sql.js';
import { encodeMessageData } from '../../src/protocol/message-data.js';
import { encodeRecord } from '../../src/protocol/record.js';
import { FakePgPool } from '../helpers/fake-pg-pool.js';

describe('PostgreSQL table names', () => {
  it('accepts lower-case identifiers, optionally schema-qualified, and quotes them', () => {
    assert.equal(tableNameError('metaq_offsets'), undefined);
    assert.equal(quoteTableName('metaq_offsets', 'x'), '"metaq_offsets"');
    assert.equal(quoteTableName('app.offsets_2', 'x'), '"app"."offsets_2"');
    assert.equal(quoteTableName('_t', 'x'), '"_t"');
    assert.equal(quoteTableName('order', 'x'), '"order"', 'reserved words work once quoted');
  });

  it('refuses anything that could change the SQL or mean another table', () => {
    for (const bad of ['', 'Offsets', 'a-b', 'a b', '1abc', 'a.b.c', 'a."b"', 'x;drop table y', 'é', '.t', 't.', 'a'.repeat(64)]) {
      assert.notEqual(tableNameError(bad), undefined, bad);
      assert.throws(() => quoteTableName(bad, 'createPostgresOffsetStorage: table'), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.match(error.message, /^createPostgresOffsetStorage: table .* is not a valid table name: /);
        return true;
      });
    }
    assert.notEqual(tableNameError(42), undefined);
    assert.equal(tableNameError('a'.repeat(63)), undefined);
  });
});

describe('offset SQL', () => {
  it('builds every statement on the quoted table, forward-only', () => {
    const sql = offsetStatements('app.offs');
    for (const text of Object.values(sql)) assert.match(text, /"app"\."offs"/);
    assert.match(sql.createTable, /^CREATE TABLE IF NOT EXISTS "app"\."offs" \(/);
    assert.match(sql.createTable, /"offset" bigint NOT NULL, msg_id bigint NOT NULL/);
    assert.match(sql.createTable, /PRIMARY KEY \(group_name, topic, broker_id, "partition"\)/);
    assert.match(sql.commit, /WHERE o\."offset" <= EXCLUDED\."offset"$/);
    assert.match(sql.advance, /WHERE o\."offset" <= \$5::bigint$/);
    assert.match(sql.init, /DO NOTHING$/);
    assert.throws(() => offsetStatements('Bad'), InvalidArgumentError);
  });

  it('turns a batch into sorted, de-duplicated array parameters with exact ids', () => {
    const params = commitParameters([
      { topic: 'b', brokerId: 1, partition: 0, offset: 10, messageId: -6402851124219904123n },
      { topic: 'a', brokerId: 2, partition: 1, offset: 20, messageId: 1n },
      { topic: 'a', brokerId: 1, partition: 5, offset: 30, messageId: 2n },
      { topic: 'a', brokerId: 2, partition: 1, offset: 15, messageId: 0n }, // same partition, behind: dropped
      { topic: 'a', brokerId: 1, partition: 2, offset: 2 ** 53 - 1, messageId: 9223372036854775807n },
    ]);
    assert.deepEqual(params, [
      ['a', 'a', 'a', 'b'],
      [1, 1, 2, 1],
      [2, 5, 1, 0],
      [String(2 ** 53 - 1), '30', '20', '10'],
      ['9223372036854775807', '2', '1', '-6402851124219904123'],
    ]);
  });

  it('refuses offsets that are not non-negative safe integers', () => {
    for (const offset of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => commitParameters([{ topic: 't', brokerId: 0, partition: 0, offset, messageId: 0n }]), IllegalStateError);
    }
  });

  it('parses rows exactly and names the row when a value is impossible', () => {
    assert.deepEqual(parseOffsetRow({ broker_id: 3, partition: 1, offset: '9007199254740991', msg_id: '-9223372036854775808' }, 't', 'offs'), {
      topic: 't',
      brokerId: 3,
      partition: 1,
      offset: 9007199254740991,
      messageId: -9223372036854775808n,
    });
    for (const offset of ['9007199254740992', '-5', 'x']) {
      assert.throws(
        () => parseOffsetRow({ broker_id: 3, partition: 1, offset, msg_id: '1' }, 't', 'offs'),
        (error: unknown) => error instanceof IllegalStateError && /offs row \(topic "t", broker 3, partition 1\)/.test(error.message) && /Fix or delete the row/.test(error.message),
      );
    }
  });
});

describe('PostgresOffsetStorage on a scripted pool', () => {
  it('validates its options', () => {
    assert.throws(() => createPostgresOffsetStorage(undefined as never), /needs \{ pool \}/);
    assert.throws(() => createPostgresOffsetStorage({ pool: {} as never }), InvalidArgumentError);
    const fake = new FakePgPool();
    assert.throws(() => createPostgresOffsetStorage({ pool: fake.pool, table: 'no-dash' }), /table "no-dash" is not a valid table name/);
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    assert.equal(storage.table, DEFAULT_POSTGRES_OFFSETS_TABLE);
    assert.equal(storage.pool, fake.pool);
  });

  it('creates the table once under an advisory lock, then one statement per commit batch', async () => {
    const fake = new FakePgPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool, table: 'offs' });
    await Promise.all([
      storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 5, messageId: 1n }]),
      storage.commit('g', [
        { topic: 't', brokerId: 0, partition: 1, offset: 6, messageId: 2n },
        { topic: 't', brokerId: 0, partition: 0, offset: 7, messageId: 3n },
      ]),
      storage.commit('g', []),
    ]);
    const texts = fake.texts();
    assert.equal(texts.filter((t) => t.startsWith('CREATE TABLE')).length, 1, 'created once');
    assert.deepEqual(texts.slice(0, 4), ['BEGIN', texts[1], texts[2], 'COMMIT']);
    assert.match(texts[1] ?? '', /pg_advisory_xact_lock/);
    const commits = fake.queries.filter((q) => q.text.startsWith('INSERT'));
    assert.equal(commits.length, 2, 'one statement per non-empty batch');
    assert.deepEqual(commits[1]?.values, ['g', ['t', 't'], [0, 0], [0, 1], ['7', '6'], ['3', '2']]);
    assert.ok(commits.every((q) => q.client === 0), 'through pool.query: no client held between statements');
    await storage.close();
  });

  it('with createTable: false it never runs DDL', async () => {
    const fake = new FakePgPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool, createTable: false });
    await storage.init('t', 'g', { brokerId: 0, partition: 0 }, 0);
    assert.deepEqual(fake.texts().map((t) => t.split(' ')[0]), ['INSERT']);
  });

  it('retries the table creation after a failure (the database may have been down)', async () => {
    const fake = new FakePgPool();
    let down = true;
    fake.respond = (text) => (down && text.startsWith('CREATE') ? new Error('connection refused') : {});
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    await assert.rejects(storage.load('t', 'g', [{ brokerId: 0, partition: 0 }]), /connection refused/);
    down = false;
    assert.deepEqual(await storage.load('t', 'g', [{ brokerId: 0, partition: 0 }]), []);
  });

  it('loads exact values and passes the partitions pairwise', async () => {
    const fake = new FakePgPool();
    fake.respond = (text) => (text.startsWith('SELECT broker_id') ? { rows: [{ broker_id: 1, partition: 2, offset: '300', msg_id: '-42' }] } : {});
    const storage = createPostgresOffsetStorage({ pool: fake.pool });
    const loaded = await storage.load('t', 'g', [
      { brokerId: 1, partition: 2 },
      { brokerId: 1, partition: 3 },
    ]);
    assert.deepEqual(loaded, [{ topic: 't', brokerId: 1, partition: 2, offset: 300, messageId: -42n }]);
    assert.deepEqual(fake.queries.at(-1)?.values, ['g', 't', [1, 1], [2, 3]]);
  });

  it('close() waits for operations in flight, then refuses new ones', async () => {
    const fake = new FakePgPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool, createTable: false });
    let finished = false;
    const commit = storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 1, messageId: 1n }]).then(() => {
      finished = true;
    });
    await storage.close();
    assert.equal(finished, true);
    await commit;
    await assert.rejects(storage.commit('g', []), ClientClosedError);
    await assert.rejects(storage.load('t', 'g', []), ClientClosedError);
  });

  it('advanceWith reports whether the row moved, and refuses a step that does not go forward', async () => {
    const fake = new FakePgPool();
    const storage = createPostgresOffsetStorage({ pool: fake.pool, createTable: false });
    const client = await fake.connect();
    fake.respond = () => ({ rowCount: 1 });
    assert.equal(await storage.advanceWith(client, 'g', { topic: 't', brokerId: 4, partition: 1, from: 100, to: 150, messageId: 7n }), true);
    assert.deepEqual(fake.queries.at(-1)?.values, ['g', 't', 4, 1, '100', '150', '7']);
    assert.equal(fake.queries.at(-1)?.client, 1, 'on the caller client');
    fake.respond = () => ({ rowCount: 0 });
    assert.equal(await storage.advanceWith(client, 'g', { topic: 't', brokerId: 4, partition: 1, from: 100, to: 150, messageId: 7n }), false);
    await assert.rejects(storage.advanceWith(client, 'g', { topic: 't', brokerId: 4, partition: 1, from: 100, to: 100, messageId: 7n }), InvalidArgumentError);
  });
});

describe('the offset after a message', () => {
  it('is the start plus the stored record size, with and without an attribute', () => {
    const cases: { data: Buffer; attribute?: string }[] = [
      { data: Buffer.from('hello') },
      { data: Buffer.alloc(0) },
      { data: Buffer.from('payload'), attribute: '' },
      { data: Buffer.from('payload'), attribute: 'ünïcode ✓' },
    ];
    for (const c of cases) {
      const { data, flag } = encodeMessageData(c.data, c.attribute);
      const record = encodeRecord({ id: 1n, flag, data });
      assert.equal(recordSizeOf(c), record.length, JSON.stringify(c.attribute));
      assert.equal(nextOffsetOf({ ...c, offset: 1000 }), 1000 + record.length);
    }
  });
});

describe('recover table SQL and entry names', () => {
  it('sits next to the offsets table by default', () => {
    assert.equal(defaultRecoverTable('metaq_offsets'), 'metaq_offsets_recover');
    assert.equal(defaultRecoverTable('app.offs'), 'app.offs_recover');
    const sql = recoverStatements('app.offs_recover');
    for (const text of Object.values(sql)) assert.match(text, /"app"\."offs_recover"/);
    assert.throws(() => recoverStatements('Bad'), /exactlyOnce: recoverTable/);
  });

  it('names entries like the local store files, sortable, and parses them back', () => {
    const key = { brokerId: 7, partition: 2, offset: 123456 };
    const name = recoverEntryName(key);
    assert.equal(name, '7-2-00000000000000123456');
    assert.deepEqual(parseRecoverEntryName(name), key);
    assert.deepEqual(parseRecoverEntryName(recoverEntryName({ brokerId: -1, partition: 0, offset: 0 })), { brokerId: -1, partition: 0, offset: 0 });
    for (const bad of ['', '7-2', '7-2-x', '7-2-1.msg', 'a-b-c']) assert.equal(parseRecoverEntryName(bad), undefined, bad);
    assert.ok(recoverEntryName({ brokerId: 1, partition: 0, offset: 99 }) < recoverEntryName({ brokerId: 1, partition: 0, offset: 100 }));
  });
});
