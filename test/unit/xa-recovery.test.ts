/**
 * Recovery against fake resources: COMMITTING re-driven, orphans rolled back only after two
 * sightings and the safety interval and never while in flight, other nodes' XIDs untouched,
 * recoveryNodeNames honoured, PRESUMED_ABORTING / COMMITTING arbitration, marker housekeeping.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransactionRolledBackError } from '../../src/common/errors.js';
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { createTransactionManager, type TransactionManagerOptions } from '../../src/xa/transaction-manager.js';
import { branchXid, makeGtrid, nodeIdOf } from '../../src/xa/xid.js';
import { FAST_RETRY, FakeResource, keyOf, RecordingLog, rmfail, xidOfNode } from '../helpers/xa-fakes.js';

const NODE = 'node-a';
const OLD = 10 * 60_000;

async function setup(options: Partial<TransactionManagerOptions> = {}, logOptions: { withSync?: boolean; inner?: MemoryCoordinatorLog } = {}) {
  const journal: string[] = [];
  const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
  const db = new FakeResource('postgres:db', journal);
  const log = new RecordingLog(journal, logOptions.inner, logOptions);
  const tm = await createTransactionManager({
    nodeName: NODE,
    log,
    resources: [broker, db],
    recoveryIntervalMs: 0,
    recoverOnStart: false,
    orphanSafetyIntervalMs: 60_000,
    phaseTwoRetry: FAST_RETRY,
    ...options,
  });
  return { journal, broker, db, log, tm };
}

describe('recovery of COMMITTING transactions', () => {
  it('re-drives phase two of a logged decision at start, then writes END', async () => {
    const journal: string[] = [];
    const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
    const db = new FakeResource('postgres:db', journal);
    const gtrid = makeGtrid({ nodeId: nodeIdOf(NODE), startedAtMs: Date.now() - 1000, sequence: 5n });
    const xa = branchXid(gtrid, 0);
    const xb = branchXid(gtrid, 1);
    broker.prepared.set(keyOf(xa), xa);
    db.prepared.set(keyOf(xb), xb);
    db.script.commitFailures = [rmfail()];
    const inner = new MemoryCoordinatorLog();
    await inner.committing(gtrid, [
      { resourceId: broker.resourceId, branchQualifier: xa.branchQualifier },
      { resourceId: db.resourceId, branchQualifier: xb.branchQualifier },
    ]);
    const log = new RecordingLog(journal, inner);
    const tm = await createTransactionManager({ nodeName: NODE, log, resources: [broker, db], recoveryIntervalMs: 0, phaseTwoRetry: FAST_RETRY });
    assert.equal(broker.committed.size, 1);
    assert.equal(db.committed.size, 1);
    assert.equal(db.calls('commitPrepared').length, 2, 'retried after RMFAIL');
    assert.equal(inner.pendingCount, 0, 'END written');
    const metrics = tm.metrics();
    assert.equal(metrics.recoveredCommits, 1);
    assert.equal(metrics.committingWithoutEnd, 0);
    assert.equal(metrics.recoveryScans, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0, 'a decided transaction is never taken for an orphan');
    await tm.close();
  });

  it('keeps a COMMITTING entry whose resource is not registered, and says so', async () => {
    const { log, tm } = await setup();
    const gtrid = makeGtrid({ nodeId: nodeIdOf(NODE), startedAtMs: Date.now() - 1000, sequence: 9n });
    await log.inner.committing(gtrid, [{ resourceId: 'postgres:gone', branchQualifier: Buffer.from([0, 0, 0, 0]) }]);
    const report = await tm.recover();
    assert.deepEqual(report.unresolvable, [gtrid.toString('hex')]);
    assert.equal(log.inner.pendingCount, 1);
    const pending = tm.pendingTransactions();
    assert.equal(pending[0]?.participants[0]?.registered, false);
    assert.match(pending[0]?.suggestion ?? '', /register postgres:gone/);
    assert.ok(tm.metrics().oldestCommittingAgeMs >= 0);
    await tm.close();
  });
});

describe('close and restart', () => {
  it('close() rolls back ACTIVE transactions and leaves a stuck commit to recovery after a restart', async () => {
    const journal: string[] = [];
    const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
    const db = new FakeResource('postgres:db', journal);
    const inner = new MemoryCoordinatorLog();
    const options = { nodeName: NODE, recoveryIntervalMs: 0, recoverOnStart: false, phaseTwoRetry: FAST_RETRY, phaseTwoWaitMs: 20 } as const;
    const tm = await createTransactionManager({ ...options, log: new RecordingLog(journal, inner), resources: [broker, db] });
    const idle = tm.begin();
    (await idle.enlist(broker)).work();
    db.script.commitFailures = Array.from({ length: 100_000 }, () => rmfail());
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    assert.equal((await tx.commit()).completed, false);
    await tm.close();
    assert.equal(idle.outcome, 'rolled-back');
    assert.equal(inner.pendingCount, 1, 'the decision stays in the log');
    // Restart: a new manager on the replayed log, the resource is back.
    db.script.commitFailures = [];
    const restarted = inner.restart();
    const tm2 = await createTransactionManager({ ...options, recoverOnStart: true, log: new RecordingLog(journal, restarted), resources: [broker, db] });
    assert.equal(restarted.pendingCount, 0);
    assert.equal(db.committed.size, 1);
    assert.equal(tm2.metrics().recoveredCommits, 1);
    await tm2.close();
  });
});

describe('orphan scan', () => {
  it('rolls an old orphan back only at the second sighting, after PRESUMED_ABORTING, then ENDs', async () => {
    const { journal, broker, db, log, tm } = await setup();
    const orphan = xidOfNode(NODE, OLD, 0);
    const orphanDb = { ...orphan, branchQualifier: Buffer.from([0, 0, 0, 1]) };
    broker.extraListed.push(orphan);
    db.extraListed.push(orphanDb);
    const first = await tm.recover();
    assert.equal(first.orphansFirstSighted, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    assert.deepEqual(tm.describe().orphanSightings, [orphan.globalTransactionId.toString('hex')]);
    const second = await tm.recover();
    assert.equal(second.orphanBranchesRolledBack, 2);
    assert.equal(broker.calls('rollbackPrepared').length, 1);
    assert.equal(db.calls('rollbackPrepared').length, 1);
    const claim = journal.findIndex((l) => l.startsWith('log presumedAborting') && l.endsWith('true'));
    assert.ok(claim >= 0 && claim < journal.findIndex((l) => l.includes('rollbackPrepared')));
    assert.equal(log.inner.pendingCount, 0);
    assert.equal(tm.metrics().orphanRollbacks, 2);
    await tm.close();
  });

  it('forgets a sighting when the orphan disappears before the next scan', async () => {
    const { broker, tm } = await setup();
    const orphan = xidOfNode(NODE, OLD);
    broker.extraListed.push(orphan);
    await tm.recover();
    broker.extraListed.length = 0;
    await tm.recover();
    broker.extraListed.push(orphan);
    const third = await tm.recover();
    assert.equal(third.orphansFirstSighted, 1, 'counted as a first sighting again');
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    await tm.close();
  });

  it('leaves alone orphans younger than the orphan safety interval', async () => {
    const { broker, tm } = await setup({ orphanSafetyIntervalMs: 60_000 });
    broker.extraListed.push(xidOfNode(NODE, 1_000));
    for (let i = 0; i < 3; i++) assert.equal((await tm.recover()).orphansTooYoung, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    await tm.close();
  });

  it('never touches a transaction in flight in this process', async () => {
    const { broker, db, tm } = await setup({ orphanSafetyIntervalMs: 0 });
    const tx = tm.begin();
    const a = await tx.enlist(broker);
    a.work();
    await a.prepare(); // listed by recover() as prepared, while the transaction is still in flight
    for (let i = 0; i < 3; i++) assert.equal((await tm.recover()).orphansInFlight, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    await tx.rollback();
    void db;
    await tm.close();
  });

  it('ignores other nodes’ XIDs', async () => {
    const { broker, tm } = await setup({ orphanSafetyIntervalMs: 0 });
    broker.extraListed.push(xidOfNode('node-b', OLD));
    for (let i = 0; i < 3; i++) assert.equal((await tm.recover()).foreignBranches, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    await tm.close();
  });

  it('recovers the XIDs of recoveryNodeNames too', async () => {
    const { broker, tm } = await setup({ recoveryNodeNames: ['node-a-old'] });
    broker.extraListed.push(xidOfNode('node-a-old', OLD));
    broker.extraListed.push(xidOfNode('node-c', OLD));
    await tm.recover();
    const second = await tm.recover();
    assert.equal(second.orphanBranchesRolledBack, 1);
    assert.equal(second.foreignBranches, 1);
    assert.equal(broker.extraListed.length, 1, 'node-c’s branch stays');
    await tm.close();
  });

  it('does not END an orphan while a resource could not be scanned', async () => {
    const { broker, db, log, tm } = await setup();
    broker.extraListed.push(xidOfNode(NODE, OLD));
    await tm.recover();
    db.script.recover = rmfail();
    const second = await tm.recover();
    assert.equal(second.resourcesFailed.length, 1);
    assert.equal(second.orphanBranchesRolledBack, 1);
    assert.equal(log.inner.pendingCount, 1, 'PRESUMED_ABORTING kept: the silent resource may hold a branch');
    db.script.recover = undefined;
    await tm.recover();
    assert.equal(log.inner.pendingCount, 0);
    await tm.close();
  });

  it('retries a failed orphan rollback at the next scan', async () => {
    const { broker, log, tm } = await setup();
    broker.extraListed.push(xidOfNode(NODE, OLD));
    broker.script.rollbackFailures = [rmfail()];
    await tm.recover();
    await tm.recover();
    assert.equal(log.inner.pendingCount, 1);
    assert.equal(broker.extraListed.length, 1);
    await tm.recover();
    assert.equal(broker.extraListed.length, 0);
    assert.equal(log.inner.pendingCount, 0);
    await tm.close();
  });

  it('records a heuristic found while rolling an orphan back', async () => {
    const { journal, broker, log, tm } = await setup();
    broker.extraListed.push(xidOfNode(NODE, OLD));
    broker.script.rollbackOutcome = 'heuristic-commit';
    await tm.recover();
    await tm.recover();
    assert.ok(journal.some((l) => l.startsWith('log heuristic') && l.endsWith('heuristic-commit')));
    assert.equal(log.inner.pendingCount, 1);
    assert.equal(tm.metrics().heuristicPending, 1);
    assert.equal(tm.pendingTransactions()[0]?.state, 'HEURISTIC');
    await tm.close();
  });
});

describe('PRESUMED_ABORTING versus COMMITTING', () => {
  it('a commit whose gtrid recovery claimed first is rolled back', async () => {
    const { broker, db, log, tm } = await setup();
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    // Recovery (of this or another process sharing nothing but the log) claims it mid-prepare.
    db.script.beforePrepare = async () => {
      assert.equal(await log.presumedAborting(tx.gtrid), true);
    };
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    assert.equal(broker.calls('commitPrepared').length, 0);
    assert.equal(broker.calls('rollbackPrepared').length, 1);
    assert.equal(db.calls('rollbackPrepared').length, 1);
    await tm.close();
  });

  it('an orphan whose COMMITTING appears before the claim is committed, not rolled back', async () => {
    const { broker, db, log, tm } = await setup();
    const xa = xidOfNode(NODE, OLD, 0, 77n);
    const xb = { ...xa, branchQualifier: Buffer.from([0, 0, 0, 1]) };
    broker.extraListed.push(xa);
    db.extraListed.push(xb);
    await tm.recover();
    log.beforePresumedAborting = async (gtrid) => {
      await log.inner.committing(gtrid, [
        { resourceId: broker.resourceId, branchQualifier: xa.branchQualifier },
        { resourceId: db.resourceId, branchQualifier: xb.branchQualifier },
      ]);
    };
    const second = await tm.recover();
    assert.equal(second.orphansCommitted, 1);
    assert.equal(second.orphanBranchesRolledBack, 0);
    assert.equal(broker.calls('commitPrepared').length, 1);
    assert.equal(db.calls('commitPrepared').length, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    assert.equal(log.inner.pendingCount, 0);
    await tm.close();
  });
});

describe('marker housekeeping', () => {
  it('deletes markers of committed branches once END is durable (log with sync)', async () => {
    const { db, broker, tm } = await setup();
    db.withMarkers = true;
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    const b = await tx.enlist(db);
    b.work();
    await tx.commit();
    assert.equal(db.markersDeleted.length, 0, 'not at commit: batched');
    await tm.recover();
    assert.deepEqual(db.markersDeleted.map(keyOf), [keyOf(b.xid)]);
    await tm.close();
  });

  it('without sync, waits for a later forced record before deleting', async () => {
    const { db, broker, tm } = await setup({}, { withSync: false });
    db.withMarkers = true;
    const commitOne = async () => {
      const tx = tm.begin();
      (await tx.enlist(broker)).work();
      const b = await tx.enlist(db);
      b.work();
      await tx.commit();
      return b.xid;
    };
    const first = await commitOne();
    await tm.recover();
    assert.equal(db.markersDeleted.length, 0, 'END of the first is not known durable yet');
    const second = await commitOne(); // its forced COMMITTING makes the first END durable
    await tm.recover();
    assert.deepEqual(db.markersDeleted.map(keyOf), [keyOf(first)]);
    void second;
    await tm.close();
  });
});
