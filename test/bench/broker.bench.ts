/**
 * `npm run bench`: the broker end to end with the client library, 1 KiB messages, one producer
 * connection with up to 1000 sends in flight, one consumer. Each figure is printed beside a
 * raw-socket baseline measured in the same run against raw-baseline-server.ts (hand-parsed
 * frames, no store; for durable figures it appends with one writev + fdatasync per batch).
 *
 * | figure                          | baseline                                   | target            |
 * |---------------------------------|--------------------------------------------|-------------------|
 * | produce, unflushThreshold=0     | raw socket + raw group-commit fdatasync    | >= 50,000 msg/s   |
 * | produce, unflushThreshold=1000  | raw socket, ack only                       | >= 100,000 msg/s  |
 * | consume a 200k backlog          | raw socket gets of 1 MiB from memory       | >= 200,000 msg/s  |
 * | publish latency p50/p99, 2k/s   | raw socket ping-pong at the same rate      | p99 <= 1 ms async, <= 3 ms durable |
 *
 * Environment: METAQ_BENCH_MESSAGES (produce count, default 200000), METAQ_BENCH_DIR.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createLocalOffsetStorage, createMessageSessionFactory } from '../../src/client/index.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { formatBenchLine, type BenchFigure } from './bench-report.js';
import { percentile, RawBenchConnection, rawConsumeRate, rawProduceRate, rawPutFrame, steadyLatencies } from './raw-baseline-client.js';

const MESSAGES = Number(process.env['METAQ_BENCH_MESSAGES'] ?? 200_000);
const BACKLOG = 200_000;
const IN_FLIGHT = 1000;
const LATENCY_RATE = 2000;
const LATENCY_SECONDS = 3;
const RECORD = 20 + 1024;
const data = Buffer.alloc(1024, 7);
const root = fs.mkdtempSync(join(process.env['METAQ_BENCH_DIR'] ?? os.tmpdir(), 'metaq-bench-broker-'));
const RAW_SERVER = fileURLToPath(new URL('./raw-baseline-server.ts', import.meta.url));

async function startRawServer(mode: 'ack' | 'durable'): Promise<{ port: number; child: ChildProcess }> {
  const dir = fs.mkdtempSync(join(root, 'raw-'));
  const child = spawn(process.execPath, ['--import', 'tsx', RAW_SERVER, mode, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.stdout === null) throw new Error('no stdout');
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('port ')) return { port: Number(line.slice(5)), child };
  }
  throw new Error('raw baseline server did not start');
}

async function startBroker(unflushThreshold: number): Promise<{ broker: BrokerProcess; url: string }> {
  const dir = fs.mkdtempSync(join(root, 'broker-'));
  const ini = join(dir, 'server.ini');
  fs.writeFileSync(
    ini,
    testBrokerIni(join(dir, 'data'), {
      system: { unflushThreshold, unflushInterval: 1000, maxSegmentSize: '1024*1024*1024' },
      topics: '[topic=bench]\nnumPartitions=1',
    }),
  );
  const broker = spawnBroker(['start', '-c', ini], {}, { built: true });
  const started = await broker.waitForLog('broker started');
  return { broker, url: `meta://127.0.0.1:${String(started['port'])}` };
}

async function stopBroker(broker: BrokerProcess): Promise<void> {
  broker.child.kill('SIGTERM');
  await broker.exited;
}

/** Producer throughput with IN_FLIGHT sends outstanding on one connection. */
async function produceRate(url: string, count: number): Promise<number> {
  const factory = createMessageSessionFactory({ serverUrl: url, partitions: { bench: 1 } });
  try {
    const producer = factory.createProducer();
    await producer.publish('bench');
    await producer.send({ topic: 'bench', data }); // connect and warm up
    let next = 0;
    const start = process.hrtime.bigint();
    const worker = async (): Promise<void> => {
      while (next < count) {
        next += 1;
        await producer.send({ topic: 'bench', data });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return count / (Number(process.hrtime.bigint() - start) / 1e9);
  } finally {
    await factory.close();
  }
}

/** Consumer throughput over a backlog of `count` messages already stored. */
async function consumeRate(url: string, count: number): Promise<number> {
  const factory = createMessageSessionFactory({ serverUrl: url, partitions: { bench: 1 } });
  const dir = fs.mkdtempSync(join(root, 'consumer-'));
  try {
    const consumer = factory.createConsumer(
      { group: 'bench', recoverPath: join(dir, 'recover'), maxDelayFetchTimeInMills: 100 },
      createLocalOffsetStorage(join(dir, 'offsets.json')),
    );
    let received = 0;
    let start = 0n;
    const done = new Promise<void>((resolve) => {
      consumer.subscribe('bench', { maxSize: 1024 * 1024 }, () => {
        if (received === 0) start = process.hrtime.bigint();
        received += 1;
        if (received === count) resolve();
      });
    });
    await consumer.completeSubscribe();
    await done;
    const rate = (count - 1) / (Number(process.hrtime.bigint() - start) / 1e9);
    await consumer.close();
    return rate;
  } finally {
    await factory.close();
  }
}

async function latencies(url: string): Promise<number[]> {
  const factory = createMessageSessionFactory({ serverUrl: url, partitions: { bench: 1 } });
  try {
    const producer = factory.createProducer();
    await producer.publish('bench');
    await producer.send({ topic: 'bench', data });
    return await steadyLatencies(() => producer.send({ topic: 'bench', data }), LATENCY_RATE, LATENCY_SECONDS);
  } finally {
    await factory.close();
  }
}

async function rawLatencies(port: number): Promise<number[]> {
  const connection = await RawBenchConnection.connect(port);
  let opaque = 0;
  try {
    return await steadyLatencies(() => {
      opaque += 1;
      return connection.request(rawPutFrame('bench', 0, data, opaque), opaque);
    }, LATENCY_RATE, LATENCY_SECONDS);
  } finally {
    connection.close();
  }
}

async function main(): Promise<void> {
  console.log(`broker benchmark: 1 KiB messages, ${MESSAGES} produced per figure, ${IN_FLIGHT} in flight, ${os.cpus().length} CPUs, dir ${root}`);
  const figures: BenchFigure[] = [];
  const rawAck = await startRawServer('ack');
  const rawDurable = await startRawServer('durable');
  try {
    // Durable produce (group commit) and its latency.
    const rawDurableRate = await rawProduceRate(rawDurable.port, data, MESSAGES, IN_FLIGHT);
    const rawDurableLatency = await rawLatencies(rawDurable.port);
    const durable = await startBroker(0);
    const durableRate = await produceRate(durable.url, MESSAGES);
    const durableLatency = await latencies(durable.url);
    await stopBroker(durable.broker);
    figures.push({ name: 'broker.produce.durable', value: durableRate, unit: 'msg/s', baseline: rawDurableRate, target: '>= 50000 msg/s' });

    // Async-flush produce, latency, then consume its backlog.
    const rawAckRate = await rawProduceRate(rawAck.port, data, MESSAGES, IN_FLIGHT);
    const rawAckLatency = await rawLatencies(rawAck.port);
    const rawConsume = await rawConsumeRate(rawAck.port, BACKLOG, RECORD);
    const async = await startBroker(1000);
    const asyncRate = await produceRate(async.url, Math.max(MESSAGES, BACKLOG));
    const asyncLatency = await latencies(async.url);
    const consumed = await consumeRate(async.url, BACKLOG);
    await stopBroker(async.broker);
    figures.push({ name: 'broker.produce.async', value: asyncRate, unit: 'msg/s', baseline: rawAckRate, target: '>= 100000 msg/s' });
    figures.push({ name: 'broker.consume', value: consumed, unit: 'msg/s', baseline: rawConsume, target: '>= 200000 msg/s' });
    for (const [name, values, base, target] of [
      ['broker.latency.async.p50', asyncLatency, rawAckLatency, undefined],
      ['broker.latency.async.p99', asyncLatency, rawAckLatency, '<= 1 ms'],
      ['broker.latency.durable.p50', durableLatency, rawDurableLatency, undefined],
      ['broker.latency.durable.p99', durableLatency, rawDurableLatency, '<= 3 ms'],
    ] as const) {
      const p = name.endsWith('p50') ? 50 : 99;
      figures.push({ name, value: percentile(values, p), unit: 'ms', baseline: percentile(base, p), ...(target === undefined ? {} : { target }) });
    }
  } finally {
    rawAck.child.kill();
    rawDurable.child.kill();
  }
  for (const f of figures) console.log(`  target ${f.name}: ${f.target ?? '(reported only)'}`);
  for (const f of figures) console.log(formatBenchLine(f));
}

try {
  await main();
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
