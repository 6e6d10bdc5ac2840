/**
 * Randomized soak of the XA transaction manager (transactions.md §5.7): several managers in child
 * processes (test/helpers/xa-order-worker.ts, each its own node name, coordinator log and broker
 * qualifier) place orders continuously — a row in `xa_orders` plus an "order created" message on
 * topic `orders`, in one two-phase transaction, four at a time per manager — while, at random
 * moments, a manager is SIGKILLed (or dies at a randomly armed crash point of its own) and
 * restarted on the same log, the broker is SIGKILLed and restarted, and PostgreSQL is crashed
 * (immediate shutdown) and restarted.
 *
 * Every other manager enlists PostgreSQL in decision-row mode (docs/xa.md): PostgreSQL commits
 * last, one-phase, with the decision row, so both modes are crashed side by side. Every third
 * manager runs with `phaseTwo: 'background'` (it reports an order committed once the decision is
 * durable, before phase two).
 *
 * Afterwards every manager is stopped, a recover worker per node runs until nothing is pending or
 * prepared, and the orders are checked one by one: every order has exactly one message and every
 * message its order row; every order a manager reported committed exists; every order it reported
 * rolled back does not; no heuristic outcome; nothing of any node left prepared anywhere.
 *
 *   npm run test:soak                                   # 3 minutes of chaos
 *   XA_SOAK_SECONDS=600 XA_SOAK_SEED=42 npm run test:soak
 *
 * Environment: `XA_SOAK_SECONDS` (chaos duration, default 180), `XA_SOAK_WORKERS` (managers,
 * default 3), `XA_SOAK_SEED` (seed of the chaos schedule, default random; printed so a failing
 * schedule can be replayed — process timing still varies).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { XA_CRASH_POINTS } from '../../src/xa/index.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, decisionRowsOf, markerGidsOf, readOrderState } from '../helpers/xa-agreement.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';
import { killAllXaWorkers, runXaWorker, spawnXaWorker, type XaWorker } from '../helpers/xa-worker-process.js';
import { orderKey, type XaWorkerConfig } from '../helpers/xa-worker-protocol.js';

const SECONDS = Number(process.env['XA_SOAK_SECONDS'] ?? 180);
const WORKERS = Number(process.env['XA_SOAK_WORKERS'] ?? 3);
const SEED = Number(process.env['XA_SOAK_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const TABLE = 'xa_orders';

/** mulberry32: a small seeded PRNG, so a chaos schedule can be replayed with XA_SOAK_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One manager node: its successive worker processes ("incarnations") on one log directory. */
interface SoakNode {
  readonly nodeName: string;
  readonly uniqueQualifier: string;
  readonly postgresMode: 'xa' | 'decision-row';
  readonly phaseTwo: 'await' | 'background';
  readonly incarnations: XaWorker[];
  current: XaWorker | undefined;
}

describe('XA soak: managers, broker and PostgreSQL killed at random while orders commit', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun | undefined;
  let brokerUrl: string;
  let pool: pg.Pool;

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-soak-', TABLE, { maxPreparedTransactions: 64, maxConnections: 200 }));
  });

  after(() => stopXaRig({ root, pgServer, home, pool }));

  it(`stays consistent through ${SECONDS} s of random crashes (seed ${SEED})`, async (t) => {
    const random = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const between = (min: number, max: number): number => Math.floor(min + random() * (max - min));
    t.diagnostic(`seed ${SEED}, ${SECONDS} s, ${WORKERS} managers × 4 concurrent orders`);

    const config = (node: SoakNode, extra: Partial<XaWorkerConfig> & Pick<XaWorkerConfig, 'mode'>): XaWorkerConfig => ({
      brokerUrl,
      databaseUrl: pgServer.connectionString,
      logDir: join(root.path, `log-${node.nodeName}`),
      nodeName: node.nodeName,
      uniqueQualifier: node.uniqueQualifier,
      postgresMode: node.postgresMode,
      phaseTwo: node.phaseTwo,
      decisionRowRetentionMs: 0,
      table: TABLE,
      ...extra,
    });

    const counts = { workerKills: 0, crashPointsArmed: 0, crashPointsHit: 0, brokerKills: 0, postgresKills: 0, fatalExits: 0 };
    const hits = new Map<string, number>();
    const recoverWorkers: XaWorker[] = [];
    let chaos = true;
    const nodes: SoakNode[] = Array.from({ length: WORKERS }, (_, k) => ({ nodeName: `soak${k}`, uniqueQualifier: `xa-soak${k}`, postgresMode: k % 2 === 1 ? 'decision-row' : 'xa', phaseTwo: k % 3 === 2 ? 'background' : 'await', incarnations: [], current: undefined }));

    /** Starts the next incarnation of `node`; sometimes with a random crash point armed. */
    const spawnIncarnation = (node: SoakNode): void => {
      const incarnation = node.incarnations.length;
      const crashPoint = incarnation > 0 && random() < 0.35 ? pick(XA_CRASH_POINTS) : undefined;
      if (crashPoint !== undefined) counts.crashPointsArmed += 1;
      const worker = spawnXaWorker(
        config(node, {
          mode: 'run',
          run: `${node.nodeName}.${incarnation}`,
          concurrency: 4,
          recoveryIntervalMs: 1000,
          orphanSafetyIntervalMs: 1500,
          phaseTwoWaitMs: 1000,
          transactionTimeoutMs: 10_000,
          initDeadlineMs: 60_000,
          pauseAfterFailureMs: 150,
        }),
        crashPoint === undefined ? {} : { crashPoint },
      );
      node.incarnations.push(worker);
      node.current = worker;
      void worker.exited.then((exit) => {
        if (crashPoint !== undefined && exit.signal === 'SIGKILL' && worker.stderr().includes(`XA crash point ${crashPoint} reached`)) {
          counts.crashPointsHit += 1;
          hits.set(crashPoint, (hits.get(crashPoint) ?? 0) + 1);
        }
        if (exit.code === 2) {
          counts.fatalExits += 1;
          t.diagnostic(`fatal exit of ${node.nodeName}.${incarnation}: ${worker.describe().slice(0, 2000)}`);
        }
        // A manager that died on its own (crash point, fatal error) is restarted like a crashed service.
        if (chaos && node.current === worker) setTimeout(() => node.current === worker && chaos && spawnIncarnation(node), 300);
      });
    };
    for (const node of nodes) spawnIncarnation(node);

    const deadline = Date.now() + SECONDS * 1000;
    while (Date.now() < deadline) {
      await sleep(between(1500, 5000));
      const event = random();
      if (event < 0.45) {
        const node = pick(nodes);
        const worker = node.current;
        if (worker === undefined) continue;
        node.current = undefined; // the exit handler must not restart it as well
        worker.kill('SIGKILL');
        await worker.exited;
        counts.workerKills += 1;
        await sleep(between(0, 1000));
        spawnIncarnation(node);
      } else if (event < 0.75) {
        await broker?.kill();
        broker = undefined;
        counts.brokerKills += 1;
        await sleep(between(200, 2500));
        broker = await home.start();
      } else {
        await pgServer.kill();
        counts.postgresKills += 1;
        await sleep(between(200, 2500));
        await pgServer.start();
      }
    }

    // Quiesce: everything up, every manager stopped (SIGTERM: in-flight orders finish; SIGKILL if stuck).
    chaos = false;
    broker ??= await home.start();
    for (const node of nodes) node.current?.kill('SIGTERM');
    const stops = await Promise.all(
      nodes.map(async (node) => {
        const worker = node.current;
        if (worker === undefined) return 'none';
        const exit = await worker.waitForExit(30_000).catch(() => undefined);
        return exit?.code === 0 ? 'graceful' : `exit ${JSON.stringify(exit ?? 'killed after 30 s')}`;
      }),
    );
    await killAllXaWorkers();
    t.diagnostic(`managers at the end: ${stops.join(', ')}`);

    // Recovery of every node, until nothing is pending in its log or prepared anywhere.
    for (const node of nodes) {
      const recovered = await runXaWorker(config(node, { mode: 'recover', orphanSafetyIntervalMs: 300, recoverDeadlineMs: 60_000 }), { timeoutMs: 90_000 });
      recoverWorkers.push(recovered);
      assert.equal(recovered.exit?.code, 0, `recovery of ${node.nodeName} must converge\n${recovered.describe()}`);
    }

    // The verdict.
    const committed: string[] = [];
    const rolledBack: string[] = [];
    const heuristic: string[] = [];
    let unknown = 0;
    for (const node of nodes) {
      for (const [incarnation, worker] of node.incarnations.entries()) {
        const run = `${node.nodeName}.${incarnation}`;
        for (const id of worker.committed) committed.push(orderKey(run, id));
        for (const id of worker.rolledBack) rolledBack.push(orderKey(run, id));
        for (const id of worker.heuristic) heuristic.push(orderKey(run, id));
        unknown += worker.failed.size;
      }
    }
    const state = await readOrderState(pool, TABLE, broker.port, (run) => run.startsWith('soak'));
    t.diagnostic(
      `incarnations ${nodes.reduce((n, node) => n + node.incarnations.length, 0)}, manager kills ${counts.workerKills}, crash points armed ${counts.crashPointsArmed} / hit ${counts.crashPointsHit}, ` +
        `broker kills ${counts.brokerKills}, PostgreSQL kills ${counts.postgresKills}, fatal exits ${counts.fatalExits}`,
    );
    t.diagnostic(`crash points hit: ${[...hits].map(([point, n]) => `${point} ×${n}`).join(', ') || 'none'}`);
    // Heuristic outcomes found by phase two in the background or by recovery are only in the logs.
    const workers = [...nodes.flatMap((node) => node.incarnations), ...recoverWorkers];
    const contrary = workers.filter((w) => w.stderr().includes('HEURISTIC OUTCOME')).map((w) => w.describe());
    const agreeing = workers.filter((w) => w.stderr().includes('agrees with the decision')).length;
    t.diagnostic(`orders: reported committed ${committed.length}, rolled back ${rolledBack.length}, unknown outcome ${unknown}, heuristic ${heuristic.length}; rows ${state.rows.size}, messages ${state.messages.size}`);
    t.diagnostic(`managers that logged a heuristic outcome agreeing with the decision: ${agreeing}`);
    // Not a correctness matter (a marker only says "committed"): rows of transactions whose END a killed manager wrote but had not swept yet.
    const markersLeft = (await Promise.all(nodes.map((node) => markerGidsOf(pool, node.nodeName)))).reduce((n, gids) => n + gids.length, 0);
    t.diagnostic(`marker rows left in metaq_xa_marker: ${markersLeft}`);
    // Decision rows: recovery (decisionRowRetentionMs 0) commits or claims every leftover and sweeps its row.
    const decisionRowsLeft = (await Promise.all(nodes.map((node) => decisionRowsOf(pool, node.nodeName)))).reduce((n, rows) => n + rows.size, 0);
    t.diagnostic(`decision rows left in metaq_xa_decision: ${decisionRowsLeft}`);
    assert.deepEqual(heuristic, [], 'no order may end in a heuristic outcome');
    assert.deepEqual(contrary, [], 'no manager may alert a heuristic outcome contrary to its decision');
    assert.ok(committed.length > 0, 'orders were committed');
    assertAgreement(state, { committed, absent: rolledBack }, `soak (seed ${SEED})`);
    for (const node of nodes) await assertNothingInDoubt(pool, broker.port, node, `soak (seed ${SEED})`);
  });
});
