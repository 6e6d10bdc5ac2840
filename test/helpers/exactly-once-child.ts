/**
 * Child process for the exactly-once crash test (client-postgres-offsets.test.ts): consumes a
 * topic in exactly-once mode into the table `<rows>` (one row per handled message, no unique
 * key, so that a duplicate would show), until it is killed. Prints `ready` once consuming.
 *
 * The handler writes its row first and then, for some messages, throws (so that a rollback
 * must undo the row): messages with `seq % 13 === 0` fail their first attempt in this process;
 * messages with `seq % 97 === 0` fail every fetch-path attempt and succeed only when
 * re-delivered from the recover table. Some handlers sleep inside the transaction, to widen
 * the window in which a SIGKILL lands between the handler's write and the COMMIT.
 *
 * argv: <brokerUrl> <connectionString> <topic> <group> <offsetsTable> <rowsTable>
 */
import pg from 'pg';
import { createMessageSessionFactory, createPostgresOffsetStorage, exactlyOnce } from '../../src/index.js';
import { handleTestMessage } from './exactly-once-workload.js';

const [brokerUrl, connectionString, topic, group, offsetsTable, rowsTable] = process.argv.slice(2);
if (brokerUrl === undefined || connectionString === undefined || topic === undefined || group === undefined || offsetsTable === undefined || rowsTable === undefined) {
  throw new Error('usage: exactly-once-child <brokerUrl> <connectionString> <topic> <group> <offsetsTable> <rowsTable>');
}

const pool = new pg.Pool({ connectionString, max: 8 });
const storage = createPostgresOffsetStorage({ pool, table: offsetsTable });
const factory = createMessageSessionFactory({ serverUrl: brokerUrl });
const consumer = factory.createConsumer(
  { group, maxFetchRetries: 2, maxDelayFetchTimeInMills: 50, commitOffsetPeriodInMills: 20, recoverMessageIntervalInMills: 200 },
  storage,
);
const attempts = new Map<number, number>();
consumer.subscribe(
  topic,
  { maxSize: 16 * 1024 },
  exactlyOnce(storage, (message, db) => handleTestMessage(message, db, rowsTable, attempts)),
);
await consumer.completeSubscribe();
process.stdout.write('ready\n');

process.on('SIGTERM', () => {
  void (async () => {
    await factory.close();
    await storage.close();
    await pool.end();
    process.exit(0);
  })();
});
