/**
 * `npm run bench:tx`: local transactions per second (BEGIN + one 1 KiB put + COMMIT_ONE_PHASE,
 * written together as the client library sends them when the application does not await the
 * send before `commit()`: one round trip) with 1 and 8 concurrent clients,
 * for each `flushTxLogAtCommit` mode, beside the raw one-record-per-fdatasync rate of the same
 * disk measured in the same run.
 *
 * The broker runs with `unflushThreshold=1000`, so the figure is the cost of the transaction log
 * (with group-commit partitions every commit also waits for the data's own fdatasync).
 *
 * | figure                   | target (2 cores)                                   |
 * |--------------------------|----------------------------------------------------|
 * | tx.local.mode1.clients1  | >= 1,800 tx/s                                      |
 * | tx.local.mode1.clients8  | >= 9,000 tx/s (group commit of the journal)        |
 * | tx.local.mode2.clientsN  | >= 3 x mode 1                                      |
 *
 * Environment: METAQ_BENCH_SECONDS (per figure, default 3), METAQ_BENCH_DIR, METAQ_BENCH_MODES
 * (the `flushTxLogAtCommit` modes to measure, default `1,2,0`).
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker } from '../helpers/broker-process.js';
import { formatBenchLine, measureRate, type BenchFigure } from './bench-report.js';
import { RawBenchConnection } from './raw-baseline-client.js';

const SECONDS = Number(process.env['METAQ_BENCH_SECONDS'] ?? 3);
const root = fs.mkdtempSync(join(process.env['METAQ_BENCH_DIR'] ?? os.tmpdir(), 'metaq-bench-tx-'));
const data = Buffer.alloc(1024, 5);
const EMPTY = Buffer.alloc(0);

async function rawSyncRate(): Promise<number> {
  const fd = fs.openSync(join(root, 'raw'), 'w');
  const record = Buffer.alloc(1044, 1);
  let position = 0;
  try {
    return await measureRate(SECONDS, async () => {
      await writevAll(fd, [record], position);
      position += record.length;
      await fdatasync(fd);
      return 1;
    });
  } finally {
    fs.closeSync(fd);
  }
}

async function txRate(mode: number, clients: number): Promise<number> {
  const dir = fs.mkdtempSync(join(root, `broker-${mode}-${clients}-`));
  const ini = join(dir, 'server.ini');
  fs.writeFileSync(
    ini,
    testBrokerIni(join(dir, 'data'), {
      system: { flushTxLogAtCommit: mode, unflushThreshold: 1000, unflushInterval: 1000, maxSegmentSize: '1024*1024*1024' },
      topics: '[topic=bench]\nnumPartitions=8',
    }),
  );
  const broker = spawnBroker(['start', '-c', ini], {}, { built: true });
  const port = Number((await broker.waitForLog('broker started'))['port']);
  try {
    const connections = await Promise.all(Array.from({ length: clients }, () => RawBenchConnection.connect(port)));
    let committed = 0;
    let failed = 0;
    const deadline = process.hrtime.bigint() + BigInt(SECONDS * 1e9);
    const start = process.hrtime.bigint();
    await Promise.all(
      connections.map(async (connection, client) => {
        let opaque = 0;
        for (let n = 1; process.hrtime.bigint() < deadline; n++) {
          const key = `TX:bench-${client}:${n}`;
          // BEGIN, the put and COMMIT queued together, as `tx.send(m); await tx.commit()` sends
          // them (producer-transaction.ts): the broker handles them in order, one round trip.
          const [o1, o2, o3] = [++opaque, ++opaque, ++opaque];
          const frames = Buffer.concat([
            Buffer.from(`transaction ${key} bench-${client} BEGIN 30 ${o1}\r\nput bench ${client % 8} ${data.length} 0 -1 ${key} ${o2}\r\n`),
            data,
            Buffer.from(`transaction ${key} bench-${client} COMMIT_ONE_PHASE ${o3}\r\n`),
          ]);
          const waits = [connection.request(EMPTY, o1), connection.request(EMPTY, o2), connection.request(frames, o3)];
          const [begun, , answer] = await Promise.all(waits);
          if (begun !== 0) throw new Error(`BEGIN refused (mode ${mode}, ${clients} clients)`);
          if (answer === 0) committed += 1;
          else failed += 1;
        }
      }),
    );
    const rate = committed / (Number(process.hrtime.bigint() - start) / 1e9);
    for (const c of connections) c.close();
    if (failed > 0) throw new Error(`${failed} commits failed (mode ${mode}, ${clients} clients)`);
    return rate;
  } finally {
    broker.child.kill('SIGTERM');
    await broker.exited;
  }
}

async function main(): Promise<void> {
  console.log(`transaction benchmark: BEGIN + 1 KiB put + COMMIT, ${SECONDS}s per figure, ${os.cpus().length} CPUs, dir ${root}`);
  const baseline = await rawSyncRate();
  const figures: BenchFigure[] = [];
  const rates = new Map<string, number>();
  for (const mode of (process.env['METAQ_BENCH_MODES'] ?? '1,2,0').split(',').map(Number)) {
    for (const clients of [1, 8]) {
      const rate = await txRate(mode, clients);
      rates.set(`${mode}-${clients}`, rate);
      const target =
        mode === 1 ? (clients === 1 ? '>= 1800 tx/s' : '>= 9000 tx/s') : mode === 2 ? `>= 3 x mode 1 (${(3 * (rates.get(`1-${clients}`) ?? 0)).toFixed(0)} tx/s)` : undefined;
      figures.push({ name: `tx.local.mode${mode}.clients${clients}`, value: rate, unit: 'tx/s', baseline, ...(target === undefined ? {} : { target }) });
    }
  }
  for (const f of figures) console.log(`  target ${f.name}: ${f.target ?? '(reported only)'}; baseline = raw write+fdatasync per record`);
  for (const f of figures) console.log(formatBenchLine(f));
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
