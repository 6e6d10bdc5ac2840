/**
 * The shipped example `examples/xa-postgres.ts` itself, killed anywhere and run again (issue 5's
 * "the example survives being killed anywhere"): a real broker process, a real private PostgreSQL
 * with prepared transactions, and the example as a child process exactly as a user runs it
 * (`node --import tsx examples/xa-postgres.ts <orders> <topic>`, configured by its environment
 * variables only).
 *
 * Each round kills one run of the example — at each named crash point of the manager
 * (`METAQ_XA_CRASH_POINT`, after a few committed orders), and with SIGKILL from outside at random
 * moments — then runs it again for one order to completion. Its start-up recovery must complete
 * every transaction the killed run had decided. The verdict after every round, order by order:
 * every order row has exactly one "order created" message and every message its row; every order
 * a run reported committed is in both. A transaction killed before its decision stays prepared
 * (invisible in both) until the orphan rollback; at the end an in-process manager on the same log
 * directory and node name recovers them (orphan safety interval 0), after which nothing of the
 * example is left prepared anywhere and the verdict still holds.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMessageSessionFactory } from '../../src/index.js';
import { createBrokerResource, createPostgresResource, createTransactionManager, XA_CRASH_POINT_ENV, XA_CRASH_POINTS, type XaCrashPoint } from '../../src/xa/index.js';
import { exampleExit, ExampleRuns, type ExampleRun } from '../helpers/example-process.js';
import { readAll } from '../helpers/tx-wire.js';
import { assertNothingInDoubt } from '../helpers/xa-agreement.js';
import { startXaRig, stopXaRig, type XaRig } from '../helpers/xa-rig.js';

/** The example's node name and broker qualifier (it uses its node name as the qualifier). */
const NODE_NAME = 'xa-postgres-example';
const TOPIC = 'orders';
const COMMITTED_LINE = /^order (\d+) \((\w+)\): row and message committed$/;
const RECOVERY_LINE = /^recovery at start: (\d+) decided transaction\(s\) completed, (\d+) orphan branch\(es\) rolled back$/;
/** Crash points after which the transaction was decided: the next run's start-up recovery commits it. */
const DECIDED_POINTS: ReadonlySet<XaCrashPoint> = new Set(['xa.after-committing', 'xa.after-first-commit', 'xa.after-postgres-commit', 'xa.before-end']);

/** How long a run of the example may take (one of them commits up to 50 orders). */
const EXIT_WAIT_MS = 90_000;

/** One run of the example, with the order ids it reported committed. */
type XaExampleRun = ExampleRun & { readonly committed: Set<string> };

describe('examples/xa-postgres.ts killed anywhere and run again (real broker, PostgreSQL and example processes)', () => {
  let rig: XaRig;
  const runs = new ExampleRuns();
  /** Every order id any run reported committed. */
  const reportedCommitted = new Set<string>();

  before(async () => {
    rig = await startXaRig('metaq-xa-example-', 'xa_orders', { maxPreparedTransactions: 16 });
  });

  after(async () => {
    await runs.killAll();
    if (typeof rig === 'object') await stopXaRig(rig); // unset when before() failed
  });

  function runExample(orders: number, extraEnv: NodeJS.ProcessEnv = {}): XaExampleRun {
    const committed = new Set<string>();
    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: rig.pgServer.connectionString,
      METAQ_URL: rig.brokerUrl,
      METAQ_XA_LOG_DIR: join(rig.root.path, 'xa-log'),
      [XA_CRASH_POINT_ENV]: undefined, // never inherited: only the runs that ask for one crash
      ...extraEnv,
    };
    const run = runs.start('xa-postgres.ts', [String(orders), TOPIC], env, (line) => {
      const done = COMMITTED_LINE.exec(line);
      if (done?.[1] === undefined) return;
      committed.add(done[1]);
      reportedCommitted.add(done[1]);
    });
    return Object.assign(run, { committed });
  }

  /** The verdict: rows and messages agree one to one, and every order reported committed is in both. */
  async function assertExampleAgrees(context: string): Promise<{ rows: number }> {
    const rows = new Set((await rig.pool.query<{ id: string }>('SELECT id::text AS id FROM example_orders')).rows.map((row) => row.id));
    const messages = new Map<string, number>();
    for (const stored of await readAll(rig.broker.port)) {
      if (stored.topic !== TOPIC) continue;
      const body = JSON.parse(stored.tag) as { event?: unknown; orderId?: unknown };
      assert.equal(body.event, 'order-created', `${context}: an unexpected message on ${TOPIC}: ${stored.tag}`);
      const id = String(body.orderId);
      messages.set(id, (messages.get(id) ?? 0) + 1);
    }
    const duplicated = [...messages].filter(([, n]) => n !== 1).map(([id, n]) => `${id}×${n}`);
    assert.deepEqual(duplicated, [], `${context}: every order has exactly one message`);
    assert.deepEqual([...rows].filter((id) => !messages.has(id)).sort(), [], `${context}: order rows without their message`);
    assert.deepEqual([...messages.keys()].filter((id) => !rows.has(id)).sort(), [], `${context}: messages without their order row`);
    assert.deepEqual([...reportedCommitted].filter((id) => !rows.has(id)).sort(), [], `${context}: orders reported committed but missing`);
    return { rows: rows.size };
  }

  /** Runs the example for one order to completion; returns what its start-up recovery reported. */
  async function restartOnce(context: string): Promise<{ recoveredCommits: number }> {
    const run = runExample(1);
    const exit = await exampleExit(run, EXIT_WAIT_MS);
    assert.equal(exit.code, 0, `${context}: the restarted example must finish its order and exit 0\n${run.describe()}`);
    assert.equal(run.committed.size, 1, `${context}: the restarted example commits its order\n${run.describe()}`);
    const recovery = run.lines.map((line) => RECOVERY_LINE.exec(line)).find((m) => m !== null);
    assert.ok(recovery !== undefined && recovery !== null, `${context}: no start-up recovery line\n${run.describe()}`);
    return { recoveredCommits: Number(recovery[1]) };
  }

  it('a first run commits its orders; rows and messages agree', async () => {
    const run = runExample(3);
    const exit = await exampleExit(run, EXIT_WAIT_MS);
    assert.equal(exit.code, 0, run.describe());
    assert.equal(run.committed.size, 3, run.describe());
    assert.equal((await assertExampleAgrees('after a clean run')).rows, 3);
  });

  for (const [index, point] of XA_CRASH_POINTS.entries()) {
    it(`killed at ${point} after ${index % 3} committed order(s), then run again: ${DECIDED_POINTS.has(point) ? 'the decided order is completed' : 'the undecided order never shows'}`, async () => {
      const skip = index % 3;
      const run = runExample(50, { [XA_CRASH_POINT_ENV]: point, METAQ_XA_CRASH_SKIP: String(skip) });
      const exit = await exampleExit(run, EXIT_WAIT_MS);
      assert.equal(exit.signal, 'SIGKILL', `the example must die at ${point}\n${run.describe()}`);
      assert.match(run.stderr(), new RegExp(`XA crash point ${point.replaceAll('.', '\\.')} reached`), run.describe());
      assert.equal(run.committed.size, skip, `the run reported ${skip} order(s) before it died\n${run.describe()}`);
      const { recoveredCommits } = await restartOnce(`after ${point}`);
      if (DECIDED_POINTS.has(point)) assert.ok(recoveredCommits >= 1, `the restart completed the order decided before the kill at ${point}`);
      else assert.equal(recoveredCommits, 0, `nothing was decided before ${point}`);
      await assertExampleAgrees(`after the kill at ${point} and a restart`);
    });
  }

  for (let round = 0; round < 3; round++) {
    it(`SIGKILL at a random moment of a run (round ${round + 1}), then run again: rows and messages agree`, async () => {
      const run = runExample(1000);
      await run.waitForLine(COMMITTED_LINE);
      await sleep(Math.floor(Math.random() * 400));
      run.kill('SIGKILL');
      const exit = await exampleExit(run, EXIT_WAIT_MS);
      assert.equal(exit.signal, 'SIGKILL', run.describe());
      await restartOnce(`after random kill ${round + 1}`);
      await assertExampleAgrees(`after random kill ${round + 1} and a restart`);
    });
  }

  it('orphans left by the kills are rolled back by recovery on the same log; nothing stays prepared; rows and messages still agree', async () => {
    const factory = createMessageSessionFactory({ serverUrl: rig.brokerUrl });
    try {
      const producer = factory.createProducer();
      // The same participants as the example (their ids are in the coordinator log).
      const database = createPostgresResource({ pool: rig.pool, name: 'shop', mode: 'xa' });
      const brokerResource = createBrokerResource(producer, { brokerUrl: rig.brokerUrl, uniqueQualifier: NODE_NAME });
      const tm = await createTransactionManager({
        nodeName: NODE_NAME,
        logDir: join(rig.root.path, 'xa-log'),
        resources: [brokerResource, database],
        orphanSafetyIntervalMs: 0,
        recoveryIntervalMs: 0,
        defaultTimeoutMs: 15_000,
        maxTimeoutMs: 15_000,
      });
      try {
        // Two sightings per orphan (transactions.md §5.4): a few scans settle everything.
        for (let scan = 0; scan < 5; scan++) await tm.recover();
        const metrics = tm.metrics();
        assert.equal(metrics.heuristics, 0, 'no heuristic outcome');
        assert.equal(metrics.committingWithoutEnd, 0, 'nothing decided is left uncompleted');
        assert.ok(metrics.orphanRollbacks > 0, 'the kills before a decision left orphan branches, and recovery rolled them back');
      } finally {
        await tm.close();
      }
    } finally {
      await factory.close();
    }
    await assertNothingInDoubt(rig.pool, rig.broker.port, { nodeName: NODE_NAME, uniqueQualifier: NODE_NAME }, 'after recovery of the example');
    const { rows } = await assertExampleAgrees('after the final recovery');
    assert.ok(rows >= reportedCommitted.size, 'every reported order is there');
  });
});
