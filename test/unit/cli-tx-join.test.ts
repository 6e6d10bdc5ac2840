import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinTransactions } from '../../src/cli/commands/tx-join.js';
import { parseTxArgs } from '../../src/cli/commands/tx.js';
import type { PendingEntry } from '../../src/xa/coordinator-log.js';
import { branchXid, gtridHex, makeGtrid, nodeIdOf, pgGidOf } from '../../src/xa/xid.js';

const NOW = 1_800_000_000_000;
const node = nodeIdOf('orders-tm');
const gtrid = (seq: number, ageMs: number): Buffer => makeGtrid({ nodeId: node, startedAtMs: NOW - ageMs, sequence: BigInt(seq) });
const brokerKey = (g: Buffer): string => `XID:${0x4d515453}:${gtridHex(g)}:00000001:XAMessageProducer-app`;

describe('metaq tx list: joining coordinator, broker and PostgreSQL', () => {
  it('one row per global transaction, with the resolution recovery applies', () => {
    const committing = gtrid(1, 90_000);
    const orphan = gtrid(2, 30_000);
    const claimed = gtrid(3, 60_000);
    const heuristic = gtrid(4, 10_000);
    const coordinator: PendingEntry[] = [
      { gtrid: committing, state: 'committing', decidedAtMs: NOW - 89_000, participants: [], heuristics: [] },
      { gtrid: claimed, state: 'presumed-aborting', decidedAtMs: NOW - 1000, participants: [], heuristics: [] },
      {
        gtrid: heuristic,
        state: 'committing',
        decidedAtMs: NOW - 9000,
        participants: [],
        heuristics: [{ resourceId: 'postgres:orders', branchQualifier: Buffer.alloc(4), outcome: 'heuristic-rollback', atMs: NOW, detail: 'marker absent' }],
      },
    ];
    const broker = [
      { key: brokerKey(committing), state: 'PREPARED', messages: 1 },
      { key: brokerKey(orphan), state: 'PREPARED', messages: 2 },
      { key: 'XID:1:abcd:01:other-tm', state: 'PREPARED', messages: 1 },
      { key: 'TX:session:1', state: 'IN_USE', messages: 1 },
    ];
    const postgres = [
      { gid: pgGidOf(branchXid(committing, 0)), prepared: new Date(NOW) },
      { gid: pgGidOf(branchXid(orphan, 0)), prepared: new Date(NOW) },
      { gid: 'someone-elses', prepared: new Date(NOW) },
    ];
    const rows = joinTransactions({ coordinator, broker, postgres, nowMs: NOW });
    const byGtrid = new Map(rows.map((r) => [r.gtrid, r]));
    const c = byGtrid.get(gtridHex(committing));
    assert.equal(c?.coordinator, 'committing');
    assert.equal(c?.ageSeconds, 90);
    assert.equal(c?.brokerBranches.length, 1);
    assert.equal(c?.postgresBranches.length, 1);
    assert.match(c?.resolution ?? '', /^commit/);
    assert.equal(c?.node, node.toString('hex'));
    const o = byGtrid.get(gtridHex(orphan));
    assert.equal(o?.coordinator, 'none');
    assert.match(o?.resolution ?? '', /^rollback \(presumed abort\)/);
    assert.match(byGtrid.get(gtridHex(claimed))?.resolution ?? '', /^rollback: recovery claimed/);
    assert.match(byGtrid.get(gtridHex(heuristic))?.resolution ?? '', /^operator/);
    assert.deepEqual(byGtrid.get(gtridHex(heuristic))?.heuristics, ['postgres:orders heuristic-rollback']);
    assert.match(byGtrid.get('XID:1:abcd:01:other-tm')?.resolution ?? '', /not this manager/);
    assert.ok(byGtrid.has('pg:someone-elses'));
    assert.ok(![...byGtrid.keys()].some((k) => k.startsWith('TX:')), 'local transactions are not listed');
    assert.equal(rows[0]?.gtrid, gtridHex(committing), 'oldest first');
  });

  it('without the coordinator log the decision is unknown', () => {
    const g = gtrid(9, 1000);
    const rows = joinTransactions({ coordinator: undefined, broker: [{ key: brokerKey(g), state: 'PREPARED', messages: 1 }], postgres: undefined, nowMs: NOW });
    assert.equal(rows[0]?.coordinator, 'unknown');
    assert.match(rows[0]?.resolution ?? '', /--coordinator-log/);
  });

  it('parses --coordinator-log and --postgres for list only', () => {
    const options = parseTxArgs(['list', '--coordinator-log', '/tmp/x', '--postgres', 'postgresql://u@h/db'], {});
    assert.ok(options !== 'help');
    assert.equal(options.coordinatorLog, '/tmp/x');
    assert.equal(options.postgres, 'postgresql://u@h/db');
    assert.equal(options.decisionTable, 'metaq_xa_decision');
    assert.throws(() => parseTxArgs(['forget', 'k', '--postgres', 'x'], {}), /only apply to list/);
  });

  it('parses --decision-table: validated, and only with --postgres', () => {
    const options = parseTxArgs(['list', '--postgres', 'postgresql://u@h/db', '--decision-table', 'xa.decisions'], {});
    assert.ok(options !== 'help');
    assert.equal(options.decisionTable, 'xa.decisions');
    assert.throws(() => parseTxArgs(['list', '--postgres', 'postgresql://u@h/db', '--decision-table', 'x; DROP TABLE y'], {}), /--decision-table/);
    assert.throws(() => parseTxArgs(['list', '--decision-table', 'd'], {}), /only applies with list --postgres/);
  });
});

describe('metaq tx list: decision rows (decision-row mode)', () => {
  const prepared = (g: Buffer, messages = 1) => ({ key: brokerKey(g), state: 'PREPARED', messages });

  it('a prepared broker branch without a coordinator entry follows its decision row', () => {
    const committed = gtrid(11, 50_000);
    const claimed = gtrid(12, 40_000);
    const orphan = gtrid(13, 30_000);
    const rows = joinTransactions({
      coordinator: [],
      broker: [prepared(committed), prepared(claimed), prepared(orphan)],
      postgres: [],
      decisions: [
        { gtrid: committed, outcome: 'commit' },
        { gtrid: gtridHex(claimed).toUpperCase(), outcome: 'rollback' }, // hex, any case
      ],
      nowMs: NOW,
    });
    const byGtrid = new Map(rows.map((r) => [r.gtrid, r]));
    assert.equal(rows.length, 3, 'a decision row joins the broker branch of its gtrid');
    const c = byGtrid.get(gtridHex(committed));
    assert.equal(c?.decisionRow, 'commit');
    assert.equal(c?.coordinator, 'none');
    assert.match(c?.resolution ?? '', /^commit: the decision row says commit \(decision-row mode\); recovery commits the prepared branches/);
    const a = byGtrid.get(gtridHex(claimed));
    assert.equal(a?.decisionRow, 'rollback');
    assert.match(a?.resolution ?? '', /^rollback: recovery claimed it \(rollback row\)/);
    const o = byGtrid.get(gtridHex(orphan));
    assert.equal(o?.decisionRow, 'none');
    assert.match(o?.resolution ?? '', /^rollback \(presumed abort\)/);
    assert.match(o?.resolution ?? '', /decision-row mode it first claims it with a rollback row/);
  });

  it('the decision row decides without the coordinator log too', () => {
    const committed = gtrid(14, 5000);
    const undecided = gtrid(15, 4000);
    const rows = joinTransactions({ coordinator: undefined, broker: [prepared(committed), prepared(undecided)], postgres: [], decisions: [{ gtrid: committed, outcome: 'commit' }], nowMs: NOW });
    const byGtrid = new Map(rows.map((r) => [r.gtrid, r]));
    assert.match(byGtrid.get(gtridHex(committed))?.resolution ?? '', /^commit: the decision row says commit/);
    assert.equal(byGtrid.get(gtridHex(undecided))?.decisionRow, 'none');
    assert.match(byGtrid.get(gtridHex(undecided))?.resolution ?? '', /--coordinator-log/, 'it may still be an xa-mode transaction the log decided');
  });

  it('a decision row without any prepared branch or coordinator entry is finished', () => {
    const done = gtrid(16, 20_000);
    const rows = joinTransactions({ coordinator: [], broker: [], postgres: [], decisions: [{ gtrid: done, outcome: 'commit' }], nowMs: NOW });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.gtrid, gtridHex(done));
    assert.equal(rows[0]?.ageSeconds, 20);
    assert.equal(rows[0]?.node, node.toString('hex'));
    assert.equal(rows[0]?.decisionRow, 'commit');
    assert.deepEqual(rows[0]?.brokerBranches, []);
    assert.equal(rows[0]?.resolution, 'finished: housekeeping deletes the row');
  });

  it('heuristics and a coordinator entry keep precedence over a decision row', () => {
    const committing = gtrid(17, 9000);
    const heuristic = gtrid(18, 8000);
    const coordinator: PendingEntry[] = [{ gtrid: committing, state: 'committing', decidedAtMs: NOW - 8000, participants: [], heuristics: [] }];
    const rows = joinTransactions({
      coordinator,
      broker: [prepared(committing), { key: brokerKey(heuristic), state: 'HEURISTIC_COMMIT', messages: 1 }],
      postgres: [],
      decisions: [
        { gtrid: committing, outcome: 'rollback' },
        { gtrid: heuristic, outcome: 'rollback' },
      ],
      nowMs: NOW,
    });
    const byGtrid = new Map(rows.map((r) => [r.gtrid, r]));
    assert.match(byGtrid.get(gtridHex(committing))?.resolution ?? '', /^commit: the decision is logged/);
    assert.equal(byGtrid.get(gtridHex(committing))?.decisionRow, 'rollback');
    assert.match(byGtrid.get(gtridHex(heuristic))?.resolution ?? '', /^operator/);
  });

  it('decision rows not read: unknown, and resolutions as before', () => {
    const orphan = gtrid(19, 3000);
    const rows = joinTransactions({ coordinator: [], broker: [prepared(orphan)], postgres: undefined, nowMs: NOW });
    assert.equal(rows[0]?.decisionRow, 'unknown');
    assert.equal(rows[0]?.resolution, 'rollback (presumed abort): no commit decision; recovery rolls it back once older than the orphan safety interval, at its second sighting');
  });
});
