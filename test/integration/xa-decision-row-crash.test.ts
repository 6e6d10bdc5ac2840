/**
 * Decision-row mode end to end (transactions.md §5.1, §5.6 step 3, §5.7 rows 1–6 and 23): a real
 * broker process, a real private PostgreSQL 15 running with `max_prepared_transactions = 0` (the
 * mode needs no prepared transactions), and the manager in child processes placing orders (a row
 * in `xa_orders` plus an "order created" message, in one `tm.run`) with the PostgreSQL resource in
 * mode `decision-row`: the broker branch is prepared, then PostgreSQL commits the order together
 * with the decision row, then the broker branch commits.
 *
 * - The manager SIGKILLed at each crash point the mode passes. Before the decision (after the
 *   broker's prepare: row 23's "crash between broker prepare and Postgres commit") recovery must
 *   claim the orphan with a rollback row and roll the broker branch back; after it, recovery must
 *   commit the broker branch because the decision row says commit. Verdict order by order: rows and
 *   messages agree, nothing stays prepared, no decision row is left behind.
 * - The broker SIGKILLed while orders are in flight, then restarted: every order in both or neither.
 *
 * The race of row 23 itself (a rollback claim waiting for a slow commit on the row's unique key)
 * is tested against PostgreSQL directly in xa-decision-row-resource.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { TransactionManagerMetrics, XaCrashPoint } from '../../src/xa/index.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, brokerBranchesOf, decisionRowsOf, readOrderState, type OrderState } from '../helpers/xa-agreement.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';
import { assertOrdersAgree, runOrdersThroughBrokerKill } from '../helpers/xa-broker-kill.js';
import { runRecoverWorker, runXaWorker, spawnXaWorker, type XaWorker } from '../helpers/xa-worker-process.js';
import { orderKey, type XaWorkerConfig } from '../helpers/xa-worker-protocol.js';

const TABLE = 'xa_orders';
const ORPHAN_SAFETY_MS = 300;

/** What each crash point leaves behind in decision-row mode, for the order that crashed. */
interface CrashExpectation {
  readonly row: number;
  /** The decision row committed (with the order): recovery must commit the broker branch. */
  readonly decided: boolean;
  readonly rowVisible: boolean;
  readonly messageVisible: boolean;
  /** Broker branches left prepared (RECOVER). */
  readonly brokerPrepared: number;
  /** Decision row left by the crash: `C`, or none. */
  readonly decisionRow: 'C' | undefined;
  /** Branches recovery commits (the decision row says commit) / rolls back (after its rollback claim). */
  readonly recoveredCommits: number;
  readonly orphanRollbacks: number;
}

// `xa.after-postgres-commit` is not passed in this mode: PostgreSQL is not a phase-two participant.
const EXPECTATIONS: Readonly<Partial<Record<XaCrashPoint, CrashExpectation>>> = {
  'xa.after-first-prepare': { row: 1, decided: false, rowVisible: false, messageVisible: false, brokerPrepared: 1, decisionRow: undefined, recoveredCommits: 0, orphanRollbacks: 1 },
  'xa.after-prepare': { row: 23, decided: false, rowVisible: false, messageVisible: false, brokerPrepared: 1, decisionRow: undefined, recoveredCommits: 0, orphanRollbacks: 1 },
  'xa.after-committing': { row: 3, decided: true, rowVisible: true, messageVisible: false, brokerPrepared: 1, decisionRow: 'C', recoveredCommits: 1, orphanRollbacks: 0 },
  'xa.after-first-commit': { row: 4, decided: true, rowVisible: true, messageVisible: true, brokerPrepared: 0, decisionRow: 'C', recoveredCommits: 0, orphanRollbacks: 0 },
  'xa.before-end': { row: 6, decided: true, rowVisible: true, messageVisible: true, brokerPrepared: 0, decisionRow: 'C', recoveredCommits: 0, orphanRollbacks: 0 },
};

describe('XA decision-row mode: coordinator and broker crashes (real processes, PostgreSQL without prepared transactions)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let brokerUrl: string;
  let pool: pg.Pool;

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-decision-', TABLE, { maxPreparedTransactions: 0 }));
  });

  after(() => stopXaRig({ root, pgServer, home, pool }));

  function nodeConfig(nodeName: string, extra: Partial<XaWorkerConfig> & Pick<XaWorkerConfig, 'mode'>): XaWorkerConfig {
    return { brokerUrl, databaseUrl: pgServer.connectionString, logDir: join(root.path, `log-${nodeName}`), nodeName, table: TABLE, postgresMode: 'decision-row', ...extra };
  }

  function recoverNode(nodeName: string): Promise<{ worker: XaWorker; metrics: TransactionManagerMetrics }> {
    return runRecoverWorker(nodeConfig(nodeName, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, decisionRowRetentionMs: 0, recoverDeadlineMs: 30_000 }));
  }

  function keys(run: string, ids: Iterable<number>): string[] {
    return [...ids].map((id) => orderKey(run, id));
  }

  async function stateOf(runPrefix: string): Promise<OrderState> {
    return readOrderState(pool, TABLE, broker.port, (run) => run.startsWith(runPrefix));
  }

  for (const [point, expected] of Object.entries(EXPECTATIONS) as [XaCrashPoint, CrashExpectation][]) {
    it(`§5.7 row ${expected.row}: the manager SIGKILLed at ${point} — recovery ${expected.decided ? 'commits' : 'rolls back'} the order in both`, async () => {
      const node = `dr-${point.replace('xa.', '')}`;
      const uniqueQualifier = `xa-${node}`;
      const warmRun = `${node}-warm`;
      const armedRun = `${node}-armed`;

      const warm = await runXaWorker(nodeConfig(node, { mode: 'run', run: warmRun, count: 4, concurrency: 2 }));
      assert.equal(warm.exit?.code, 0, warm.describe());
      assert.deepEqual([...warm.committed].sort(), [0, 1, 2, 3], `every warm-up order commits\n${warm.describe()}`);

      const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: armedRun, count: 5, concurrency: 1 }), { crashPoint: point });
      assert.equal(armed.exit?.signal, 'SIGKILL', `the worker must kill itself at ${point}\n${armed.describe()}`);
      assert.equal(armed.committed.size + armed.rolledBack.size + armed.failed.size, 0, `order 0 never finished\n${armed.describe()}`);

      // What the crash left: the order's row and the decision row commit together, or neither.
      const crashedKey = orderKey(armedRun, 0);
      const beforeRecovery = await stateOf(armedRun);
      assert.equal(beforeRecovery.rows.has(crashedKey), expected.rowVisible, `before recovery, the row of order 0 is ${expected.rowVisible ? '' : 'not '}committed`);
      assert.equal(beforeRecovery.messages.has(crashedKey), expected.messageVisible, `before recovery, the message of order 0 is ${expected.messageVisible ? '' : 'not '}visible`);
      assert.equal((await brokerBranchesOf(broker.port, uniqueQualifier)).length, expected.brokerPrepared, 'broker branches left prepared by the crash');
      const rowsBefore = await decisionRowsOf(pool, node);
      assert.deepEqual([...rowsBefore.values()].filter((o) => o === 'C').length, expected.decisionRow === 'C' ? 1 : 0, `decision rows before recovery: ${JSON.stringify([...rowsBefore])}`);

      const { metrics } = await recoverNode(node);
      assert.equal(metrics.recoveredCommits, expected.recoveredCommits, 'broker branches committed by recovery because their decision row says commit');
      assert.equal(metrics.decisionRowRecoveries, expected.recoveredCommits);
      assert.equal(metrics.orphanRollbacks, expected.orphanRollbacks, 'orphan broker branches rolled back after the rollback claim');
      assert.equal(metrics.heuristics, 0, 'no heuristic outcome');

      const afterRecovery = await stateOf(node);
      assertAgreement(
        afterRecovery,
        { committed: [...keys(warmRun, warm.committed), ...(expected.decided ? [crashedKey] : [])], absent: keys(armedRun, expected.decided ? [1, 2, 3, 4] : [0, 1, 2, 3, 4]) },
        `after recovery from ${point}`,
      );
      assert.equal(afterRecovery.rows.size, 4 + (expected.decided ? 1 : 0), 'no other order of this node exists');
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, `after recovery from ${point}`);
      assert.deepEqual([...(await decisionRowsOf(pool, node))], [], 'no decision row of this node is left behind (ended transactions, rollback claims)');
    });
  }

  it('the broker SIGKILLed during a run of many orders, then restarted: every order in both or in neither', async (t) => {
    const node = 'dr-brokerkill';
    const uniqueQualifier = `xa-${node}`;
    const { worker, exit, committedAtKill } = await runOrdersThroughBrokerKill(
      nodeConfig(node, { mode: 'run', run: node, count: 120, concurrency: 4, phaseTwoWaitMs: 1000, recoveryIntervalMs: 1000, orphanSafetyIntervalMs: 2000, pauseAfterFailureMs: 100 }),
      () => broker.kill(),
      async () => {
        broker = await home.start();
      },
    );
    assert.equal(exit.code, 0, worker.describe());
    assert.equal(worker.heuristic.size, 0, `no heuristic outcome\n${worker.describe()}`);
    assert.ok(worker.committed.size > committedAtKill, `orders commit again after the restart (${committedAtKill} at the kill, ${worker.committed.size} in all)`);

    const { metrics } = await recoverNode(node);
    const state = await stateOf(node);
    t.diagnostic(
      `committed ${worker.committed.size} (${committedAtKill} before the kill), rolled back ${worker.rolledBack.size}, unknown ${worker.failed.size}; ` +
        `rows ${state.rows.size}, messages ${state.messages.size}; recovery afterwards: ${metrics.recoveredCommits} commits, ${metrics.orphanRollbacks} orphan branches rolled back`,
    );
    assertOrdersAgree(state, node, worker, 'after the broker crash');
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the broker crash');
    assert.deepEqual([...(await decisionRowsOf(pool, node))], [], 'no decision row of this node is left behind');
  });
  it("phaseTwo 'background': the manager SIGKILLed while phase twos run behind resolved commits; recovery completes every order commit() reported", async (t) => {
    const node = 'dr-background';
    const uniqueQualifier = `xa-${node}`;
    // Phase two waits 0-300 ms after commit() resolved, so the kill finds several still to do.
    const worker = spawnXaWorker(nodeConfig(node, { mode: 'run', run: node, count: 100_000, concurrency: 4, phaseTwo: 'background' }), {
      env: { METAQ_XA_DELAYS: 'xa.phase-two=300' },
    });
    await worker.waitForLine((l) => 'committed' in l && worker.committed.size >= 40, '40 orders reported committed', 60_000);
    worker.kill('SIGKILL');
    await worker.waitForExit(10_000).catch(() => undefined);
    const atKill = await stateOf(node);
    // Reported committed, the row there (PostgreSQL's commit was the decision), the message not yet.
    const unfinished = [...worker.committed].filter((id) => atKill.rows.has(orderKey(node, id)) && (atKill.messages.get(orderKey(node, id)) ?? 0) === 0);
    const { metrics } = await recoverNode(node);
    const state = await stateOf(node);
    t.diagnostic(
      `committed ${worker.committed.size}, of which ${unfinished.length} without their message at the kill; rolled back ${worker.rolledBack.size}, unknown ${worker.failed.size}; ` +
        `recovery: ${metrics.recoveredCommits} commits, ${metrics.orphanRollbacks} orphan branches rolled back; rows ${state.rows.size}, messages ${state.messages.size}`,
    );
    assert.ok(unfinished.length > 0, 'the kill caught orders whose commit() had resolved before their phase two ended');
    // The SIGKILL leaves up to `concurrency` orders unreported: decided or not, each is in both or in neither.
    assertAgreement(state, { committed: keys(node, worker.committed), absent: keys(node, worker.rolledBack) }, 'after the manager crash with background phase two');
    assert.ok(state.rows.size <= worker.committed.size + 4, `at most the 4 orders in flight at the kill exist unreported (${state.rows.size} rows, ${worker.committed.size} reported)`);
    for (const id of unfinished) assert.equal(state.messages.get(orderKey(node, id)), 1, `order ${id}: its message, once, after recovery`);
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the manager crash with background phase two');
    assert.deepEqual([...(await decisionRowsOf(pool, node))], [], 'no decision row of this node is left behind');
  });
});
