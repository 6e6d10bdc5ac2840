/**
 * Orders written to PostgreSQL and their "order created" messages sent to the broker atomically,
 * with the XA transaction manager (two-phase commit): for every order, the row and the message
 * both exist, or neither does. Kill it at any moment — even `kill -9` in the middle of a commit —
 * and run it again: the manager's recovery (at start, then every 10 s) finishes what the killed
 * run decided to commit and rolls back what it had not.
 *
 *   npm start                                                       # the broker, in another terminal
 *   DATABASE_URL=postgresql://user@localhost/db npx tsx examples/xa-postgres.ts [orders] [topic]
 *   npx tsx examples/consumer.ts meta-orders                        # shows the messages
 *
 * Defaults: 20 orders, topic `meta-orders` (the `[topic=meta-*]` section of conf/server.ini).
 * Without DATABASE_URL the usual libpq variables apply (PGHOST, PGPORT, PGUSER, PGPASSWORD,
 * PGDATABASE). METAQ_URL=meta://host:port points it at another broker. The coordinator log goes
 * to METAQ_XA_LOG_DIR (default `./xa-example-log`): keep it, it is how a restarted run knows
 * which transactions were decided. Tables: `example_orders` (created here) and
 * `metaq_xa_marker` (created by the PostgreSQL resource).
 *
 * PostgreSQL must allow prepared transactions: `max_prepared_transactions` > 0 in
 * postgresql.conf (it is 0 out of the box; changing it needs a restart). `init()` below says so.
 * Or run it with XA_MODE=decision-row: PostgreSQL then commits last, in one phase, with a decision
 * row (table `metaq_xa_decision`) in its transaction, and needs no prepared transactions (docs/xa.md).
 *
 * Check that rows and messages agree (every order id once in each):
 *   SELECT id FROM example_orders ORDER BY id;
 */
import pg from 'pg';
import {
  createBrokerResource,
  createMessageSessionFactory,
  createPostgresResource,
  createTransactionManager,
  TransactionRolledBackError,
} from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const orders = Number(process.argv[2] ?? 20);
const topic = process.argv[3] ?? 'meta-orders';
const logDir = process.env['METAQ_XA_LOG_DIR'] ?? './xa-example-log';
// The node name goes into every transaction id; recovery only touches its own. Keep it stable
// across restarts and unique among the managers sharing this broker or database.
const nodeName = 'xa-postgres-example';

const connectionString = process.env['DATABASE_URL'];
const pool = new pg.Pool(connectionString === undefined ? {} : { connectionString });
// An idle client whose connection drops emits 'error' on the pool; without a listener that would
// end the process. The pool replaces the client by itself (and the manager retries phase two).
pool.on('error', (error) => console.warn(`idle PostgreSQL connection lost: ${error.message}`));
await pool.query('CREATE TABLE IF NOT EXISTS example_orders (id bigserial PRIMARY KEY, item text NOT NULL, quantity integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');

const factory = createMessageSessionFactory({ serverUrl });
const producer = factory.createProducer();
await producer.publish(topic);

// The participants. Their ids (`postgres:shop`, `metaq:<broker url>#<qualifier>`) are written to
// the coordinator log: a restarted run must register the same ones, or recovery cannot reach them.
const mode = process.env['XA_MODE'] === 'decision-row' ? 'decision-row' : 'xa';
// Keep the mode across restarts of one log directory: a run's recovery reads decision rows only
// through a decision-row resource.
const database = createPostgresResource({ pool, name: 'shop', mode });
await database.init(); // xa: checks max_prepared_transactions, creates the marker table; decision-row: creates the decision table
const broker = createBrokerResource(producer, { brokerUrl: serverUrl, uniqueQualifier: nodeName });

// Recovery runs here, before the promise resolves: a run killed after its commit decision is
// completed now (both row and message appear); branches it left prepared without a decision are
// rolled back once they are older than orphanSafetyIntervalMs (they are invisible until then).
const tm = await createTransactionManager({
  nodeName,
  logDir,
  resources: [broker, database],
  defaultTimeoutMs: 15_000,
  maxTimeoutMs: 15_000,
  orphanSafetyIntervalMs: 20_000,
  recoveryIntervalMs: 10_000,
});
const recovered = tm.metrics();
console.log(`recovery at start: ${recovered.recoveredCommits} decided transaction(s) completed, ${recovered.orphanRollbacks} orphan branch(es) rolled back`);

let stopping = false;
process.on('SIGINT', () => {
  stopping = true; // finish the order in progress, then close cleanly
});

try {
  for (let i = 0; i < orders && !stopping; i++) {
    const item = ['book', 'lamp', 'chair', 'mug'][i % 4] ?? 'book';
    try {
      const id = await tm.run(async (tx) => {
        // The PostgreSQL branch: an ordinary client of the pool, inside the global transaction.
        const db = await tx.enlistPostgres(database);
        const { rows } = await db.query<{ id: string }>('INSERT INTO example_orders (item, quantity) VALUES ($1, $2) RETURNING id', [item, 1 + (i % 3)]);
        const orderId = rows[0]?.id ?? '?';
        // The broker branch: staged on the broker, visible to consumers only once committed. Not
        // awaited: the commit is queued behind the put and checks its answer before deciding
        // (a failed send rolls everything back), which saves a round trip (docs/xa.md).
        void tx.send(producer, { topic, data: JSON.stringify({ event: 'order-created', orderId, item }) });
        return orderId;
        // tm.run commits here: prepare both, log the decision (fsync), commit both.
      });
      console.log(`order ${id} (${item}): row and message committed`);
    } catch (error) {
      // Rolled back everywhere (the work failed, a participant voted no, a server was down
      // before the decision): neither the row nor the message will ever exist.
      if (error instanceof TransactionRolledBackError) console.warn(`order rolled back: ${error.message}`);
      else throw error;
    }
  }
} finally {
  // Waits for commits in progress; what a killed run leaves behind, the next start completes.
  await tm.close();
  await factory.close();
  await pool.end();
}
