/**
 * Consumes a topic exactly once into PostgreSQL: each message is written to a table, and a
 * per-topic counter is incremented (a non-idempotent effect, to show the point), in the same
 * transaction that stores the consumer's offset. Kill it at any moment (even `kill -9`) and
 * start it again: no message is lost, none counts twice.
 *
 *   npm start                                                  # the broker, in another terminal
 *   DATABASE_URL=postgresql://user@localhost/db npx tsx examples/exactly-once-consumer.ts [topic] [group]
 *   npx tsx examples/producer.ts                               # something to consume
 *
 * Defaults: topic `test`, group `exactly-once-example`. Without DATABASE_URL the usual libpq
 * variables apply (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). METAQ_URL=meta://host:port
 * points it at another broker. Tables: `metaq_offsets` and `metaq_offsets_recover` (created by
 * the client), `example_messages` and `example_counts` (created here).
 *
 * Check the result with:
 *   SELECT count(*) FROM example_messages;  SELECT * FROM example_counts;
 */
import pg from 'pg';
import { createMessageSessionFactory, createPostgresOffsetStorage, exactlyOnce } from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const topic = process.argv[2] ?? 'test';
const group = process.argv[3] ?? 'exactly-once-example';

const connectionString = process.env['DATABASE_URL'];
const pool = new pg.Pool(connectionString === undefined ? {} : { connectionString });
// An idle client whose connection drops emits 'error' on the pool; without a listener that
// would end the process. The pool replaces the client by itself.
pool.on('error', (error) => console.warn(`idle PostgreSQL connection lost: ${error.message}`));
await pool.query(
  'CREATE TABLE IF NOT EXISTS example_messages (topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, ' +
    'message_id bigint NOT NULL, body text NOT NULL, received_at timestamptz NOT NULL DEFAULT now())',
);
await pool.query('CREATE TABLE IF NOT EXISTS example_counts (topic text PRIMARY KEY, n bigint NOT NULL)');

const offsets = createPostgresOffsetStorage({ pool });
const factory = createMessageSessionFactory({ serverUrl });
factory.on('connection.disconnect', ({ brokerUrl, error }) => console.warn(`lost ${brokerUrl} (${error?.message ?? 'closed'}); reconnecting`));

// The consumer must load its offsets from the storage the transactions commit them to.
const consumer = factory.createConsumer({ group, maxDelayFetchTimeInMills: 1000 }, offsets);
consumer.subscribe(
  topic,
  { maxSize: 1024 * 1024 },
  exactlyOnce(offsets, async (message, db) => {
    // Every statement on `db` commits together with the offset, or not at all. Throwing rolls
    // everything back; the message is retried, then kept in metaq_offsets_recover.
    await db.query('INSERT INTO example_messages (topic, "partition", "offset", message_id, body) VALUES ($1, $2, $3, $4, $5)', [
      message.topic,
      message.partition,
      String(message.offset),
      message.id.toString(),
      message.data.toString('utf8'),
    ]);
    await db.query('INSERT INTO example_counts (topic, n) VALUES ($1, 1) ON CONFLICT (topic) DO UPDATE SET n = example_counts.n + 1', [message.topic]);
    console.log(`partition ${message.partition} offset ${message.offset}${message.recovered ? ' (recovered)' : ''}: ${message.data.toString('utf8')}`);
  }),
);
await consumer.completeSubscribe();
console.log(`consuming '${topic}' from ${serverUrl} exactly once as group '${group}'; Ctrl-C to stop`);

// Graceful shutdown: the first signal closes everything; a second one exits at once (which is
// safe too: an interrupted transaction simply never commits).
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) process.exit(130);
    closing = true;
    console.log(`${signal}: closing...`);
    (async () => {
      await factory.close();
      await offsets.close();
      await pool.end();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
