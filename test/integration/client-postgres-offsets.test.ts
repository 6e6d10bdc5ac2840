/**
 * The PostgreSQL offset storage and the exactly-once mode against a private PostgreSQL 15 and a
 * real broker process:
 *
 * - the storage itself: schema, exact 64-bit values, forward-only batch commits, init, commits
 *   inside a caller's transaction, concurrent use;
 * - a consumer restarted on the storage resumes at the stored offset (nothing lost or repeated);
 * - exactly-once: handlers that write a row and then fail (some once, some on every retry, so
 *   that they go through the recover table), periodic commits every few ms, a consumer closed
 *   and restarted midway: every message's row exists exactly once, the stored offsets are the
 *   ends of the partitions, and the recover table is empty;
 * - the same with the consumer in a child process SIGKILLed several times mid-stream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  createMessageSessionFactory,
  createPostgresOffsetStorage,
  exactlyOnce,
  type ConsumedMessage,
  type MessageSessionFactory,
  type SendResult,
} from '../../src/index.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { sendPipelined, waitUntil } from '../helpers/client-workload.js';
import { countRows, createRowsTable, duplicateSeqs, endOf, eoPayload, handleTestMessage, POISON_EVERY } from '../helpers/exactly-once-workload.js';
import { closeAtGate, gateAfter, type ListenerGate } from '../helpers/listener-gate.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';

const CHILD = fileURLToPath(new URL('../helpers/exactly-once-child.ts', import.meta.url));
const TOPICS = ['[topic=pg-resume]', '[topic=eo]', 'numPartitions=3', '[topic=eo-kill]', ''].join('\n');

describe('client ↔ broker ↔ PostgreSQL: offsets and exactly-once', () => {
  let pgServer: PostgresServer;
  let pool: pg.Pool;
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;

  before(async () => {
    [pgServer, broker] = await Promise.all([startPostgres({ maxConnections: 200 }), startClientTestBroker({ system: { numPartitions: 2 }, topics: TOPICS })]);
    pool = new pg.Pool({ connectionString: pgServer.connectionString, max: 20 });
    factory = createMessageSessionFactory({ serverUrl: broker.url });
  });
  after(async () => {
    await factory?.close();
    await pool?.end();
    await broker?.cleanup();
    await pgServer?.stop();
  });

  async function produce(topic: string, count: number, payload: (i: number) => string): Promise<SendResult[]> {
    const producer = factory.createProducer();
    await producer.publish(topic);
    const outcomes = await sendPipelined(producer, count, 500, (i) => ({ topic, data: payload(i) }));
    await producer.close();
    return outcomes.map((o, i) => {
      if (!o.ok) throw new Error(`send ${i} failed`, { cause: o.error });
      return o.result;
    });
  }

  /** partition → offset after the last message sent to it. */
  function endsOf(results: readonly SendResult[]): Map<number, number> {
    const ends = new Map<number, number>();
    results.forEach((r, seq) => ends.set(r.partition, Math.max(ends.get(r.partition) ?? 0, endOf(r.offset, seq))));
    return ends;
  }

  async function storedOffsets(table: string, group: string, topic: string): Promise<Map<number, number>> {
    const result = await pool.query<{ partition: number; offset: string }>(`SELECT "partition", "offset" FROM ${table} WHERE group_name = $1 AND topic = $2`, [group, topic]);
    return new Map(result.rows.map((r) => [r.partition, Number(r.offset)]));
  }

  describe('PostgresOffsetStorage', () => {
    it('creates the table with BIGINT columns and stores exact 64-bit ids', async () => {
      const storage = createPostgresOffsetStorage({ pool, table: 'unit_offsets' });
      const big = -6402851124219904123n;
      await storage.commit('g1', [
        { topic: 't', brokerId: 7, partition: 1, offset: 2 ** 40, messageId: big },
        { topic: 't', brokerId: 7, partition: 0, offset: 12, messageId: 9223372036854775807n },
      ]);
      const loaded = await storage.load('t', 'g1', [
        { brokerId: 7, partition: 0 },
        { brokerId: 7, partition: 1 },
        { brokerId: 7, partition: 2 },
      ]);
      assert.deepEqual(
        loaded.sort((a, b) => a.partition - b.partition),
        [
          { topic: 't', brokerId: 7, partition: 0, offset: 12, messageId: 9223372036854775807n },
          { topic: 't', brokerId: 7, partition: 1, offset: 2 ** 40, messageId: big },
        ],
      );
      const columns = await pool.query<{ column_name: string; data_type: string }>(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'unit_offsets' ORDER BY ordinal_position",
      );
      assert.deepEqual(
        columns.rows.map((c) => `${c.column_name}:${c.data_type}`),
        ['group_name:text', 'topic:text', 'broker_id:integer', 'partition:integer', 'offset:bigint', 'msg_id:bigint', 'updated_at:timestamp with time zone'],
      );
      assert.deepEqual(await storage.load('t', 'other-group', [{ brokerId: 7, partition: 0 }]), []);
      await storage.close();
    });

    it('commits are forward-only; init keeps an existing row; groups and topics are separate', async () => {
      const storage = createPostgresOffsetStorage({ pool, table: 'unit_offsets' });
      const p = { brokerId: 1, partition: 0 };
      await storage.init('fw', 'g', p, 100);
      await storage.init('fw', 'g', p, 5); // ignored: the row exists
      assert.deepEqual(await storage.load('fw', 'g', [p]), [{ topic: 'fw', ...p, offset: 100, messageId: -1n }]);
      await storage.commit('g', [{ topic: 'fw', ...p, offset: 300, messageId: 3n }]);
      await storage.commit('g', [{ topic: 'fw', ...p, offset: 200, messageId: 2n }]); // stale: ignored
      assert.deepEqual(await storage.load('fw', 'g', [p]), [{ topic: 'fw', ...p, offset: 300, messageId: 3n }]);
      // One batch may name a partition twice: the furthest offset wins.
      await storage.commit('g', [
        { topic: 'fw', ...p, offset: 500, messageId: 5n },
        { topic: 'fw', ...p, offset: 400, messageId: 4n },
        { topic: 'fw2', ...p, offset: 7, messageId: 1n },
      ]);
      assert.equal((await storage.load('fw', 'g', [p]))[0]?.offset, 500);
      assert.equal((await storage.load('fw2', 'g', [p]))[0]?.offset, 7);
      assert.deepEqual(await storage.load('fw', 'g2', [p]), []);
      await storage.close();
    });

    it('commitWith and advanceWith take part in the caller transaction', async () => {
      const storage = createPostgresOffsetStorage({ pool, table: 'unit_offsets' });
      const p = { brokerId: 1, partition: 3 };
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await storage.commitWith(client, 'tx', [{ topic: 'tx', ...p, offset: 50, messageId: 1n }]);
        await client.query('ROLLBACK');
        assert.deepEqual(await storage.load('tx', 'tx', [p]), [], 'rolled back with the transaction');
        await client.query('BEGIN');
        assert.equal(await storage.advanceWith(client, 'tx', { topic: 'tx', ...p, from: 0, to: 60, messageId: 2n }), true);
        await client.query('COMMIT');
        assert.equal((await storage.load('tx', 'tx', [p]))[0]?.offset, 60);
        await client.query('BEGIN');
        assert.equal(await storage.advanceWith(client, 'tx', { topic: 'tx', ...p, from: 30, to: 60, messageId: 2n }), false, 'already past 30');
        assert.equal(await storage.advanceWith(client, 'tx', { topic: 'tx', ...p, from: 60, to: 90, messageId: 3n }), true);
        await client.query('COMMIT');
        assert.equal((await storage.load('tx', 'tx', [p]))[0]?.offset, 90);
      } finally {
        client.release();
      }
      await storage.close();
    });

    it('concurrent advances of one partition run one after the other: one wins', async () => {
      const storage = createPostgresOffsetStorage({ pool, table: 'unit_offsets' });
      const p = { brokerId: 1, partition: 4 };
      await storage.init('race', 'g', p, 0);
      const attempt = async (): Promise<boolean> => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const won = await storage.advanceWith(client, 'g', { topic: 'race', ...p, from: 0, to: 10, messageId: 1n });
          await new Promise((resolve) => setTimeout(resolve, 20)); // hold the row lock a while
          await client.query('COMMIT');
          return won;
        } finally {
          client.release();
        }
      };
      const outcomes = await Promise.all(Array.from({ length: 8 }, attempt));
      assert.equal(outcomes.filter(Boolean).length, 1);
      await storage.close();
    });

    it('survives many concurrent batch commits (no deadlock, the furthest offset stays)', async () => {
      const storage = createPostgresOffsetStorage({ pool, table: 'unit_offsets' });
      const partitions = [0, 1, 2, 3, 4, 5];
      const batches = Array.from({ length: 40 }, (_, k) =>
        // Each batch lists the partitions in another order, to provoke lock-order deadlocks.
        [...partitions].sort(() => Math.random() - 0.5).map((partition) => ({ topic: 'many', brokerId: 2, partition, offset: 1000 + k, messageId: BigInt(k) })),
      );
      await Promise.all(batches.map((batch) => storage.commit('g', batch)));
      const loaded = await storage.load('many', 'g', partitions.map((partition) => ({ brokerId: 2, partition })));
      assert.equal(loaded.length, partitions.length);
      assert.ok(loaded.every((o) => o.offset === 1039 && o.messageId === 39n));
      await storage.close();
    });

    it('creates its table in a schema, concurrently from several storages', async () => {
      await pool.query('CREATE SCHEMA IF NOT EXISTS app');
      const storages = Array.from({ length: 5 }, () => createPostgresOffsetStorage({ pool, table: 'app.offsets' }));
      await Promise.all(storages.map((s, i) => s.commit('g', [{ topic: 's', brokerId: 0, partition: i, offset: i, messageId: -1n }])));
      const count = await pool.query<{ n: string }>('SELECT count(*) AS n FROM app.offsets');
      assert.equal(Number(count.rows[0]?.n), 5);
      await Promise.all(storages.map((s) => s.close()));
    });
  });

  it('a consumer restarted on the PostgreSQL storage resumes at the stored offset (no loss, no duplicate)', async () => {
    const N = 600;
    const results = await produce('pg-resume', N, eoPayload);
    const config = { group: 'pg-resumers', maxDelayFetchTimeInMills: 100, commitOffsetPeriodInMills: 50 };
    const key = (m: ConsumedMessage): string => `${m.partition}:${m.offset}`;

    const first: ConsumedMessage[] = [];
    const s1 = createPostgresOffsetStorage({ pool, table: 'resume_offsets' });
    const c1 = factory.createConsumer(config, s1);
    const gate = gateAfter(200);
    c1.subscribe('pg-resume', { maxSize: 8 * 1024 }, async (m) => {
      await gate.pass();
      first.push(m);
    });
    await c1.completeSubscribe();
    await waitUntil(() => gate.reached(), 'some messages');
    await closeAtGate(c1, gate);
    await s1.close();
    assert.ok(first.length < N, 'stopped before the end');
    const stored = await storedOffsets('resume_offsets', 'pg-resumers', 'pg-resume');
    for (const [partition, offset] of stored) {
      const consumed = first.filter((m) => m.partition === partition);
      const last = consumed[consumed.length - 1];
      assert.equal(offset, last === undefined ? 0 : endOf(last.offset, results.findIndex((r) => r.partition === partition && r.offset === last.offset)));
    }

    const second: ConsumedMessage[] = [];
    const s2 = createPostgresOffsetStorage({ pool, table: 'resume_offsets' });
    const c2 = factory.createConsumer(config, s2);
    c2.subscribe('pg-resume', { maxSize: 8 * 1024 }, (m) => void second.push(m));
    await c2.completeSubscribe();
    await waitUntil(() => first.length + second.length >= N, 'the rest');
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing extra arrives
    await c2.close();
    await s2.close();
    const firstKeys = new Set(first.map(key));
    assert.equal(first.length + second.length, N);
    assert.ok(second.every((m) => !firstKeys.has(key(m))), 'nothing repeated after the restart');
    assert.deepEqual(await storedOffsets('resume_offsets', 'pg-resumers', 'pg-resume'), endsOf(results));
  });

  it('exactly-once: failing handlers, the recover table and a restart midway leave every row exactly once', async () => {
    const N = 800;
    const results = await produce('eo', N, eoPayload);
    await createRowsTable(pool, 'eo_rows');
    const config = {
      group: 'eo-group',
      maxFetchRetries: 2,
      maxDelayFetchTimeInMills: 50,
      // Periodic commits race with the transactions all the time: they must never move an offset back.
      commitOffsetPeriodInMills: 5,
      recoverMessageIntervalInMills: 200,
    };
    const attempts = new Map<number, number>();
    const run = async (until: () => Promise<boolean>, what: string, gate?: ListenerGate): Promise<void> => {
      const storage = createPostgresOffsetStorage({ pool, table: 'eo_offsets' });
      const consumer = factory.createConsumer(config, storage);
      consumer.subscribe(
        'eo',
        { maxSize: 8 * 1024 },
        exactlyOnce(storage, async (m, db) => {
          await gate?.pass();
          await handleTestMessage(m, db, 'eo_rows', attempts);
        }),
      );
      await consumer.completeSubscribe();
      const started = Date.now();
      while (!(await until())) {
        if (Date.now() - started > 60_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (gate === undefined) await consumer.close();
      else await closeAtGate(consumer, gate);
      await storage.close();
    };
    const midwayGate = gateAfter(300);
    await run(async () => midwayGate.reached(), '300 handler calls', midwayGate);
    const midway = await countRows(pool, 'eo_rows');
    assert.ok(midway.distinct < N, 'stopped before the end');
    assert.equal(midway.rows, midway.distinct, 'no duplicate before the restart');
    const recoverCount = async (): Promise<number> => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM eo_offsets_recover')).rows[0]?.n);
    await run(async () => (await countRows(pool, 'eo_rows')).distinct >= N && (await recoverCount()) === 0, 'every row');

    assert.deepEqual(await duplicateSeqs(pool, 'eo_rows'), []);
    assert.deepEqual(await countRows(pool, 'eo_rows'), { rows: N, distinct: N });
    assert.deepEqual(await storedOffsets('eo_offsets', 'eo-group', 'eo'), endsOf(results));
    const recovered = await pool.query<{ seq: number }>('SELECT seq FROM eo_rows WHERE recovered ORDER BY seq');
    assert.deepEqual(
      recovered.rows.map((r) => r.seq),
      Array.from({ length: N }, (_, seq) => seq).filter((seq) => seq % POISON_EVERY === 0),
      'exactly the poison messages went through the recover table',
    );
  });

  it('exactly-once across SIGKILLs of the consumer process: every row exactly once', async () => {
    const N = 3000;
    const results = await produce('eo-kill', N, eoPayload);
    await createRowsTable(pool, 'kill_rows');
    const args = [broker.url, pgServer.connectionString, 'eo-kill', 'kill-group', 'kill_offsets', 'kill_rows'];
    const spawnChild = async (): Promise<{ kill: (signal: NodeJS.Signals) => Promise<NodeJS.Signals | number | null> }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      const lines = createInterface({ input: child.stdout });
      await new Promise<void>((resolve, reject) => {
        lines.on('line', (line) => {
          if (line === 'ready') resolve();
        });
        void exited.then((code) => reject(new Error(`exactly-once child exited (${String(code)}) before it was ready`)));
      });
      return {
        kill: async (signal) => {
          child.kill(signal);
          return exited;
        },
      };
    };

    let kills = 0;
    for (let round = 0; round < 5; round++) {
      const before = (await countRows(pool, 'kill_rows')).distinct;
      if (before >= N) break;
      const child = await spawnChild();
      // Let it make some progress, then kill it at a random moment (mid-transaction, often).
      const target = Math.min(N, before + 150 + Math.floor(Math.random() * 400));
      const started = Date.now();
      while ((await countRows(pool, 'kill_rows')).distinct < target && Date.now() - started < 60_000) {
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 20)));
      }
      assert.equal(await child.kill('SIGKILL'), 'SIGKILL');
      kills += 1;
      const now = await countRows(pool, 'kill_rows');
      assert.equal(now.rows, now.distinct, `no duplicate after kill ${kills}: ${JSON.stringify(await duplicateSeqs(pool, 'kill_rows'))}`);
      assert.ok(now.distinct > before && now.distinct < N, `kill ${kills} landed mid-stream (${before} → ${now.distinct} of ${N})`);
    }
    assert.ok(kills >= 3, 'the consumer was killed several times midway');

    // A last, undisturbed run to the end, stopped gracefully.
    const child = await spawnChild();
    const recoverCount = async (): Promise<number> => Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM kill_offsets_recover')).rows[0]?.n);
    const started = Date.now();
    while ((await countRows(pool, 'kill_rows')).distinct < N || (await recoverCount()) > 0) {
      if (Date.now() - started > 120_000) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await child.kill('SIGTERM'), 0);

    assert.deepEqual(await duplicateSeqs(pool, 'kill_rows'), []);
    assert.deepEqual(await countRows(pool, 'kill_rows'), { rows: N, distinct: N });
    assert.equal(await recoverCount(), 0);
    assert.deepEqual(await storedOffsets('kill_offsets', 'kill-group', 'eo-kill'), endsOf(results));
  });
});
