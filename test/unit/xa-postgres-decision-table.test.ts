/**
 * The pure parts of decision-row mode's table (transactions.md §5.1): the SQL builder and its
 * name validation, decision keys (`formatId_base64(gtrid)`) and their parser, the escaped
 * literal used in the one-round-trip commit, and the per-node `LIKE` patterns shared with the
 * marker table — which must select the decision keys of exactly the requested nodes' prefixes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { InvalidArgumentError } from '../../src/common/errors.js';
import {
  DEFAULT_DECISION_TABLE,
  decisionKeyLiteral,
  decisionKeyOf,
  decisionKeyPatterns,
  decisionTableSql,
  markerGidPatterns,
  parseDecisionKey,
  recordedDecisionOf,
} from '../../src/xa/postgres/index.js';
import { branchXid, makeGtrid, METAQ_TM_FORMAT_ID, nodeIdOf, pgGidOf } from '../../src/xa/xid.js';

function gtridOf(node: string | Buffer, sequence: bigint): Buffer {
  return makeGtrid({ nodeId: typeof node === 'string' ? nodeIdOf(node) : node, startedAtMs: 1_700_000_000_000, sequence });
}

/** SQL `LIKE` with the default escape character `\`, as a RegExp (what PostgreSQL would match). */
function likeToRegExp(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '\\') {
      i += 1;
      source += (pattern[i] ?? '').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (c === '%') source += '.*';
    else if (c === '_') source += '.';
    else source += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${source}$`, 's');
}

function likeAny(patterns: readonly string[], text: string): boolean {
  return patterns.some((p) => likeToRegExp(p).test(text));
}

describe('xa postgres decision table: SQL', () => {
  it('default name, quoted identifiers, and the statements the resource runs', () => {
    assert.equal(DEFAULT_DECISION_TABLE, 'metaq_xa_decision');
    const sql = decisionTableSql(DEFAULT_DECISION_TABLE);
    assert.equal(sql.qualifiedName, '"metaq_xa_decision"');
    assert.equal(sql.tableName, 'metaq_xa_decision');
    assert.equal(sql.schemaName, undefined);
    assert.equal(
      sql.create,
      `CREATE TABLE IF NOT EXISTS "metaq_xa_decision" (gtrid text PRIMARY KEY, outcome char(1) NOT NULL CHECK (outcome IN ('C','A')), created_at timestamptz NOT NULL DEFAULT now())`,
    );
    assert.equal(sql.commitRow("'k'"), `INSERT INTO "metaq_xa_decision" (gtrid, outcome) VALUES ('k', 'C')`);
    assert.equal(sql.claim, `INSERT INTO "metaq_xa_decision" (gtrid, outcome) SELECT k, 'A' FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (gtrid) DO NOTHING`);
    assert.equal(sql.outcomes, 'SELECT gtrid, outcome FROM "metaq_xa_decision" WHERE gtrid = ANY($1::text[])');
    assert.equal(sql.deleteMany, 'DELETE FROM "metaq_xa_decision" WHERE gtrid = ANY($1::text[])');
    assert.equal(sql.listPage, 'SELECT gtrid FROM "metaq_xa_decision" WHERE gtrid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gtrid > $2) ORDER BY gtrid LIMIT $3');
  });

  it('schema.table keeps the case of each part and names both for error matching', () => {
    const sql = decisionTableSql('Xa.Decisions_1');
    assert.equal(sql.qualifiedName, '"Xa"."Decisions_1"');
    assert.equal(sql.tableName, 'Decisions_1');
    assert.equal(sql.schemaName, 'Xa');
    assert.match(sql.create, /^CREATE TABLE IF NOT EXISTS "Xa"\."Decisions_1" \(/);
  });

  it('refuses anything but one or two plain identifiers, naming the option', () => {
    for (const bad of ['', 'a.b.c', '1table', 'x; drop table y', 'a"b', 'x y', 'a.', '.a', `t${'x'.repeat(63)}`, 'tä']) {
      assert.throws(
        () => decisionTableSql(bad),
        (err: unknown) => err instanceof InvalidArgumentError && /^decisionTable .* is not a plain table name/.test(err.message),
        bad,
      );
    }
    assert.equal(decisionTableSql(`t${'x'.repeat(62)}`).tableName.length, 63);
  });
});

describe('xa postgres decision table: keys', () => {
  it('decisionKeyOf: formatId_base64(gtrid), the first two parts of the pgjdbc gid, only [A-Za-z0-9+/=_]', () => {
    for (let sequence = 0n; sequence < 200n; sequence++) {
      const gtrid = gtridOf(`node-${sequence % 7n}`, sequence * 7919n);
      const key = decisionKeyOf(gtrid);
      assert.equal(key, `${METAQ_TM_FORMAT_ID}_${gtrid.toString('base64')}`);
      assert.match(key, /^1297175635_[A-Za-z0-9+/=]{32}$/);
      assert.ok(pgGidOf(branchXid(gtrid, 3)).startsWith(`${key}_`));
      assert.deepEqual(parseDecisionKey(key), gtrid);
    }
  });

  it('round trip for every gtrid length XA allows; refuses empty and over-long gtrids', () => {
    for (let length = 1; length <= 64; length++) {
      const gtrid = Buffer.alloc(length, length * 37);
      assert.deepEqual(parseDecisionKey(decisionKeyOf(gtrid)), gtrid);
    }
    assert.throws(() => decisionKeyOf(Buffer.alloc(0)), RangeError);
    assert.throws(() => decisionKeyOf(Buffer.alloc(65)), RangeError);
  });

  it('parseDecisionKey: undefined for foreign shapes', () => {
    const key = decisionKeyOf(gtridOf('node-a', 1n));
    const body = key.slice(key.indexOf('_') + 1);
    for (const foreign of [
      '',
      'foo',
      `1_${body}`, // another formatId
      `-1297175635_${body}`,
      `01297175635_${body}`, // not canonical
      `${key}_AAAAAA==`, // a gid (with bqual), not a key
      `${METAQ_TM_FORMAT_ID}_`,
      `${METAQ_TM_FORMAT_ID}_foo`, // lenient base64 that does not round-trip
      `${METAQ_TM_FORMAT_ID}_${body.slice(0, -1)}`,
      `${METAQ_TM_FORMAT_ID}_${Buffer.alloc(65, 1).toString('base64')}`, // too long a gtrid
      `${key} `,
    ]) {
      assert.equal(parseDecisionKey(foreign), undefined, foreign);
    }
  });

  it('decisionKeyLiteral escapes with the client and refuses other characters', () => {
    const key = decisionKeyOf(gtridOf('node-a', 2n));
    assert.equal(decisionKeyLiteral({ escapeLiteral: pg.escapeLiteral }, key), `'${key}'`);
    let escaped = '';
    decisionKeyLiteral(
      {
        escapeLiteral: (text) => {
          escaped = text;
          return `E'${text}'`;
        },
      },
      key,
    );
    assert.equal(escaped, key, 'the escaper is used (second line of defence)');
    for (const bad of ["x'); DROP TABLE t; --", 'a b', 'a\\b', 'ä', '', 'a-b']) {
      assert.throws(() => decisionKeyLiteral({ escapeLiteral: pg.escapeLiteral }, bad), InvalidArgumentError, bad);
    }
  });

  it('recordedDecisionOf: C → commit, A → rollback (char(1) padding tolerated), anything else undefined', () => {
    assert.equal(recordedDecisionOf('C'), 'commit');
    assert.equal(recordedDecisionOf('A'), 'rollback');
    assert.equal(recordedDecisionOf('A '), 'rollback');
    assert.equal(recordedDecisionOf('X'), undefined);
    assert.equal(recordedDecisionOf(''), undefined);
  });
});

describe('xa postgres decision table: per-node LIKE patterns', () => {
  it('are the marker patterns, and select the decision keys (and gids) of the requested nodes only', () => {
    const nodes = ['node-a', 'node-b', 'node-c', 'orders-tm', 'x'].map((name) => nodeIdOf(name));
    const [a, b, ...others] = nodes;
    assert.ok(a !== undefined && b !== undefined);
    const patterns = decisionKeyPatterns([a, b, a]);
    assert.deepEqual(patterns, markerGidPatterns([a, b, a]));
    assert.equal(patterns.length, 2, 'deduplicated');
    for (const pattern of patterns) assert.match(pattern, /^1297175635\\_[A-Za-z0-9+/]{8}%$/);
    for (let sequence = 1n; sequence <= 50n; sequence++) {
      for (const node of [a, b]) {
        const gtrid = gtridOf(node, sequence);
        assert.ok(likeAny(patterns, decisionKeyOf(gtrid)), 'a decision key of a requested node matches');
        assert.ok(likeAny(patterns, pgGidOf(branchXid(gtrid, 0))), 'so does a marker gid of it');
      }
      for (const node of others) assert.equal(likeAny(patterns, decisionKeyOf(gtridOf(node, sequence))), false);
    }
    // `_` is escaped: a key whose separator is another character does not match.
    const key = decisionKeyOf(gtridOf(a, 1n));
    assert.equal(likeAny(patterns, key.replace('_', 'X')), false);
    assert.equal(likeAny(patterns, `1${key}`), false, 'another formatId with the same digits as a suffix');
  });

  it('a node sharing the first 6 bytes of the node id matches the pattern (exact filtering happens afterwards)', () => {
    const a = nodeIdOf('node-a');
    const twin = Buffer.from(a);
    twin[7] = (twin[7] ?? 0) ^ 0xff;
    const twinKey = decisionKeyOf(gtridOf(twin, 1n));
    assert.ok(likeAny(decisionKeyPatterns([a]), twinKey));
    assert.deepEqual(parseDecisionKey(twinKey)?.subarray(0, 8), twin);
  });
});
