/**
 * Marker rows left behind by a killed manager (transactions.md §5.6 housekeeping): the
 * MarkerSweeper deletes markers in batches from memory after END, so a manager SIGKILLed before
 * its sweep leaves them in `metaq_xa_marker`; the orphan-marker sweep (src/xa/orphan-marker-sweeper.ts)
 * of the next run finds and deletes them after recovery — except the marker of a transaction
 * still COMMITTING, which recovery needs ("does not exist" + marker ⇒ committed).
 *
 * Real broker and PostgreSQL; the manager in worker processes (test/helpers/xa-order-worker.ts):
 * - armed at `xa.after-postgres-commit` with `METAQ_XA_CRASH_SKIP=6`: six orders finish (END
 *   written, markers waiting in memory), the seventh dies right after COMMIT PREPARED;
 * - restarted once with its broker resource under another qualifier, so the seventh stays
 *   COMMITTING (its broker participant is not registered: unresolvable), not in flight: its
 *   marker must survive every sweep — and every re-driven COMMIT PREPARED finds it, so no
 *   heuristic outcome; the six others are deleted;
 * - restarted with the right qualifier: recovery commits the broker branch, ENDs, and the last
 *   marker goes too;
 * - and a run SIGKILLed from outside with orders in flight: after recovery no marker is left.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { gtridHex, parsePgGid, type TransactionManagerMetrics } from '../../src/xa/index.js';
import { XA_CRASH_SKIP_ENV } from '../../src/xa/crash-points.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, brokerBranchesOf, markerGidsOf, preparedGidsOf, readOrderState } from '../helpers/xa-agreement.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';
import { runXaWorker, spawnXaWorker, type XaWorker } from '../helpers/xa-worker-process.js';
import { orderKey, type XaWorkerConfig, type XaWorkerLine } from '../helpers/xa-worker-protocol.js';

const TABLE = 'xa_marker_orders';
const ORPHAN_SAFETY_MS = 300;
const FINISHED = 6;

type ScanLine = Extract<XaWorkerLine, { scan: unknown }>;
type RecoveredLine = Extract<XaWorkerLine, { recovered: boolean }>;

function recoveredLine(worker: XaWorker): { recovered: boolean; metrics: TransactionManagerMetrics } {
  const line = worker.lines.find((l): l is RecoveredLine => 'recovered' in l);
  assert.ok(line !== undefined, `no "recovered" line\n${worker.describe()}`);
  return line;
}

/** The gtrid (hex) of a marker gid. */
function gtridOfGid(gid: string): string {
  const xid = parsePgGid(gid);
  assert.ok(xid !== undefined, gid);
  return gtridHex(xid.globalTransactionId);
}

describe('XA marker rows of a killed manager are swept after recovery (real processes)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let brokerUrl: string;
  let pool: pg.Pool;

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-markers-', TABLE, { maxPreparedTransactions: 16 }));
  });

  after(() => stopXaRig({ root, pgServer, home, pool }));

  function nodeConfig(nodeName: string, extra: Partial<XaWorkerConfig> & Pick<XaWorkerConfig, 'mode'>): XaWorkerConfig {
    return { brokerUrl, databaseUrl: pgServer.connectionString, logDir: join(root.path, `log-${nodeName}`), nodeName, table: TABLE, ...extra };
  }

  function keys(run: string, ids: Iterable<number>): string[] {
    return [...ids].map((id) => orderKey(run, id));
  }

  it(`killed at xa.after-postgres-commit after ${FINISHED} finished orders: their markers are deleted after the restart, the COMMITTING one's is kept until recovery ends it`, async () => {
    const node = 'sweep1';
    const uniqueQualifier = `xa-${node}`;

    // 1. Six orders finish; the seventh dies right after its PostgreSQL commit.
    const armed = await runXaWorker(nodeConfig(node, { mode: 'run', run: node, count: 20, concurrency: 1 }), {
      crashPoint: 'xa.after-postgres-commit',
      env: { [XA_CRASH_SKIP_ENV]: String(FINISHED) },
    });
    assert.equal(armed.exit?.signal, 'SIGKILL', armed.describe());
    assert.match(armed.stderr(), /XA crash point xa\.after-postgres-commit reached/);
    assert.deepEqual([...armed.committed].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5], armed.describe());
    const crashedKey = orderKey(node, FINISHED);
    const leftBehind = await markerGidsOf(pool, node);
    assert.equal(leftBehind.length, FINISHED + 1, 'the killed manager left every marker: six of finished orders, one of the order it died in');
    assert.deepEqual(await preparedGidsOf(pool, node), [], 'the PostgreSQL branch of the seventh order is committed');
    assert.equal((await brokerBranchesOf(broker.port, uniqueQualifier)).length, 1, 'its broker branch is prepared');
    const before = await readOrderState(pool, TABLE, broker.port, (r) => r === node);
    assert.ok(before.rows.has(crashedKey) && !before.messages.has(crashedKey), 'the seventh order: row committed, message not yet');

    // 2. A restart that cannot finish the seventh (its broker resource is registered under another
    //    qualifier): it stays COMMITTING without being in flight; the sweep must keep its marker.
    const blocked = await runXaWorker(nodeConfig(node, { mode: 'recover', uniqueQualifier: `${uniqueQualifier}-elsewhere`, orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, recoverDeadlineMs: 1500 }), {
      timeoutMs: 60_000,
    });
    assert.equal(blocked.exit?.code, 3, `recovery cannot converge without the broker resource\n${blocked.describe()}`);
    const scans = blocked.lines.filter((l): l is ScanLine => 'scan' in l);
    assert.ok(scans.length >= 2, `several scans, each followed by a sweep\n${blocked.describe()}`);
    const pending = scans.at(-1)?.pending ?? [];
    assert.equal(pending.length, 1, `the seventh order is pending\n${blocked.describe()}`);
    assert.ok(scans.every((l) => l.scan.unresolvable.length === 1), 'and unresolvable in every scan (so not in flight between scans)');
    const blockedMetrics = recoveredLine(blocked).metrics;
    assert.equal(blockedMetrics.orphanMarkersDeleted, FINISHED, 'the markers of the six finished orders were deleted');
    assert.equal(blockedMetrics.heuristics, 0, 'every re-driven COMMIT PREPARED found the kept marker: committed, no heuristic');
    const kept = await markerGidsOf(pool, node);
    assert.equal(kept.length, 1, `only the pending transaction's marker is left: ${kept.join(', ')}`);
    assert.equal(gtridOfGid(kept[0] ?? ''), pending[0]?.gtrid, 'and it is the pending transaction’s');

    // 3. The right restart: recovery commits the broker branch, writes END; the last marker goes.
    const recovering = await runXaWorker(nodeConfig(node, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, recoverDeadlineMs: 30_000 }), { timeoutMs: 60_000 });
    assert.equal(recovering.exit?.code, 0, recovering.describe());
    const metrics = recoveredLine(recovering).metrics;
    assert.equal(metrics.recoveredCommits, 1, 'recovery completed the seventh order');
    assert.equal(metrics.heuristics, 0);
    assert.deepEqual(await markerGidsOf(pool, node), [], 'no marker row of this node is left');
    const state = await readOrderState(pool, TABLE, broker.port, (r) => r === node);
    assertAgreement(state, { committed: keys(node, [0, 1, 2, 3, 4, 5, FINISHED]), absent: keys(node, Array.from({ length: 13 }, (_, i) => FINISHED + 1 + i)) }, 'after recovery');
    assert.equal(state.rows.size, FINISHED + 1);
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after recovery');
  });

  it('SIGKILLed from outside with orders in flight (ENDs written, the batched sweep not run): after recovery no marker is left', async () => {
    const node = 'sweep2';
    const uniqueQualifier = `xa-${node}`;
    // No count: it places orders until killed, so it cannot finish (and sweep at close) before the kill.
    const worker = spawnXaWorker(nodeConfig(node, { mode: 'run', run: node, concurrency: 3 }));
    await worker.waitForLine(() => worker.committed.size >= 15, '15 committed orders', 60_000);
    worker.kill('SIGKILL');
    await worker.exited;
    const committed = new Set(worker.committed);
    assert.ok(committed.size >= 15, worker.describe());
    // Markers of ended orders wait in memory until 256 are queued (or a scan, or close): the kill
    // leaves those queued since the last batch (all of them unless the worker outran the kill).
    const leftBehind = await markerGidsOf(pool, node);
    assert.ok(leftBehind.length > 0, `the kill left marker rows behind (${leftBehind.length}; ${committed.size} orders committed)`);

    const recovering = await runXaWorker(nodeConfig(node, { mode: 'recover', orphanSafetyIntervalMs: ORPHAN_SAFETY_MS, recoverDeadlineMs: 30_000 }), { timeoutMs: 60_000 });
    assert.equal(recovering.exit?.code, 0, recovering.describe());
    const metrics = recoveredLine(recovering).metrics;
    assert.equal(metrics.heuristics, 0);
    // Each leftover belonged to an ended order (deleted by the orphan sweep) or to one still
    // COMMITTING at the kill (recovery re-drove it; the after-END sweep deleted its marker).
    assert.ok(
      metrics.orphanMarkersDeleted > 0 && metrics.orphanMarkersDeleted + metrics.recoveredCommits >= leftBehind.length,
      `the orphan sweep deleted the leftovers (${metrics.orphanMarkersDeleted} deleted, ${metrics.recoveredCommits} re-driven, ${leftBehind.length} left behind)`,
    );
    assert.deepEqual(await markerGidsOf(pool, node), [], 'no marker row of this node is left');
    const state = await readOrderState(pool, TABLE, broker.port, (r) => r === node);
    assertAgreement(state, { committed: keys(node, committed), absent: keys(node, worker.rolledBack) }, 'after the kill and recovery');
    await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier }, 'after the kill and recovery');
  });
});
