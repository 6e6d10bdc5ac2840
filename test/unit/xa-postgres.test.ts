/**
 * The pure parts of the XA PostgreSQL resource: gid validation and literals, the SQLSTATE → XA
 * code tables (phase one: XA_RB*; phase two: never a rollback code; connection loss: always
 * XAER_RMFAIL), connection-error recognition, marker table names, the recovery filter, the
 * start-up error message and the resource's option checks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { isRollbackCode, XaCode } from '../../src/client/transaction/xa-codes.js';
import { ConfigError, InvalidArgumentError, XaError } from '../../src/common/errors.js';
import {
  createPostgresResource,
  describePgError,
  isPostgresConnectionError,
  markerTableSql,
  OWN_GID_LIKE_PATTERN,
  ownXidsOf,
  pgGidFor,
  pgGidLiteral,
  pgGidProblem,
  phaseOneFailure,
  phaseTwoCodeOf,
  phaseTwoFailure,
  preparedTransactionsDisabledError,
  rollbackCodeOfSqlState,
  sqlStateOf,
} from '../../src/xa/postgres/index.js';
import { branchXid, makeGtrid, METAQ_TM_FORMAT_ID, nodeIdOf, pgGidOf, type Xid } from '../../src/xa/xid.js';

/** A pg-like server error. */
function pgError(code: string, message = `error ${code}`, extra: Record<string, string> = {}): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR', ...extra });
}

/** A Node.js-like socket error. */
function sysError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code, syscall: 'connect' });
}

function xidOf(node: string, sequence: bigint, branch = 0): Xid {
  return branchXid(makeGtrid({ nodeId: nodeIdOf(node), startedAtMs: 1_700_000_000_000, sequence }), branch);
}

function assertXa(err: unknown, code: number, pattern?: RegExp): true {
  assert.ok(err instanceof XaError, `expected an XaError, got ${String(err)}`);
  assert.equal(err.xaCode, code, err.message);
  if (pattern !== undefined) assert.match(err.message, pattern);
  return true;
}

describe('xa postgres: gids', () => {
  it('the gid of one of our XIDs is pgjdbc-shaped, 52 bytes and valid', () => {
    const xid = xidOf('node-a', 7n);
    const gid = pgGidFor(xid, 'postgres:test');
    assert.equal(gid, pgGidOf(xid));
    assert.match(gid, /^1297175635_[A-Za-z0-9+/=]{32}_[A-Za-z0-9+/=]{8}$/);
    assert.equal(Buffer.byteLength(gid), 52);
    assert.equal(pgGidProblem(gid), undefined);
  });

  it('refuses empty, 200-byte and odd-character gids', () => {
    assert.match(pgGidProblem('') ?? '', /empty/);
    assert.equal(pgGidProblem('a'.repeat(199)), undefined);
    assert.match(pgGidProblem('a'.repeat(200)) ?? '', /200 bytes long; PostgreSQL needs fewer than 200/);
    for (const bad of ["a'b", 'a b', 'a\\b', 'a;b', 'é', 'a\nb', 'a"b', 'a%b']) {
      assert.match(pgGidProblem(bad) ?? '', /characters other than/, bad);
    }
    assert.equal(pgGidProblem('-12_AB+/=_xy-'), undefined);
  });

  it('pgGidFor: another formatId or an oversized XID is XAER_INVAL with a clear message', () => {
    const foreign: Xid = { formatId: 42, globalTransactionId: Buffer.alloc(8, 1), branchQualifier: Buffer.alloc(1) };
    assert.throws(() => pgGidFor(foreign, 'postgres:test'), (err) => assertXa(err, XaCode.XAER_INVAL, /formatId 42 is not this transaction manager's/));
    const huge: Xid = { formatId: METAQ_TM_FORMAT_ID, globalTransactionId: Buffer.alloc(150, 1), branchQualifier: Buffer.alloc(4) };
    assert.throws(() => pgGidFor(huge, 'postgres:test'), (err) => assertXa(err, XaCode.XAER_INVAL, /postgres:test: .*fewer than 200/));
    // The largest legal XID (64 + 64 bytes) still fits: 188 bytes.
    const largest: Xid = { formatId: METAQ_TM_FORMAT_ID, globalTransactionId: Buffer.alloc(64, 0xff), branchQualifier: Buffer.alloc(64, 0xfe) };
    assert.equal(Buffer.byteLength(pgGidFor(largest, 'postgres:test')), 188);
  });

  it('pgGidLiteral escapes a valid gid and never builds SQL from an invalid one', () => {
    const calls: string[] = [];
    const escaper = {
      escapeLiteral: (text: string) => {
        calls.push(text);
        return `'${text}'`;
      },
    };
    assert.equal(pgGidLiteral(escaper, '1297175635_AAAA_AAAA'), "'1297175635_AAAA_AAAA'");
    assert.throws(() => pgGidLiteral(escaper, "x'; DROP TABLE t; --"), (err) => assertXa(err, XaCode.XAER_INVAL));
    assert.deepEqual(calls, ['1297175635_AAAA_AAAA']);
    // pg's own escaping of a valid gid is the plain quoted text.
    assert.equal(pgGidLiteral({ escapeLiteral: pg.escapeLiteral }, '1297175635_ab+/=_AA=='), "'1297175635_ab+/=_AA=='");
  });

  it('the recovery LIKE pattern escapes the underscore', () => {
    assert.equal(OWN_GID_LIKE_PATTERN, '1297175635\\_%');
  });
});

describe('xa postgres: SQLSTATE → XA codes', () => {
  it('phase one: 23xxx integrity, 40P01 deadlock, 40001 transient, anything else plain rollback', () => {
    assert.equal(rollbackCodeOfSqlState('23505'), XaCode.XA_RBINTEGRITY);
    assert.equal(rollbackCodeOfSqlState('23503'), XaCode.XA_RBINTEGRITY);
    assert.equal(rollbackCodeOfSqlState('23514'), XaCode.XA_RBINTEGRITY);
    assert.equal(rollbackCodeOfSqlState('40002'), XaCode.XA_RBINTEGRITY);
    assert.equal(rollbackCodeOfSqlState('40P01'), XaCode.XA_RBDEADLOCK);
    assert.equal(rollbackCodeOfSqlState('40001'), XaCode.XA_RBTRANSIENT);
    assert.equal(rollbackCodeOfSqlState('55000'), XaCode.XA_RBROLLBACK);
    assert.equal(rollbackCodeOfSqlState('0A000'), XaCode.XA_RBROLLBACK);
    assert.equal(rollbackCodeOfSqlState(undefined), XaCode.XA_RBROLLBACK);
  });

  it('phaseOneFailure: a SQL error is XA_RB* with the server message; a connection loss is retriable XAER_RMFAIL', () => {
    const integrity = phaseOneFailure(pgError('23505', 'duplicate key value violates unique constraint "u_v"', { constraint: 'u_v', detail: 'Key (v)=(1) already exists.' }), 'prepare of G on postgres:x');
    assertXa(integrity, XaCode.XA_RBINTEGRITY, /^XA_RBINTEGRITY \(103\): prepare of G on postgres:x: PostgreSQL rolled the transaction back: duplicate key .*SQLSTATE 23505; constraint u_v; detail: Key/);
    assert.equal(integrity.retriable, false);
    const lost = phaseOneFailure(new Error('Connection terminated unexpectedly'), 'prepare of G on postgres:x');
    assertXa(lost, XaCode.XAER_RMFAIL, /outcome is unknown/);
    assert.equal(lost.retriable, true);
  });

  it('phase two: connection loss and authentication are XAER_RMFAIL, busy/canceled XA_RETRY, the rest XAER_RMERR — never a rollback code', () => {
    const cases: Array<[unknown, number]> = [
      [sysError('ECONNREFUSED'), XaCode.XAER_RMFAIL],
      [sysError('ECONNRESET'), XaCode.XAER_RMFAIL],
      [pgError('57P01', 'terminating connection due to administrator command'), XaCode.XAER_RMFAIL],
      [pgError('08006'), XaCode.XAER_RMFAIL],
      [pgError('57P03', 'the database system is starting up'), XaCode.XAER_RMFAIL],
      [new Error('timeout exceeded when trying to connect'), XaCode.XAER_RMFAIL],
      [new Error('Connection terminated due to connection timeout'), XaCode.XAER_RMFAIL],
      [pgError('28P01', 'password authentication failed'), XaCode.XAER_RMFAIL],
      [pgError('55000', 'prepared transaction with identifier "x" is busy'), XaCode.XA_RETRY],
      [pgError('57014', 'canceling statement due to statement timeout'), XaCode.XA_RETRY],
      [pgError('53200', 'out of memory'), XaCode.XA_RETRY],
      [pgError('42501', 'permission denied to finish prepared transaction'), XaCode.XAER_RMERR],
      [pgError('0A000', 'prepared transaction belongs to another database'), XaCode.XAER_RMERR],
      [pgError('23505'), XaCode.XAER_RMERR],
      [pgError('40001'), XaCode.XAER_RMERR],
      [new Error('Cannot use a pool after calling end on the pool'), XaCode.XAER_RMERR],
      ['a string', XaCode.XAER_RMERR],
    ];
    for (const [err, code] of cases) {
      assert.equal(phaseTwoCodeOf(err), code, describePgError(err));
      const mapped = phaseTwoFailure(err, 'COMMIT PREPARED of G on postgres:x');
      assert.equal(mapped.xaCode, code);
      assert.equal(isRollbackCode(mapped.xaCode), false);
      assert.equal(mapped.cause, err);
    }
  });

  it('phase two: wrong role says who can finish it; missing marker table says to call init()', () => {
    assertXa(phaseTwoFailure(pgError('42501', 'permission denied to finish prepared transaction'), 'COMMIT PREPARED of G on postgres:x'), XaCode.XAER_RMERR, /Only the role that prepared the transaction or a superuser can finish it/);
    assertXa(phaseTwoFailure(pgError('42P01', 'relation "metaq_xa_marker" does not exist'), 'COMMIT PREPARED of G on postgres:x'), XaCode.XAER_RMERR, /call init\(\)/);
  });
});

describe('xa postgres: connection errors', () => {
  it('recognises socket errors, session-ending SQLSTATEs, pg/pg-pool messages, causes and AggregateErrors', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']) assert.ok(isPostgresConnectionError(sysError(code)), code);
    for (const code of ['08000', '08003', '08006', '08P01', '57P01', '57P02', '57P03', '25P03', '53300']) assert.ok(isPostgresConnectionError(pgError(code)), code);
    for (const message of [
      'Connection terminated unexpectedly',
      'Connection terminated',
      'Connection terminated due to connection timeout',
      'Client has encountered a connection error and is not queryable',
      'Client was closed and is not queryable',
      'timeout exceeded when trying to connect',
      'Query read timeout',
    ]) {
      assert.ok(isPostgresConnectionError(new Error(message)), message);
    }
    assert.ok(isPostgresConnectionError(new AggregateError([sysError('ECONNREFUSED'), sysError('ECONNREFUSED')], 'connect failed')));
    assert.ok(isPostgresConnectionError(new Error('wrapped', { cause: sysError('ECONNRESET') })));
  });

  it('does not take SQL errors or other failures for connection errors', () => {
    for (const code of ['23505', '42704', '42501', '40001', '57014', '55000', 'XX000']) assert.equal(isPostgresConnectionError(pgError(code)), false, code);
    // A server message quoting a pg text is still a SQL error (it has a SQLSTATE).
    assert.equal(isPostgresConnectionError(pgError('P0001', 'Connection terminated by my trigger')), false);
    for (const value of [new Error('syntax error'), new Error('Cannot use a pool after calling end on the pool'), null, undefined, 'ECONNREFUSED', 42]) {
      assert.equal(isPostgresConnectionError(value), false, String(value));
    }
  });

  it('sqlStateOf reads five-character codes only', () => {
    assert.equal(sqlStateOf(pgError('42704')), '42704');
    assert.equal(sqlStateOf(sysError('ECONNREFUSED')), undefined);
    assert.equal(sqlStateOf(new Error('x')), undefined);
  });
});

describe('xa postgres: marker table', () => {
  it('quotes plain and schema-qualified names', () => {
    const sql = markerTableSql('metaq_xa_marker');
    assert.equal(sql.qualifiedName, '"metaq_xa_marker"');
    assert.equal(sql.create, 'CREATE TABLE IF NOT EXISTS "metaq_xa_marker" (gid text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())');
    assert.equal(sql.insertRow("'g1'"), 'INSERT INTO "metaq_xa_marker" (gid) VALUES (\'g1\')');
    assert.equal(sql.deleteMany, 'DELETE FROM "metaq_xa_marker" WHERE gid = ANY($1::text[])');
    assert.equal(markerTableSql('app.Markers').qualifiedName, '"app"."Markers"');
  });

  it('refuses anything that is not table or schema.table', () => {
    for (const bad of ['', 'a.b.c', '1abc', 'a;drop table x', 'a"b', 'a b', 'x'.repeat(64), 'a.', '.a']) {
      assert.throws(() => markerTableSql(bad), InvalidArgumentError, bad);
    }
  });
});

describe('xa postgres: recovery filter', () => {
  it('keeps our canonical gids, ignores foreign ones, filters by node id', () => {
    const a1 = xidOf('node-a', 1n);
    const a2 = xidOf('node-a', 2n, 1);
    const b1 = xidOf('node-b', 1n);
    const gids = [pgGidOf(a1), 'foo', '1_AAAA_AAAA', pgGidOf(b1), '1297175635_foo_bar', '1297175635_only-two', pgGidOf(a2), 'in-doubt'];
    assert.deepEqual(
      ownXidsOf(gids).map((xid) => pgGidOf(xid)),
      [pgGidOf(a1), pgGidOf(b1), pgGidOf(a2)],
    );
    assert.deepEqual(
      ownXidsOf(gids, [nodeIdOf('node-a')]).map((xid) => pgGidOf(xid)),
      [pgGidOf(a1), pgGidOf(a2)],
    );
    assert.deepEqual(
      ownXidsOf(gids, [nodeIdOf('node-a'), nodeIdOf('node-b')]).length,
      3,
    );
    assert.deepEqual(ownXidsOf(gids, [nodeIdOf('node-c')]), []);
    const [first] = ownXidsOf([pgGidOf(a1)]);
    assert.ok(first !== undefined);
    assert.equal(first.formatId, METAQ_TM_FORMAT_ID);
    assert.ok(first.globalTransactionId.equals(a1.globalTransactionId));
    assert.ok(first.branchQualifier.equals(a1.branchQualifier));
  });
});

describe('xa postgres: start-up error and options', () => {
  it('the max_prepared_transactions error says what to set, where, and that a restart is needed', () => {
    const err = preparedTransactionsDisabledError('postgres:orders', { maxPreparedTransactions: '0', maxConnections: '100', poolSize: 10, configFile: '/etc/postgresql/15/main/postgresql.conf' });
    assert.ok(err instanceof ConfigError);
    assert.equal(err.code, 'METAQ_ERR_CONFIG');
    assert.match(err.message, /^postgres:orders: prepared transactions are disabled on this PostgreSQL server \(max_prepared_transactions = 0\)/);
    assert.match(err.message, /Set max_prepared_transactions to a nonzero value — at least the pool size \(10\), ideally max_connections \(100\) — in postgresql\.conf \(\/etc\/postgresql\/15\/main\/postgresql\.conf\)/);
    assert.match(err.message, /restart PostgreSQL: a reload is not enough/);
    assert.match(err.message, /standby server needs a value at least as large as the primary's/);
  });

  it('createPostgresResource: resource id, option checks, and an error listener on a pool without one', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1 });
    try {
      assert.equal(pool.listenerCount('error'), 0);
      const resource = createPostgresResource({ pool });
      assert.equal(resource.resourceId, 'postgres:default');
      assert.equal(resource.markerTable, '"metaq_xa_marker"');
      assert.equal(pool.listenerCount('error'), 1);
      createPostgresResource({ pool, name: 'orders' });
      assert.equal(pool.listenerCount('error'), 1, 'a second resource adds no second listener');
      assert.equal(createPostgresResource({ pool, name: 'orders', markerTable: 'xa.markers' }).resourceId, 'postgres:orders');
      assert.throws(() => createPostgresResource({ pool, name: '' }), InvalidArgumentError);
      assert.throws(() => createPostgresResource({ pool, markerTable: 'x; drop' }), InvalidArgumentError);
      assert.throws(() => createPostgresResource({ pool, nodeIds: [] }), /nodeIds is empty/);
      assert.throws(() => createPostgresResource({ pool, nodeIds: [Buffer.alloc(4)] }), /a node id has 8 bytes/);
      // Phase two refuses an XID it could not have prepared before touching the pool.
      await assert.rejects(resource.commitPrepared({ formatId: 1, globalTransactionId: Buffer.alloc(4), branchQualifier: Buffer.alloc(1) }), (err) => assertXa(err, XaCode.XAER_INVAL));
      await assert.rejects(resource.begin({ formatId: 1, globalTransactionId: Buffer.alloc(4), branchQualifier: Buffer.alloc(1) }), (err) => assertXa(err, XaCode.XAER_INVAL));
    } finally {
      await pool.end();
    }
  });

  it('an unreachable server is XAER_RMFAIL for every XID-addressed call', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 2000 });
    try {
      const resource = createPostgresResource({ pool });
      const xid = xidOf('node-a', 1n);
      await assert.rejects(resource.commitPrepared(xid), (err) => assertXa(err, XaCode.XAER_RMFAIL, /could not be reached/));
      await assert.rejects(resource.rollbackPrepared(xid), (err) => assertXa(err, XaCode.XAER_RMFAIL));
      await assert.rejects(resource.recover(), (err) => assertXa(err, XaCode.XAER_RMFAIL));
      await assert.rejects(resource.begin(xid), (err) => assertXa(err, XaCode.XAER_RMFAIL));
      await assert.rejects(resource.deleteMarkers([xid]), (err) => assertXa(err, XaCode.XAER_RMFAIL));
      await assert.rejects(resource.init(), (err) => assertXa(err, XaCode.XAER_RMFAIL));
    } finally {
      await pool.end();
    }
  });
});
