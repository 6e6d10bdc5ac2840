/**
 * Consume-transform-produce exactly once, with the XA transaction manager: every order consumed
 * from one topic becomes an invoice row in PostgreSQL and an "invoice created" message on another
 * topic, and the consumer's offset moves past the order — all three in one global transaction
 * (two-phase commit between PostgreSQL and the broker). Kill it at any moment, even `kill -9` in
 * the middle of a commit, and start it again: every order has exactly one invoice row and exactly
 * one "invoice created" message, never zero, never two, and nothing of a rolled-back attempt is
 * ever visible.
 *
 *   npm start                                                             # the broker, in another terminal
 *   npx tsx examples/xa-postgres.ts 20 meta-orders                        # some orders to transform
 *   DATABASE_URL=postgresql://user@localhost/db npx tsx examples/xa-consume-transform-produce.ts [input] [output] [group]
 *   npx tsx examples/consumer.ts meta-invoices                            # shows the output
 *
 * Defaults: input `meta-orders`, output `meta-invoices` (both in the `[topic=meta-*]` section of
 * conf/server.ini), group `xa-transform-example`. Without DATABASE_URL the usual libpq variables
 * apply (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE). METAQ_URL=meta://host:port points it at
 * another broker. The coordinator log goes to METAQ_XA_LOG_DIR (default
 * `./xa-transform-example-log`): keep it, it is how a restarted run completes what the killed
 * one decided. Tables: `example_invoices` (created here), `metaq_offsets`,
 * `metaq_offsets_recover` (created by the offset storage) and `metaq_xa_marker` (created by the
 * PostgreSQL resource).
 *
 * PostgreSQL must allow prepared transactions: `max_prepared_transactions` > 0 in
 * postgresql.conf (it is 0 out of the box; changing it needs a restart). `init()` below says so.
 *
 * Check the result (every order once, each with its message):
 *   SELECT order_partition, order_offset, count(*) FROM example_invoices GROUP BY 1, 2 HAVING count(*) > 1;  -- no rows
 */
import pg from 'pg';
import {
  createBrokerResource,
  createMessageSessionFactory,
  createPostgresOffsetStorage,
  createPostgresResource,
  createTransactionManager,
  xaTransform,
} from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const input = process.argv[2] ?? 'meta-orders';
const output = process.argv[3] ?? 'meta-invoices';
const group = process.argv[4] ?? 'xa-transform-example';
const logDir = process.env['METAQ_XA_LOG_DIR'] ?? './xa-transform-example-log';
// The node name goes into every transaction id; recovery only touches its own. Keep it stable
// across restarts and unique among the managers sharing this broker or database.
const nodeName = 'xa-transform-example';

const connectionString = process.env['DATABASE_URL'];
// One client per partition being consumed is pinned by its transaction; a few more for the
// consumer's offset commits and the manager's phase two and recovery.
const pool = new pg.Pool({ ...(connectionString === undefined ? {} : { connectionString }), max: 12 });
pool.on('error', (error) => console.warn(`idle PostgreSQL connection lost: ${error.message}`));
await pool.query(
  'CREATE TABLE IF NOT EXISTS example_invoices (id bigserial PRIMARY KEY, order_partition integer NOT NULL, order_offset bigint NOT NULL, ' +
    'order_body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
);

const factory = createMessageSessionFactory({ serverUrl });
factory.on('connection.disconnect', ({ brokerUrl, error }) => console.warn(`lost ${brokerUrl} (${error?.message ?? 'closed'}); reconnecting`));
const producer = factory.createProducer();
await producer.publish(output);

// The offsets live in the database the transactions write to, and the PostgreSQL resource works
// on the same pool: the offset row is written through the transaction's PostgreSQL branch.
const offsets = createPostgresOffsetStorage({ pool });
const database = createPostgresResource({ pool, name: 'invoices' });
await database.init(); // checks max_prepared_transactions, creates the marker table
const broker = createBrokerResource(producer, { brokerUrl: serverUrl, uniqueQualifier: nodeName });

// Recovery runs before this resolves: a run killed after its commit decision is completed now
// (invoice row, invoice message and offset all appear); branches prepared without a decision are
// rolled back once older than orphanSafetyIntervalMs (until then, their partition waits).
const tm = await createTransactionManager({
  nodeName,
  logDir,
  resources: [broker, database],
  defaultTimeoutMs: 15_000,
  maxTimeoutMs: 15_000,
  orphanSafetyIntervalMs: 20_000,
  recoveryIntervalMs: 10_000,
});

// The consumer must load its offsets from the storage the transactions advance.
const consumer = factory.createConsumer({ group, maxDelayFetchTimeInMills: 1000 }, offsets);
consumer.subscribe(
  input,
  { maxSize: 1024 * 1024 },
  xaTransform(tm, { storage: offsets }, async (message, tx, db) => {
    // Everything here — the row, the message, and (done before this handler runs) the offset
    // step — commits together or not at all. Throwing rolls all of it back; the message is
    // retried, then kept in metaq_offsets_recover and re-delivered later, also exactly once.
    const body = message.data.toString('utf8');
    const { rows } = await db.query<{ id: string }>('INSERT INTO example_invoices (order_partition, order_offset, order_body) VALUES ($1, $2, $3) RETURNING id', [
      message.partition,
      String(message.offset),
      body,
    ]);
    const invoiceId = rows[0]?.id ?? '?';
    await tx.send(producer, { topic: output, data: JSON.stringify({ event: 'invoice-created', invoiceId, order: body }) });
    console.log(`partition ${message.partition} offset ${message.offset}${message.recovered ? ' (recovered)' : ''}: invoice ${invoiceId}`);
  }),
);
await consumer.completeSubscribe();
console.log(`transforming '${input}' into '${output}' from ${serverUrl} as group '${group}'; Ctrl-C to stop`);

// Graceful shutdown: the consumer first (it waits for the transactions in progress), then the
// manager (it waits for phase two), then the rest. A second signal exits at once, which is safe
// too: what is not decided never commits, what is decided the next start completes.
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) process.exit(130);
    closing = true;
    console.log(`${signal}: closing...`);
    (async () => {
      await consumer.close();
      await tm.close();
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
