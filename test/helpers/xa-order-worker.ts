/**
 * Child process of the XA end-to-end crash tests and the soak (test/integration/xa-*.test.ts,
 * test/soak/xa-soak.test.ts): a real transaction manager with a file coordinator log, a real
 * producer on a real broker and a real pg Pool on a real PostgreSQL.
 *
 *   node --import tsx test/helpers/xa-order-worker.ts '<XaWorkerConfig as JSON>'
 *
 * Modes:
 * - `run`: creates the manager (recovery at start) and places orders `first`, `first + 1`, … —
 *   each one `INSERT INTO <table>(run, id, item)` plus a message naming the order sent to topic
 *   `orders`, in one `tm.run` — on `concurrency` lanes, until `count` orders were tried or
 *   SIGTERM (then in-flight orders finish and the manager closes);
 * - `recover`: creates the manager (recovery at start), then calls `tm.recover()` until nothing is
 *   pending in the coordinator log and no resource lists an XID of this node any more (orphans need
 *   two scans older than `orphanSafetyIntervalMs`), prints the last report and exits;
 * - `hold`: creates the manager and keeps it (and its log lock) until SIGTERM.
 *
 * A crash point is armed by the parent through `METAQ_XA_CRASH_POINT` (the manager SIGKILLs this
 * process when it gets there). stdout carries only {@link XaWorkerLine}s, one JSON object per
 * line, written synchronously (a pipe on Linux), so a line printed before a crash always arrives;
 * the manager's logs go to stderr (level `METAQ_LOG_LEVEL`, default `warn`).
 *
 * Exit codes: 0 done, 2 fatal error (a `fatal` line says which), 3 recovery did not converge
 * before `recoverDeadlineMs`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { createMessageSessionFactory, TransactionHeuristicError, TransactionRolledBackError, type MessageSessionFactory } from '../../src/index.js';
import { setRootLogger } from '../../src/common/logger.js';
import {
  belongsToNode,
  createBrokerResource,
  createPostgresResource,
  createTransactionManager,
  nodeIdOf,
  type PendingTransactionInfo,
  type PostgresResource,
  type RecoveryReport,
  type TransactionManager,
  type TransactionManagerMetrics,
} from '../../src/xa/index.js';
import { ORDER_TABLE_DDL, orderMessageBody, type XaWorkerConfig, type XaWorkerLine } from './xa-worker-protocol.js';

setRootLogger(pino({ name: 'xa-worker', level: process.env['METAQ_LOG_LEVEL'] ?? 'warn' }, pino.destination({ dest: 2, sync: true })));

function emit(line: XaWorkerLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

const raw = process.argv[2] ?? process.env['XA_WORKER_CONFIG'];
if (raw === undefined) {
  emit({ fatal: 'no configuration: pass the XaWorkerConfig JSON as the first argument', name: 'Usage' });
  process.exit(2);
}
const config = JSON.parse(raw) as XaWorkerConfig;
const table = config.table ?? 'xa_orders';
const run = config.run ?? config.nodeName;
const nodeId = nodeIdOf(config.nodeName);

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: (config.concurrency ?? 1) + 3, connectionTimeoutMillis: 3000 });
// An idle client whose server went away emits 'error' on the pool: expected while PostgreSQL restarts.
pool.on('error', () => undefined);
const factory: MessageSessionFactory = createMessageSessionFactory({
  serverUrl: config.brokerUrl,
  // Known partition counts: publish() then needs no broker, so a worker can start while it is down.
  partitions: { orders: 3 },
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
});

/** Runs `init()` until it succeeds or `deadlineMs` passed; returns the last error if it never did. */
async function initWithin(resource: PostgresResource, deadlineMs: number): Promise<unknown> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      await resource.init();
      return undefined;
    } catch (error) {
      if (Date.now() >= deadline || stopping) return error;
      await sleep(250);
    }
  }
}

/** Creates the orders table; another process creating it at the same moment is no error. */
async function ensureTable(deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      await pool.query(ORDER_TABLE_DDL(table));
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '23505' || code === '42P07') return;
      if (Date.now() >= deadline) throw error;
      await sleep(250);
    }
  }
}

/** The XIDs of this node that each registered resource still lists (prepared, in doubt). */
async function inDoubt(tm: TransactionManager): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const resource of tm.resources()) {
    const xids = await resource.recover();
    result[resource.resourceId] = xids.filter((xid) => belongsToNode(xid, nodeId)).length;
  }
  return result;
}

async function placeOrders(tm: TransactionManager, producer: ReturnType<MessageSessionFactory['createProducer']>, postgres: PostgresResource): Promise<void> {
  let next = config.first ?? 0;
  const end = config.count === undefined ? Number.POSITIVE_INFINITY : next + config.count;
  const pauseMs = config.pauseAfterFailureMs ?? 200;
  const lane = async (): Promise<void> => {
    while (!stopping && next < end) {
      const id = next++;
      let workDone = false;
      try {
        await tm.run(async (tx) => {
          const db = await tx.enlistPostgres(postgres);
          await db.query(`INSERT INTO ${table} (run, id, item) VALUES ($1, $2, $3)`, [run, id, `item-${id % 7}`]);
          await tx.send(producer, { topic: 'orders', data: orderMessageBody(run, id) });
          workDone = true;
        });
        emit({ committed: id, run });
      } catch (error) {
        // Work that failed was rolled back by tm.run before anything was prepared; a commit that
        // rejects with TransactionRolledBackError was rolled back (presumed abort). Both: the
        // order must never appear. Anything else (heuristic, unknown) is reported as such.
        if (!workDone || error instanceof TransactionRolledBackError) emit({ rolledBack: id, run, error: messageOf(error) });
        else if (error instanceof TransactionHeuristicError) emit({ heuristic: id, run, error: messageOf(error) });
        else emit({ failed: id, run, error: messageOf(error) });
        await sleep(pauseMs);
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency ?? 1 }, lane));
}

async function recoverUntilClean(tm: TransactionManager): Promise<boolean> {
  const deadline = Date.now() + (config.recoverDeadlineMs ?? 60_000);
  const pauseMs = Math.max(100, Math.min(1000, Math.floor((config.orphanSafetyIntervalMs ?? 300) / 2)));
  for (;;) {
    const report: RecoveryReport = await tm.recover();
    const pending: PendingTransactionInfo[] = tm.pendingTransactions();
    let doubt: Record<string, number> | string;
    try {
      doubt = await inDoubt(tm);
    } catch (error) {
      doubt = messageOf(error);
    }
    const clean = typeof doubt !== 'string' && Object.values(doubt).every((n) => n === 0) && pending.length === 0 && report.resourcesFailed.length === 0;
    emit({ scan: report, pending: pending.map((p) => ({ gtrid: p.gtrid, state: p.state, inFlight: p.inFlight })), inDoubt: doubt });
    if (clean) return true;
    if (Date.now() >= deadline) return false;
    await sleep(pauseMs);
  }
}

let exitCode = 0;
try {
  const postgres = createPostgresResource({ pool, name: config.resourceName ?? 'orders', mode: config.postgresMode ?? 'xa' });
  const initError = await initWithin(postgres, config.initDeadlineMs ?? 30_000);
  if (initError !== undefined) {
    // Recovery needs no init (it only finishes prepared transactions): go on, PostgreSQL may come back.
    if (config.mode !== 'recover') throw initError;
    emit({ initSkipped: messageOf(initError) });
  }
  if (config.mode === 'run') await ensureTable(config.initDeadlineMs ?? 30_000);
  const producer = factory.createProducer();
  await producer.publish('orders');
  const broker = createBrokerResource(producer, { brokerUrl: config.brokerUrl, uniqueQualifier: config.uniqueQualifier ?? `xa-${config.nodeName}`, requestTimeoutMs: 3000 });
  const tm = await createTransactionManager({
    nodeName: config.nodeName,
    logDir: config.logDir,
    resources: [broker, postgres],
    recoveryIntervalMs: config.recoveryIntervalMs ?? 0,
    ...(config.orphanSafetyIntervalMs === undefined ? {} : { orphanSafetyIntervalMs: config.orphanSafetyIntervalMs }),
    ...(config.decisionRowRetentionMs === undefined ? {} : { decisionRowRetentionMs: config.decisionRowRetentionMs }),
    ...(config.phaseTwo === undefined ? {} : { phaseTwo: config.phaseTwo }),
    phaseTwoWaitMs: config.phaseTwoWaitMs ?? 2000,
    phaseTwoRetry: { initialDelayMs: 50, maxDelayMs: 1000 },
    defaultTimeoutMs: config.transactionTimeoutMs ?? 20_000,
  });
  emit({ ready: process.pid, resources: tm.resources().map((r) => r.resourceId) });
  try {
    if (config.mode === 'run') {
      await placeOrders(tm, producer, postgres);
    } else if (config.mode === 'recover') {
      const clean = await recoverUntilClean(tm);
      const metrics: TransactionManagerMetrics = tm.metrics();
      emit({ recovered: clean, metrics });
      if (!clean) exitCode = 3;
    } else {
      while (!stopping) await sleep(50);
    }
  } finally {
    await tm.close();
  }
} catch (error) {
  emit({ fatal: messageOf(error), name: error instanceof Error ? error.constructor.name : typeof error });
  exitCode = 2;
} finally {
  await factory.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
}
emit({ exit: exitCode });
process.exit(exitCode);
