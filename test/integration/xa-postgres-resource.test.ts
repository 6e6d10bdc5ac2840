/**
 * The XA PostgreSQL resource against a real, private PostgreSQL 15 (transactions.md §5.7 cases
 * 5, 10, 11, 17, 18, 19): start-up refusal without prepared transactions, prepare → recover →
 * COMMIT/ROLLBACK PREPARED and their idempotent repeats, the marker row telling an earlier
 * commit from an administrator's ROLLBACK PREPARED, a PREPARE that fails on a deferred
 * constraint, node-id filtering, a database restart with a prepared transaction, and connections
 * killed (`pg_terminate_backend`) during the work phase and during `COMMIT PREPARED` — always
 * XAER_RMFAIL, never a rollback code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isRollbackCode, XaCode } from '../../src/client/transaction/xa-codes.js';
import { ConfigError, XaError } from '../../src/common/errors.js';
import { createPostgresResource, type PostgresResource } from '../../src/xa/postgres/index.js';
import { branchXid, makeGtrid, nodeIdOf, pgGidOf, type Xid } from '../../src/xa/xid.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.js';
import { waitFor } from '../helpers/wait-for.js';

let sequence = 0n;

/** A fresh XID of node `node` (branch 0, the PostgreSQL branch). */
function newXid(node = 'it-node'): Xid {
  sequence += 1n;
  return branchXid(makeGtrid({ nodeId: nodeIdOf(node), startedAtMs: Date.now(), sequence }), 0);
}

function isXa(code: number, pattern?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof XaError, `expected an XaError, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.equal(err.xaCode, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

/** Opens a pool that survives server restarts (its 'error' events are expected here). */
function openPool(server: PostgresServer, config: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: server.connectionString, max: 4, connectionTimeoutMillis: 3000, ...config });
  pool.on('error', () => undefined);
  return pool;
}

describe('XA PostgreSQL resource: a server without prepared transactions', () => {
  let server: PostgresServer | undefined;
  let pool: pg.Pool | undefined;
  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  it('init() refuses it with a message saying what to set, that a restart is needed, and about standbys', async () => {
    server = await startPostgres({ maxPreparedTransactions: 0 });
    pool = openPool(server, { max: 3 });
    const resource = createPostgresResource({ pool, name: 'no2pc' });
    await assert.rejects(resource.init(), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /^postgres:no2pc: prepared transactions are disabled .*max_prepared_transactions = 0/);
      assert.match(err.message, /Set max_prepared_transactions to a nonzero value — at least the pool size \(3\), ideally max_connections \(100\) — in postgresql\.conf \(\/.*postgresql\.conf\)/);
      assert.match(err.message, /restart PostgreSQL: a reload is not enough/);
      assert.match(err.message, /standby server needs a value at least as large as the primary's/);
      return true;
    });
  });
});

describe('XA PostgreSQL resource against a real PostgreSQL', () => {
  let server: PostgresServer;
  let pool: pg.Pool;
  let resource: PostgresResource;
  const extraPools: pg.Pool[] = [];
  const admins: pg.Client[] = [];

  /** A superuser connection outside the resource's pool ("the administrator"). */
  async function admin(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: server.connectionString });
    client.on('error', () => undefined);
    await client.connect();
    admins.push(client);
    return client;
  }

  async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = new pg.Client({ connectionString: server.connectionString });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end();
    }
  }

  async function preparedGids(): Promise<string[]> {
    return (await adminQuery<{ gid: string }>('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows.map((row) => row.gid);
  }

  async function valueCount(value: number): Promise<number> {
    return (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM items WHERE v = $1', [value])).rows[0]?.n ?? -1;
  }

  async function markerCount(xid: Xid): Promise<number> {
    return (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM metaq_xa_marker WHERE gid = $1', [pgGidOf(xid)])).rows[0]?.n ?? -1;
  }

  /** begin → INSERT v → end → prepare on `res`. */
  async function prepareInsert(res: PostgresResource, xid: Xid, value: number): Promise<void> {
    const branch = await res.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES ($1)', [value]);
    await branch.end(true);
    assert.equal(await branch.prepare(), 'ok');
  }

  async function recoveredGids(res: PostgresResource = resource): Promise<string[]> {
    return (await res.recover()).map((xid) => pgGidOf(xid));
  }

  before(async () => {
    server = await startPostgres({ maxPreparedTransactions: 16 });
    pool = openPool(server);
    resource = createPostgresResource({ pool, name: 'it' });
    await resource.init();
    await resource.init(); // idempotent
    await adminQuery('CREATE TABLE items (v int NOT NULL)');
    await adminQuery('CREATE TABLE uniq (v int, CONSTRAINT uniq_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)');
    await adminQuery('INSERT INTO uniq VALUES (1)');
    await adminQuery('CREATE TABLE sync_probe (v int)');
  });

  after(async () => {
    for (const client of admins) await client.end().catch(() => undefined);
    for (const p of extraPools) await p.end().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await server?.stop();
  });

  it('init() created the marker table', async () => {
    const columns = (await adminQuery<{ column_name: string; data_type: string }>("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'metaq_xa_marker' ORDER BY ordinal_position")).rows;
    assert.deepEqual(columns, [
      { column_name: 'gid', data_type: 'text' },
      { column_name: 'created_at', data_type: 'timestamp with time zone' },
    ]);
  });

  it('prepare → listed by recover (foreign gids are not) → commitPrepared → row visible; a repeated commit answers committed', async () => {
    const xid = newXid();
    const gid = pgGidOf(xid);
    await prepareInsert(resource, xid, 101);
    assert.equal(await valueCount(101), 0, 'prepared, not committed');
    assert.equal(pool.totalCount - pool.idleCount, 0, 'the client went back to the pool after PREPARE');

    // Other software's prepared transactions: not pgjdbc-shaped, another formatId, non-canonical base64.
    const other = await admin();
    for (const foreign of ['foo', '1_AAAA_AAAA', '1297175635_foo_bar']) {
      await other.query('BEGIN');
      await other.query('INSERT INTO items (v) VALUES (999)');
      await other.query(`PREPARE TRANSACTION '${foreign}'`);
    }
    try {
      assert.deepEqual(await recoveredGids(), [gid]);
    } finally {
      for (const foreign of ['foo', '1_AAAA_AAAA', '1297175635_foo_bar']) await other.query(`ROLLBACK PREPARED '${foreign}'`);
    }

    assert.equal(await resource.commitPrepared(xid), 'committed');
    assert.equal(await valueCount(101), 1);
    assert.deepEqual(await preparedGids(), []);
    assert.equal(await resource.commitPrepared(xid), 'committed', 'repeated commit: "does not exist" + marker row');
    assert.equal(await resource.commitPrepared(xid), 'committed');
    assert.equal(await markerCount(xid), 1);

    await resource.deleteMarkers([xid, newXid()]);
    assert.equal(await markerCount(xid), 0, 'housekeeping deleted the marker');
  });

  it('rollbackPrepared after prepare → row absent; repeated → rolled-back', async () => {
    const xid = newXid();
    await prepareInsert(resource, xid, 102);
    assert.deepEqual(await recoveredGids(), [pgGidOf(xid)]);
    assert.equal(await resource.rollbackPrepared(xid), 'rolled-back');
    assert.equal(await resource.rollbackPrepared(xid), 'rolled-back');
    assert.equal(await valueCount(102), 0);
    assert.equal(await markerCount(xid), 0);
    assert.deepEqual(await recoveredGids(), []);
    // A never-prepared XID is "already rolled back" too.
    assert.equal(await resource.rollbackPrepared(newXid()), 'rolled-back');
  });

  it('an administrator finishing it first: ROLLBACK PREPARED → commitPrepared says heuristic-rollback; COMMIT PREPARED → rollbackPrepared says heuristic-commit', async () => {
    const rolledBack = newXid();
    await prepareInsert(resource, rolledBack, 103);
    await adminQuery(`ROLLBACK PREPARED '${pgGidOf(rolledBack)}'`);
    assert.equal(await resource.commitPrepared(rolledBack), 'heuristic-rollback');
    assert.equal(await valueCount(103), 0);

    const committed = newXid();
    await prepareInsert(resource, committed, 104);
    await adminQuery(`COMMIT PREPARED '${pgGidOf(committed)}'`);
    assert.equal(await resource.rollbackPrepared(committed), 'heuristic-commit');
    assert.equal(await resource.commitPrepared(committed), 'committed');
    assert.equal(await valueCount(104), 1);
  });

  it('PREPARE failing on a deferred unique constraint → XA_RBINTEGRITY; rollbackPrepared → rolled-back (not a heuristic)', async () => {
    const xid = newXid();
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO uniq VALUES (1)'); // deferred: checked at PREPARE
    await branch.query('INSERT INTO items (v) VALUES (105)');
    await branch.end(true);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBINTEGRITY, /PostgreSQL rolled the transaction back: duplicate key value violates unique constraint "uniq_v".*SQLSTATE 23505/));
    assert.equal(branch.state, 'rolled-back');
    assert.deepEqual(await preparedGids(), []);
    assert.equal(await resource.rollbackPrepared(xid), 'rolled-back');
    assert.equal(await valueCount(105), 0);
    assert.equal(await markerCount(xid), 0);
    assert.equal(pool.totalCount - pool.idleCount, 0, 'the client went back to the pool');
    // The pool's clients are healthy afterwards (not left in a transaction block).
    assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('a failed statement in the branch → prepare answers XA_RBROLLBACK (PostgreSQL itself would answer PREPARE with a silent ROLLBACK)', async () => {
    // The trap the resource guards against, shown on a plain connection.
    const plain = await admin();
    await plain.query('BEGIN');
    await assert.rejects(plain.query('SELECT 1/0'));
    const answer = await plain.query("PREPARE TRANSACTION 'trap'");
    assert.equal(answer.command, 'ROLLBACK', 'PostgreSQL rolls back instead of preparing, without an error');
    assert.deepEqual(await preparedGids(), []);

    const xid = newXid();
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES (106)');
    await assert.rejects(branch.query('SELECT 1/0'), /division by zero/);
    await branch.end(true);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /a statement of the branch failed/));
    assert.deepEqual(await preparedGids(), []);
    assert.equal(await valueCount(106), 0);
  });

  it('one-phase commit: COMMIT, no marker, nothing prepared; a branch without work votes read-only', async () => {
    const xid = newXid();
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES (107)');
    await branch.end(true);
    await branch.commitOnePhase();
    assert.equal(await valueCount(107), 1);
    assert.equal(await markerCount(xid), 0);
    assert.deepEqual(await preparedGids(), []);

    const idle = await resource.begin(newXid());
    await idle.end(true);
    assert.equal(await idle.prepare(), 'read-only');
    assert.deepEqual(await preparedGids(), []);
    assert.equal(pool.totalCount - pool.idleCount, 0);
  });

  it('nodeIds: each node recovers only its own XIDs; without nodeIds every node of this formatId', async () => {
    const nodeA = createPostgresResource({ pool, name: 'it', nodeIds: [nodeIdOf('node-a')] });
    const nodeB = createPostgresResource({ pool, name: 'it', nodeIds: [nodeIdOf('node-b')] });
    const both = createPostgresResource({ pool, name: 'it', nodeIds: [nodeIdOf('node-b'), nodeIdOf('node-a')] });
    const xa = newXid('node-a');
    const xb = newXid('node-b');
    await prepareInsert(nodeA, xa, 108);
    await prepareInsert(nodeB, xb, 109);
    try {
      assert.deepEqual(await recoveredGids(nodeA), [pgGidOf(xa)]);
      assert.deepEqual(await recoveredGids(nodeB), [pgGidOf(xb)]);
      assert.deepEqual((await recoveredGids(both)).sort(), [pgGidOf(xa), pgGidOf(xb)].sort());
      assert.deepEqual((await recoveredGids(resource)).sort(), [pgGidOf(xa), pgGidOf(xb)].sort());
    } finally {
      assert.equal(await nodeA.commitPrepared(xa), 'committed');
      assert.equal(await nodeB.rollbackPrepared(xb), 'rolled-back');
    }
  });

  it('wrong role for COMMIT PREPARED → XAER_RMERR saying only the preparing role or a superuser can finish it', async () => {
    await adminQuery('CREATE ROLE other_app LOGIN');
    const otherPool = openPool(server, { connectionString: server.connectionString.replace('postgres@', 'other_app@') });
    extraPools.push(otherPool);
    const asOther = createPostgresResource({ pool: otherPool, name: 'it' });
    const xid = newXid();
    await prepareInsert(resource, xid, 110);
    await assert.rejects(asOther.commitPrepared(xid), isXa(XaCode.XAER_RMERR, /permission denied to finish prepared transaction.*Only the role that prepared the transaction or a superuser can finish it/));
    await assert.rejects(asOther.rollbackPrepared(xid), isXa(XaCode.XAER_RMERR));
    assert.equal(await resource.commitPrepared(xid), 'committed');
    assert.equal(await valueCount(110), 1);
  });

  it('the branch connection killed during the work phase → XA_RBCOMMFAIL at prepare, no crash; rollbackPrepared → rolled-back', async () => {
    const xid = newXid();
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES (111)');
    const pid = (await branch.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    // The 5 s argument makes the call wait until the backend has exited, so its FATAL message
    // is on the socket; then the client gets a moment to read it (an 'error' event on the
    // checked-out client).
    await adminQuery('SELECT pg_terminate_backend($1, 5000)', [pid]);
    await sleep(200);
    await branch.end(true);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBCOMMFAIL, /connection to PostgreSQL was lost/));
    assert.equal(await resource.rollbackPrepared(xid), 'rolled-back');
    assert.equal(await valueCount(111), 0);
    assert.deepEqual(await preparedGids(), []);
  });

  it('pool clients killed while idle: phase two answers XAER_RMFAIL or succeeds, never a rollback code', async () => {
    const xid = newXid();
    await prepareInsert(resource, xid, 112);
    // Fill the pool with idle clients, then kill all of their backends.
    const held = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    for (const client of held) client.release();
    await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
    let outcome: string | undefined;
    for (let attempt = 0; attempt < 10 && outcome === undefined; attempt++) {
      try {
        outcome = await resource.commitPrepared(xid);
      } catch (err) {
        isXa(XaCode.XAER_RMFAIL)(err);
        assert.equal(isRollbackCode((err as XaError).xaCode), false);
      }
    }
    assert.equal(outcome, 'committed');
    assert.equal(await valueCount(112), 1);
  });

  it('the phase-two connection killed during COMMIT PREPARED (pg_terminate_backend) → XAER_RMFAIL; a retry finds it committed', async () => {
    const xid = newXid();
    await prepareInsert(resource, xid, 113);

    // Make COMMIT PREPARED wait (for a synchronous standby that never comes), so that its
    // backend can be killed mid-statement. The server runs with synchronous_commit=off on its
    // command line; the phase-two pool turns it on per connection.
    await adminQuery("ALTER SYSTEM SET synchronous_standby_names = 'metaq_nobody'");
    await adminQuery('SELECT pg_reload_conf()');
    const syncPool = openPool(server, { options: '-c synchronous_commit=on', max: 1 });
    extraPools.push(syncPool);
    try {
      // The setting reaches the WAL senders' shared state through the checkpointer: wait until a
      // commit really blocks (then cancel that probe: a canceled wait still commits locally).
      await waitFor(
        async () => {
          const probe = await syncPool.connect();
          try {
            const pid = (await probe.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
            // It must write WAL: a transaction that wrote none does not wait for a standby.
            const running = probe.query('INSERT INTO sync_probe VALUES (1)');
            const blocked = await Promise.race([running.then(() => false), sleep(300).then(() => true)]);
            if (blocked) {
              await adminQuery('SELECT pg_cancel_backend($1)', [pid]);
              await running;
            }
            return blocked;
          } finally {
            probe.release();
          }
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'synchronous replication to make commits wait' },
      );

      const syncResource = createPostgresResource({ pool: syncPool, name: 'it' });
      const commit = syncResource.commitPrepared(xid);
      commit.catch(() => undefined);
      const pid = await waitFor(
        async () => (await adminQuery<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE 'COMMIT PREPARED%'")).rows[0]?.pid,
        { timeoutMs: 10_000, what: 'COMMIT PREPARED waiting for the standby' },
      );
      await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
      await assert.rejects(commit, (err: unknown) => {
        isXa(XaCode.XAER_RMFAIL, /could not be reached or the connection was lost.*outcome is unknown/)(err);
        return true;
      });
    } finally {
      await adminQuery('ALTER SYSTEM RESET synchronous_standby_names');
      await adminQuery('SELECT pg_reload_conf()');
    }
    // The commit had happened locally before the wait; the marker row says so.
    assert.deepEqual(await preparedGids(), []);
    assert.equal(await resource.commitPrepared(xid), 'committed');
    assert.equal(await valueCount(113), 1);
  });

  it('PostgreSQL restart with a prepared transaction: XAER_RMFAIL during the outage, still listed after, then committed', async () => {
    const xid = newXid();
    await prepareInsert(resource, xid, 114);
    await server.kill();
    try {
      await assert.rejects(resource.commitPrepared(xid), isXa(XaCode.XAER_RMFAIL, /could not be reached/));
      await assert.rejects(resource.rollbackPrepared(xid), isXa(XaCode.XAER_RMFAIL));
      await assert.rejects(resource.recover(), isXa(XaCode.XAER_RMFAIL));
      await assert.rejects(resource.begin(newXid()), isXa(XaCode.XAER_RMFAIL));
    } finally {
      await server.start();
    }
    assert.deepEqual(await recoveredGids(), [pgGidOf(xid)], 'the prepared transaction survived the crash');
    assert.equal(await valueCount(114), 0);
    assert.equal(await resource.commitPrepared(xid), 'committed');
    assert.equal(await valueCount(114), 1);
    assert.equal(await resource.commitPrepared(xid), 'committed');
  });
});
