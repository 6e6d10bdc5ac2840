/**
 * Consume-transform-produce in one XA transaction (`xaTransform`, docs/xa.md) end to end: a real
 * broker process, a private PostgreSQL 15 with prepared transactions, and the loop in a worker
 * child process (test/helpers/xa-ctp-worker.ts) that, for each input message, inserts one row,
 * sends one output message and advances the consumer's offset in one global transaction — some
 * handlers failing after their writes and sends (retried; poison messages through the recover
 * table).
 *
 * The worker is killed again and again, and restarted with the same node name, coordinator log
 * and consumer group:
 * - SIGKILLed by the test at random moments (mid-transaction, often);
 * - SIGKILLed by itself at each named crash point of the manager (`METAQ_XA_CRASH_POINT`):
 *   between the prepares, before and after the commit decision, between the two commits, before
 *   END. After the points where the PostgreSQL branch stays prepared with a commit decision, the
 *   next run loads its offsets *before* recovery commits that branch, so the message comes again
 *   and must be recognised inside the transaction (the stored offset is past it) and skipped.
 *
 * Verdict, message by message: every input has exactly one row and exactly one output message;
 * no output without its row and no row without its output; no duplicate ever, also between kills;
 * the stored offsets are the ends of the input partitions; the recover table is empty; nothing
 * stays prepared in PostgreSQL or on the broker.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { createMessageSessionFactory, XA_CRASH_POINTS, type MessageSessionFactory, type SendResult, type XaCrashPoint } from '../../src/index.js';
import { sendPipelined } from '../helpers/client-workload.js';
import { endOf, eoPayload } from '../helpers/exactly-once-workload.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { readAll } from '../helpers/tx-wire.js';
import { brokerBranchesOf, preparedGidsOf } from '../helpers/xa-agreement.js';
import { CtpWorker, killAllCtpWorkers } from '../helpers/xa-ctp-process.js';
import { CTP_POISON_EVERY, rowsTableDdl, seqOfOutput, SKIPPED_LOG, type CtpWorkerConfig } from '../helpers/xa-ctp-protocol.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';

const N = 600;
const INPUT = 'test'; // 2 partitions (tx-wire TX_TOPICS)
const OUTPUT = 'orders'; // 3 partitions
const NODE = 'ctp-node';
const UNIQUE_QUALIFIER = 'xa-ctp-node';
const GROUP = 'ctp-group';
const OFFSETS = 'ctp_offsets';
const ROWS = 'ctp_rows';

/** Crash points after which the PostgreSQL branch stays prepared although the decision was commit. */
const DECIDED_PG_PREPARED: readonly XaCrashPoint[] = ['xa.after-committing', 'xa.after-first-commit'];

type Step = { readonly kind: 'random' } | { readonly kind: 'crash'; readonly point: XaCrashPoint };

/** Random kills between the crash points; after the decided points a random run (it must skip). */
const PLAN: readonly Step[] = [
  { kind: 'random' },
  ...XA_CRASH_POINTS.flatMap((point, i): Step[] => (DECIDED_PG_PREPARED.includes(point) || i % 2 === 1 ? [{ kind: 'crash', point }, { kind: 'random' }] : [{ kind: 'crash', point }])),
];

describe('XA consume-transform-produce: a worker SIGKILLed at random and at every crash point (real processes)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let brokerUrl: string;
  let pool: pg.Pool;
  let factory: MessageSessionFactory;
  let inputs: SendResult[];

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-ctp-', 'xa_orders', { maxPreparedTransactions: 16 }));
    await pool.query(rowsTableDdl(ROWS));
    factory = createMessageSessionFactory({ serverUrl: brokerUrl });
    const producer = factory.createProducer();
    await producer.publish(INPUT);
    const outcomes = await sendPipelined(producer, N, 200, (seq) => ({ topic: INPUT, data: eoPayload(seq) }));
    inputs = outcomes.map((o, seq) => {
      if (!o.ok) throw new Error(`input ${seq} not sent`, { cause: o.error });
      return o.result;
    });
    await producer.close();
  });

  after(async () => {
    await killAllCtpWorkers();
    await factory?.close();
    await stopXaRig({ root, pgServer, home, pool });
  });

  function config(recoverAfterSubscribe: boolean): CtpWorkerConfig {
    return {
      brokerUrl,
      databaseUrl: pgServer.connectionString,
      logDir: join(root.path, 'ctp-log'),
      nodeName: NODE,
      uniqueQualifier: UNIQUE_QUALIFIER,
      group: GROUP,
      input: INPUT,
      output: OUTPUT,
      outputPartitions: 3,
      offsetsTable: OFFSETS,
      rowsTable: ROWS,
      recoverAfterSubscribe,
      orphanSafetyIntervalMs: 500,
      recoveryIntervalMs: 250,
    };
  }

  /** seq → number of rows. */
  async function rowCounts(): Promise<Map<number, number>> {
    const result = await pool.query<{ seq: number; n: string }>(`SELECT seq, count(*) AS n FROM ${ROWS} GROUP BY seq`);
    return new Map(result.rows.map((r) => [r.seq, Number(r.n)]));
  }

  async function distinctRows(): Promise<number> {
    const result = await pool.query<{ n: string }>(`SELECT count(DISTINCT seq) AS n FROM ${ROWS}`);
    return Number(result.rows[0]?.n ?? 0);
  }

  /** seq → number of committed output messages (every partition of the output topic). */
  async function outputCounts(): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (const stored of await readAll(broker.port)) {
      if (stored.topic !== OUTPUT) continue;
      const seq = seqOfOutput(stored.tag);
      assert.ok(seq !== undefined, `unexpected message on ${OUTPUT}: ${stored.tag}`);
      counts.set(seq, (counts.get(seq) ?? 0) + 1);
    }
    return counts;
  }

  async function recoverTableCount(): Promise<number> {
    const result = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${OFFSETS}_recover`);
    return Number(result.rows[0]?.n ?? 0);
  }

  async function storedOffsets(): Promise<Map<number, number>> {
    const result = await pool.query<{ partition: number; offset: string }>(`SELECT "partition", "offset" FROM ${OFFSETS} WHERE group_name = $1 AND topic = $2`, [GROUP, INPUT]);
    return new Map(result.rows.map((r) => [r.partition, Number(r.offset)]));
  }

  function duplicates(counts: ReadonlyMap<number, number>): string[] {
    return [...counts].filter(([, n]) => n > 1).map(([seq, n]) => `${seq}×${n}`);
  }

  /** No input has taken effect twice (rows or outputs), whatever the moment. */
  async function assertNoDuplicate(context: string): Promise<void> {
    assert.deepEqual(duplicates(await rowCounts()), [], `${context}: inputs with more than one row`);
    assert.deepEqual(duplicates(await outputCounts()), [], `${context}: inputs with more than one output message`);
  }

  it('every input ends with exactly one row and exactly one output message, and the offsets at the end of the input', async (t) => {
    const started = Date.now();
    const workers: CtpWorker[] = [];
    let kills = 0;
    let randomKills = 0;
    let crashKills = 0;
    let previous: Step | undefined;
    let lastRandom: CtpWorker | undefined;

    for (const step of PLAN) {
      const before = await distinctRows();
      assert.ok(before < N, `still mid-stream before kill ${kills + 1} (${before} of ${N})`);
      // After a decided crash that left the PostgreSQL branch prepared, load the offsets before recovery runs.
      const lateRecovery = previous?.kind === 'crash' && DECIDED_PG_PREPARED.includes(previous.point);
      if (step.kind === 'crash') {
        const worker = new CtpWorker(config(false), step.point);
        workers.push(worker);
        const exit = await worker.waitForExit(30_000);
        assert.equal(exit.signal, 'SIGKILL', `the worker must kill itself at ${step.point}\n${worker.describe()}`);
        assert.match(worker.stderr(), new RegExp(`XA crash point ${step.point.replaceAll('.', '\\.')} reached`), worker.describe());
        if (DECIDED_PG_PREPARED.includes(step.point) || step.point === 'xa.after-prepare') {
          assert.ok((await preparedGidsOf(pool, NODE)).length >= 1, `${step.point} leaves the PostgreSQL branch prepared`);
        }
        crashKills += 1;
      } else {
        const worker = new CtpWorker(config(lateRecovery));
        workers.push(worker);
        await worker.ready;
        const target = Math.min(N - 1, before + 25 + Math.floor(Math.random() * 50));
        const deadline = Date.now() + 20_000;
        // After a decided crash, the kill waits for the skip of the message that comes again as
        // well: the other partitions alone can reach the target first (a flaky message's retry
        // can hold that partition back), and a kill before the skip checks nothing.
        const skipPending = (): boolean => lateRecovery && !worker.stderr().includes(SKIPPED_LOG);
        while ((await distinctRows()) < target || skipPending()) {
          assert.ok(
            Date.now() < deadline,
            `no progress to ${target} rows (from ${before})${skipPending() ? ', or no skip of the message decided before the crash' : ''}\n${worker.describe()}`,
          );
          await sleep(3 + Math.floor(Math.random() * 15));
        }
        await sleep(Math.floor(Math.random() * 20)); // land anywhere in a transaction
        worker.kill('SIGKILL');
        const exit = await worker.waitForExit(10_000);
        assert.equal(exit.signal, 'SIGKILL', worker.describe());
        randomKills += 1;
        lastRandom = worker;
      }
      kills += 1;
      await assertNoDuplicate(`after kill ${kills} (${step.kind === 'crash' ? step.point : 'random'})`);
      if (lateRecovery) {
        const point = previous?.kind === 'crash' ? previous.point : '?';
        assert.ok(lastRandom?.stderr().includes(SKIPPED_LOG), `after ${point}, the message decided before the crash came again and was skipped inside its transaction\n${lastRandom?.describe() ?? ''}`);
      }
      previous = step;
      const now = await distinctRows();
      assert.ok(now < N, `kill ${kills} landed mid-stream (${now} of ${N})`);
    }
    const killedAt = await distinctRows();

    // A last run, undisturbed, to the end; then a graceful stop.
    const last = new CtpWorker(config(false));
    workers.push(last);
    await last.ready;
    const deadline = Date.now() + 40_000;
    for (;;) {
      const outputs = await outputCounts();
      const done = (await distinctRows()) === N && outputs.size === N && (await recoverTableCount()) === 0 && (await preparedGidsOf(pool, NODE)).length === 0;
      if (done) break;
      assert.ok(Date.now() < deadline, `the last run did not finish: ${await distinctRows()} rows, ${outputs.size} outputs, ${await recoverTableCount()} in the recover table\n${last.describe()}`);
      await sleep(100);
    }
    last.kill('SIGTERM');
    const exit = await last.waitForExit(30_000);
    assert.equal(exit.code, 0, last.describe());

    // The verdict, message by message.
    const rows = await rowCounts();
    const outputs = await outputCounts();
    const all = Array.from({ length: N }, (_, seq) => seq);
    assert.deepEqual(duplicates(rows), [], 'inputs with more than one row');
    assert.deepEqual(duplicates(outputs), [], 'inputs with more than one output message');
    assert.deepEqual(all.filter((seq) => !rows.has(seq)), [], 'inputs without their row (lost)');
    assert.deepEqual(all.filter((seq) => !outputs.has(seq)), [], 'inputs without their output message (lost)');
    assert.deepEqual([...outputs.keys()].filter((seq) => !rows.has(seq)), [], 'output messages without their row');
    assert.deepEqual([...rows.keys()].filter((seq) => !outputs.has(seq)), [], 'rows without their output message');
    assert.equal(rows.size, N, 'no row of anything else');
    assert.equal(outputs.size, N, 'no output of anything else');

    const ends = new Map<number, number>();
    inputs.forEach((r, seq) => ends.set(r.partition, Math.max(ends.get(r.partition) ?? 0, endOf(r.offset, seq))));
    assert.deepEqual(await storedOffsets(), ends, 'the stored offsets are the ends of the input partitions');
    assert.equal(await recoverTableCount(), 0, 'the recover table is empty');
    const recovered = await pool.query<{ seq: number }>(`SELECT seq FROM ${ROWS} WHERE recovered ORDER BY seq`);
    assert.deepEqual(
      recovered.rows.map((r) => r.seq),
      all.filter((seq) => seq % CTP_POISON_EVERY === 0),
      'exactly the poison messages took effect through the recover table',
    );
    assert.deepEqual(await preparedGidsOf(pool, NODE), [], 'nothing left prepared in PostgreSQL');
    assert.deepEqual(await brokerBranchesOf(broker.port, UNIQUE_QUALIFIER), [], 'nothing left prepared on the broker');

    const skipped = workers.reduce((sum, w) => sum + w.stderr().split(SKIPPED_LOG).length - 1, 0);
    assert.ok(kills >= 8 && crashKills === XA_CRASH_POINTS.length, `${kills} kills`);
    t.diagnostic(
      `${kills} SIGKILLs (${randomKills} at random moments, ${crashKills} at crash points), ${killedAt} of ${N} inputs done before the last run; ` +
        `${skipped} already-consumed message(s) skipped inside their transaction; ${Math.round((Date.now() - started) / 1000)} s`,
    );
  });
});
