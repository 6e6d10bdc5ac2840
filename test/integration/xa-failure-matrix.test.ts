/**
 * transactions.md §5.7 rows 16 and 18, end to end: a transaction manager in this process
 * (test/helpers/xa-local-manager.ts) on a real broker process and a real private PostgreSQL.
 * Every order is one row in `xa_matrix_orders` plus one "order created" message on topic
 * `orders`, in one `tm.run`; the verdict compares the table with the topic read partition by
 * partition, message by message (xa-agreement.ts).
 *
 * - Row 16: hundreds of orders on several lanes while recovery scans run back to back (the
 *   manager's own 1 ms timer plus two loops calling `tm.recover()`) with an orphan safety
 *   interval of 0, so the age guard is off and only the in-flight guard and the
 *   PRESUMED_ABORTING/COMMITTING arbitration stand between a scan and a live transaction. Orders
 *   are slowed where a scan does most harm: a random 0–150 ms between the last prepare and the
 *   COMMITTING record (`METAQ_XA_DELAYS`, both branches prepared and no decision: exactly what an
 *   orphan looks like), a slow PREPARE TRANSACTION (a deferred constraint trigger sleeping while
 *   the broker branch is already prepared), 0–40 ms between COMMITTING and phase two; others are
 *   aborted after the broker prepared (the trigger refuses them at PREPARE) or by the application.
 * - Row 18: PREPARE TRANSACTION fails — a DEFERRABLE INITIALLY DEFERRED foreign key violated,
 *   and a serialization failure (SERIALIZABLE, set through the branch, against a conflicting
 *   transaction committed meanwhile) — and, as a third variant, the connection is killed during
 *   PREPARE, so the manager must ask `ROLLBACK PREPARED`, which answers "does not exist": success.
 *   The whole transaction rolls back: no row, no message, nothing prepared, no heuristic.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { TransactionRolledBackError, XaError } from '../../src/common/errors.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { XA_DELAYS_ENV } from '../../src/xa/crash-points.js';
import { MemoryCoordinatorLog, pgGidOf, type PostgresBranch, type RecoveryReport } from '../../src/xa/index.js';
import type { Xid } from '../../src/xa/xid.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import type { TxBrokerHome, TxBrokerRun } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, brokerBranchesOf, markerGidsOf, readOrderState } from '../helpers/xa-agreement.js';
import { startLocalXa, type LocalXa } from '../helpers/xa-local-manager.js';
import { startXaRig, stopXaRig } from '../helpers/xa-rig.js';
import { orderKey, orderMessageBody } from '../helpers/xa-worker-protocol.js';

const TABLE = 'xa_matrix_orders';
const ORDERS = 400;
const LANES = 8;

// Read by the manager at the first pass of a delay point (the first commit of this process).
process.env[XA_DELAYS_ENV] = 'xa.after-prepare=150,xa.after-committing=40';

/** Columns and the deferred constraints the cases use (the trigger fires at PREPARE TRANSACTION). */
const SCHEMA = `
CREATE TABLE xa_matrix_parents (id integer PRIMARY KEY);
ALTER TABLE ${TABLE} ADD COLUMN parent integer REFERENCES xa_matrix_parents (id) DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE xa_matrix_counts (kind text NOT NULL);
CREATE TABLE xa_matrix_gate (id integer PRIMARY KEY);
INSERT INTO xa_matrix_gate VALUES (1);
CREATE FUNCTION xa_matrix_at_prepare() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.item = 'slow' THEN PERFORM pg_sleep(0.15);
  ELSIF NEW.item = 'hang' THEN PERFORM pg_sleep(60);
  ELSIF NEW.item = 'gate' THEN PERFORM id FROM xa_matrix_gate FOR UPDATE;
  ELSIF NEW.item = 'bad' THEN RAISE EXCEPTION 'order % refused at commit time', NEW.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER xa_matrix_at_prepare AFTER INSERT ON ${TABLE} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION xa_matrix_at_prepare();
`;

/** How an order of the row-16 run is placed: `slow`/`bad` act at PREPARE (trigger), `throw` fails in the application. */
type OrderKind = 'plain' | 'slow' | 'bad' | 'throw';

function kindOf(id: number): OrderKind {
  const r = id % 10;
  return r === 3 ? 'slow' : r === 7 ? 'bad' : r === 9 ? 'throw' : 'plain';
}

/** The error the application throws in `throw` orders. */
class ApplicationError extends Error {}

/** Extra work of an order in its PostgreSQL branch. */
interface OrderHooks {
  readonly before?: (db: PostgresBranch) => Promise<void>;
  readonly after?: (db: PostgresBranch) => Promise<void>;
}

/** Resolves once `check()` is true (polled); rejects after `timeoutMs`. */
async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** How `tm.run` ended for one order. */
type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error);
}

describe('XA failure matrix §5.7 rows 16 and 18 (real broker and PostgreSQL, manager in process)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let home: TxBrokerHome;
  let broker: TxBrokerRun;
  let brokerUrl: string;
  let pool: pg.Pool;

  before(async () => {
    ({ root, pgServer, home, broker, brokerUrl, pool } = await startXaRig('metaq-xa-matrix-', TABLE, { maxPreparedTransactions: 32 }));
    await pool.query(SCHEMA);
  });

  after(() => stopXaRig({ root, pgServer, home, pool }));

  /** Places order `id`: `before` runs first in the PostgreSQL branch, `after` once the row and the message are in. */
  async function placeOrder(local: LocalXa, run: string, id: number, item: string, hooks: OrderHooks = {}): Promise<Outcome> {
    try {
      await local.tm.run(async (tx) => {
        const db = await tx.enlistPostgres(local.postgres);
        await hooks.before?.(db);
        await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, item]);
        await tx.send(local.producer, { topic: 'orders', data: orderMessageBody(run, id) });
        if (item === 'throw') throw new ApplicationError(`order ${id} failed in the application`);
        await hooks.after?.(db);
      });
      return { ok: true };
    } catch (error) {
      return { ok: false, error };
    }
  }

  /**
   * Order ORDERS ("gate"), the deterministic core of the race: its PREPARE TRANSACTION blocks on a
   * row lock held here, with its broker branch already prepared and no decision logged — what an
   * orphan looks like. Once the broker lists the branch, at least two whole recovery scans run;
   * the branch must still be prepared and nothing claimed. Then the lock goes and the order must
   * commit: the outcome it resolves with.
   */
  async function gateOrder(local: LocalXa, run: string): Promise<Outcome> {
    const gate = await pool.connect();
    try {
      await gate.query('BEGIN');
      await gate.query('SELECT id FROM xa_matrix_gate FOR UPDATE');
      let gtrid: string | undefined;
      const outcome = placeOrder(local, run, ORDERS, 'gate', {
        before: async (db) => {
          gtrid = db.xid.globalTransactionId.toString('hex');
        },
      });
      const listed = async (): Promise<boolean> => gtrid !== undefined && (await brokerBranchesOf(broker.port, local.uniqueQualifier)).some((key) => key.includes(gtrid ?? '?'));
      await waitFor(listed, 'the gate order’s broker branch prepared');
      // Three calls in a row: at least two whole scans start after the branch was listed (a call may join a running scan).
      for (let i = 0; i < 3; i++) await local.tm.recover();
      assert.ok(await listed(), 'after two sightings by recovery the gate order’s broker branch is still prepared (not rolled back)');
      assert.equal(local.tm.metrics().presumedAbortingWithoutEnd + local.tm.metrics().orphanRollbacks, 0, 'and recovery claimed nothing');
      return outcome;
    } finally {
      await gate.query('COMMIT').catch(() => undefined);
      gate.release();
    }
  }

  /** The gate order, then orders 0…ORDERS-1 on LANES lanes, while two loops call `tm.recover()` back to back. */
  async function race(local: LocalXa, run: string): Promise<{ outcomes: Map<number, Outcome>; scans: Map<number, RecoveryReport> }> {
    const outcomes = new Map<number, Outcome>();
    const scans = new Map<number, RecoveryReport>();
    let placing = true;
    const hammer = async (): Promise<void> => {
      while (placing) {
        const report = await local.tm.recover();
        scans.set(report.scan, report);
      }
    };
    const hammers = [hammer(), hammer()];
    try {
      outcomes.set(ORDERS, await gateOrder(local, run));
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < ORDERS) {
          const id = next++;
          outcomes.set(id, await placeOrder(local, run, id, kindOf(id)));
        }
      };
      await Promise.all(Array.from({ length: LANES }, lane));
    } finally {
      placing = false;
      await Promise.allSettled(hammers);
    }
    return { outcomes, scans };
  }

  it('§5.7 row 16: recovery scans hammered during hundreds of two-phase commits never roll back one in flight', async (t) => {
    const node = 'race16';
    const run = node;
    const local = await startLocalXa({
      brokerUrl,
      databaseUrl: pgServer.connectionString,
      nodeName: node,
      poolSize: LANES * 2 + 6,
      manager: { logDir: join(root.path, `log-${node}`), orphanSafetyIntervalMs: 0, recoveryIntervalMs: 1 },
    });
    try {
      const { outcomes, scans } = await race(local, run);

      // What tm.run reported, order by order.
      const committed: number[] = [];
      const aborted: number[] = [];
      const wrong: string[] = [];
      for (let id = 0; id <= ORDERS; id++) {
        const outcome = outcomes.get(id);
        const kind = id === ORDERS ? 'slow' : kindOf(id);
        if (outcome === undefined) {
          wrong.push(`${id} (${kind}): no outcome`);
        } else if (kind === 'plain' || kind === 'slow') {
          if (outcome.ok) committed.push(id);
          else wrong.push(`${id} (${kind}) must commit, got ${describeError(outcome.error)}`);
        } else {
          aborted.push(id);
          if (outcome.ok) wrong.push(`${id} (${kind}) must not commit`);
          else if (kind === 'throw' && !(outcome.error instanceof ApplicationError)) wrong.push(`${id}: expected the application's error, got ${describeError(outcome.error)}`);
          else if (kind === 'bad' && !(outcome.error instanceof TransactionRolledBackError && /did not prepare/.test(outcome.error.message))) {
            wrong.push(`${id}: expected a rollback for the refused PREPARE, got ${describeError(outcome.error)}`);
          }
        }
      }
      assert.deepEqual(wrong, [], 'every order ends as its kind says: recovery rolled back none that was committing');

      const metrics = local.tm.metrics();
      const reports = [...scans.values()];
      const sawInFlight = reports.reduce((n, r) => n + r.orphansInFlight, 0);
      t.diagnostic(
        `${committed.length} committed, ${aborted.length} aborted; ${metrics.recoveryScans} recovery scans, ${reports.length} seen by the hammer loops, ` +
          `${sawInFlight} sightings of prepared branches without a decision left alone because in flight`,
      );
      assert.equal(metrics.orphanRollbacks, 0, 'recovery rolled back no branch');
      assert.equal(metrics.heuristics, 0);
      assert.equal(metrics.recoveredCommits, 0, 'recovery never re-drove a commit in flight');
      assert.equal(metrics.commits, committed.length);
      assert.equal(metrics.committingWithoutEnd + metrics.presumedAbortingWithoutEnd, 0);
      assert.ok(reports.every((r) => r.orphansTooYoung === 0), 'the age guard was off (safety interval 0)');
      // The race really happened: scans listed prepared branches of undecided transactions.
      assert.ok(sawInFlight > 0, 'recovery scans saw prepared, undecided branches in flight');
      assert.ok(reports.length >= 20, `recovery ran often (${reports.length} scans seen)`);

      const state = await readOrderState(pool, TABLE, broker.port, (r) => r === run);
      assertAgreement(state, { committed: committed.map((id) => orderKey(run, id)), absent: aborted.map((id) => orderKey(run, id)) }, 'after the race');
      assert.equal(state.rows.size, committed.length, 'no other order exists');
      assert.equal(state.messages.size, committed.length);
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier: local.uniqueQualifier }, 'after the race');
    } finally {
      await local.close();
    }
    assert.deepEqual(await markerGidsOf(pool, node), [], 'every marker row was deleted after its END');
  });

  describe('§5.7 row 18: PREPARE TRANSACTION fails', () => {
    const node = 'prep18';
    const run = node;
    let local: LocalXa;
    let log: MemoryCoordinatorLog;

    before(async () => {
      log = new MemoryCoordinatorLog();
      local = await startLocalXa({ brokerUrl, databaseUrl: pgServer.connectionString, nodeName: node, manager: { log, orphanSafetyIntervalMs: 0 } });
    });

    after(() => local.close());

    /** Runs order `id` (item `item`), capturing its PostgreSQL branch XID; asserts a rollback whose cause has `code`. */
    async function failingOrder(id: number, item: string, code: number, pattern: RegExp, hooks: OrderHooks): Promise<Xid> {
      let pgXid: Xid | undefined;
      const outcome = await placeOrder(local, run, id, item, {
        before: async (db) => {
          pgXid = db.xid;
          await hooks.before?.(db);
        },
        ...(hooks.after === undefined ? {} : { after: hooks.after }),
      });
      assert.ok(!outcome.ok, `order ${id} must not commit`);
      const error = outcome.error;
      assert.ok(error instanceof TransactionRolledBackError, `a TransactionRolledBackError, got ${describeError(error)}`);
      assert.match(error.message, /did not prepare/);
      assert.match(error.message, pattern, 'the error says what PostgreSQL refused');
      const cause = error.cause;
      assert.ok(cause instanceof XaError && cause.xaCode === code, `cause XA code ${code}, got ${describeError(cause)}`);
      assert.ok(pgXid !== undefined);
      return pgXid;
    }

    /** Nothing of order `id` exists anywhere, and the manager recorded nothing. */
    async function assertRolledBackEverywhere(id: number, pgXid: Xid, context: string): Promise<void> {
      const gid = pgGidOf(pgXid);
      const state = await readOrderState(pool, TABLE, broker.port, (r) => r === run);
      assert.ok(!state.rows.has(orderKey(run, id)), `${context}: no row`);
      assert.ok(!state.messages.has(orderKey(run, id)), `${context}: the message was never made visible`);
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier: local.uniqueQualifier }, context);
      assert.deepEqual(await brokerBranchesOf(broker.port, local.uniqueQualifier), [], `${context}: the broker's RECOVER lists nothing`);
      const prepared = await pool.query('SELECT gid FROM pg_prepared_xacts WHERE gid = $1', [gid]);
      assert.equal(prepared.rowCount, 0, `${context}: not in pg_prepared_xacts`);
      assert.deepEqual(await markerGidsOf(pool, node), [], `${context}: no marker row`);
      // ROLLBACK PREPARED of the failed branch (what a repeated rollback or recovery would send):
      // PostgreSQL answers "does not exist", and without the marker that is success.
      assert.equal(await local.postgres.rollbackPrepared(pgXid), 'rolled-back', `${context}: ROLLBACK PREPARED "does not exist" is success`);
      const metrics = local.tm.metrics();
      assert.equal(metrics.heuristics, 0, `${context}: no heuristic outcome`);
      assert.equal(metrics.heuristicPending + metrics.committingWithoutEnd + metrics.presumedAbortingWithoutEnd, 0, `${context}: nothing pending`);
      // Presumed abort: an aborted transaction leaves no trace in the coordinator log — in particular no HEURISTIC.
      assert.deepEqual(
        log.records().map((r) => r.record.kind),
        [],
        `${context}: no coordinator log record`,
      );
      const report = await local.tm.recover();
      assert.equal(report.orphansFirstSighted + report.orphanBranchesRolledBack + report.committingRedriven, 0, `${context}: recovery finds nothing to do`);
    }

    it('a DEFERRABLE INITIALLY DEFERRED foreign key violated at PREPARE: the whole transaction rolls back (XA_RBINTEGRITY)', async () => {
      const pgXid = await failingOrder(0, 'fk', XaCode.XA_RBINTEGRITY, /violates foreign key constraint/, {
        // There is no parent 999; the deferred foreign key lets the UPDATE through and fails PREPARE.
        after: async (db) => {
          await db.query(`UPDATE ${TABLE} SET parent = 999 WHERE run = $1 AND id = 0`, [run]);
        },
      });
      await assertRolledBackEverywhere(0, pgXid, 'deferred foreign key');
    });

    it('a serialization failure at PREPARE (SERIALIZABLE against a conflicting committed transaction): rolled back (XA_RBTRANSIENT)', async () => {
      const pgXid = await failingOrder(1, 'serializable', XaCode.XA_RBTRANSIENT, /could not serialize/, {
        // The branch's first statement (the API has no isolation option: SQL sets it).
        before: async (db) => {
          await db.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
        },
        // Write skew: this branch reads kind 'a' and writes 'b'; the other reads 'b', writes 'a' and commits first.
        after: async (db) => {
          await db.query("SELECT count(*) FROM xa_matrix_counts WHERE kind = 'a'");
          await db.query("INSERT INTO xa_matrix_counts (kind) VALUES ('b')");
          const other = await pool.connect();
          try {
            await other.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
            await other.query("SELECT count(*) FROM xa_matrix_counts WHERE kind = 'b'");
            await other.query("INSERT INTO xa_matrix_counts (kind) VALUES ('a')");
            await other.query('COMMIT');
          } finally {
            other.release();
          }
        },
      });
      await assertRolledBackEverywhere(1, pgXid, 'serialization failure');
      const counts = await pool.query<{ kind: string }>('SELECT kind FROM xa_matrix_counts ORDER BY kind');
      assert.deepEqual(
        counts.rows.map((r) => r.kind),
        ['a'],
        'the conflicting transaction committed, this one’s write is gone',
      );
    });

    it('a send that failed and that the application caught (a topic never published): the whole transaction rolls back', async () => {
      let pgXid: Xid | undefined;
      let caught: unknown;
      const id = 3;
      const outcome = await local.tm
        .run(async (tx) => {
          const db = await tx.enlistPostgres(local.postgres);
          pgXid = db.xid;
          await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, 'plain']);
          await tx.send(local.producer, { topic: 'orders', data: orderMessageBody(run, id) });
          // The application goes on after a failed send: the transaction must not commit without it.
          await tx.send(local.producer, { topic: 'never-published', data: 'lost?' }).catch((error: unknown) => {
            caught = error;
          });
        })
        .then(
          () => ({ ok: true as const }),
          (error: unknown) => ({ ok: false as const, error }),
        );
      assert.ok(caught instanceof Error, 'the send to the unpublished topic failed');
      assert.ok(!outcome.ok, 'the order must not commit without the message the application asked for');
      assert.ok(outcome.error instanceof TransactionRolledBackError, describeError(outcome.error));
      assert.match(outcome.error.message, /1 send\(s\) of the transaction failed, and a transaction commits all its sends or none/);
      assert.equal(outcome.error.cause, caught, "the cause is the failed send's error");
      assert.ok(pgXid !== undefined);
      await assertRolledBackEverywhere(id, pgXid, 'a failed send the application caught');
    });

    it('a send not awaited that the broker refuses (over its maxMessageSize): the whole transaction rolls back', async () => {
      const id = 5;
      let pgXid: Xid | undefined;
      let refused: Promise<unknown> | undefined;
      const outcome = await local.tm
        .run(async (tx) => {
          const db = await tx.enlistPostgres(local.postgres);
          pgXid = db.xid;
          await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, 'plain']);
          void tx.send(local.producer, { topic: 'orders', data: orderMessageBody(run, id) }).catch(() => undefined);
          refused = tx.send(local.producer, { topic: 'orders', data: Buffer.alloc(1024 * 1024 + 1, 1) });
          refused.catch(() => undefined);
        })
        .then(
          () => ({ ok: true as const }),
          (error: unknown) => ({ ok: false as const, error }),
        );
      await assert.rejects(refused ?? Promise.resolve(), /exceeds maxMessageSize/, 'the broker refused the put, and said why');
      assert.ok(!outcome.ok, 'the order must not commit without the message the application asked for');
      assert.ok(outcome.error instanceof TransactionRolledBackError, describeError(outcome.error));
      assert.ok(pgXid !== undefined);
      await assertRolledBackEverywhere(id, pgXid, 'a send not awaited that the broker refused');
    });

    it('the connection dies during PREPARE: outcome unknown, the manager sends ROLLBACK PREPARED, "does not exist" is success, no heuristic', async () => {
      let pgXid: Xid | undefined;
      const placing = placeOrder(local, run, 2, 'hang', {
        before: async (db) => {
          pgXid = db.xid;
        },
      });
      // The deferred trigger sleeps inside PREPARE TRANSACTION: kill that backend (its query is
      // the marker row and PREPARE TRANSACTION, sent as one string).
      let killed = false;
      const deadline = Date.now() + 20_000;
      while (!killed) {
        assert.ok(Date.now() < deadline, 'the PREPARE TRANSACTION of order 2 never showed up sleeping');
        const result = await pool.query<{ killed: boolean }>(
          "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE query LIKE '%PREPARE TRANSACTION %' AND wait_event = 'PgSleep'",
        );
        killed = result.rows.some((r) => r.killed);
        if (!killed) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const outcome = await placing;
      assert.ok(!outcome.ok, 'order 2 must not commit');
      assert.ok(outcome.error instanceof TransactionRolledBackError, describeError(outcome.error));
      const cause = outcome.error.cause;
      assert.ok(cause instanceof XaError && cause.xaCode === XaCode.XAER_RMFAIL, `the lost PREPARE is RMFAIL (outcome unknown), got ${describeError(cause)}`);
      assert.ok(pgXid !== undefined);
      const gid = pgGidOf(pgXid);
      // The manager itself asked PostgreSQL to roll the uncertain branch back; PostgreSQL logged
      // its "does not exist" answer with the statement (log_min_error_statement = error).
      const serverLog = fs.readFileSync(pgServer.logFile, 'utf8');
      assert.ok(serverLog.includes(`prepared transaction with identifier "${gid}" does not exist`), 'ROLLBACK PREPARED was sent and answered "does not exist"');
      assert.ok(serverLog.includes(`ROLLBACK PREPARED '${gid}'`), 'the statement was ROLLBACK PREPARED');
      await assertRolledBackEverywhere(2, pgXid, 'connection lost during PREPARE');
    });

    // Last: it commits, and the cases above check that the coordinator log holds nothing.
    it('sends not awaited: the commit, queued behind them, covers them: the row and both messages, once each', async () => {
      const id = 4;
      const sends: Promise<unknown>[] = [];
      await local.tm.run(async (tx) => {
        const db = await tx.enlistPostgres(local.postgres);
        await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, 'plain']);
        // Kafka style: the application does not wait for the broker's answers before committing.
        sends.push(tx.send(local.producer, { topic: 'orders', data: orderMessageBody(run, id) }));
        sends.push(tx.send(local.producer, { topic: 'orders', data: orderMessageBody(run, id + 1000) }));
      });
      const results = await Promise.all(sends);
      assert.equal(results.length, 2, 'both sends were answered');
      const state = await readOrderState(pool, TABLE, broker.port, (r) => r === run);
      assert.ok(state.rows.has(orderKey(run, id)), 'the row committed');
      assert.equal(state.messages.get(orderKey(run, id)), 1, 'the first message, exactly once');
      assert.equal(state.messages.get(orderKey(run, id + 1000)), 1, 'the second message, exactly once');
      await assertNothingInDoubt(pool, broker.port, { nodeName: node, uniqueQualifier: local.uniqueQualifier }, 'sends not awaited');
      // A recovery pass sweeps the committed transaction's marker row (the next cases check there is none).
      await local.tm.recover();
      assert.deepEqual(await markerGidsOf(pool, node), [], 'the marker row went after the END');
    });
  });
});
