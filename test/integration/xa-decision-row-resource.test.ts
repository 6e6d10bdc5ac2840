/**
 * The PostgreSQL resource in decision-row mode (transactions.md §5.1, §5.6, failure-matrix row
 * 23) against a real, private PostgreSQL 15: a server without prepared transactions is fine for
 * it (and still refused in xa mode); init() creates the decision table; `commitAsDecision`
 * commits the work together with its `C` row in one round trip; `decisionsOf`; `claimRollback`
 * writing `A` rows; a claim that beats the commit (XA_RBROLLBACK, nothing committed); THE RACE —
 * a rollback claim against a commit in flight waits on the unique index and then reports
 * exactly the outcome that happened, whether the commit went through or rolled back (driven
 * both through the real branch, slowed down at COMMIT by a deferred trigger, and through a plain
 * session emulating one); a claim giving up after `claimWaitMs`; a decision commit in an
 * aborted block or failing a deferred constraint (no row); housekeeping (paging, node
 * filtering, deletion); and connections killed before and during `commitAsDecision`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isRollbackCode, XaCode } from '../../src/client/transaction/xa-codes.js';
import { ConfigError, XaError } from '../../src/common/errors.js';
import { createPostgresResource, decisionKeyOf, type PostgresBranch, type PostgresResource } from '../../src/xa/postgres/index.js';
import { isDecisionKeeper, isLastResourceBranch } from '../../src/xa/resource.js';
import { branchXid, gtridHex, makeGtrid, nodeIdOf, type Xid } from '../../src/xa/xid.js';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.js';
import { waitFor } from '../helpers/wait-for.js';

let sequence = 0n;

/** A fresh XID of node `node` (branch 1: the PostgreSQL branch after a broker branch 0, say). */
function newXid(node = 'dr-node'): Xid {
  sequence += 1n;
  return branchXid(makeGtrid({ nodeId: nodeIdOf(node), startedAtMs: Date.now(), sequence }), 1);
}

function isXa(code: number, pattern?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof XaError, `expected an XaError, got ${err instanceof Error ? err.stack : String(err)}`);
    assert.equal(err.xaCode, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

function openPool(server: PostgresServer, config: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: server.connectionString, max: 8, connectionTimeoutMillis: 3000, ...config });
  pool.on('error', () => undefined);
  return pool;
}

/** Resolves to 'pending' when `promise` has not settled after `ms`. */
async function stillPendingAfter(promise: Promise<unknown>, ms: number): Promise<'pending' | 'settled'> {
  return Promise.race([promise.then(
    () => 'settled' as const,
    () => 'settled' as const,
  ), sleep(ms).then(() => 'pending' as const)]);
}

async function queryOnce<R extends pg.QueryResultRow = pg.QueryResultRow>(server: PostgresServer, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: server.connectionString });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(text, values);
  } finally {
    await client.end();
  }
}

describe('decision-row resource: a server without prepared transactions', () => {
  let server: PostgresServer | undefined;
  let pool: pg.Pool | undefined;
  after(async () => {
    await pool?.end();
    await server?.stop();
  });

  it('init() succeeds in decision-row mode (and a decision commit works), while xa mode is refused', async () => {
    server = await startPostgres({ maxPreparedTransactions: 0 });
    pool = openPool(server, { max: 3 });
    const xa = createPostgresResource({ pool, name: 'no2pc' });
    await assert.rejects(xa.init(), (err: unknown) => err instanceof ConfigError && /prepared transactions are disabled/.test(err.message));

    const resource = createPostgresResource({ pool, name: 'no2pc', mode: 'decision-row' });
    await resource.init();
    assert.equal((await queryOnce<{ t: string | null }>(server, "SELECT to_regclass('metaq_xa_marker')::text AS t")).rows[0]?.t, null, 'no marker table in decision-row mode');
    await queryOnce(server, 'CREATE TABLE items (v int NOT NULL)');
    const xid = newXid();
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES (1)');
    await branch.end(true);
    await branch.commitAsDecision();
    assert.equal((await queryOnce<{ n: number }>(server, 'SELECT count(*)::int AS n FROM items')).rows[0]?.n, 1);
    assert.deepEqual(await resource.decisionsOf([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'commit']]));
  });
});

describe('decision-row resource against a real PostgreSQL', () => {
  let server: PostgresServer;
  let pool: pg.Pool;
  let resource: PostgresResource;
  const extraPools: pg.Pool[] = [];
  const sessions: pg.Client[] = [];

  /** A connection outside the resource's pool (another application session, or an administrator). */
  async function session(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: server.connectionString });
    client.on('error', () => undefined);
    await client.connect();
    sessions.push(client);
    return client;
  }

  async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return queryOnce<R>(server, text, values);
  }

  async function valueCount(value: number): Promise<number> {
    return (await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM items WHERE v = $1', [value])).rows[0]?.n ?? -1;
  }

  /** The outcome column of the gtrid's row, or undefined without one. */
  async function rowOf(xid: Xid, table = 'metaq_xa_decision'): Promise<string | undefined> {
    return (await adminQuery<{ outcome: string }>(`SELECT outcome FROM ${table} WHERE gtrid = $1`, [decisionKeyOf(xid.globalTransactionId)])).rows[0]?.outcome;
  }

  function busyClients(): number {
    return pool.totalCount - pool.idleCount;
  }

  /** begin → INSERT v (+ extra statements) → end(true). */
  async function branchWith(xid: Xid, value: number, ...extra: string[]): Promise<PostgresBranch> {
    const branch = await resource.begin(xid);
    await branch.query('INSERT INTO items (v) VALUES ($1)', [value]);
    for (const statement of extra) await branch.query(statement);
    return branch;
  }

  async function backendPid(branch: PostgresBranch): Promise<number> {
    const pid = (await branch.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    assert.ok(pid !== undefined);
    return pid;
  }

  /** Waits until backend `pid` sleeps in the deferred trigger, i.e. is inside COMMIT after its decision INSERT. */
  async function waitUntilSleepingInCommit(pid: number): Promise<void> {
    await waitFor(async () => (await adminQuery<{ w: string | null }>('SELECT wait_event AS w FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0]?.w === 'PgSleep', {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: `backend ${pid} sleeping in the deferred trigger at COMMIT`,
    });
  }

  /** How many backends wait for another transaction to finish (a heavyweight lock on its transaction id). */
  async function transactionLockWaiters(): Promise<number> {
    return (await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'transactionid'")).rows[0]?.n ?? -1;
  }

  before(async () => {
    server = await startPostgres({ maxPreparedTransactions: 16 });
    pool = openPool(server);
    resource = createPostgresResource({ pool, name: 'dr', mode: 'decision-row' });
    await resource.init();
    await resource.init(); // idempotent
    await adminQuery('CREATE TABLE items (v int NOT NULL)');
    await adminQuery('CREATE TABLE uniq (v int, CONSTRAINT uniq_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)');
    await adminQuery('INSERT INTO uniq VALUES (1)');
    // A commit made slow (and optionally failing) on purpose: a deferred constraint trigger runs
    // at COMMIT, i.e. after the decision row's INSERT in the same round trip.
    await adminQuery('CREATE TABLE slow_commit (sleep_s float8 NOT NULL, fail boolean NOT NULL DEFAULT false)');
    await adminQuery(`CREATE FUNCTION slow_commit_check() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_sleep(NEW.sleep_s);
        IF NEW.fail THEN RAISE EXCEPTION 'slow_commit: failing at COMMIT as asked'; END IF;
        RETURN NULL;
      END $$`);
    await adminQuery('CREATE CONSTRAINT TRIGGER slow_commit_at_commit AFTER INSERT ON slow_commit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_check()');
  });

  after(async () => {
    for (const client of sessions) await client.end().catch(() => undefined);
    for (const p of extraPools) await p.end().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await server?.stop();
  });

  it('init() created the decision table (not the marker table); the resource is a decision keeper', async () => {
    const columns = (
      await adminQuery<{ column_name: string; data_type: string; is_nullable: string }>(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'metaq_xa_decision' ORDER BY ordinal_position",
      )
    ).rows;
    assert.deepEqual(columns, [
      { column_name: 'gtrid', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'outcome', data_type: 'character', is_nullable: 'NO' },
      { column_name: 'created_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
    await assert.rejects(adminQuery("INSERT INTO metaq_xa_decision (gtrid, outcome) VALUES ('x', 'X')"), /check constraint/);
    assert.equal((await adminQuery<{ t: string | null }>("SELECT to_regclass('metaq_xa_marker')::text AS t")).rows[0]?.t, null);
    assert.ok(isDecisionKeeper(resource));
    assert.equal(resource.mode, 'decision-row');
  });

  it('init(): a schema-qualified table is created; a role without privileges, or a table without a unique gtrid, is refused with what to do', async () => {
    await adminQuery('CREATE SCHEMA ops');
    const custom = createPostgresResource({ pool, name: 'dr', mode: 'decision-row', decisionTable: 'ops.Decisions' });
    await custom.init();
    assert.equal((await adminQuery<{ t: string | null }>(`SELECT to_regclass('ops."Decisions"')::text AS t`)).rows[0]?.t, 'ops."Decisions"');

    await adminQuery('CREATE TABLE weak_decisions (gtrid text, outcome char(1))');
    await assert.rejects(createPostgresResource({ pool, name: 'dr', mode: 'decision-row', decisionTable: 'weak_decisions' }).init(), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /has no non-deferrable unique key on gtrid alone/);
      return true;
    });
    await adminQuery('CREATE TABLE odd_decisions (id int PRIMARY KEY)');
    await assert.rejects(createPostgresResource({ pool, name: 'dr', mode: 'decision-row', decisionTable: 'odd_decisions' }).init(), /XA decision table "odd_decisions" lacks a column/);

    await adminQuery('CREATE ROLE dr_reader LOGIN');
    await adminQuery('GRANT SELECT ON metaq_xa_decision TO dr_reader');
    const readerPool = openPool(server, { connectionString: server.connectionString.replace('postgres@', 'dr_reader@') });
    extraPools.push(readerPool);
    await assert.rejects(createPostgresResource({ pool: readerPool, name: 'dr', mode: 'decision-row' }).init(), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /lacks INSERT, DELETE on the XA decision table "metaq_xa_decision"; grant it: GRANT INSERT, SELECT, DELETE ON "metaq_xa_decision" TO <role>/);
      return true;
    });
    await assert.rejects(createPostgresResource({ pool: readerPool, name: 'dr', mode: 'decision-row', decisionTable: 'not_there' }).init(), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /cannot create the XA decision table "not_there".*Create it as a privileged role: CREATE TABLE IF NOT EXISTS "not_there"/);
      return true;
    });
  });

  it('commitAsDecision commits the work and the C row in one go; decisionsOf reads it; nothing prepared, client released', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 201);
    assert.ok(isLastResourceBranch(branch));
    await branch.end(true);
    assert.equal(await valueCount(201), 0);
    await branch.commitAsDecision();
    assert.equal(branch.state, 'committed');
    assert.equal(await valueCount(201), 1);
    assert.equal(await rowOf(xid), 'C');
    assert.equal(busyClients(), 0);
    assert.equal((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0]?.n, 0);
    const unknown = newXid();
    assert.deepEqual(
      await resource.decisionsOf([xid.globalTransactionId, unknown.globalTransactionId]),
      new Map([[gtridHex(xid.globalTransactionId), 'commit']]),
    );
    // A claim of a committed transaction finds the commit and leaves the row alone.
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'commit']]));
    assert.equal(await rowOf(xid), 'C');
  });

  it('the decision commit is synchronous although the server runs with synchronous_commit = off (an acknowledged decision survives a crash)', async () => {
    // Observable without a crash: with a synchronous standby named that never connects, a commit
    // that asks for a synchronous commit waits for it, an asynchronous one does not.
    assert.equal((await adminQuery<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]?.s, 'off', 'the test server commits asynchronously');
    await adminQuery("ALTER SYSTEM SET synchronous_standby_names = 'metaq_test_ghost'");
    await adminQuery('SELECT pg_reload_conf()');
    let committing: Promise<void> | undefined;
    try {
      await waitFor(async () => (await adminQuery<{ s: string }>("SELECT current_setting('synchronous_standby_names') AS s")).rows[0]?.s === 'metaq_test_ghost', { timeoutMs: 5000, intervalMs: 20, what: 'the setting reloaded' });
      await adminQuery('CREATE TABLE IF NOT EXISTS sync_probe (n int)');
      await adminQuery('INSERT INTO sync_probe VALUES (1)'); // an ordinary commit here does not wait
      const xid = newXid();
      const branch = await branchWith(xid, 290);
      await branch.end(true);
      committing = branch.commitAsDecision();
      assert.equal(await stillPendingAfter(committing, 700), 'pending', 'the decision commit waits for its WAL flush (here: for the synchronous standby)');
    } finally {
      await adminQuery('ALTER SYSTEM RESET synchronous_standby_names');
      await adminQuery('SELECT pg_reload_conf()');
    }
    await committing;
    assert.equal(await valueCount(290), 1);
  });

  it('claimRollback of an unknown gtrid writes A and answers rollback (idempotently)', async () => {
    const xid = newXid();
    const hex = gtridHex(xid.globalTransactionId);
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[hex, 'rollback']]));
    assert.equal(await rowOf(xid), 'A');
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[hex, 'rollback']]));
    assert.deepEqual(await resource.decisionsOf([xid.globalTransactionId]), new Map([[hex, 'rollback']]));
    assert.equal(busyClients(), 0);
  });

  it('a claim before the commit: commitAsDecision → XA_RBROLLBACK ("claimed"), the work is not committed, the row stays A', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 202);
    await branch.end(true);
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'rollback']]));
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /recovery had already claimed this transaction for rollback.*SQLSTATE 23505/));
    assert.equal(branch.state, 'rolled-back');
    assert.equal(await valueCount(202), 0);
    assert.equal(await rowOf(xid), 'A');
    assert.equal(busyClients(), 0);
    // The pool's clients are healthy afterwards (not left in an aborted block).
    assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('THE RACE (row 23), commit in flight wins: the claim waits on the unique index, then answers commit', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 203, 'INSERT INTO slow_commit (sleep_s) VALUES (1.5)');
    const pid = await backendPid(branch);
    await branch.end(true);
    const commit = branch.commitAsDecision();
    await waitUntilSleepingInCommit(pid); // its C row is inserted, not yet committed
    const claim = resource.claimRollback([xid.globalTransactionId]);
    assert.equal(await stillPendingAfter(claim, 200), 'pending', 'the claim must wait for the commit in flight');
    assert.ok((await transactionLockWaiters()) >= 1, 'waiting on the committing transaction');
    await commit;
    assert.deepEqual(await claim, new Map([[gtridHex(xid.globalTransactionId), 'commit']]));
    assert.equal(await rowOf(xid), 'C');
    assert.equal(await valueCount(203), 1);
  });

  it('THE RACE, commit in flight fails after its C insert: the claim then inserts A and answers rollback; no work committed', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 204, 'INSERT INTO slow_commit (sleep_s, fail) VALUES (1.0, true)');
    const pid = await backendPid(branch);
    await branch.end(true);
    const commit = branch.commitAsDecision();
    commit.catch(() => undefined);
    await waitUntilSleepingInCommit(pid);
    const claim = resource.claimRollback([xid.globalTransactionId]);
    assert.equal(await stillPendingAfter(claim, 200), 'pending');
    await assert.rejects(commit, isXa(XaCode.XA_RBROLLBACK, /PostgreSQL rolled the transaction back: slow_commit: failing at COMMIT/));
    assert.deepEqual(await claim, new Map([[gtridHex(xid.globalTransactionId), 'rollback']]));
    assert.equal(await rowOf(xid), 'A');
    assert.equal(await valueCount(204), 0);
    assert.equal(busyClients(), 0);
  });

  it('THE RACE emulated by a plain session: BEGIN, work, C row uncommitted; the claim waits; COMMIT → commit, ROLLBACK → rollback (A)', async () => {
    for (const ending of ['COMMIT', 'ROLLBACK'] as const) {
      const xid = newXid();
      const value = ending === 'COMMIT' ? 205 : 206;
      const s1 = await session();
      await s1.query('BEGIN');
      await s1.query('INSERT INTO items (v) VALUES ($1)', [value]);
      await s1.query("INSERT INTO metaq_xa_decision (gtrid, outcome) VALUES ($1, 'C')", [decisionKeyOf(xid.globalTransactionId)]);
      const claim = resource.claimRollback([xid.globalTransactionId]);
      assert.equal(await stillPendingAfter(claim, 200), 'pending', `${ending}: the claim must wait`);
      await s1.query(ending);
      const expected = ending === 'COMMIT' ? 'commit' : 'rollback';
      assert.deepEqual(await claim, new Map([[gtridHex(xid.globalTransactionId), expected]]));
      assert.equal(await rowOf(xid), ending === 'COMMIT' ? 'C' : 'A');
      assert.equal(await valueCount(value), ending === 'COMMIT' ? 1 : 0);
    }
  });

  it('claimWaitMs exceeded: the slow key is absent (no row), the others are settled; a lone slow key → empty result', async () => {
    const impatient = createPostgresResource({ pool, name: 'dr', mode: 'decision-row', claimWaitMs: 300 });
    const slow = newXid();
    const quick = newXid();
    const committed = newXid();
    await adminQuery("INSERT INTO metaq_xa_decision (gtrid, outcome) VALUES ($1, 'C')", [decisionKeyOf(committed.globalTransactionId)]);
    const s1 = await session();
    await s1.query('BEGIN');
    await s1.query("INSERT INTO metaq_xa_decision (gtrid, outcome) VALUES ($1, 'C')", [decisionKeyOf(slow.globalTransactionId)]);
    try {
      const started = Date.now();
      const result = await impatient.claimRollback([slow.globalTransactionId, quick.globalTransactionId, committed.globalTransactionId]);
      assert.ok(Date.now() - started >= 300, 'it waited claimWaitMs at least');
      assert.deepEqual(
        result,
        new Map([
          [gtridHex(quick.globalTransactionId), 'rollback'],
          [gtridHex(committed.globalTransactionId), 'commit'],
        ]),
      );
      assert.equal(await rowOf(quick), 'A');
      assert.deepEqual(await impatient.claimRollback([slow.globalTransactionId]), new Map());
    } finally {
      await s1.query('ROLLBACK');
    }
    assert.equal(await rowOf(slow), undefined, 'no row was written for the slow key');
    assert.equal(busyClients(), 0);
    // Once the commit in flight is gone, the claim settles it.
    assert.deepEqual(await impatient.claimRollback([slow.globalTransactionId]), new Map([[gtridHex(slow.globalTransactionId), 'rollback']]));
  });

  it('a decision commit in an aborted block → XA_RBROLLBACK, no row; failing a deferred constraint → XA_RBINTEGRITY, no row', async () => {
    const aborted = newXid();
    const branch = await branchWith(aborted, 207);
    await assert.rejects(branch.query('SELECT 1/0'), /division by zero/);
    await branch.end(true);
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /a statement of the branch failed/));
    assert.equal(await rowOf(aborted), undefined);
    assert.equal(await valueCount(207), 0);

    const deferred = newXid();
    const branch3 = await branchWith(deferred, 209, 'INSERT INTO uniq VALUES (1)');
    await branch3.end(true);
    await assert.rejects(branch3.commitAsDecision(), isXa(XaCode.XA_RBINTEGRITY, /uniq_v/));
    assert.equal(await rowOf(deferred), undefined, 'the decision row rolled back with the work');
    assert.equal(await valueCount(209), 0);
    assert.equal(busyClients(), 0);
    assert.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  it('prepare of a decision-row branch with work → XA_RBPROTO (rolled back, nothing prepared)', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 210);
    await branch.end(true);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBPROTO, /never prepared; only one decision-row resource may do work in a transaction — use mode 'xa' for the others/));
    assert.equal((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_xacts')).rows[0]?.n, 0);
    assert.equal(await valueCount(210), 0);
    assert.equal(busyClients(), 0);
  });

  it('housekeeping: listMarkers pages the decision rows of the given nodes only (foreign rows skipped); deleteMarkers deletes by gtrid', async () => {
    await adminQuery('DELETE FROM metaq_xa_decision');
    const mineA = Array.from({ length: 5 }, () => newXid('hk-node-a'));
    const mineB = Array.from({ length: 2 }, () => newXid('hk-node-b'));
    const others = Array.from({ length: 3 }, () => newXid('hk-node-c'));
    for (const xid of [...mineA, ...mineB, ...others]) await resource.claimRollback([xid.globalTransactionId]);
    // Not keys of ours: other shapes, another formatId, lenient base64, a gid (with a bqual).
    const foreign = ['foo', '1_AAAA', '1297175635_foo', `${decisionKeyOf(mineA[0]?.globalTransactionId ?? Buffer.alloc(1))}_AAAAAQ==`];
    for (const key of foreign) await adminQuery("INSERT INTO metaq_xa_decision (gtrid, outcome) VALUES ($1, 'A')", [key]);
    const nodes = [nodeIdOf('hk-node-a'), nodeIdOf('hk-node-b')];
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await resource.listMarkers(nodes, 2, cursor);
      pages += 1;
      for (const xid of page.xids) {
        assert.equal(xid.branchQualifier.length, 0);
        seen.push(gtridHex(xid.globalTransactionId));
      }
      cursor = page.next;
    } while (cursor !== undefined && pages < 20);
    assert.ok(pages >= 4, `paged (${pages} pages)`);
    assert.deepEqual(seen.sort(), [...mineA, ...mineB].map((x) => gtridHex(x.globalTransactionId)).sort());
    assert.deepEqual((await resource.listMarkers([nodeIdOf('hk-node-c')], 100)).xids.length, 3);
    assert.deepEqual(await resource.listMarkers([], 10), { xids: [], next: undefined });

    // Deleted by gtrid, whatever the branch qualifier given.
    await resource.deleteMarkers([...mineA.map((x) => branchXid(x.globalTransactionId, 7)), ...mineB]);
    assert.deepEqual((await resource.listMarkers(nodes, 100)).xids, []);
    assert.equal((await resource.listMarkers([nodeIdOf('hk-node-c')], 100)).xids.length, 3, 'other nodes untouched');
    await resource.deleteMarkers([{ formatId: 1, globalTransactionId: Buffer.from('AAAA', 'base64'), branchQualifier: Buffer.alloc(0) }]);
    assert.equal((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM metaq_xa_decision WHERE gtrid = ANY($1)', [foreign])).rows[0]?.n, 4, 'foreign rows untouched');
  });

  it('connection killed before commitAsDecision → XA_RBCOMMFAIL (PostgreSQL rolled back), no row; a claim then answers rollback', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 211);
    const pid = await backendPid(branch);
    // The 5 s argument makes the call wait until the backend has exited, so its FATAL message
    // is on the socket; then the client gets a moment to read it (an 'error' event on the
    // checked-out client).
    await adminQuery('SELECT pg_terminate_backend($1, 5000)', [pid]);
    await sleep(200);
    await branch.end(true);
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBCOMMFAIL, /connection to PostgreSQL was lost during the work phase/));
    assert.equal(await rowOf(xid), undefined);
    assert.equal(await valueCount(211), 0);
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'rollback']]));
  });

  it('connection killed during commitAsDecision → XAER_RMFAIL (commit-unknown, never a rollback code); the claim settles it as rollback', async () => {
    const xid = newXid();
    const branch = await branchWith(xid, 212, 'INSERT INTO slow_commit (sleep_s) VALUES (30)');
    const pid = await backendPid(branch);
    await branch.end(true);
    const commit = branch.commitAsDecision();
    commit.catch(() => undefined);
    await waitUntilSleepingInCommit(pid);
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
    await assert.rejects(commit, (err: unknown) => {
      isXa(XaCode.XAER_RMFAIL, /connection to PostgreSQL was lost.*outcome is unknown/)(err);
      assert.equal(isRollbackCode((err as XaError).xaCode), false);
      return true;
    });
    assert.equal(branch.state, 'commit-unknown');
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'rollback']]));
    assert.equal(await valueCount(212), 0);
    assert.equal(await rowOf(xid), 'A');
  });

  it('PostgreSQL down: decisionsOf / claimRollback / listMarkers / deleteMarkers answer XAER_RMFAIL', async () => {
    const xid = newXid();
    await server.kill();
    try {
      await assert.rejects(resource.decisionsOf([xid.globalTransactionId]), isXa(XaCode.XAER_RMFAIL, /could not be reached/));
      await assert.rejects(resource.claimRollback([xid.globalTransactionId]), isXa(XaCode.XAER_RMFAIL));
      await assert.rejects(resource.listMarkers([nodeIdOf('dr-node')], 10), isXa(XaCode.XAER_RMFAIL));
      await assert.rejects(resource.deleteMarkers([xid]), isXa(XaCode.XAER_RMFAIL));
    } finally {
      await server.start();
    }
    assert.deepEqual(await resource.claimRollback([xid.globalTransactionId]), new Map([[gtridHex(xid.globalTransactionId), 'rollback']]));
  });
});
