/**
 * A consumer in its own process for the cluster tests (cluster.ts spawns it, so that SIGKILL
 * and SIGSTOP hit a real process with its own ZooKeeper session and PostgreSQL connections).
 *
 * It creates a session factory on ZooKeeper (`zkConnect`, `zkRoot`, `zkSessionTimeoutMs`), joins
 * its group through the ordinary `createConsumer` / `createBroadcastConsumer` path and reports
 * over IPC (cluster-protocol.ts): `ready`, every completed rebalance with the partitions it now
 * fetches (taken from the group member's `rebalance complete` log line), in `report` mode every
 * message its listener finished with, and `closed` after a graceful close (parent's `close`).
 * All log lines go to `logFile`. It exits by itself when the parent goes away.
 *
 * argv[2]: the {@link ConsumerChildConfig} as JSON.
 */
import fs from 'node:fs';
import pg from 'pg';
import { pino } from 'pino';
import { setRootLogger } from '../../src/common/logger.js';
import {
  createLocalOffsetStorage,
  createMessageSessionFactory,
  createPostgresOffsetStorage,
  exactlyOnce,
  type ConsumedMessage,
  type ConsumerConfig,
  type MessageConsumer,
  type OffsetStorage,
} from '../../src/index.js';
import type { ChildReport, ConsumerChildConfig, ParentCommand, ReportedMessage } from './cluster-protocol.js';
import { handleTestMessage } from './exactly-once-workload.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ConsumerChildConfig;
if (typeof process.send !== 'function') throw new Error('cluster-consumer-child must be spawned with an IPC channel');
const send = (report: ChildReport): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected) {
      resolve();
      return;
    }
    process.send?.(report, undefined, {}, () => resolve());
  });

// Parent gone (test process killed or crashed): do not linger as an orphan consumer.
process.on('disconnect', () => process.exit(1));

const logFd = fs.openSync(config.logFile, 'a');
setRootLogger(
  pino(
    { name: 'metaq', level: 'info', base: { pid: process.pid, consumer: config.name } },
    {
      write(line: string): void {
        fs.writeSync(logFd, line);
        let entry: { msg?: unknown; level?: unknown; assignment?: unknown; durationMs?: unknown; passes?: unknown; component?: unknown };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          return;
        }
        if (entry.msg === 'rebalance complete' && typeof entry.assignment === 'object' && entry.assignment !== null) {
          const assignment = (entry.assignment as Record<string, unknown>)[config.topic];
          void send({
            type: 'rebalanced',
            assignment: Array.isArray(assignment) ? assignment.map(String) : [],
            durationMs: Number(entry.durationMs),
            passes: Number(entry.passes),
          });
        } else if (typeof entry.level === 'number' && entry.level >= 50) {
          void send({ type: 'error-log', line: line.trim() });
        }
      },
    },
  ),
);

const pool = config.storage.kind === 'postgres' ? new pg.Pool({ connectionString: config.storage.connectionString, max: 10 }) : undefined;
const factory = createMessageSessionFactory({ zkConnect: config.zkConnect, zkRoot: config.zkRoot, zkSessionTimeoutMs: config.zkSessionTimeoutMs });

let storage: OffsetStorage | undefined;
if (config.storage.kind === 'postgres' && pool !== undefined) storage = createPostgresOffsetStorage({ pool, table: config.storage.table });
else if (config.storage.kind === 'local') storage = createLocalOffsetStorage(config.storage.file);

const consumerConfig: ConsumerConfig = {
  group: config.group,
  consumerId: config.name,
  maxDelayFetchTimeInMills: 100,
  commitOffsetPeriodInMills: 500,
  maxFetchRetries: 2,
  recoverMessageIntervalInMills: 200,
  recoverPath: config.recoverPath,
};
if (config.broadcastId !== undefined && storage === undefined) throw new Error('a broadcast child needs an explicit storage (the default is ~/.meta_offsets)');
const consumer: MessageConsumer =
  config.broadcastId !== undefined ? factory.createBroadcastConsumer({ ...consumerConfig, broadcastId: config.broadcastId }, storage) : factory.createConsumer(consumerConfig, storage);

// ---- report mode: a listener that reports what it finished with ----
let batch: ReportedMessage[] = [];
let handled = 0;
let openGate: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  openGate = resolve;
});
const flush = async (): Promise<void> => {
  if (batch.length === 0) return;
  const messages = batch;
  batch = [];
  await send({ type: 'consumed', messages });
};
const flushTimer = setInterval(() => void flush(), 50);

const reportingListener = async (message: ConsumedMessage): Promise<void> => {
  if (config.pauseAfter !== undefined && handled >= config.pauseAfter) await gate;
  handled++;
  batch.push({ id: message.id.toString(), partition: message.partition, offset: message.offset, data: message.data.toString('utf8'), at: performance.timeOrigin + performance.now() });
};

if (config.mode === 'exactly-once') {
  if (config.storage.kind !== 'postgres' || storage === undefined || config.rowsTable === undefined) throw new Error('exactly-once mode needs a postgres storage and a rowsTable');
  const rowsTable = config.rowsTable;
  const attempts = new Map<number, number>();
  const pgStorage = storage as ReturnType<typeof createPostgresOffsetStorage>;
  consumer.subscribe(
    config.topic,
    { maxSize: 64 * 1024 },
    exactlyOnce(pgStorage, (message, db) => handleTestMessage(message, db, rowsTable, attempts)),
  );
} else {
  consumer.subscribe(config.topic, { maxSize: 64 * 1024 }, reportingListener);
}

await consumer.completeSubscribe();
await send({ type: 'ready', pid: process.pid });

process.on('message', (command: ParentCommand) => {
  if (command.type !== 'close') return;
  void (async () => {
    openGate();
    await consumer.close();
    await factory.close();
    await storage?.close();
    await pool?.end();
    clearInterval(flushTimer);
    await flush();
    await send({ type: 'closed' });
    fs.closeSync(logFd);
    process.exit(0);
  })();
});
