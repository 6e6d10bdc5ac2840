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
    assert.throws(() => parseTxArgs(['forget', 'k', '--postgres', 'x'], {}), /only apply to list/);
  });
});
