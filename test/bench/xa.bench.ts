/**
 * `npm run bench:xa`: XA transactions per second (one row INSERTed into PostgreSQL + one 1 KiB
 * message sent to the broker, committed atomically by the transaction manager with two-phase
 * commit) with 1 and 8 concurrent clients, beside what PostgreSQL itself does in the same run on
 * the same machine:
 *
 * - its own two-phase commit (`BEGIN; INSERT; PREPARE TRANSACTION; COMMIT PREPARED`), the
 *   baseline of each figure;
 * - its single-phase commit (`BEGIN; INSERT; COMMIT`), reported for reference;
 * - the PostgreSQL part of a decision-row transaction alone (`BEGIN; INSERT; INSERT decision
 *   row; COMMIT`), reported for reference: the ceiling of the decision-row ratios.
 *
 * | figure              | target (2 cores)                              |
 * |---------------------|-----------------------------------------------|
 * | xa.clients1         | >= 0.75 x PostgreSQL's own 2PC rate, 1 client |
 * | xa.clients8         | >= 0.75 x PostgreSQL's own 2PC rate, 8 clients |
 * | xa-decision-row.clients1/8 | the same transaction in decision-row mode (PostgreSQL commits last, one-phase, with the decision row; no PREPARE TRANSACTION, no coordinator log record), same baseline |
 * | xa-decision-row-background.clients1/8 | decision-row mode with the manager's `phaseTwo: 'background'`: `commit()` resolves once PostgreSQL committed the decision, the broker's COMMIT follows; the rate counts the time until the last phase two ended, same baseline |
 *
 * The application's loop: `enlistPostgres`, the INSERT, `tx.send` without awaiting it (the
 * commit covers it), `commit()`.
 *
 * PostgreSQL and the broker are private instances started for the run (PostgreSQL with `fsync`,
 * `synchronous_commit` and `full_page_writes` on, defaults
 * otherwise; the broker with `unflushThreshold=1000`, so the broker's cost is its transaction log).
 * Every figure, the baselines included, is measured after a warm-up of the same loop that is not
 * counted (see bench:tx).
 * For every figure and baseline the run also prints the CPU per transaction of each process
 * during the measured period (this process, which runs the manager, the pg client and the
 * producer; the broker; PostgreSQL's postmaster and backends; from `/proc`, process-cpu.ts) beside
 * what the cores allow per transaction at the target rate: with 8 clients that is the bound.
 * Environment: METAQ_BENCH_SECONDS (per figure, default 5), METAQ_BENCH_WARMUP_SECONDS (default 2), METAQ_BENCH_DIR; XA_PROBE=1 also prints
 * where a transaction spends its time (enlist, query, send, prepare + decision, phase two).
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createMessageSessionFactory } from '../../src/index.js';
import { createPostgresResource, createTransactionManager } from '../../src/xa/index.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker } from '../helpers/broker-process.js';
import { startPostgres } from '../helpers/postgres-server.js';
import { formatBenchLine, measureConcurrentRate, type BenchFigure } from './bench-report.js';
import { formatCpuPerOperation, mainThreadCpuSeconds, ownCpuSeconds, processCpuSeconds, processTreeCpuSeconds, startCpuWindow, type CpuClocks } from './process-cpu.js';

const SECONDS = Number(process.env['METAQ_BENCH_SECONDS'] ?? 5);
const WARMUP_SECONDS = Number(process.env['METAQ_BENCH_WARMUP_SECONDS'] ?? 2);
const root = fs.mkdtempSync(join(process.env['METAQ_BENCH_DIR'] ?? os.tmpdir(), 'metaq-bench-xa-'));
const data = Buffer.alloc(1024, 7);

/** A measured rate, with the CPU each process used per operation during the measured period. */
interface Measured {
  readonly rate: number;
  readonly cpu: Readonly<Record<string, number>>;
  /** CPU per operation of the event-loop (main) threads alone, µs, where measured. */
  readonly loops?: Readonly<Record<string, number>>;
}

/** What {@link rate} measures besides the operations and the CPU of its clocks. */
interface RateOptions {
  /** Event-loop (main-thread) clocks, reported apart from the process clocks. */
  readonly loops?: CpuClocks;
  /**
   * Waits for work the operations left running (background phase twos): after the warm-up, so
   * the measured period starts clean, and at its end, whose time and CPU count too.
   */
  readonly settle?: () => Promise<void>;
}

/**
 * Operations per second of `clients` concurrent loops of `step`, for SECONDS, after a warm-up of
 * WARMUP_SECONDS that is not counted (unoptimised JavaScript in the manager and the broker, and
 * fresh files, are not the steady state; bench:tx explains), with the CPU of `clocks` per
 * operation over the measured period.
 */
async function rate(clients: number, step: () => Promise<void>, clocks: CpuClocks, options: RateOptions = {}): Promise<Measured> {
  await measureConcurrentRate(WARMUP_SECONDS, clients, step);
  await options.settle?.();
  let done = 0;
  const window = startCpuWindow(clocks);
  const loops = options.loops === undefined ? undefined : startCpuWindow(options.loops);
  const started = process.hrtime.bigint();
  await measureConcurrentRate(SECONDS, clients, async () => {
    await step();
    done += 1;
  });
  await options.settle?.();
  const value = done / (Number(process.hrtime.bigint() - started) / 1e9);
  return { rate: value, cpu: window.end(done), ...(loops === undefined ? {} : { loops: loops.end(done) }) };
}

let nextId = 0;
const PROBE = process.env['XA_PROBE'] === '1';
const probe = { enlist: 0, query: 0, send: 0, commit: 0, n: 0, prep: 0, p2: 0 };

/**
 * Transactions per second of `clients` loops of `BEGIN; INSERT; <finish>` on pooled connections,
 * PostgreSQL alone: the baselines below differ only in how they end the transaction.
 */
async function pgRate(pool: pg.Pool, clients: number, clocks: CpuClocks, finish: (db: pg.PoolClient) => Promise<unknown>): Promise<Measured> {
  return rate(clients, async () => {
    const db = await pool.connect();
    try {
      await db.query('BEGIN');
      await db.query('INSERT INTO bench_orders(id, body) VALUES ($1, $2)', [nextId++, 'order']);
      await finish(db);
    } finally {
      db.release();
    }
  }, clocks);
}

/** PostgreSQL's own two-phase commit: the baseline of every figure. */
const pgTwoPhaseRate = (pool: pg.Pool, clients: number, clocks: CpuClocks): Promise<Measured> =>
  pgRate(pool, clients, clocks, async (db) => {
    const gid = `bench_${process.pid}_${nextId++}`;
    await db.query(`PREPARE TRANSACTION '${gid}'`);
    await db.query(`COMMIT PREPARED '${gid}'`);
  });

/** PostgreSQL's single-phase commit, reported for reference. */
const pgOnePhaseRate = (pool: pg.Pool, clients: number, clocks: CpuClocks): Promise<Measured> => pgRate(pool, clients, clocks, (db) => db.query('COMMIT'));

/**
 * The PostgreSQL work of a decision-row transaction alone, without the broker and the manager:
 * `BEGIN; INSERT; INSERT decision row; COMMIT` (the decision and COMMIT in one round trip, as
 * the resource sends them). Reported for reference: every decision-row transaction does at
 * least this plus a forced broker round trip (END + PREPARE), so its ratio to PostgreSQL's own
 * 2PC can never exceed this rate's ratio minus what that broker round trip costs.
 */
const pgDecisionPartRate = (pool: pg.Pool, clients: number, clocks: CpuClocks): Promise<Measured> =>
  pgRate(pool, clients, clocks, (db) => db.query(`INSERT INTO bench_decisions(gtrid, outcome) VALUES ('bench-${nextId++}', 'C'); COMMIT`));

async function main(): Promise<void> {
  console.log(`XA benchmark: 1 row + one 1 KiB message per transaction, ${SECONDS}s per figure, ${os.cpus().length} CPUs, dir ${root}`);
  // fsync on: the baseline must pay for durability as the manager, the broker and its log do.
  const postgres = await startPostgres({ maxPreparedTransactions: 64, fsync: true });
  const brokerDir = join(root, 'broker');
  fs.mkdirSync(brokerDir);
  const ini = join(brokerDir, 'server.ini');
  fs.writeFileSync(ini, testBrokerIni(join(brokerDir, 'data'), { system: { unflushThreshold: 1000, unflushInterval: 1000 }, topics: '[topic=orders]\nnumPartitions=8' }));
  const broker = spawnBroker(['start', '-c', ini], {}, { built: true });
  const pool = new pg.Pool({ connectionString: postgres.connectionString, max: 16 });
  const factory = createMessageSessionFactory({ serverUrl: `meta://127.0.0.1:${Number((await broker.waitForLog('broker started'))['port'])}` });
  try {
    await pool.query('CREATE TABLE bench_orders (id bigint PRIMARY KEY, body text)');
    await pool.query('CREATE TABLE bench_decisions (gtrid text PRIMARY KEY, outcome char(1) NOT NULL)');
    const producer = factory.createProducer();
    await producer.publish('orders');
    const resource = createPostgresResource({ pool, name: 'bench' });
    await resource.init();
    // Decision-row mode (docs/xa.md): PostgreSQL commits last, one-phase, with the decision row.
    const decisionResource = createPostgresResource({ pool, name: 'bench-decision-row', mode: 'decision-row' });
    await decisionResource.init();
    const tm = await createTransactionManager({ nodeName: 'bench-tm', logDir: join(root, 'tm-log'), resources: [resource, decisionResource], recoveryIntervalMs: 0 });
    const background = await createTransactionManager({
      nodeName: 'bench-tm-background',
      logDir: join(root, 'tm-background-log'),
      resources: [decisionResource],
      recoveryIntervalMs: 0,
      phaseTwo: 'background',
    });
    /**
     * XA transactions per second (one row + one message) with the PostgreSQL resource `db`.
     * With a background phase two, the time until every phase two ended counts too.
     */
    const drained = async (manager: typeof tm): Promise<void> => {
      while (manager.metrics().committingWithoutEnd > 0 || manager.metrics().inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    };
    const postgresCpu = (): number => processTreeCpuSeconds(postgres.pid ?? 0);
    const pgClocks: CpuClocks = { 'this process (pg client)': ownCpuSeconds, PostgreSQL: postgresCpu };
    const brokerPid = broker.child.pid ?? 0;
    const xaClocks: CpuClocks = { 'this process (manager, pg client, producer)': ownCpuSeconds, broker: () => processCpuSeconds(brokerPid), PostgreSQL: postgresCpu };
    const loopClocks: CpuClocks = { 'this process': () => mainThreadCpuSeconds(process.pid), broker: () => mainThreadCpuSeconds(brokerPid) };
    const resetProbe = (): void => {
      Object.assign(probe, { enlist: 0, query: 0, send: 0, commit: 0, n: 0, prep: 0, p2: 0 });
    };
    const xaRate = async (db: typeof resource, clients: number, manager = tm): Promise<Measured> => {
      const step = async (): Promise<void> => {
        const id = nextId++;
        const t0 = performance.now();
        const tx = manager.begin();
        const marks = new Map<string, number>();
        if (PROBE) tx.onTransition((t) => marks.set(t.to, performance.now()));
        const branch = await tx.enlistPostgres(db);
        const t1 = performance.now();
        await branch.query('INSERT INTO bench_orders(id, body) VALUES ($1, $2)', [id, 'order']);
        const t2 = performance.now();
        // Not awaited, as a Kafka user writes it: the commit is queued behind the put and covers
        // it (BEGIN, the put, END and PREPARE in one round trip; docs/xa.md).
        const sent = tx.send(producer, { topic: 'orders', data });
        const t3 = performance.now();
        await tx.commit();
        await sent;
        const t4 = performance.now();
        if (PROBE) { probe.enlist += t1 - t0; probe.query += t2 - t1; probe.send += t3 - t2; probe.commit += t4 - t3; probe.n++; probe.prep += (marks.get('COMMITTING') ?? t4) - t3; probe.p2 += (marks.get('ENDED') ?? t4) - (marks.get('COMMITTING') ?? t4); }
      };
      // With a background phase two, the time (and the CPU) until every phase two ended counts
      // too; the warm-up's finish before the measured period starts (and the probe restarts).
      let warm = false;
      const settle = async (): Promise<void> => {
        await drained(manager);
        if (!warm) resetProbe();
        warm = true;
      };
      const measured = await rate(clients, step, xaClocks, { loops: loopClocks, settle });
      if (PROBE) { console.log(`probe ${db.resourceId} ${clients}: ms/tx enlist ${(probe.enlist / probe.n).toFixed(2)} query ${(probe.query / probe.n).toFixed(2)} send ${(probe.send / probe.n).toFixed(2)} commit ${(probe.commit / probe.n).toFixed(2)} (to the decision ${(probe.prep / probe.n).toFixed(2)}, phase two ${(probe.p2 / probe.n).toFixed(2)})`); resetProbe(); }
      return measured;
    };
    const figures: BenchFigure[] = [];
    const reference: string[] = [];
    const cpuLines: string[] = [];
    try {
      for (const clients of [1, 8]) {
        const twoPhase = await pgTwoPhaseRate(pool, clients, pgClocks);
        const onePhase = await pgOnePhaseRate(pool, clients, pgClocks);
        const decisionPart = await pgDecisionPartRate(pool, clients, pgClocks);
        const measured: [string, Measured][] = [
          [`xa.clients${clients}`, await xaRate(resource, clients)],
          [`xa-decision-row.clients${clients}`, await xaRate(decisionResource, clients)],
          [`xa-decision-row-background.clients${clients}`, await xaRate(decisionResource, clients, background)],
        ];
        for (const [name, m] of measured) figures.push({ name, value: m.rate, unit: 'tx/s', baseline: twoPhase.rate, target: '>= 0.75 x PostgreSQL 2PC' });
        reference.push(
          `  PostgreSQL ${clients} client(s): 2PC ${twoPhase.rate.toFixed(0)} tx/s, 1PC ${onePhase.rate.toFixed(0)} tx/s, ` +
            `a decision-row transaction's PostgreSQL part alone ${decisionPart.rate.toFixed(0)} tx/s (${(decisionPart.rate / twoPhase.rate).toFixed(2)} x 2PC: the ceiling of the decision-row ratios before any broker work)`,
        );
        // Why: with 8 clients the figures are bound by the machine's cores, not by waiting; the
        // CPU each process spends per transaction, against what the cores allow at the target
        // rate, shows whether the target is reachable on this machine at all.
        const budget = (os.cpus().length * 1e6) / (0.75 * twoPhase.rate);
        cpuLines.push(
          `  ${clients} client(s), CPU per transaction: at the target (0.75 x 2PC = ${(0.75 * twoPhase.rate).toFixed(0)} tx/s) ${os.cpus().length} cores allow ${budget.toFixed(0)} µs` +
            (clients === 1 ? ' (one client waits more than it computes: not the bound there)' : ''),
          `    PostgreSQL's own 2PC: ${formatCpuPerOperation(twoPhase.cpu)}`,
          `    a decision-row transaction's PostgreSQL part alone: ${formatCpuPerOperation(decisionPart.cpu)}`,
          ...measured.map(
            ([name, m]) =>
              `    ${name}: ${formatCpuPerOperation(m.cpu)}; event-loop threads: ` +
              Object.entries(m.loops ?? {})
                .map(([who, us]) => `${who} ${us.toFixed(0)} µs (at most ${(1e6 / us).toFixed(0)} tx/s)`)
                .join(', '),
          ),
        );
      }
      const m = tm.metrics();
      console.log(`  manager: ${JSON.stringify({ commits: m.commits, lastResourceCommits: m.lastResourceCommits, rollbacks: m.rollbacks, onePhaseCommits: m.onePhaseCommits })}`);
    } finally {
      await tm.close();
      await background.close();
    }
    for (const line of reference) console.log(line);
    for (const line of cpuLines) console.log(line);
    for (const f of figures) console.log(`  target ${f.name}: ${f.target ?? ''}; baseline = PostgreSQL's own 2PC (BEGIN, INSERT, PREPARE TRANSACTION, COMMIT PREPARED)`);
    for (const f of figures) console.log(formatBenchLine(f));
  } finally {
    await factory.close();
    await pool.end();
    broker.child.kill('SIGTERM');
    await broker.exited;
    await postgres.stop();
  }
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
