/**
 * Child process of the consume-transform-produce crash test
 * (test/integration/xa-consume-transform-produce.test.ts): a real consumer, a real transaction
 * manager with a file coordinator log, a real producer, a real pg Pool — running
 * `xaTransform` on the input topic until it is killed (SIGKILL from the test, or by itself at a
 * manager crash point armed with `METAQ_XA_CRASH_POINT`) or stopped (SIGTERM: graceful close).
 *
 *   node --import tsx test/helpers/xa-ctp-worker.ts '<CtpWorkerConfig as JSON>'
 *
 * The handler, for input message `seq`: inserts one row `(seq, …)` through the branch, sends one
 * output message `ctp-out-<seq>` through the transaction; then it may throw (so that only the
 * rollback removes the row and the message): seqs divisible by {@link CTP_POISON_EVERY} on every
 * fetch-path attempt (they succeed only when re-delivered from the recover table), seqs divisible
 * by {@link CTP_FLAKY_EVERY} on their first attempt in this process. Every fourth message sleeps
 * a little inside the transaction, to widen the window in which a SIGKILL lands mid-transaction.
 *
 * stdout carries {@link CtpWorkerLine}s (synchronous writes: a line printed before a crash
 * arrives); logs go to stderr at `warn` (the test counts the "skipped" warnings).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { setRootLogger } from '../../src/common/logger.js';
import {
  createBrokerResource,
  createMessageSessionFactory,
  createPostgresOffsetStorage,
  createPostgresResource,
  createTransactionManager,
  xaTransform,
  type MessageConsumer,
  type TransactionManager,
} from '../../src/index.js';
import { seqOf } from './exactly-once-workload.js';
import { CTP_FLAKY_EVERY, CTP_POISON_EVERY, outputBody, rowsTableDdl, type CtpWorkerConfig, type CtpWorkerLine } from './xa-ctp-protocol.js';

setRootLogger(pino({ name: 'xa-ctp-worker', level: process.env['METAQ_LOG_LEVEL'] ?? 'warn' }, pino.destination({ dest: 2, sync: true })));

function emit(line: CtpWorkerLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const raw = process.argv[2];
if (raw === undefined) {
  emit({ fatal: 'no configuration: pass the CtpWorkerConfig JSON as the first argument' });
  process.exit(2);
}
const config = JSON.parse(raw) as CtpWorkerConfig;

const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10, connectionTimeoutMillis: 5000 });
pool.on('error', () => undefined);
const factory = createMessageSessionFactory({
  serverUrl: config.brokerUrl,
  partitions: { [config.output]: config.outputPartitions },
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
});
const storage = createPostgresOffsetStorage({ pool, table: config.offsetsTable });
let tm: TransactionManager | undefined;
let consumer: MessageConsumer | undefined;
let recovering = true;

async function shutdown(code: number): Promise<never> {
  recovering = false;
  await consumer?.close().catch(() => undefined);
  await tm?.close().catch(() => undefined);
  await factory.close().catch(() => undefined);
  await storage.close().catch(() => undefined);
  await pool.end().catch(() => undefined);
  emit({ exit: code });
  process.exit(code);
}

process.on('SIGTERM', () => {
  void shutdown(0);
});

try {
  await pool.query(rowsTableDdl(config.rowsTable));
  const database = createPostgresResource({ pool, name: 'ctp' });
  await database.init();
  const producer = factory.createProducer();
  await producer.publish(config.output);
  const broker = createBrokerResource(producer, { brokerUrl: config.brokerUrl, uniqueQualifier: config.uniqueQualifier, requestTimeoutMs: 3000 });
  tm = await createTransactionManager({
    nodeName: config.nodeName,
    logDir: config.logDir,
    resources: [broker, database],
    recoverOnStart: !config.recoverAfterSubscribe,
    recoveryIntervalMs: config.recoverAfterSubscribe ? 0 : config.recoveryIntervalMs,
    orphanSafetyIntervalMs: config.orphanSafetyIntervalMs,
    phaseTwoWaitMs: 2000,
    phaseTwoRetry: { initialDelayMs: 50, maxDelayMs: 500 },
    defaultTimeoutMs: 15_000,
  });

  const attempts = new Map<number, number>();
  consumer = factory.createConsumer(
    { group: config.group, maxFetchRetries: 2, maxDelayFetchTimeInMills: 50, commitOffsetPeriodInMills: 20, recoverMessageIntervalInMills: 200 },
    storage,
  );
  consumer.subscribe(
    config.input,
    { maxSize: 16 * 1024 },
    xaTransform(tm, { storage }, async (message, tx, db) => {
      const seq = seqOf(message);
      const attempt = (attempts.get(seq) ?? 0) + 1;
      attempts.set(seq, attempt);
      await db.query(`INSERT INTO ${config.rowsTable} (seq, "partition", "offset", recovered, pid) VALUES ($1, $2, $3, $4, $5)`, [
        seq,
        message.partition,
        String(message.offset),
        message.recovered,
        process.pid,
      ]);
      await tx.send(producer, { topic: config.output, data: outputBody(seq) });
      if (seq % CTP_POISON_EVERY === 0 && !message.recovered) throw new Error(`planned failure of poison message ${seq}`);
      if (seq % CTP_FLAKY_EVERY === 0 && attempt === 1) throw new Error(`planned first-attempt failure of message ${seq}`);
      if (seq % 4 === 0) await sleep(3);
    }),
  );
  await consumer.completeSubscribe();
  if (config.recoverAfterSubscribe) {
    // The offsets are loaded: what recovery commits now, the consumer sees only inside its transactions.
    const manager = tm;
    void (async () => {
      while (recovering) {
        await manager.recover().catch(() => undefined);
        await sleep(config.recoveryIntervalMs);
      }
    })();
  }
  emit({ ready: process.pid });
} catch (error) {
  emit({ fatal: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  await shutdown(2);
}
