/**
 * The XA PostgreSQL branch's state machine and error mapping against a scripted fake pool (no
 * server): the statements it sends in order, when it gives the client back and whether it
 * destroys it, and the traps a real server only shows rarely — PREPARE/COMMIT answering
 * "ROLLBACK" without an error, a connection lost during PREPARE (outcome unknown → XAER_RMFAIL,
 * then `rollback()` resolves it through ROLLBACK PREPARED), a one-phase COMMIT whose outcome is
 * unknown.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pg from 'pg';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { XaError } from '../../src/common/errors.js';
import { createPostgresResource, type PostgresResource } from '../../src/xa/postgres/index.js';
import { branchXid, makeGtrid, nodeIdOf, pgGidOf, type Xid } from '../../src/xa/xid.js';

type Answer = { command: string; rows?: Array<Record<string, unknown>> } | Error;
type Script = (text: string, client: FakeClient) => Answer | undefined;
type FakeResult = { command: string; rows: Array<Record<string, unknown>>; rowCount: number };

/** A pg PoolClient stand-in: records statements, answers from a script, tracks transaction status. */
class FakeClient extends EventEmitter {
  /** Each query string as sent (one per round trip). */
  readonly statements: string[] = [];
  /** Each statement PostgreSQL ran, a multi-statement query string split into its statements. */
  readonly executed: string[] = [];
  readonly releases: Array<Error | boolean | undefined> = [];
  txStatus: 'I' | 'T' | 'E' | null = 'I';
  readonly escapeLiteral = pg.escapeLiteral;
  #script: Script;

  constructor(script: Script) {
    super();
    this.#script = script;
  }

  getTransactionStatus(): 'I' | 'T' | 'E' | null {
    return this.txStatus;
  }

  /**
   * Like node-pg: a query string of several statements (`a; b`, sent in one round trip) runs
   * them in order, stops at the first error, and answers an array of results.
   */
  async query(textOrConfig: string | { text: string }): Promise<FakeResult | FakeResult[]> {
    const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
    this.statements.push(text);
    const results: FakeResult[] = [];
    const parts = text.split('; ');
    for (const part of parts) {
      this.executed.push(part);
      const answer = this.#script(part, this) ?? defaultAnswer(part, this);
      if (answer instanceof Error) {
        if (this.txStatus === 'T') this.txStatus = 'E';
        throw answer;
      }
      results.push({ command: answer.command, rows: answer.rows ?? [], rowCount: answer.rows?.length ?? 0 });
    }
    return parts.length === 1 ? (results[0] as FakeResult) : results;
  }

  release(err?: Error | boolean): void {
    this.releases.push(err);
  }
}

function defaultAnswer(text: string, client: FakeClient): Answer {
  const verb = text.split(' ')[0] ?? '';
  if (verb === 'BEGIN') client.txStatus = 'T';
  if (verb === 'PREPARE' || verb === 'COMMIT' || verb === 'ROLLBACK') client.txStatus = 'I';
  return { command: verb };
}

/** A pool handing out one new FakeClient (with the same script) per connect. */
class FakePool extends EventEmitter {
  readonly clients: FakeClient[] = [];
  readonly options = { max: 10 };
  script: Script;

  constructor(script: Script = () => undefined) {
    super();
    this.script = script;
  }

  async connect(): Promise<FakeClient> {
    const client = new FakeClient((text, c) => this.script(text, c));
    this.clients.push(client);
    return client;
  }
}

function pgError(code: string, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

const XID: Xid = branchXid(makeGtrid({ nodeId: nodeIdOf('unit'), startedAtMs: 1_700_000_000_000, sequence: 1n }), 0);
const GID = pgGidOf(XID);

function setUp(script?: Script): { pool: FakePool; resource: PostgresResource } {
  const pool = new FakePool(script);
  return { pool, resource: createPostgresResource({ pool: pool as unknown as pg.Pool, name: 'unit' }) };
}

function isXa(code: number, pattern?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof XaError, `expected an XaError, got ${String(err)}`);
    assert.equal(err.xaCode, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

describe('xa postgres branch (fake pool)', () => {
  it('begin/query/end/prepare: BEGIN, work, marker + PREPARE TRANSACTION in one round trip, then a healthy release; prepare is idempotent', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    assert.equal(branch.resourceId, 'postgres:unit');
    assert.equal(branch.gid, GID);
    assert.equal(branch.hasWork, false);
    await branch.query('INSERT INTO t VALUES ($1)', [1]);
    assert.equal(branch.hasWork, true);
    await branch.end(true);
    await assert.rejects(branch.query('SELECT 1'), isXa(XaCode.XAER_PROTO, /not allowed in state ended/));
    assert.equal(await branch.prepare(), 'ok');
    assert.equal(await branch.prepare(), 'ok');
    const [client] = pool.clients;
    assert.ok(client !== undefined);
    assert.deepEqual(client.statements, ['BEGIN', 'INSERT INTO t VALUES ($1)', `INSERT INTO "metaq_xa_marker" (gid) VALUES ('${GID}'); PREPARE TRANSACTION '${GID}'`]);
    assert.deepEqual(client.executed.slice(2), [`INSERT INTO "metaq_xa_marker" (gid) VALUES ('${GID}')`, `PREPARE TRANSACTION '${GID}'`]);
    assert.deepEqual(client.releases, [undefined]);
    assert.equal(branch.state, 'prepared');
    await assert.rejects(branch.commitOnePhase(), isXa(XaCode.XAER_PROTO));
  });

  it('PREPARE answered with ROLLBACK (no error) is a no vote, never "ok"', async () => {
    const { pool, resource } = setUp((text) => (text.startsWith('PREPARE') ? { command: 'ROLLBACK' } : undefined));
    const branch = await resource.begin(XID);
    await branch.query('UPDATE t SET v = 2');
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /answered ROLLBACK instead of PREPARE/));
    assert.equal(branch.state, 'rolled-back');
    assert.equal(pool.clients[0]?.releases.length, 1);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /rolled back earlier/));
    await branch.rollback(); // idempotent, no error
  });

  it('a branch without work gives its client back at end(true) and votes read-only', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.end(true);
    const client = pool.clients[0];
    assert.deepEqual(client?.statements, ['BEGIN', 'ROLLBACK']);
    assert.deepEqual(client?.releases, [undefined]);
    assert.equal(await branch.prepare(), 'read-only');
    await branch.commitOnePhase();
    await branch.rollback();
    assert.equal(client?.statements.length, 2);
  });

  it('end(false) rolls back at once; prepare then answers XA_RBROLLBACK', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('DELETE FROM t');
    await branch.end(false);
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'DELETE FROM t', 'ROLLBACK']);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /ended with failure/));
  });

  it('a failed statement (aborted block) → prepare rolls back without trying PREPARE', async () => {
    const { pool, resource } = setUp((text) => (text === 'BAD' ? pgError('42601', 'syntax error') : undefined));
    const branch = await resource.begin(XID);
    await assert.rejects(branch.query('BAD'), (err: Error) => (err as Error & { code?: string }).code === '42601');
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /a statement of the branch failed/));
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'BAD', 'ROLLBACK']);
  });

  it('the application ending the block itself (COMMIT through query) is XAER_PROTO, not a silent ROLLBACK vote', async () => {
    const { resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('COMMIT');
    await assert.rejects(branch.prepare(), isXa(XaCode.XAER_PROTO, /no longer in a transaction block/));
  });

  it('the connection dying during the work phase → XA_RBCOMMFAIL, client destroyed, no statement sent on it', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('INSERT INTO t VALUES (1)');
    const client = pool.clients[0];
    assert.ok(client !== undefined);
    client.emit('error', pgError('57P01', 'terminating connection due to administrator command'));
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBCOMMFAIL, /lost during the work phase/));
    assert.deepEqual(client.statements, ['BEGIN', 'INSERT INTO t VALUES (1)']);
    assert.equal(client.releases.length, 1);
    assert.ok(client.releases[0] instanceof Error, 'a broken client is released with an error so the pool discards it');
    assert.equal(client.listenerCount('error'), 0, 'the branch removes its error listener');
  });

  it('connection lost during PREPARE → XAER_RMFAIL (outcome unknown); rollback() then resolves it with ROLLBACK PREPARED', async () => {
    const { pool, resource } = setUp((text, client) => {
      if (text.startsWith('PREPARE') && pool.clients.indexOf(client) === 0) return new Error('Connection terminated unexpectedly');
      if (text.startsWith('ROLLBACK PREPARED')) return pgError('42704', `prepared transaction with identifier "${GID}" does not exist`);
      if (text.startsWith('SELECT 1 AS present')) return { command: 'SELECT', rows: [] };
      return undefined;
    });
    const branch = await resource.begin(XID);
    await branch.query('INSERT INTO t VALUES (1)');
    await assert.rejects(branch.prepare(), isXa(XaCode.XAER_RMFAIL, /outcome is unknown/));
    assert.equal(branch.state, 'prepare-unknown');
    assert.ok(pool.clients[0]?.releases[0] instanceof Error);
    await branch.rollback();
    assert.equal(branch.state, 'rolled-back');
    assert.deepEqual(pool.clients[1]?.statements, [`ROLLBACK PREPARED '${GID}'`, 'SELECT 1 AS present FROM "metaq_xa_marker" WHERE gid = $1']);
    assert.deepEqual(pool.clients[1]?.releases, [undefined], 'a "does not exist" answer leaves the phase-two client healthy');
  });

  it('PREPARE failing with a serialization failure → XA_RBTRANSIENT; deadlock → XA_RBDEADLOCK; a defensive ROLLBACK follows', async () => {
    for (const [code, xaCode] of [
      ['40001', XaCode.XA_RBTRANSIENT],
      ['40P01', XaCode.XA_RBDEADLOCK],
      ['23505', XaCode.XA_RBINTEGRITY],
      ['55000', XaCode.XA_RBROLLBACK],
    ] as const) {
      const { pool, resource } = setUp((text) => (text.startsWith('PREPARE') ? pgError(code) : undefined));
      const branch = await resource.begin(XID);
      await branch.query('UPDATE t SET v = 1');
      await assert.rejects(branch.prepare(), isXa(xaCode, new RegExp(`SQLSTATE ${code}`)));
      assert.equal(pool.clients[0]?.statements.at(-1), 'ROLLBACK');
      assert.equal(pool.clients[0]?.releases.length, 1);
    }
  });

  it('a failing marker insert (no marker table) is a rollback that says to call init()', async () => {
    const { pool, resource } = setUp((text) => (text.startsWith('INSERT INTO "metaq_xa_marker"') ? pgError('42P01', 'relation "metaq_xa_marker" does not exist') : undefined));
    const branch = await resource.begin(XID);
    await branch.query('UPDATE t SET v = 1');
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBROLLBACK, /Call init\(\)/));
    assert.ok(!pool.clients[0]?.executed.some((s) => s.startsWith('PREPARE')), 'PREPARE never runs after a failed marker insert');
    assert.equal(pool.clients[0]?.statements.at(-1), 'ROLLBACK');
    assert.equal(branch.state, 'rolled-back');
  });

  it('commitOnePhase: COMMIT; "ROLLBACK" answer → XA_RBROLLBACK; deferred constraint → XA_RBINTEGRITY; lost connection → XAER_RMFAIL, then XAER_PROTO', async () => {
    {
      const { pool, resource } = setUp();
      const branch = await resource.begin(XID);
      await branch.query('UPDATE t SET v = 1');
      await branch.commitOnePhase();
      await branch.commitOnePhase();
      assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'UPDATE t SET v = 1', 'COMMIT']);
      assert.equal(branch.state, 'committed');
      await assert.rejects(branch.rollback(), isXa(XaCode.XAER_PROTO));
    }
    {
      const { resource } = setUp((text) => (text === 'COMMIT' ? { command: 'ROLLBACK' } : undefined));
      const branch = await resource.begin(XID);
      await branch.query('UPDATE t SET v = 1');
      await assert.rejects(branch.commitOnePhase(), isXa(XaCode.XA_RBROLLBACK, /instead of COMMIT/));
    }
    {
      const { resource } = setUp((text) => (text === 'COMMIT' ? pgError('23505', 'duplicate key value violates unique constraint "u"') : undefined));
      const branch = await resource.begin(XID);
      await branch.query('UPDATE t SET v = 1');
      await assert.rejects(branch.commitOnePhase(), isXa(XaCode.XA_RBINTEGRITY));
    }
    {
      const { resource } = setUp((text) => (text === 'COMMIT' ? Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) : undefined));
      const branch = await resource.begin(XID);
      await branch.query('UPDATE t SET v = 1');
      await assert.rejects(branch.commitOnePhase(), isXa(XaCode.XAER_RMFAIL));
      assert.equal(branch.state, 'commit-unknown');
      await assert.rejects(branch.commitOnePhase(), isXa(XaCode.XAER_PROTO, /commit-unknown/));
    }
  });

  it('rollback of an active branch never fails: a ROLLBACK error just destroys the client', async () => {
    const { pool, resource } = setUp((text) => (text === 'ROLLBACK' ? new Error('Connection terminated unexpectedly') : undefined));
    const branch = await resource.begin(XID);
    await branch.query('UPDATE t SET v = 1');
    await branch.rollback();
    await branch.rollback();
    assert.equal(branch.state, 'rolled-back');
    assert.ok(pool.clients[0]?.releases[0] instanceof Error);
  });

  it('one state-changing call at a time', async () => {
    const { resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('UPDATE t SET v = 1');
    const first = branch.prepare();
    await assert.rejects(branch.prepare(), isXa(XaCode.XAER_PROTO, /in progress/));
    assert.equal(await first, 'ok');
  });

  it('BEGIN failing destroys the client and maps the error (XAER_RMFAIL for a lost connection)', async () => {
    const { pool, resource } = setUp((text) => (text === 'BEGIN' ? new Error('Connection terminated unexpectedly') : undefined));
    await assert.rejects(resource.begin(XID), isXa(XaCode.XAER_RMFAIL));
    assert.ok(pool.clients[0]?.releases[0] instanceof Error);
  });

  it('phase two: "does not exist" + marker decides committed / heuristic', async () => {
    let marker = true;
    const { resource } = setUp((text) => {
      if (text.startsWith('COMMIT PREPARED') || text.startsWith('ROLLBACK PREPARED')) return pgError('42704', 'prepared transaction does not exist');
      if (text.startsWith('SELECT 1 AS present')) return { command: 'SELECT', rows: marker ? [{ present: 1 }] : [] };
      return undefined;
    });
    assert.equal(await resource.commitPrepared(XID), 'committed');
    assert.equal(await resource.rollbackPrepared(XID), 'heuristic-commit');
    marker = false;
    assert.equal(await resource.commitPrepared(XID), 'heuristic-rollback');
    assert.equal(await resource.rollbackPrepared(XID), 'rolled-back');
  });

  it('deleteMarkers: batches of 1000, ignores XIDs it could not have prepared, nothing to do → no connection', async () => {
    const { pool, resource } = setUp();
    await resource.deleteMarkers([]);
    await resource.deleteMarkers([{ formatId: 1, globalTransactionId: Buffer.alloc(3), branchQualifier: Buffer.alloc(1) }]);
    assert.equal(pool.clients.length, 0);
    const gtrid = makeGtrid({ nodeId: nodeIdOf('unit'), startedAtMs: 1, sequence: 1n });
    const xids = Array.from({ length: 2500 }, (_, i) => branchXid(gtrid, i));
    await resource.deleteMarkers([...xids, xids[0] as Xid]);
    assert.deepEqual(pool.clients[0]?.statements, Array(3).fill('DELETE FROM "metaq_xa_marker" WHERE gid = ANY($1::text[])'));
  });
});
