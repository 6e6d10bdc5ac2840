/**
 * The XA transaction manager end to end (transactions.md §5.4, §5.6, §5.7 rows 1–6, 7/8 from the
 * manager's side, 10, 17 and 27): a real broker process, a real private PostgreSQL 15, and the
 * manager in child processes (test/helpers/xa-order-worker.ts) that place "orders" — a row in
 * `xa_orders` plus an "order created" message on topic `orders`, in one `tm.run` — and die:
 *
 * - at each named crash point of the manager (SIGKILL of itself, `METAQ_XA_CRASH_POINT`). First a
 *   warm-up run commits a few orders normally; then the armed run crashes on its first order; the
 *   state in between is checked against the row of §5.7 (what is prepared where, what is already
 *   visible), proving the crash happened where it claims; then a recover worker (same node name
 *   and log directory, orphan safety interval 300 ms) runs `tm.recover()` until nothing is pending
 *   or in doubt. Verdict, order by order: rows and messages agree one to one, warm-up orders are
 *   in both, the crashed order is in both after a decision point and in neither before one, no
 *   other order exists, nothing stays prepared in PostgreSQL or on the broker;
 * - the broker SIGKILLed while a worker has many orders in flight, then restarted;
 * - PostgreSQL crashed and restarted with prepared transactions of a decided transaction, recovery
 *   running during the outage and committing after the restart;
 * - two managers (different node names, same broker qualifier, same database) each recovering
 *   only their own XIDs;
 * - the coordinator log lock: a second live manager on the same directory is refused.
 *
 * One PostgreSQL and one broker for the whole file (fixed port, so it restarts where clients
 * expect it); each case uses its own node name, log directory and order run tag.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { IllegalStateError } from '../../src/common/errors.js';
import { createTransactionManager, nodeIdOf, XA_CRASH_POINTS, type TransactionManagerMetrics, type XaCrashPoint } from '../../src/xa/index.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, brokerBranchesOf, markerGidsOf, preparedGidsOf, readOrderState, type OrderState } from '../helpers/xa-agreement.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';
import { assertOrdersAgree, runOrdersThroughBrokerKill } from '../helpers/xa-broker-kill.js';
import { runRecoverWorker, runXaWorker, spawnXaWorker, type XaWorker } from '../helpers/xa-worker-process.js';
import { isRecoveredLine, orderKey, type XaWorkerConfig, type XaWorkerLine } from '../helpers/xa-worker-protocol.js';

const TABLE = 'xa_orders';
const ORPHAN_SAFETY_MS = 300;

/** What each crash point leaves behind before recovery, for the order that crashed (§5.7 rows 1–6). */
interface CrashExpectation {
  readonly row: number;
  /** COMMITTING was durable: recovery must commit the order; otherwise it must roll it back. */
  readonly decided: boolean;
  readonly rowVisible: boolean;
  readonly messageVisible: boolean;
  /** PostgreSQL branches left prepared (pg_prepared_xacts). */
  readonly pgPrepared: number;
  /** Broker branches left prepared (RECOVER). */
  readonly brokerPrepared: number;
}

const EXPECTATIONS: Readonly<Record<XaCrashPoint, CrashExpectation>> = {
  // Broker prepared first (crash order), the PostgreSQL session died with the process: rolled back.
  'xa.after-first-prepare': { row: 1, decided: false, rowVisible: false, messageVisible: false, pgPrepared: 0, brokerPrepared: 1 },
  'xa.after-prepare': { row: 2, decided: false, rowVisible: false, messageVisible: false, pgPrepared: 1, brokerPrepared: 1 },
  'xa.after-committing': { row: 3, decided: true, rowVisible: false, messageVisible: false, pgPrepared: 1, brokerPrepared: 1 },
  'xa.after-first-commit': { row: 4, decided: true, rowVisible: false, messageVisible: true, pgPrepared: 1, brokerPrepared: 0 },
  'xa.after-postgres-commit': { row: 5, decided: true, rowVisible: true, messageVisible: false, pgPrepared: 0, brokerPrepared: 1 },
  'xa.before-end': { row: 6, decided: true, rowVisible: true, messageVisible: true, pgPrepared: 0, brokerPrepared: 0 },
};

describe('XA transaction manager: coordinator, broker and PostgreSQL crashes (real processes)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let brokerUrl: string;
  let pool: pg.Pool;

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-crash-', TABLE, { maxPreparedTransactions: 16 }));
  });

  after(() => stopXaRig({ root, pgServer, home, pool }));

  /** Worker configuration of node `nodeName` (its own log directory under the test's temp dir). */
  function nodeConfig(nodeName: string, extra: Partial<XaWorkerConfig> & Pick<XaWorkerConfig, 'mode'>): XaWorkerConfig {
    return { brokerUrl, databaseUrl: pgServer.connectionString, logDir: join(root.path, `log-${nodeName}`), nodeName, table: TABLE, ...extra };
  }

  /** Runs the recover worker of `nodeName` to its end; asserts it converged; returns its metrics. */
  function recoverNode(nodeName: string, extra: Partial<XaWorkerConfig> = {}): Promise<{ worker: XaWorker; metrics: TransactionManagerMetrics }> {
    return runRecoverWorker(nodeConfig(nodeName, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, recoverDeadlineMs: 30_000, ...extra }));
  }

  /** Keys `<run>#<id>` of `ids`. */
  function keys(run: string, ids: Iterable<number>): string[] {
    return [...ids].map((id) => orderKey(run, id));
  }

  async function stateOf(runPrefix: string): Promise<OrderState> {
    return readOrderState(pool, TABLE, broker.port, (run) => run.startsWith(runPrefix));
  }

  for (const [index, point] of XA_CRASH_POINTS.entries()) {
    const expected = EXPECTATIONS[point];
    it(`§5.7 row ${expected.row}: the manager SIGKILLed at ${point} — recovery ${expected.decided ? 'commits' : 'rolls back'} the order in both`, async () => {
      const node = `crash${index + 1}`;
      const uniqueQualifier = `xa-${node}`;
      const warmRun = `${node}-warm`;
      const armedRun = `${node}-armed`;

      // 1. Orders committed normally by this node before the crash: recovery must leave them alone.
      const warm = await runXaWorker(nodeConfig(node, { mode: 'run', run: warmRun, count: 4, concurrency: 2 }));
      assert.equal(warm.exit?.code, 0, warm.describe());
      assert.deepEqual([...warm.committed].sort(), [0, 1, 2, 3], `every warm-up order commits\n${warm.describe()}`);

      // 2. The armed run dies on its first order, at the crash point.
      const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: armedRun, count: 5, concurrency: 1 }), { crashPoint: point });
      assert.equal(armed.exit?.signal, 'SIGKILL', `the worker must kill itself at ${point}\n${armed.describe()}`);
      assert.match(armed.stderr(), new RegExp(`XA crash point ${point.replaceAll('.', '\\.')} reached`), armed.describe());
      assert.equal(armed.committed.size + armed.rolledBack.size + armed.failed.size, 0, `order 0 never finished\n${armed.describe()}`);

      // 3. What the crash left, exactly as §5.7 describes it.
      const crashedKey = orderKey(armedRun, 0);
      const before = await stateOf(armedRun);
      assert.equal(before.rows.has(crashedKey), expected.rowVisible, `before recovery, the row of order 0 is ${expected.rowVisible ? '' : 'not '}committed`);
      assert.equal(before.messages.has(crashedKey), expected.messageVisible, `before recovery, the message of order 0 is ${expected.messageVisible ? '' : 'not '}visible`);
      assert.equal(before.rows.size + before.messages.size, Number(expected.rowVisible) + Number(expected.messageVisible), 'before recovery, only order 0 of the armed run may show');
      assert.equal((await preparedGidsOf(pool, node)).length, expected.pgPrepared, 'PostgreSQL branches left prepared by the crash');
      assert.equal((await brokerBranchesOf(broker.port, uniqueQualifier)).length, expected.brokerPrepared, 'broker branches left prepared by the crash');

      // 4. Recovery (same node name and log directory; the dead worker's lock is stale).
      const { metrics } = await recoverNode(node);
      if (expected.decided) {
        assert.equal(metrics.recoveredCommits, 1, 'recovery re-drove the one COMMITTING transaction to END');
        assert.equal(metrics.orphanRollbacks, 0, 'nothing to roll back after a decision');
      } else {
        assert.equal(metrics.recoveredCommits, 0, 'no decision was logged: nothing to commit');
        assert.equal(metrics.orphanRollbacks, expected.pgPrepared + expected.brokerPrepared, 'every prepared orphan branch was rolled back (presumed abort)');
      }
      assert.equal(metrics.heuristics, 0, 'no heuristic outcome');

      // 5. The verdict, order by order.
      const after = await stateOf(node);
      assertAgreement(
        after,
        {
          committed: [...keys(warmRun, warm.committed), ...(expected.decided ? [crashedKey] : [])],
          absent: keys(armedRun, expected.decided ? [1, 2, 3, 4] : [0, 1, 2, 3, 4]),
        },
        `after recovery from ${point}`,
      );
      assert.equal(after.rows.size, 4 + (expected.decided ? 1 : 0), 'no other order of this node exists');
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, `after recovery from ${point}`);
      // Housekeeping (§5.6): the marker rows of ended transactions are deleted once END is durable.
      assert.deepEqual(await markerGidsOf(pool, node), [], 'no marker row of this node is left behind');
    });
  }

  it('the broker SIGKILLed during a run of many orders, then restarted: every order in both or in neither', async (t) => {
    const node = 'brokerkill';
    const uniqueQualifier = `xa-${node}`;
    const { worker, exit, committedAtKill } = await runOrdersThroughBrokerKill(
      nodeConfig(node, { mode: 'run', run: node, count: 160, concurrency: 4, phaseTwoWaitMs: 1000, recoveryIntervalMs: 1000, orphanSafetyIntervalMs: 2000, pauseAfterFailureMs: 100 }),
      () => broker.kill(),
      async () => {
        broker = await home.start();
      },
    );
    assert.equal(exit.code, 0, worker.describe());
    assert.equal(worker.heuristic.size, 0, `no heuristic outcome\n${worker.describe()}`);
    assert.doesNotMatch(worker.stderr(), /HEURISTIC OUTCOME/, 'no heuristic outcome found in the background either');
    assert.ok(worker.committed.size > committedAtKill, `orders commit again after the restart (${committedAtKill} at the kill, ${worker.committed.size} in all)`);
    assert.ok(worker.rolledBack.size > 0, 'the kill hit orders in flight');

    const { metrics } = await recoverNode(node);
    const state = await stateOf(node);
    t.diagnostic(
      `committed ${worker.committed.size} (${committedAtKill} before the kill), rolled back ${worker.rolledBack.size}, unknown ${worker.failed.size}; ` +
        `rows ${state.rows.size}, messages ${state.messages.size}; recovery afterwards: ${metrics.recoveredCommits} commits, ${metrics.orphanRollbacks} orphan branches rolled back`,
    );
    assertOrdersAgree(state, node, worker, 'after the broker crash');
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the broker crash');
  });

  it('§5.7 rows 3 + 7: the manager dies after its decision and the broker is SIGKILLed too; the prepared branch survives the broker restart and recovery commits it', async () => {
    const node = 'bothdown';
    const uniqueQualifier = `xa-${node}`;
    const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: node, count: 1 }), { crashPoint: 'xa.after-committing' });
    assert.equal(armed.exit?.signal, 'SIGKILL', armed.describe());
    const listed = await brokerBranchesOf(broker.port, uniqueQualifier);
    assert.equal(listed.length, 1, 'the broker branch is prepared');
    await broker.kill();
    broker = await home.start();
    assert.deepEqual(await brokerBranchesOf(broker.port, uniqueQualifier), listed, 'the prepared branch survived the broker crash');

    const { metrics } = await recoverNode(node);
    assert.equal(metrics.recoveredCommits, 1);
    const state = await stateOf(node);
    assertAgreement(state, { committed: [orderKey(node, 0)] }, 'after the manager and the broker crashed');
    assert.equal(state.rows.size, 1);
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the manager and the broker crashed');
  });

  it('§5.7 row 5, variant: an administrator rolls back the prepared PostgreSQL branch of a decided transaction; recovery records a heuristic outcome and holds it for an operator', async () => {
    const node = 'dbarollback';
    const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: node, count: 1 }), { crashPoint: 'xa.after-first-commit' });
    assert.equal(armed.exit?.signal, 'SIGKILL', armed.describe());
    const [gid] = await preparedGidsOf(pool, node);
    assert.ok(gid !== undefined, 'the PostgreSQL branch is prepared (the broker one committed)');
    await pool.query(`ROLLBACK PREPARED '${gid}'`);

    // Recovery cannot converge: the transaction stays pending (HEURISTIC) until an operator's forget.
    const worker = await runXaWorker(nodeConfig(node, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, recoverDeadlineMs: 3000 }), { timeoutMs: 60_000 });
    assert.equal(worker.exit?.code, 3, `recovery must not report a heuristic transaction as recovered\n${worker.describe()}`);
    const last = worker.lines.find(isRecoveredLine);
    assert.ok(last !== undefined && !last.recovered, worker.describe());
    assert.equal(last.metrics.heuristics, 1, 'the heuristic rollback was recorded (HEURISTIC record) and counted');
    assert.equal(last.metrics.heuristicPending, 1, 'and is held for an operator');
    assert.equal(last.metrics.recoveredCommits, 0, 'a damaged transaction is not counted as recovered');
    const scans = worker.lines.filter((l): l is Extract<XaWorkerLine, { scan: unknown }> => 'scan' in l);
    assert.ok(scans.length > 0 && scans.every((l) => l.pending.length === 1), `the transaction stays pending in every scan\n${worker.describe()}`);
    assert.match(worker.stderr(), /HEURISTIC OUTCOME heuristic-rollback/, 'the heuristic outcome is alerted at error level');

    // What the operator has to repair: the message without its row (the marker row says it was no commit).
    const state = await stateOf(node);
    assert.deepEqual([...state.rows], [], 'the row was rolled back by the administrator');
    assert.deepEqual([...state.messages.keys()], [orderKey(node, 0)], 'the message was committed before the crash');
    assert.deepEqual(await preparedGidsOf(pool, node), []);
  });

  it('§5.7 row 10: PostgreSQL crashes with a decided transaction prepared; it survives, recovery retries through the outage and commits after the restart', async () => {
    const node = 'pgrestart';
    const uniqueQualifier = `xa-${node}`;
    const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: node, count: 1 }), { crashPoint: 'xa.after-committing' });
    assert.equal(armed.exit?.signal, 'SIGKILL', armed.describe());
    const gids = await preparedGidsOf(pool, node);
    assert.equal(gids.length, 1, 'the PostgreSQL branch is prepared');

    // A crash (immediate shutdown, WAL recovery at start): the prepared transaction survives.
    await pgServer.kill();
    await pgServer.start();
    assert.deepEqual(await preparedGidsOf(pool, node), gids, 'the prepared transaction survived the PostgreSQL crash');

    // Down again; recovery starts while it is down and must keep retrying COMMIT PREPARED.
    await pgServer.kill();
    const recovering = spawnXaWorker(nodeConfig(node, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, initDeadlineMs: 0, recoverDeadlineMs: 60_000, phaseTwoWaitMs: 500 }));
    await recovering.waitForLine(
      (l) => 'scan' in l && l.scan.resourcesFailed.some((f) => f.resourceId === 'postgres:orders') && l.pending.length === 1,
      'a recovery scan that found PostgreSQL down with the COMMITTING transaction pending',
      30_000,
    );
    await sleep(1500); // a few COMMIT PREPARED retries against the dead server
    assert.equal(recovering.exit, undefined, `recovery keeps going while PostgreSQL is down\n${recovering.describe()}`);
    await pgServer.start();
    const exit = await recovering.waitForExit(60_000);
    assert.equal(exit.code, 0, recovering.describe());
    const last = recovering.lines.find(isRecoveredLine);
    assert.ok(last?.recovered === true, recovering.describe());
    assert.equal(last.metrics.recoveredCommits, 1, 'the decided transaction was committed by recovery');
    assert.ok((last.metrics.phaseTwoRetries['postgres:orders'] ?? 0) > 0, `COMMIT PREPARED was retried during the outage: ${JSON.stringify(last.metrics.phaseTwoRetries)}`);
    assert.equal(last.metrics.heuristics, 0, 'no heuristic outcome (connection errors are RMFAIL, never a rollback)');

    const state = await stateOf(node);
    assertAgreement(state, { committed: [orderKey(node, 0)] }, 'after the PostgreSQL restart');
    assert.equal(state.rows.size, 1);
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the PostgreSQL restart');
  });

  it('§5.7 row 17: two managers sharing the broker qualifier and the database each recover only their own XIDs', async () => {
    const [a, b] = ['twin-a', 'twin-b'];
    const uniqueQualifier = 'xa-twins';
    // A dies before its decision (its branches are orphans), B right after its decision (must commit).
    const [crashA, crashB] = await Promise.all([
      runXaWorker(nodeConfig(a, { mode: 'run', run: a, count: 1, uniqueQualifier }), { crashPoint: 'xa.after-prepare' }),
      runXaWorker(nodeConfig(b, { mode: 'run', run: b, count: 1, uniqueQualifier }), { crashPoint: 'xa.after-committing' }),
    ]);
    assert.equal(crashA.exit?.signal, 'SIGKILL', crashA.describe());
    assert.equal(crashB.exit?.signal, 'SIGKILL', crashB.describe());
    const gidsB = await preparedGidsOf(pool, b);
    assert.equal((await preparedGidsOf(pool, a)).length, 1);
    assert.equal(gidsB.length, 1);
    const nodeHexB = nodeIdOf(b).toString('hex');
    const branchesBefore = await brokerBranchesOf(broker.port, uniqueQualifier);
    assert.equal(branchesBefore.length, 2, 'one prepared broker branch per node, under the same qualifier');

    // A's recovery sees B's branches (same qualifier, same database) and must leave them alone,
    // although B's look exactly like orphans to A (no entry in A's log, older than the safety interval).
    const { worker: recoverA, metrics: metricsA } = await recoverNode(a, { uniqueQualifier });
    assert.equal(metricsA.orphanRollbacks, 2, `A rolled back its own two orphan branches\n${recoverA.describe()}`);
    assert.equal(metricsA.recoveredCommits, 0);
    const scans = recoverA.lines.filter((l): l is Extract<XaWorkerLine, { scan: unknown }> => 'scan' in l);
    assert.ok(scans.every((l) => l.scan.foreignBranches === 2), `every scan of A saw B's two branches as foreign: ${scans.map((l) => l.scan.foreignBranches).join(',')}`);
    assert.deepEqual(await preparedGidsOf(pool, a), [], "A's PostgreSQL branch is rolled back");
    assert.deepEqual(await preparedGidsOf(pool, b), gidsB, "B's prepared PostgreSQL branch is untouched");
    const branchesAfterA = await brokerBranchesOf(broker.port, uniqueQualifier);
    assert.equal(branchesAfterA.length, 1, `only B's broker branch is left: ${branchesAfterA.join(', ')}`);
    assert.ok(branchesAfterA[0]?.split(':')[2]?.startsWith(nodeHexB), `the branch left is B's (node id ${nodeHexB}): ${branchesAfterA.join(', ')}`);

    const { metrics: metricsB } = await recoverNode(b, { uniqueQualifier });
    assert.equal(metricsB.recoveredCommits, 1, 'B committed its decided transaction');
    assert.equal(metricsB.orphanRollbacks, 0);

    const state = await readOrderState(pool, TABLE, broker.port, (run) => run === a || run === b);
    assertAgreement(state, { committed: [orderKey(b, 0)], absent: [orderKey(a, 0)] }, 'after both recoveries');
    await assertNothingInDoubt(pool, broker.port, { nodeName: a, uniqueQualifier }, 'after both recoveries');
    await assertNothingInDoubt(pool, broker.port, { nodeName: b, uniqueQualifier }, 'after both recoveries');
  });

  it('§5.7 row 27: a second live manager on the same coordinator log is refused; a dead one’s lock is taken over', async () => {
    const node = 'locked';
    const logDir = join(root.path, 'log-locked');
    const holder = spawnXaWorker(nodeConfig(node, { mode: 'hold' }));
    const ready = await holder.waitForLine((l) => 'ready' in l, 'the first manager to start', 30_000);
    assert.ok('ready' in ready);

    // Another process configured with the same node name and directory.
    const second = await runXaWorker(nodeConfig(node, { mode: 'hold' }), { timeoutMs: 30_000 });
    assert.equal(second.exit?.code, 2, second.describe());
    const fatal = second.lines.find((l): l is Extract<XaWorkerLine, { fatal: string }> => 'fatal' in l);
    assert.equal(fatal?.name, 'IllegalStateError', second.describe());
    assert.match(fatal.fatal, new RegExp(String(ready.ready)), 'the refusal names the live holder (its pid)');
    assert.ok(!second.lines.some((l) => 'ready' in l), 'the second manager never started');

    // A manager in this process, under another name, on the same directory: refused too.
    await assert.rejects(createTransactionManager({ nodeName: 'locked-other', logDir, recoveryIntervalMs: 0 }), IllegalStateError);

    // The holder dies without releasing the lock: the next manager takes the stale lock over.
    holder.kill('SIGKILL');
    await holder.exited;
    assert.ok(fs.existsSync(join(logDir, 'coordinator.lock')), 'SIGKILL leaves the lock file behind');
    const successor = await createTransactionManager({ nodeName: node, logDir, recoveryIntervalMs: 0 });
    await successor.close();
  });
});
