/**
 * Decision-row mode of the PostgreSQL resource against a scripted fake pool (no server): the
 * options and type guards, the exact statements of `commitAsDecision` (one round trip), how its
 * answers and errors map (a claimed key, a deferred constraint, a block that answers ROLLBACK,
 * an answer of an unexpected shape, a lost connection), the refusal to prepare, and the
 * statements of `claimRollback` (one transaction, then key by key after a lock timeout),
 * `decisionsOf`, `listMarkers` and `deleteMarkers`. The real-server behaviour (waiting on the
 * unique index) is in test/integration/xa-decision-row-resource.test.ts.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import pg from 'pg';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { InvalidArgumentError, XaError } from '../../src/common/errors.js';
import { createPostgresResource, decisionKeyOf, DURABLE_COMMIT_SETTING, type PostgresResource, type PostgresResourceOptions } from '../../src/xa/postgres/index.js';
import { isDecisionKeeper, isLastResourceBranch } from '../../src/xa/resource.js';
import { branchXid, gtridHex, makeGtrid, nodeIdOf, type Xid } from '../../src/xa/xid.js';

type Result = { command: string; rows?: Array<Record<string, unknown>>; rowCount?: number };
type Answer = Result | Result[] | Error;
type Script = (text: string, values: unknown[] | undefined, client: FakeClient) => Answer | undefined;

/** A pg PoolClient stand-in: records statements, answers from a script, tracks transaction status. */
class FakeClient extends EventEmitter {
  readonly statements: string[] = [];
  readonly values: Array<unknown[] | undefined> = [];
  readonly releases: unknown[] = [];
  txStatus: 'I' | 'T' | 'E' = 'I';
  readonly escapeLiteral = pg.escapeLiteral;
  readonly #script: Script;

  constructor(script: Script) {
    super();
    this.#script = script;
  }

  getTransactionStatus(): 'I' | 'T' | 'E' {
    return this.txStatus;
  }

  async query(text: string, values?: unknown[]): Promise<unknown> {
    this.statements.push(text);
    this.values.push(values);
    await Promise.resolve();
    const answer = this.#script(text, values, this) ?? defaultAnswer(text, this);
    if (answer instanceof Error) {
      if (this.txStatus === 'T') this.txStatus = 'E';
      throw answer;
    }
    const shape = (r: Result) => ({ command: r.command, rows: r.rows ?? [], rowCount: r.rowCount ?? r.rows?.length ?? 0 });
    return Array.isArray(answer) ? answer.map(shape) : shape(answer);
  }

  release(err?: unknown): void {
    this.releases.push(err);
  }
}

function defaultAnswer(text: string, client: FakeClient): Answer {
  if (text.endsWith('; COMMIT')) {
    client.txStatus = 'I';
    return [{ command: 'SELECT', rowCount: 1 }, { command: 'INSERT', rowCount: 1 }, { command: 'COMMIT' }];
  }
  if (text.startsWith('BEGIN')) {
    client.txStatus = 'T';
    return text.includes(';') ? [{ command: 'BEGIN' }, { command: 'SET' }, { command: 'SELECT', rowCount: 1 }] : { command: 'BEGIN' };
  }
  const verb = text.split(' ')[0] ?? '';
  if (verb === 'COMMIT' || verb === 'ROLLBACK') client.txStatus = 'I';
  return { command: verb };
}

class FakePool extends EventEmitter {
  readonly clients: FakeClient[] = [];
  readonly options = { max: 10 };
  script: Script;

  constructor(script: Script = () => undefined) {
    super();
    this.script = script;
  }

  async connect(): Promise<FakeClient> {
    const client = new FakeClient((text, values, c) => this.script(text, values, c));
    this.clients.push(client);
    return client;
  }
}

function pgError(code: string, extra: Record<string, unknown> = {}, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code, ...extra });
}

const GTRID = makeGtrid({ nodeId: nodeIdOf('unit'), startedAtMs: 1_700_000_000_000, sequence: 1n });
const XID: Xid = branchXid(GTRID, 1);
const KEY = decisionKeyOf(GTRID);
const COMMIT_STATEMENT = `${DURABLE_COMMIT_SETTING}; INSERT INTO "metaq_xa_decision" (gtrid, outcome) VALUES ('${KEY}', 'C'); COMMIT`;

function setUp(script?: Script, options: Partial<PostgresResourceOptions> = {}): { pool: FakePool; resource: PostgresResource } {
  const pool = new FakePool(script);
  return { pool, resource: createPostgresResource({ pool: pool as unknown as pg.Pool, name: 'unit', mode: 'decision-row', ...options }) };
}

function isXa(code: number, pattern?: RegExp): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof XaError, `expected an XaError, got ${String(err)}`);
    assert.equal(err.xaCode, code, err.message);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

describe('xa postgres decision-row: options and type guards', () => {
  it('mode, keepsDecisions, decisionTable; xa is the default; bad options are refused', async () => {
    const pool = new FakePool() as unknown as pg.Pool;
    const xa = createPostgresResource({ pool });
    assert.equal(xa.mode, 'xa');
    assert.equal(xa.keepsDecisions, undefined);
    assert.equal(isDecisionKeeper(xa), false);
    const dr = createPostgresResource({ pool, mode: 'decision-row', decisionTable: 'xa.decisions' });
    assert.equal(dr.mode, 'decision-row');
    assert.equal(dr.keepsDecisions, true);
    assert.equal(dr.decisionTable, '"xa"."decisions"');
    assert.ok(isDecisionKeeper(dr));
    assert.throws(() => createPostgresResource({ pool, mode: 'two-phase' as 'xa' }), (err: unknown) => err instanceof InvalidArgumentError && /mode must be 'xa' or 'decision-row'/.test(err.message));
    assert.throws(() => createPostgresResource({ pool, decisionTable: 'a;b' }), /decisionTable "a;b" is not a plain table name/);
    for (const claimWaitMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      assert.throws(() => createPostgresResource({ pool, mode: 'decision-row', claimWaitMs }), /claimWaitMs must be a positive integer/, String(claimWaitMs));
    }
    assert.equal(createPostgresResource({ pool, mode: 'decision-row', claimWaitMs: 2 ** 31 - 1 }).mode, 'decision-row');
    await assert.rejects(xa.decisionsOf([GTRID]), isXa(XaCode.XAER_PROTO, /mode 'xa'/));
    await assert.rejects(xa.claimRollback([GTRID]), isXa(XaCode.XAER_PROTO, /mode 'xa'/));
  });

  it('branches are last resources in decision-row mode only', async () => {
    const pool = new FakePool() as unknown as pg.Pool;
    const lastResource = await createPostgresResource({ pool, mode: 'decision-row' }).begin(XID);
    assert.equal(lastResource.lastResource, true);
    assert.ok(isLastResourceBranch(lastResource));
    const plain = await createPostgresResource({ pool }).begin(XID);
    assert.notEqual(plain.lastResource, true);
    assert.equal(isLastResourceBranch(plain), false);
    await lastResource.rollback();
    await plain.rollback();
  });

  it('begin refuses a gtrid no decision key can be made of (XAER_INVAL) before taking a client', async () => {
    const { pool, resource } = setUp();
    const long = { ...XID, globalTransactionId: Buffer.alloc(65, 1) };
    await assert.rejects(resource.begin(long), isXa(XaCode.XAER_INVAL, /no decision key/));
    assert.equal(pool.clients.length, 0);
  });
});

describe('xa postgres decision-row: commitAsDecision (fake pool)', () => {
  it('one round trip: INSERT of the C row; COMMIT, then a healthy release; idempotent', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('INSERT INTO t VALUES (1)');
    await branch.end(true);
    await branch.commitAsDecision();
    assert.equal(branch.state, 'committed');
    await branch.commitAsDecision();
    const client = pool.clients[0];
    assert.deepEqual(client?.statements, ['BEGIN', 'INSERT INTO t VALUES (1)', COMMIT_STATEMENT]);
    assert.deepEqual(client?.values[2], undefined, 'no bind parameters in a multi-statement query');
    assert.deepEqual(client?.releases, [undefined]);
    await assert.rejects(branch.rollback(), isXa(XaCode.XAER_PROTO));
  });

  it('a custom decision table is used', async () => {
    const { pool, resource } = setUp(undefined, { decisionTable: 'ops.Decisions' });
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await branch.commitAsDecision();
    assert.equal(pool.clients[0]?.statements[2], `${DURABLE_COMMIT_SETTING}; INSERT INTO "ops"."Decisions" (gtrid, outcome) VALUES ('${KEY}', 'C'); COMMIT`);
  });

  it('the key held by a rollback claim (23505 on the decision table) → XA_RBROLLBACK, ROLLBACK, released', async () => {
    const { pool, resource } = setUp((text) => (text.endsWith('; COMMIT') ? pgError('23505', { table: 'metaq_xa_decision', constraint: 'metaq_xa_decision_pkey' }) : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /recovery had already claimed this transaction for rollback/));
    assert.equal(branch.state, 'rolled-back');
    assert.deepEqual(pool.clients[0]?.statements.slice(-1), ['ROLLBACK']);
    assert.deepEqual(pool.clients[0]?.releases, [undefined]);
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /rolled back earlier.*claimed/));
  });

  it('a deferred unique constraint of another table (23505 at COMMIT) → XA_RBINTEGRITY, not "claimed"', async () => {
    const { resource } = setUp((text) => (text.endsWith('; COMMIT') ? pgError('23505', { table: 'uniq' }) : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), (err: unknown) => {
      isXa(XaCode.XA_RBINTEGRITY)(err);
      assert.doesNotMatch((err as Error).message, /claimed/);
      return true;
    });
  });

  it('a schema-qualified decision table: a 23505 of a same-named table in another schema is not a claim', async () => {
    const { resource } = setUp((text) => (text.endsWith('; COMMIT') ? pgError('23505', { table: 'decisions', schema: 'public' }) : undefined), { decisionTable: 'xa.decisions' });
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBINTEGRITY));
  });

  it('COMMIT answering ROLLBACK (an aborted block) → XA_RBROLLBACK', async () => {
    const { resource } = setUp((text) => (text.endsWith('; COMMIT') ? [{ command: 'SELECT', rowCount: 1 }, { command: 'INSERT', rowCount: 1 }, { command: 'ROLLBACK' }] : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /answered ROLLBACK instead of COMMIT/));
  });

  it('an answer of an unexpected shape → XAER_RMERR, commit-unknown, the client destroyed (no ROLLBACK)', async () => {
    const { pool, resource } = setUp((text) => (text.endsWith('; COMMIT') ? { command: 'COMMIT' } : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XAER_RMERR, /outcome is unknown/));
    assert.equal(branch.state, 'commit-unknown');
    const client = pool.clients[0];
    assert.equal(client?.statements.includes('ROLLBACK'), false);
    assert.ok(client?.releases[0] instanceof Error, 'destroyed');
  });

  it('a connection lost during the round trip → XAER_RMFAIL, commit-unknown, the client destroyed', async () => {
    const { pool, resource } = setUp((text) => (text.endsWith('; COMMIT') ? Object.assign(new Error('Connection terminated unexpectedly')) : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XAER_RMFAIL, /outcome is unknown/));
    assert.equal(branch.state, 'commit-unknown');
    assert.ok(pool.clients[0]?.releases[0] instanceof Error);
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XAER_PROTO));
  });

  it('a failed statement before (status E) → XA_RBROLLBACK without sending the decision', async () => {
    const { pool, resource } = setUp((text) => (text === 'SELECT 1/0' ? pgError('22012') : undefined));
    const branch = await resource.begin(XID);
    await assert.rejects(branch.query('SELECT 1/0'));
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /a statement of the branch failed/));
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'SELECT 1/0', 'ROLLBACK']);
  });

  it('the INSERT meeting an aborted block the client had not noticed yet (25P02) → XA_RBROLLBACK, ROLLBACK sent', async () => {
    const { pool, resource } = setUp((text) => (text.endsWith('; COMMIT') ? pgError('25P02', {}, 'current transaction is aborted, commands ignored until end of transaction block') : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /a statement of the branch failed/));
    assert.deepEqual(pool.clients[0]?.statements.slice(-1), ['ROLLBACK']);
  });

  it('the decision table missing (42P01) → XA_RBROLLBACK saying to call init()', async () => {
    const { resource } = setUp((text) => (text.endsWith('; COMMIT') ? pgError('42P01') : undefined));
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XA_RBROLLBACK, /Call init\(\) on the resource \(mode 'decision-row'\)/));
  });

  it('in xa mode: XAER_PROTO, and the branch is untouched (it can still commit one-phase)', async () => {
    const pool = new FakePool();
    const branch = await createPostgresResource({ pool: pool as unknown as pg.Pool }).begin(XID);
    await branch.query('SELECT 1');
    await assert.rejects(branch.commitAsDecision(), isXa(XaCode.XAER_PROTO, /mode 'xa'/));
    assert.equal(branch.state, 'active');
    await branch.commitOnePhase();
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'SELECT 1', 'COMMIT']);
  });

  it('without work: still holding the client → writes the decision; after end (read-only) → XAER_PROTO', async () => {
    const { pool, resource } = setUp();
    const active = await resource.begin(XID);
    await active.commitAsDecision();
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', COMMIT_STATEMENT]);
    const ended = await resource.begin(XID);
    await ended.end(true);
    assert.equal(ended.state, 'read-only');
    await assert.rejects(ended.commitAsDecision(), isXa(XaCode.XAER_PROTO, /did no work/));
  });

  it('prepare with work → XA_RBPROTO (a "no" vote), rolled back and released; without work → read-only', async () => {
    const { pool, resource } = setUp();
    const branch = await resource.begin(XID);
    await branch.query('SELECT 1');
    await branch.end(true);
    await assert.rejects(branch.prepare(), isXa(XaCode.XA_RBPROTO, /committed last, never prepared; only one decision-row resource may do work in a transaction — use mode 'xa' for the others/));
    assert.equal(branch.state, 'rolled-back');
    assert.deepEqual(pool.clients[0]?.statements, ['BEGIN', 'SELECT 1', 'ROLLBACK']);
    assert.deepEqual(pool.clients[0]?.releases, [undefined]);
    const idle = await resource.begin(XID);
    assert.equal(await idle.prepare(), 'read-only');
  });
});

describe('xa postgres decision-row: the resource side (fake pool)', () => {
  const other = makeGtrid({ nodeId: nodeIdOf('unit'), startedAtMs: 1_700_000_000_000, sequence: 2n });
  const otherKey = decisionKeyOf(other);

  it('decisionsOf: one SELECT, mapped by gtridHex; empty input sends nothing', async () => {
    const { pool, resource } = setUp((text) =>
      text.startsWith('SELECT gtrid, outcome')
        ? {
            command: 'SELECT',
            rows: [
              { gtrid: KEY, outcome: 'C' },
              { gtrid: otherKey, outcome: 'A' },
            ],
          }
        : undefined,
    );
    assert.deepEqual(await resource.decisionsOf([]), new Map());
    assert.equal(pool.clients.length, 0);
    const decisions = await resource.decisionsOf([GTRID, other, Buffer.from('abc')]);
    assert.deepEqual(
      decisions,
      new Map([
        [gtridHex(GTRID), 'commit'],
        [gtridHex(other), 'rollback'],
      ]),
    );
    assert.deepEqual(pool.clients[0]?.values[0], [[KEY, otherKey, decisionKeyOf(Buffer.from('abc'))]]);
    await assert.rejects(resource.decisionsOf([Buffer.alloc(0)]), isXa(XaCode.XAER_INVAL));
  });

  it('claimRollback: BEGIN READ COMMITTED + lock_timeout, sorted claim insert, SELECT, COMMIT', async () => {
    const { pool, resource } = setUp((text) => (text.startsWith('SELECT gtrid, outcome') ? { command: 'SELECT', rows: [{ gtrid: KEY, outcome: 'A' }, { gtrid: otherKey, outcome: 'C' }] } : undefined), { claimWaitMs: 1234 });
    const result = await resource.claimRollback([other, GTRID]);
    assert.deepEqual(
      result,
      new Map([
        [gtridHex(GTRID), 'rollback'],
        [gtridHex(other), 'commit'],
      ]),
    );
    const client = pool.clients[0];
    assert.deepEqual(client?.statements, [
      `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '1234ms'; ${DURABLE_COMMIT_SETTING}`,
      `INSERT INTO "metaq_xa_decision" (gtrid, outcome) SELECT k, 'A' FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (gtrid) DO NOTHING`,
      'SELECT gtrid, outcome FROM "metaq_xa_decision" WHERE gtrid = ANY($1::text[])',
      'COMMIT',
    ]);
    assert.deepEqual(client?.values[1], [[KEY, otherKey].sort()]);
    assert.deepEqual(client?.releases, [undefined]);
  });

  it('claimRollback: a lock timeout rolls back and claims key by key; the slow key is absent', async () => {
    const slow = KEY;
    const { pool, resource } = setUp((text, values) => {
      const keys = values?.[0] as string[] | undefined;
      if (text.startsWith('INSERT') && keys?.includes(slow)) return pgError('55P03', {}, 'canceling statement due to lock timeout');
      if (text.startsWith('SELECT gtrid, outcome')) return { command: 'SELECT', rows: (keys ?? []).map((gtrid) => ({ gtrid, outcome: 'A' })) };
      return undefined;
    });
    const result = await resource.claimRollback([GTRID, other]);
    assert.deepEqual(result, new Map([[gtridHex(other), 'rollback']]));
    const statements = pool.clients[0]?.statements ?? [];
    assert.equal(statements.filter((s) => s === 'ROLLBACK').length, 2, 'the batch and the slow key');
    assert.equal(statements.filter((s) => s === 'COMMIT').length, 1, 'only the other key committed');
    assert.deepEqual(pool.clients[0]?.releases, [undefined]);
  });

  it('claimRollback: a single key that times out → empty result, no retry; other errors map to XA codes and roll back', async () => {
    let failWith: Error = pgError('55P03');
    const { pool, resource } = setUp((text) => (text.startsWith('INSERT') ? failWith : undefined));
    assert.deepEqual(await resource.claimRollback([GTRID]), new Map());
    assert.deepEqual(pool.clients[0]?.statements.slice(1), [pool.clients[0]?.statements[1], 'ROLLBACK']);
    failWith = pgError('42P01');
    await assert.rejects(resource.claimRollback([GTRID]), isXa(XaCode.XAER_RMERR, /decision table is missing: call init\(\)/));
    failWith = Object.assign(new Error('Connection terminated unexpectedly'));
    await assert.rejects(resource.claimRollback([GTRID]), isXa(XaCode.XAER_RMFAIL));
    assert.ok(pool.clients[2]?.releases[0] instanceof Error, 'a broken client is destroyed');
    assert.equal(pool.clients[2]?.statements.includes('ROLLBACK'), false);
  });

  it('listMarkers pages the decision rows of the nodes, skipping foreign keys and other nodes; deleteMarkers deletes by gtrid', async () => {
    const mine = makeGtrid({ nodeId: nodeIdOf('unit'), startedAtMs: 1, sequence: 5n });
    const twinNode = Buffer.from(nodeIdOf('unit'));
    twinNode[7] = (twinNode[7] ?? 0) ^ 1;
    const twin = makeGtrid({ nodeId: twinNode, startedAtMs: 1, sequence: 6n });
    const rows = [decisionKeyOf(mine), decisionKeyOf(twin), '1297175635_foo', 'junk'];
    const { pool, resource } = setUp((text) => (text.startsWith('SELECT gtrid FROM') ? { command: 'SELECT', rows: rows.map((gtrid) => ({ gtrid })) } : undefined));
    const page = await resource.listMarkers([nodeIdOf('unit')], 4, 'after-this');
    assert.deepEqual(
      page.xids.map((x) => x.globalTransactionId),
      [mine],
    );
    assert.equal(page.xids[0]?.branchQualifier.length, 0);
    assert.equal(page.next, 'junk', 'a full page continues after its last key, even a skipped one');
    assert.deepEqual(pool.clients[0]?.values[0]?.slice(1), ['after-this', 4]);
    assert.equal((await resource.listMarkers([nodeIdOf('unit')], 5)).next, undefined);
    await resource.deleteMarkers([branchXid(mine, 0), branchXid(mine, 3), { ...branchXid(twin, 0), formatId: 1 }]);
    const deletion = pool.clients.at(-1);
    assert.equal(deletion?.statements[0], 'DELETE FROM "metaq_xa_decision" WHERE gtrid = ANY($1::text[])');
    assert.deepEqual(deletion?.values[0], [[decisionKeyOf(mine)]]);
  });
});
