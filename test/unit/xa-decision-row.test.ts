/**
 * Decision-row mode (transactions.md §5.1) against fake resources: the last resource commits
 * after the others prepared and its commit is the decision (no coordinator log record); its
 * failures; an unanswered commit settled by a rollback claim; recovery reading decision rows
 * (commit at once, claim at the second sighting, keeper down: nothing decided); heuristics; the
 * decision rows' housekeeping.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TransactionHeuristicError, TransactionOutcomeUnknownError, TransactionRolledBackError } from '../../src/common/errors.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { createTransactionManager, type TransactionManagerOptions } from '../../src/xa/transaction-manager.js';
import { gtridHex } from '../../src/xa/xid.js';
import { FakeDecisionResource } from '../helpers/xa-decision-fakes.js';
import { FAST_RETRY, FakeResource, keyOf, RecordingLog, rmfail, xaFail, xidOfNode } from '../helpers/xa-fakes.js';

const NODE = 'node-a';
const OLD = 10 * 60_000;

async function setup(options: Partial<TransactionManagerOptions> = {}) {
  const journal: string[] = [];
  const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
  const db = new FakeDecisionResource('postgres:db', journal);
  const log = new RecordingLog(journal);
  const tm = await createTransactionManager({
    nodeName: NODE,
    log,
    resources: [broker, db],
    recoveryIntervalMs: 0,
    recoverOnStart: false,
    orphanSafetyIntervalMs: 60_000,
    decisionRowRetentionMs: 0,
    phaseTwoRetry: FAST_RETRY,
    ...options,
  });
  return { journal, broker, db, log, tm };
}

function position(journal: readonly string[], prefix: string): number {
  const i = journal.findIndex((line) => line.startsWith(prefix));
  assert.notEqual(i, -1, `journal has no line starting with ${prefix}:\n${journal.join('\n')}`);
  return i;
}

async function twoBranches(tm: Awaited<ReturnType<typeof setup>>['tm'], broker: FakeResource, db: FakeDecisionResource) {
  const tx = tm.begin();
  const a = await tx.enlist(broker);
  const b = await tx.enlist(db);
  a.work();
  b.work();
  return { tx, a, b };
}

describe('decision-row commit', () => {
  it('prepares the broker, then commits the last resource with its decision row, then commits the broker: no log record', async () => {
    const { journal, broker, db, log, tm } = await setup();
    const { tx, b } = await twoBranches(tm, broker, db);
    const states: string[] = [];
    tx.onTransition((t) => states.push(t.to));
    const result = await tx.commit();
    assert.deepEqual({ mode: result.mode, completed: result.completed }, { mode: 'two-phase', completed: true });
    assert.equal(tx.outcome, 'committed');
    assert.deepEqual(states, ['PREPARING', 'COMMITTING_LAST_RESOURCE', 'COMMITTING', 'ENDED']);
    const decision = position(journal, `${db.resourceId} commitAsDecision`);
    assert.ok(position(journal, `${broker.resourceId} prepare`) < decision);
    assert.ok(decision < position(journal, `${broker.resourceId} commitPrepared`));
    assert.equal(db.calls('prepare').length, 0, 'the last resource is never prepared');
    assert.equal(db.calls('commitPrepared').length, 0);
    assert.deepEqual(log.inner.records(), [], 'nothing forced into the coordinator log');
    assert.equal(db.rows.get(gtridHex(tx.gtrid)), 'commit');
    assert.equal(broker.committed.size, 1);
    const metrics = tm.metrics();
    assert.equal(metrics.commits, 1);
    assert.equal(metrics.lastResourceCommits, 1);
    // The row goes with the next marker sweep (recover() runs it).
    await tm.recover();
    assert.equal(db.rows.size, 0, 'decision row deleted once every participant committed');
    assert.ok(db.markersDeleted.some((x) => x.globalTransactionId.equals(b.xid.globalTransactionId)));
    await tm.close();
  });

  it('commits the last resource one-phase when every other branch votes read-only', async () => {
    const { broker, db, tm } = await setup();
    broker.script.prepare = 'read-only';
    const { tx } = await twoBranches(tm, broker, db);
    assert.equal((await tx.commit()).mode, 'one-phase');
    assert.equal(db.calls('commitOnePhase').length, 1);
    assert.equal(db.calls('commitAsDecision').length, 0);
    assert.equal(db.rows.size, 0);
    await tm.close();
  });

  it('rolls the last resource back when a prepare votes no, and never writes a row', async () => {
    const { broker, db, tm } = await setup();
    broker.script.prepare = xaFail(XaCode.XA_RBROLLBACK, 'no');
    const { tx } = await twoBranches(tm, broker, db);
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    assert.equal(db.calls('commitAsDecision').length, 0);
    assert.equal(db.calls('rollback').length, 1);
    assert.equal(db.rows.size, 0);
    await tm.close();
  });

  it('rolls the prepared broker back when the last resource rolls back instead (a deferred constraint)', async () => {
    const { broker, db, log, tm } = await setup();
    db.decisionScript = xaFail(XaCode.XA_RBINTEGRITY, 'deferred constraint');
    const { tx, a } = await twoBranches(tm, broker, db);
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && /the last resource, rolled back/.test(error.message));
    assert.deepEqual(broker.calls('rollbackPrepared'), [`${broker.resourceId} rollbackPrepared ${keyOf(a.xid)}`]);
    assert.equal(broker.committed.size, 0);
    assert.deepEqual(log.inner.records(), []);
    await tm.close();
  });

  it('rolls back when recovery claimed the gtrid before the decision commit (the key is taken)', async () => {
    const { broker, db, tm } = await setup();
    const { tx } = await twoBranches(tm, broker, db);
    db.rows.set(gtridHex(tx.gtrid), 'rollback');
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    assert.equal(broker.rolledBack.size, 1);
    assert.equal(broker.committed.size, 0);
    await tm.close();
  });

  it('an unanswered decision commit that did commit: the rollback claim finds the commit row, and the broker commits', async () => {
    const { broker, db, tm } = await setup();
    db.decisionScript = { lostAfterCommit: true };
    const { tx } = await twoBranches(tm, broker, db);
    const result = await tx.commit();
    assert.equal(result.mode, 'two-phase');
    assert.equal(tx.outcome, 'committed');
    assert.equal(db.calls('claimRollback').length, 1);
    assert.equal(broker.committed.size, 1);
    await tm.close();
  });

  it('an unanswered decision commit that did not commit: the claim wins, the broker rolls back', async () => {
    const { broker, db, tm } = await setup();
    db.decisionScript = rmfail();
    const { tx } = await twoBranches(tm, broker, db);
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && /rollback claim won/.test(error.message));
    assert.equal(db.rows.get(gtridHex(tx.gtrid)), 'rollback');
    assert.equal(broker.rolledBack.size, 1);
    await tm.close();
  });

  it('an unanswered decision commit that cannot be settled: outcome unknown, the broker stays prepared, and recovery settles it', async () => {
    const { broker, db, tm } = await setup({ orphanSafetyIntervalMs: 0 });
    db.decisionScript = rmfail();
    const { tx } = await twoBranches(tm, broker, db);
    db.unsettled.add(gtridHex(tx.gtrid));
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionOutcomeUnknownError && /Recovery settles it/.test(error.message));
    assert.equal(tx.outcome, 'unknown');
    assert.equal(broker.prepared.size, 1, 'left prepared for recovery');
    assert.equal(tm.metrics().inFlight, 0);
    // First sighting only remembers; the second claims (still unsettled: kept), then the claim wins.
    assert.equal((await tm.recover()).orphansFirstSighted, 1);
    await tm.recover();
    assert.equal(broker.prepared.size, 1, 'an unsettled claim decides nothing');
    db.unsettled.clear();
    const report = await tm.recover();
    assert.equal(report.orphanBranchesRolledBack, 1);
    assert.equal(broker.prepared.size, 0);
    assert.equal(broker.committed.size, 0);
    await tm.close();
  });

  it('records a heuristic outcome of the broker after the decision (a COMMITTING entry is made for it) and holds the transaction', async () => {
    const { broker, db, log, tm } = await setup();
    broker.script.commitOutcome = 'heuristic-rollback';
    const { tx } = await twoBranches(tm, broker, db);
    await assert.rejects(tx.commit(), TransactionHeuristicError);
    const entry = log.inner.get(tx.gtrid);
    assert.equal(entry?.state, 'committing');
    assert.deepEqual(entry?.participants.map((p) => p.resourceId), [broker.resourceId], 'the last resource has nothing to re-drive');
    assert.equal(entry?.heuristics[0]?.outcome, 'heuristic-rollback');
    assert.equal(db.rows.get(gtridHex(tx.gtrid)), 'commit', 'the decision row stays while the transaction is held');
    await tm.close();
  });
});

describe('recovery in decision-row mode', () => {
  it('commits an orphan whose decision row says commit at the first scan, young or not, and deletes the row', async () => {
    const { broker, db, log, tm } = await setup();
    const xid = xidOfNode(NODE, 1000); // younger than the safety interval
    broker.extraListed.push(xid);
    db.rows.set(gtridHex(xid.globalTransactionId), 'commit');
    const report = await tm.recover();
    assert.equal(report.orphansCommitted, 1);
    assert.equal(report.committingCompleted, 1);
    assert.deepEqual(broker.calls('commitPrepared'), [`${broker.resourceId} commitPrepared ${keyOf(xid)}`]);
    assert.equal(tm.metrics().decisionRowRecoveries, 1);
    assert.deepEqual(log.inner.records(), [], 'no log record needed');
    await tm.recover();
    assert.equal(db.rows.size, 0);
    await tm.close();
  });

  it('claims an orphan without a row at its second sighting: rollback row, PRESUMED_ABORTING, rolled back', async () => {
    const { journal, broker, db, tm } = await setup();
    const xid = xidOfNode(NODE, OLD);
    broker.extraListed.push(xid);
    assert.equal((await tm.recover()).orphansFirstSighted, 1);
    assert.equal(db.calls('claimRollback').length, 0, 'not claimed at the first sighting');
    const report = await tm.recover();
    assert.equal(report.orphanBranchesRolledBack, 1);
    assert.ok(position(journal, `${db.resourceId} claimRollback`) < position(journal, 'log presumedAborting'));
    assert.equal(broker.rolledBack.size, 1);
    // The sweep after the scan: the broker no longer lists it, so the rollback row went too.
    assert.ok(position(journal, 'log end') < position(journal, `${db.resourceId} deleteMarkers ${gtridHex(xid.globalTransactionId)}`));
    assert.equal(db.rows.size, 0);
    await tm.close();
  });

  it('commits instead when the claim finds that the commit won the key (row 23)', async () => {
    const { broker, db, tm } = await setup();
    const xid = xidOfNode(NODE, OLD);
    broker.extraListed.push(xid);
    await tm.recover();
    // The slow commit lands after the scan read the rows, just before the claim's insert.
    db.onClaim = (gtrid) => db.rows.set(gtridHex(gtrid), 'commit');
    const report = await tm.recover();
    assert.equal(db.calls('claimRollback').length, 1);
    assert.equal(report.orphansCommitted, 1);
    assert.equal(broker.committed.size, 1);
    assert.equal(broker.rolledBack.size, 0);
    await tm.close();
  });

  it('decides nothing while a decision keeper cannot be read', async () => {
    const { broker, db, tm } = await setup();
    const xid = xidOfNode(NODE, OLD);
    broker.extraListed.push(xid);
    db.keeperFailure = rmfail();
    await tm.recover();
    await tm.recover();
    await tm.recover();
    assert.equal(broker.calls('rollbackPrepared').length, 0);
    assert.equal(broker.calls('commitPrepared').length, 0);
    db.keeperFailure = undefined;
    await tm.recover();
    assert.equal(broker.rolledBack.size, 1, 'claimed once the keeper answers');
    await tm.close();
  });

  it('keeps the decision rows of gtrids still prepared elsewhere, and every row while a resource cannot list', async () => {
    const { broker, db, tm } = await setup();
    // A young orphan with a rollback row (an unsettled commit of this process that the claim
    // then won): recovery leaves it alone until the safety interval, so it stays listed.
    const pending = xidOfNode(NODE, 1000, 0, 1n);
    const done = xidOfNode(NODE, OLD, 0, 2n);
    db.rows.set(gtridHex(pending.globalTransactionId), 'rollback');
    db.rows.set(gtridHex(done.globalTransactionId), 'commit');
    broker.script.recover = rmfail();
    await tm.recover();
    assert.equal(db.rows.size, 2, 'a resource did not answer: nothing deleted');
    broker.script.recover = [pending];
    const report = await tm.recover();
    assert.equal(report.orphansTooYoung, 1);
    assert.ok(db.rows.has(gtridHex(pending.globalTransactionId)), 'still prepared at the broker: its row stays');
    assert.ok(!db.rows.has(gtridHex(done.globalTransactionId)), 'finished: deleted');
    await tm.close();
  });

  it('keeps a leftover decision row until its transaction is older than decisionRowRetentionMs (a broker not registered yet may need it)', async () => {
    const { db, tm } = await setup({ decisionRowRetentionMs: 60 * 60_000 });
    const recent = xidOfNode(NODE, OLD, 0, 1n); // 10 minutes old
    const ancient = xidOfNode(NODE, 2 * 60 * 60_000, 0, 2n); // 2 hours old
    db.rows.set(gtridHex(recent.globalTransactionId), 'commit');
    db.rows.set(gtridHex(ancient.globalTransactionId), 'commit');
    await tm.recover();
    assert.deepEqual([...db.rows.keys()], [gtridHex(recent.globalTransactionId)]);
    await tm.close();
  });
});
