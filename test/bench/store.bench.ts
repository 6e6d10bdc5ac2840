/**
 * `npm run bench:store`: append throughput of the message store for 1 KiB records, each figure
 * beside a raw-`fs` baseline measured in the same run on the same disk:
 *
 * | figure                              | baseline                                  | target         |
 * |-------------------------------------|-------------------------------------------|----------------|
 * | group commit, 1 append in flight    | raw write + fdatasync per record          | ratio >= 0.8   |
 * | group commit, 256 appends in flight | raw writev of 256 records + fdatasync     | ratio >= 0.5   |
 * | unflushThreshold=1000, 256 in flight| raw writev of 256 records, no sync        | >= 300k rec/s  |
 * | unflushThreshold=1000, 1 in flight  | raw write of 1 record, no sync            | (reported)     |
 *
 * Each figure is the median of 3 rounds, each round measuring the baseline and then the store
 * for METAQ_BENCH_SECONDS (default 2), so slow drifts of the disk hit both alike. Files are
 * synced and removed after every run, so one run's dirty pages are not written back during the
 * next. Records carry a precomputed checksum, as they do in the broker (which computes it once,
 * to verify the producer's), so the store figure measures the store, not CRC-32.
 *
 * Environment: METAQ_BENCH_SECONDS, METAQ_BENCH_ROUNDS (default 3), METAQ_BENCH_DIR (default: OS tmp).
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { componentLogger } from '../../src/common/logger.js';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import { PartitionLog } from '../../src/store/partition-log.js';
import { encodeRecord, messageChecksum } from '../../src/protocol/record.js';
import { formatBenchLine, measureRate, type BenchFigure } from './bench-report.js';

const SECONDS = Number(process.env['METAQ_BENCH_SECONDS'] ?? 2);
const ROUNDS = Number(process.env['METAQ_BENCH_ROUNDS'] ?? 3);
const RECORD_DATA = 1024;
const root = fs.mkdtempSync(join(process.env['METAQ_BENCH_DIR'] ?? os.tmpdir(), 'metaq-bench-store-'));
const data = Buffer.alloc(RECORD_DATA, 7);
const checksum = messageChecksum(data);
const rawRecord = encodeRecord({ id: 1n, flag: 0, data, checksum });

let dirCounter = 0;
function freshDir(): string {
  const dir = join(root, String(dirCounter++));
  fs.mkdirSync(dir);
  return dir;
}

/** Raw baseline: writev `batch` encoded records at the end of a file, optionally fdatasync. */
async function rawRate(batch: number, sync: boolean): Promise<number> {
  const dir = freshDir();
  const fd = fs.openSync(join(dir, 'raw'), 'w');
  const buffers = Array.from({ length: batch }, () => rawRecord);
  let position = 0;
  try {
    return await measureRate(SECONDS, async () => {
      await writevAll(fd, buffers, position);
      position += batch * rawRecord.length;
      if (sync) await fdatasync(fd);
      return batch;
    });
  } finally {
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Store figure: `inFlight` concurrent appenders on one partition log. */
async function storeRate(unflushThreshold: number, inFlight: number): Promise<number> {
  const dir = freshDir();
  const log = await PartitionLog.open({
    topic: 'bench',
    partition: 0,
    dir,
    maxSegmentSize: 1024 * 1024 * 1024,
    maxRecordDataLength: 1 << 20,
    unflushThreshold,
    unflushInterval: 10_000,
    logger: componentLogger('bench'),
  });
  let id = 0n;
  try {
    const deadline = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
    const start = process.hrtime.bigint();
    let appended = 0;
    const appender = async (): Promise<void> => {
      while (process.hrtime.bigint() < deadline) {
        await log.append({ id: ++id, flag: 0, data, checksum });
        appended += 1;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, appender));
    return appended / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Median of ROUNDS interleaved (baseline, store) pairs. */
async function figure(name: string, unit: string, target: string | undefined, baseline: () => Promise<number>, store: () => Promise<number>): Promise<BenchFigure> {
  const baselines: number[] = [];
  const values: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    baselines.push(await baseline());
    values.push(await store());
  }
  const result: BenchFigure = { name, value: median(values), unit, baseline: median(baselines), ...(target === undefined ? {} : { target }) };
  console.log(`  ${name}: store ${values.map((v) => v.toFixed(0)).join(' ')}; baseline ${baselines.map((v) => v.toFixed(0)).join(' ')}`);
  return result;
}

async function main(): Promise<void> {
  console.log(`store benchmark: 1 KiB records, ${ROUNDS} rounds x ${SECONDS}s per figure, dir ${root}, ${os.cpus().length} CPUs`);
  const figures = [
    await figure('store.append.groupcommit.inflight1', 'rec/s', 'ratio >= 0.8 (raw write+fdatasync per record)', () => rawRate(1, true), () => storeRate(0, 1)),
    await figure('store.append.groupcommit.inflight256', 'rec/s', 'ratio >= 0.5 (raw writev 256 + fdatasync)', () => rawRate(256, true), () => storeRate(0, 256)),
    await figure('store.append.threshold1000.inflight256', 'rec/s', '>= 300000 rec/s (baseline: raw writev 256, no sync)', () => rawRate(256, false), () => storeRate(1000, 256)),
    await figure('store.append.threshold1000.inflight1', 'rec/s', undefined, () => rawRate(1, false), () => storeRate(1000, 1)),
  ];
  for (const f of figures) console.log(`  target ${f.name}: ${f.target ?? '(reported only)'}`);
  for (const f of figures) console.log(formatBenchLine(f));
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
