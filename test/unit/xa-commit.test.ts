/**
 * The transaction manager's commit protocol against fake resources: two-phase order, the
 * one-phase and read-only shortcuts, "no" votes, phase-two retries, heuristics, timeouts.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { IllegalStateError, TransactionHeuristicError, TransactionOutcomeUnknownError, TransactionRolledBackError } from '../../src/common/errors.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { createTransactionManager, type TransactionManagerOptions } from '../../src/xa/transaction-manager.js';
import { FAST_RETRY, FakeResource, keyOf, RecordingLog, rmfail, xaFail, type FakeBranch } from '../helpers/xa-fakes.js';

async function setup(options: Partial<TransactionManagerOptions> = {}) {
  const journal: string[] = [];
  const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
  const db = new FakeResource('postgres:db', journal);
  const log = new RecordingLog(journal);
  const tm = await createTransactionManager({
    nodeName: 'node-a',
    log,
    resources: [broker, db],
    recoveryIntervalMs: 0,
    recoverOnStart: false,
    phaseTwoRetry: FAST_RETRY,
    ...options,
  });
  return { journal, broker, db, log, tm };
}

function indexOf(journal: readonly string[], prefix: string): number {
  const i = journal.findIndex((line) => line.startsWith(prefix));
  assert.notEqual(i, -1, `journal has no line starting with ${prefix}:\n${journal.join('\n')}`);
  return i;
}

describe('two-phase commit', () => {
  it('prepares every branch, forces COMMITTING, then commits each, then writes END', async () => {
    const { journal, broker, db, log, tm } = await setup();
    const tx = tm.begin();
    const a = await tx.enlist(broker);
    const b = await tx.enlist(db);
    a.work();
    b.work();
    const result = await tx.commit();
    assert.deepEqual({ mode: result.mode, completed: result.completed }, { mode: 'two-phase', completed: true });
    assert.equal(tx.state, 'ENDED');
    assert.equal(tx.outcome, 'committed');
    const committing = indexOf(journal, 'log committing');
    assert.ok(indexOf(journal, `${broker.resourceId} prepare`) < committing);
    assert.ok(indexOf(journal, `${db.resourceId} prepare`) < committing);
    assert.ok(committing < indexOf(journal, `${broker.resourceId} commitPrepared`));
    assert.ok(committing < indexOf(journal, `${db.resourceId} commitPrepared`));
    assert.ok(indexOf(journal, `${broker.resourceId} commitPrepared`) < indexOf(journal, 'log end'));
    assert.ok(indexOf(journal, `${db.resourceId} commitPrepared`) < indexOf(journal, 'log end'));
    assert.ok(indexOf(journal, `${broker.resourceId} end(true)`) < indexOf(journal, `${broker.resourceId} prepare`));
    assert.equal(journal.filter((l) => l.includes('commitOnePhase')).length, 0);
    assert.equal(log.inner.pendingCount, 0);
    const records = log.inner.records();
    assert.deepEqual(
      records.map((r) => [r.record.kind, r.forced]),
      [
        ['committing', true],
        ['end', false],
      ],
    );
    assert.equal(tm.metrics().commits, 1);
    assert.equal(tm.metrics().inFlight, 0);
    await tm.close();
  });

  it('gives each branch its own XID of the transaction, and a resource enlisted twice one branch', async () => {
    const { broker, db, tm } = await setup();
    const tx = tm.begin();
    const a = await tx.enlist(broker);
    const again = await tx.enlist(broker);
    const b = await tx.enlist(db);
    assert.equal(a, again);
    assert.ok(a.xid.globalTransactionId.equals(tx.gtrid));
    assert.ok(b.xid.globalTransactionId.equals(tx.gtrid));
    assert.notEqual(keyOf(a.xid), keyOf(b.xid));
    assert.ok(tx.gtrid.subarray(0, 8).equals(tm.nodeId));
    await tx.rollback();
    await tm.close();
  });

  it('commits one branch with work in one phase, with no log record, and releases the idle one', async () => {
    const { journal, broker, db, log, tm } = await setup();
    const tx = tm.begin();
    const a = await tx.enlist(broker);
    await tx.enlist(db);
    a.work();
    const result = await tx.commit();
    assert.equal(result.mode, 'one-phase');
    assert.equal(broker.calls('commitOnePhase').length, 1);
    assert.equal(broker.calls('prepare').length, 0);
    assert.equal(db.calls('rollback').length, 1, 'the branch without work is rolled back (released)');
    assert.equal(log.inner.appendCount, 0, 'no coordinator log record for one-phase');
    assert.equal(journal.filter((l) => l.startsWith('log ')).length, 0);
    assert.equal(tm.metrics().onePhaseCommits, 1);
    await tm.close();
  });

  it('commits with no work at all without any call or record', async () => {
    const { broker, log, tm } = await setup();
    const tx = tm.begin();
    await tx.enlist(broker);
    assert.equal((await tx.commit()).mode, 'read-only');
    assert.equal(log.inner.appendCount, 0);
    assert.equal(tm.metrics().readOnlyCommits, 1);
    await tm.close();
  });

  it('drops a read-only vote from phase two', async () => {
    const { journal, broker, db, log, tm } = await setup();
    const other = new FakeResource('postgres:other', journal);
    tm.register(other);
    other.script.prepare = 'read-only';
    const tx = tm.begin();
    for (const r of [broker, db, other]) (await tx.enlist(r)).work();
    await tx.commit();
    assert.equal(other.calls('prepare').length, 1);
    assert.equal(other.calls('commitPrepared').length, 0);
    assert.equal(broker.calls('commitPrepared').length, 1);
    const entry = log.inner.records()[0]?.record;
    assert.equal(entry?.kind, 'committing');
    assert.deepEqual(
      journal.find((l) => l.startsWith('log committing'))?.split(' ')[3],
      `${broker.resourceId},${db.resourceId}`,
    );
    await tm.close();
  });

  it('writes no record when every branch votes read-only', async () => {
    const { broker, db, log, tm } = await setup();
    broker.script.prepare = 'read-only';
    db.script.prepare = 'read-only';
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    assert.equal((await tx.commit()).mode, 'read-only');
    assert.equal(log.inner.appendCount, 0);
    await tm.close();
  });

  it('rolls every branch back on a "no" vote and rejects with TransactionRolledBackError', async () => {
    const { journal, broker, db, log, tm } = await setup();
    db.script.prepare = xaFail(XaCode.XA_RBINTEGRITY, 'deferred constraint');
    const tx = tm.begin();
    const a = await tx.enlist(broker);
    const b = await tx.enlist(db);
    a.work();
    b.work();
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && error.transactionKey === tx.gtridHex);
    assert.equal(tx.outcome, 'rolled-back');
    assert.equal(broker.calls('rollbackPrepared').length, 1, 'the prepared branch is rolled back through its resource');
    assert.equal(broker.prepared.size, 0);
    assert.equal(db.calls('rollbackPrepared').length, 0, 'the resource that voted no already rolled back');
    assert.equal(journal.filter((l) => l.startsWith('log committing')).length, 0);
    assert.equal(log.inner.appendCount, 0, 'presumed abort: nothing logged');
    assert.equal(tm.metrics().rollbacks, 1);
    await tm.close();
  });

  it('treats a prepare without an answer (RMFAIL) as maybe prepared: rolled back through the resource', async () => {
    const { broker, db, tm } = await setup();
    db.script.prepare = rmfail();
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    assert.equal(db.calls('rollbackPrepared').length, 1);
    assert.equal(broker.calls('rollbackPrepared').length, 1);
    await tm.close();
  });

  it('rolls back when the decision cannot be logged (presumed abort)', async () => {
    const { broker, db, log, tm } = await setup();
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    log.inner.fail();
    await assert.rejects(tx.commit(), /could not be logged/);
    assert.equal(broker.calls('rollbackPrepared').length, 1);
    assert.equal(db.calls('rollbackPrepared').length, 1);
    assert.equal(broker.calls('commitPrepared').length, 0);
    await tm.close();
  });

  it('retries phase two after XAER_RMFAIL until it succeeds, counting retries by resource', async () => {
    const { broker, db, log, tm } = await setup();
    db.script.commitFailures = [rmfail(), rmfail(), rmfail()];
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    const result = await tx.commit();
    assert.equal(result.completed, true);
    assert.equal(db.calls('commitPrepared').length, 4);
    assert.equal(db.committed.size, 1);
    assert.deepEqual(tm.metrics().phaseTwoRetries, { [db.resourceId]: 3 });
    assert.equal(log.inner.pendingCount, 0);
    await tm.close();
  });

  it('resolves after phaseTwoWaitMs with completed: false while phase two goes on', async () => {
    const { db, broker, log, tm } = await setup({ phaseTwoWaitMs: 20, phaseTwoRetry: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    db.script.commitFailures = Array.from({ length: 6 }, () => rmfail());
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    const result = await tx.commit();
    assert.equal(result.completed, false);
    assert.equal(tx.state as string, 'COMMITTING');
    const pending = tm.pendingTransactions();
    assert.equal(pending.length, 1);
    assert.equal(pending[0]?.gtrid, tx.gtridHex);
    assert.equal(pending[0]?.inFlight, true);
    assert.equal(tm.metrics().committingWithoutEnd, 1);
    while (tx.state !== 'ENDED') await sleep(5);
    assert.equal(db.committed.size, 1);
    assert.equal(log.inner.pendingCount, 0);
    assert.equal(tm.metrics().inFlight, 0);
    await tm.close();
  });

  it("phaseTwo 'background': resolves once COMMITTING is durable, before any participant committed; phase two finishes behind it, close() waits for it", async () => {
    const { journal, db, broker, log, tm } = await setup({ phaseTwo: 'background', phaseTwoRetry: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    db.script.commitFailures = [rmfail(), rmfail(), rmfail()];
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    const result = await tx.commit();
    assert.deepEqual(result, { gtrid: tx.gtridHex, mode: 'two-phase', completed: false, heuristics: [] });
    assert.ok(indexOf(journal, `log committing ${tx.gtridHex}`) >= 0, 'the decision was durable when commit() resolved');
    assert.equal(db.committed.size, 0, 'PostgreSQL had not committed yet');
    assert.equal(tm.metrics().committingWithoutEnd, 1);
    await tm.close();
    assert.equal(db.committed.size, 1, 'close() let phase two finish');
    assert.equal(broker.committed.size, 1);
    assert.equal(log.inner.pendingCount, 0, 'END written');
  });

  it("phaseTwo must be 'await' or 'background'", async () => {
    await assert.rejects(setup({ phaseTwo: 'later' as never }), /phaseTwo must be 'await' or 'background'/);
  });

  it('records a heuristic outcome contrary to the decision, keeps the entry, and rejects', async () => {
    const { journal, broker, db, log, tm } = await setup();
    broker.script.commitOutcome = 'heuristic-rollback';
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    await assert.rejects(tx.commit(), (error: unknown) => {
      assert.ok(error instanceof TransactionHeuristicError);
      assert.equal(error.gtrid, tx.gtridHex);
      assert.equal(error.participants[0]?.outcome, 'heuristic-rollback');
      return true;
    });
    assert.equal(tx.state, 'HEURISTIC');
    assert.ok(journal.some((l) => l.startsWith(`log heuristic ${tx.gtridHex} ${broker.resourceId} heuristic-rollback`)));
    assert.equal(broker.forgotten.size, 1, 'the participant forgets it once the log holds it');
    assert.equal(log.inner.pendingCount, 1, 'END withheld until an operator forgets it');
    const metrics = tm.metrics();
    assert.equal(metrics.heuristics, 1);
    assert.equal(metrics.heuristicPending, 1);
    assert.equal(tm.pendingTransactions()[0]?.state, 'HEURISTIC');
    // Recovery does not re-drive a transaction held for the operator's participant.
    await tm.recover();
    assert.equal(broker.calls('commitPrepared').length, 1);
    assert.equal(db.calls('commitPrepared').length, 1);
    await tm.forget(tx.gtridHex);
    assert.equal(log.inner.pendingCount, 0);
    await tm.close();
  });

  it('records a heuristic commit of a committing transaction and completes it', async () => {
    const { broker, db, log, tm } = await setup();
    broker.script.commitOutcome = 'heuristic-commit';
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    const result = await tx.commit();
    assert.equal(result.heuristics.length, 1);
    assert.equal(result.heuristics[0]?.consistent, true);
    assert.equal(log.inner.pendingCount, 0);
    assert.equal(tx.outcome, 'committed');
    await tm.close();
  });

  it('a participant answering "rolled back" to a commit is a heuristic rollback', async () => {
    const { db, broker, tm } = await setup();
    db.script.commitOutcome = 'rolled-back';
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    await assert.rejects(tx.commit(), TransactionHeuristicError);
    await tm.close();
  });

  it('a heuristic commit met while rolling back a failed prepare is recorded and rejects', async () => {
    const { journal, broker, db, log, tm } = await setup();
    db.script.prepare = xaFail(XaCode.XA_RBDEADLOCK);
    broker.script.rollbackOutcome = 'heuristic-commit';
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionHeuristicError && error.decision === 'rollback');
    assert.equal(log.inner.get(tx.gtrid)?.state, 'presumed-aborting', 'an entry holds the heuristic');
    assert.ok(journal.some((l) => l.startsWith(`log heuristic ${tx.gtridHex}`)));
    assert.equal(tm.metrics().heuristicPending, 1);
    await tm.close();
  });

  it('refuses forget of a transaction that is not held by a heuristic', async () => {
    const { log, tm } = await setup();
    const gtrid = Buffer.alloc(24, 7);
    await log.committing(gtrid, [{ resourceId: 'postgres:db', branchQualifier: Buffer.from([0, 0, 0, 1]) }]);
    await assert.rejects(tm.forget(gtrid), IllegalStateError);
    await tm.close();
  });
});

describe('one-phase failures', () => {
  it('maps XA_RB* to TransactionRolledBackError and RMFAIL to a non-retriable outcome-unknown error', async () => {
    const { broker, tm } = await setup();
    broker.script.onePhase = xaFail(XaCode.XA_RBROLLBACK);
    let tx = tm.begin();
    (await tx.enlist(broker)).work();
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    broker.script.onePhase = rmfail();
    tx = tm.begin();
    (await tx.enlist(broker)).work();
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionOutcomeUnknownError && !error.retriable);
    assert.equal(tx.outcome, 'unknown');
    await tm.close();
  });

  it('reports heuristic answers of a one-phase commit', async () => {
    const { broker, tm } = await setup();
    broker.script.onePhase = xaFail(XaCode.XA_HEURRB);
    let tx = tm.begin();
    (await tx.enlist(broker)).work();
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionHeuristicError && error.participants[0]?.outcome === 'heuristic-rollback');
    broker.script.onePhase = xaFail(XaCode.XA_HEURCOM);
    tx = tm.begin();
    (await tx.enlist(broker)).work();
    const result = await tx.commit();
    assert.equal(result.heuristics[0]?.outcome, 'heuristic-commit');
    assert.equal(tm.metrics().heuristics, 2);
    await tm.close();
  });
});

describe('tm.run', () => {
  it('commits and returns the callback value', async () => {
    const { broker, db, tm } = await setup();
    const value = await tm.run(async (tx) => {
      (await tx.enlist(broker)).work();
      (await tx.enlist(db)).work();
      return 42;
    });
    assert.equal(value, 42);
    assert.equal(broker.committed.size, 1);
    assert.equal(db.committed.size, 1);
    await tm.close();
  });

  it('rolls back and rethrows when the callback throws', async () => {
    const { broker, db, log, tm } = await setup();
    const boom = new Error('boom');
    await assert.rejects(
      tm.run(async (tx) => {
        (await tx.enlist(broker)).work();
        (await tx.enlist(db)).work();
        throw boom;
      }),
      (error: unknown) => error === boom,
    );
    assert.equal(broker.calls('rollback').length, 1);
    assert.equal(db.calls('rollback').length, 1);
    assert.equal(broker.calls('prepare').length, 0);
    assert.equal(log.inner.appendCount, 0);
    assert.equal(tm.metrics().inFlight, 0);
    await tm.close();
  });
});

describe('state and timeouts', () => {
  it('refuses a second commit, a rollback once commit began, and work after commit', async () => {
    const { broker, db, tm } = await setup();
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    (await tx.enlist(db)).work();
    const committing = tx.commit();
    await assert.rejects(tx.commit(), IllegalStateError);
    await assert.rejects(tx.rollback(), IllegalStateError);
    await assert.rejects(tx.enlist(new FakeResource('postgres:late')), IllegalStateError);
    await committing;
    await assert.rejects(tx.commit(), IllegalStateError);
    await tm.close();
  });

  it('rollback is idempotent', async () => {
    const { broker, tm } = await setup();
    const tx = tm.begin();
    (await tx.enlist(broker)).work();
    await tx.rollback();
    await tx.rollback();
    assert.equal(broker.calls('rollback').length, 1);
    await assert.rejects(tx.commit(), TransactionRolledBackError);
    await tm.close();
  });

  it('rolls back a transaction that outlives its timeout; later calls fail clearly', async () => {
    const { broker, db, tm } = await setup();
    const tx = tm.begin({ timeoutMs: 30 });
    const a: FakeBranch = await tx.enlist(broker);
    a.work();
    while (tx.state !== 'ENDED') await sleep(5);
    assert.equal(tx.timedOut, true);
    assert.equal(tx.outcome, 'rolled-back');
    assert.equal(broker.calls('rollback').length, 1);
    await assert.rejects(tx.enlist(db), (error: unknown) => error instanceof TransactionRolledBackError && /timed out/.test(error.message));
    await assert.rejects(tx.commit(), /timed out after 30 ms/);
    assert.equal(tm.metrics().timeouts, 1);
    await tm.close();
  });

  it('tm.run rejects when the callback outlives the timeout', async () => {
    const { broker, tm } = await setup();
    await assert.rejects(
      tm.run(
        async (tx) => {
          (await tx.enlist(broker)).work();
          await sleep(60);
          return 'late';
        },
        { timeoutMs: 20 },
      ),
      TransactionRolledBackError,
    );
    assert.equal(broker.calls('commitOnePhase').length, 0);
    await tm.close();
  });

  it('a branch begun while the timeout rolls back is rolled back too', async () => {
    const { journal, tm } = await setup();
    const slow = new FakeResource('postgres:slow', journal);
    const begin = slow.begin.bind(slow);
    slow.begin = async (xid) => {
      await sleep(40);
      return begin(xid);
    };
    tm.register(slow);
    const tx = tm.begin({ timeoutMs: 10 });
    await assert.rejects(tx.enlist(slow), TransactionRolledBackError);
    while (tx.state !== 'ENDED') await sleep(5);
    assert.equal(slow.calls('rollback').length, 1);
    await tm.close();
  });

  it('validates options', async () => {
    await assert.rejects(createTransactionManager({ nodeName: '', log: new RecordingLog([]) }), /nodeName/);
    await assert.rejects(createTransactionManager({ nodeName: 'n' }), /logDir/);
    const r = new FakeResource('postgres:x');
    await assert.rejects(createTransactionManager({ nodeName: 'n', log: new RecordingLog([]), resources: [r, new FakeResource('postgres:x')] }), /already registered/);
    const { tm } = await setup();
    assert.throws(() => tm.begin({ timeoutMs: 0 }), /timeoutMs/);
    await tm.close();
    assert.throws(() => tm.begin(), /after close/);
  });
});
