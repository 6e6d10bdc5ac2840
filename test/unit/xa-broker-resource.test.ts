/**
 * The broker as a resource of the transaction manager: the mapping of XA answers to phase-two
 * outcomes (transactions.md §5.6 step 1), the branch (send, votes) and how `tx.send(producer)`
 * finds or creates the broker resource.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Pool } from 'pg';
import { describe, it } from 'node:test';
import { TransactionRolledBackError, XaError } from '../../src/common/errors.js';
import type { Message, SendResult } from '../../src/client/message.js';
import { XaCode, XaFlags } from '../../src/client/transaction/xa-codes.js';
import type { XAResource, XAResourceOptions } from '../../src/client/transaction/xa-resource.js';
import { createBrokerResource } from '../../src/xa/broker-resource.js';
import { createPostgresResource } from '../../src/xa/postgres/index.js';
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { createTransactionManager } from '../../src/xa/transaction-manager.js';
import { branchXid, METAQ_TM_FORMAT_ID, type Xid } from '../../src/xa/xid.js';
import { FakeResource, xaFail, xidOfNode } from '../helpers/xa-fakes.js';

interface FakeXa {
  calls: string[];
  commitError?: XaError;
  rollbackError?: XaError;
  forgetError?: XaError;
  vote: 0 | 3;
  listed: Xid[];
  timeout: number;
  startTimeouts: number[];
}

function fakeProducer(state: Partial<FakeXa> = {}) {
  const fake: FakeXa = { calls: [], vote: 0, listed: [], timeout: 60, startTimeouts: [], ...state };
  let options: XAResourceOptions | undefined;
  const xa = {
    uniqueQualifier: 'tm-1',
    brokerUrl: 'meta://127.0.0.1:8123',
    async start(_xid: Xid) {
      fake.startTimeouts.push(fake.timeout);
      fake.calls.push('start');
    },
    async end(_xid: Xid, flags?: number) {
      fake.calls.push(`end ${flags === XaFlags.TMFAIL ? 'fail' : 'success'}`);
    },
    async prepare() {
      fake.calls.push('prepare');
      return fake.vote;
    },
    async commit(_xid: Xid, onePhase: boolean) {
      fake.calls.push(`commit ${onePhase}`);
      if (fake.commitError !== undefined) throw fake.commitError;
    },
    async rollback() {
      fake.calls.push('rollback');
      if (fake.rollbackError !== undefined) throw fake.rollbackError;
    },
    async forget() {
      fake.calls.push('forget');
      if (fake.forgetError !== undefined) throw fake.forgetError;
    },
    async recover() {
      return fake.listed;
    },
    async send(_xid: Xid, message: Message): Promise<SendResult> {
      fake.calls.push(`send ${message.topic}`);
      return { id: 1n, topic: message.topic, partition: 0, offset: -1, brokerUrl: 'meta://127.0.0.1:8123' };
    },
    setTransactionTimeout(seconds: number) {
      fake.timeout = seconds;
      return true;
    },
    getTransactionTimeout() {
      return fake.timeout;
    },
  };
  const producer = {
    getXAResource(o?: XAResourceOptions): XAResource {
      options = o;
      return xa as unknown as XAResource;
    },
  };
  return { fake, producer, options: () => options };
}

const XID = branchXid(Buffer.alloc(24, 1), 0);

describe('broker resource: phase-two mapping', () => {
  it('names the resource after the broker (or name) and the unique qualifier', () => {
    const { producer, options } = fakeProducer();
    assert.equal(createBrokerResource(producer, { uniqueQualifier: 'tm-1', brokerUrl: 'meta://127.0.0.1:8123' }).resourceId, 'metaq:meta://127.0.0.1:8123#tm-1');
    assert.deepEqual(options(), { uniqueQualifier: 'tm-1', brokerUrl: 'meta://127.0.0.1:8123' });
    assert.equal(createBrokerResource(producer, { name: 'cluster-a' }).resourceId, 'metaq:cluster-a#tm-1');
  });

  it('maps commit answers', async () => {
    const { fake, producer } = fakeProducer();
    const resource = createBrokerResource(producer);
    assert.equal(await resource.commitPrepared(XID), 'committed');
    assert.deepEqual(fake.calls, ['commit false']);
    fake.commitError = xaFail(XaCode.XAER_NOTA);
    assert.equal(await resource.commitPrepared(XID), 'committed');
    assert.equal(resource.stats.tombstonesExpired, 1);
    const heuristics: [number, string][] = [
      [XaCode.XA_HEURCOM, 'heuristic-commit'],
      [XaCode.XA_HEURRB, 'heuristic-rollback'],
      [XaCode.XA_HEURMIX, 'heuristic-mixed'],
      [XaCode.XA_HEURHAZ, 'heuristic-hazard'],
    ];
    for (const [code, outcome] of heuristics) {
      fake.commitError = xaFail(code);
      assert.equal(await resource.commitPrepared(XID), outcome);
    }
    fake.commitError = xaFail(XaCode.XA_RBROLLBACK);
    assert.equal(await resource.commitPrepared(XID), 'rolled-back');
    fake.commitError = xaFail(XaCode.XAER_RMFAIL);
    await assert.rejects(resource.commitPrepared(XID), (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_RMFAIL);
    fake.commitError = xaFail(XaCode.XAER_RMERR);
    await assert.rejects(resource.commitPrepared(XID), XaError);
  });

  it('maps rollback answers', async () => {
    const { fake, producer } = fakeProducer();
    const resource = createBrokerResource(producer);
    assert.equal(await resource.rollbackPrepared(XID), 'rolled-back');
    fake.rollbackError = xaFail(XaCode.XAER_NOTA);
    assert.equal(await resource.rollbackPrepared(XID), 'rolled-back');
    fake.rollbackError = xaFail(XaCode.XA_RBTIMEOUT);
    assert.equal(await resource.rollbackPrepared(XID), 'rolled-back');
    fake.rollbackError = xaFail(XaCode.XA_HEURCOM);
    assert.equal(await resource.rollbackPrepared(XID), 'heuristic-commit');
    fake.rollbackError = xaFail(XaCode.XAER_PROTO, 'the branch is already committed');
    assert.equal(await resource.rollbackPrepared(XID), 'committed');
    fake.rollbackError = xaFail(XaCode.XAER_RMFAIL);
    await assert.rejects(resource.rollbackPrepared(XID), XaError);
  });

  it('forget ignores an unknown branch; recover keeps only this manager’s formatId', async () => {
    const { fake, producer } = fakeProducer();
    const resource = createBrokerResource(producer);
    fake.forgetError = xaFail(XaCode.XAER_NOTA);
    await resource.forget(XID);
    const ours = xidOfNode('n', 0);
    fake.listed = [ours, { formatId: 0x42746e78, globalTransactionId: Buffer.from('btm'), branchQualifier: Buffer.alloc(0) }];
    assert.deepEqual(await resource.recover(), [ours]);
    assert.equal(ours.formatId, METAQ_TM_FORMAT_ID);
  });
});

describe('broker branch', () => {
  it('starts with the timeout, restores the resource’s, and has work once a send succeeded', async () => {
    const { fake, producer } = fakeProducer();
    const resource = createBrokerResource(producer);
    const branch = await resource.begin(XID, 75);
    assert.deepEqual(fake.startTimeouts, [75]);
    assert.equal(fake.timeout, 60);
    assert.equal(branch.hasWork, false);
    await branch.send({ topic: 't', data: 'x' });
    assert.equal(branch.hasWork, true);
    assert.equal(branch.sentCount, 1);
    assert.equal(await branch.prepare(), 'ok');
    await branch.end(false);
    assert.deepEqual(fake.calls, ['start', 'send t', 'prepare', 'end fail']);
  });

  it('votes read-only only when nothing was sent', async () => {
    const { fake, producer } = fakeProducer({ vote: 3 });
    const resource = createBrokerResource(producer);
    const idle = await resource.begin(XID);
    assert.equal(await idle.prepare(), 'read-only');
    const busy = await resource.begin(XID);
    await busy.send({ topic: 't', data: 'x' });
    await assert.rejects(busy.prepare(), (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_RMERR);
    void fake;
  });
});

describe('tx.send(producer, message)', () => {
  it('uses the registered broker resource of the producer', async () => {
    const { fake, producer } = fakeProducer();
    const resource = createBrokerResource(producer, { uniqueQualifier: 'tm-1' });
    const log = new MemoryCoordinatorLog();
    const tm = await createTransactionManager({ nodeName: 'n', log, resources: [resource], recoveryIntervalMs: 0 });
    const result = await tm.run(async (tx) => tx.send(producer, { topic: 'orders', data: 'x' }));
    assert.equal(result.offset, -1);
    assert.deepEqual(fake.calls, ['start', 'send orders', 'end success', 'commit true']);
    assert.deepEqual(tm.resources(), [resource]);
    assert.equal(log.appendCount, 0);
    await tm.close();
  });

  it('creates and registers a broker resource for an unregistered producer', async () => {
    const { fake, producer, options } = fakeProducer();
    const tm = await createTransactionManager({ nodeName: 'node 1', log: new MemoryCoordinatorLog(), recoveryIntervalMs: 0 });
    const tx = tm.begin();
    await tx.send(producer, { topic: 'orders', data: 'x' });
    await tx.send(producer, { topic: 'orders', data: 'y' });
    assert.equal(fake.calls.filter((c) => c === 'start').length, 1, 'one branch per producer');
    assert.equal(options()?.uniqueQualifier, 'metaq-tm-node_1');
    assert.equal(tm.resources().length, 1);
    await tx.commit();
    await tm.close();
  });

  /** A fake producer whose sends wait for `answer`; a FakeResource with work beside it (two-phase). */
  async function withHeldSend() {
    const { fake, producer } = fakeProducer();
    const xa = producer.getXAResource();
    const send = xa.send.bind(xa);
    let answer!: (error?: Error) => void;
    (xa as { send: typeof send }).send = (xid, message, options) => {
      const sent = send(xid, message, options);
      return new Promise<void>((resolve, reject) => (answer = (error) => (error === undefined ? resolve() : reject(error)))).then(() => sent);
    };
    const db = new FakeResource('postgres:db');
    const log = new MemoryCoordinatorLog();
    const tm = await createTransactionManager({ nodeName: 'n', log, resources: [createBrokerResource(producer), db], recoveryIntervalMs: 0, recoverOnStart: false });
    const tx = tm.begin();
    (await tx.enlist(db)).work();
    return { fake, producer, db, log, tm, tx, answer: (error?: Error) => answer(error) };
  }

  it('a send not awaited before commit: END and PREPARE go out before its answer, and the commit covers it', async () => {
    const { fake, producer, db, tm, tx, answer } = await withHeldSend();
    const sent = tx.send(producer, { topic: 'orders', data: 'x' });
    const committing = tx.commit();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(fake.calls, ['start', 'send orders', 'end success', 'prepare'], 'END and PREPARE did not wait for the send');
    assert.equal(db.calls('prepare').length, 1);
    answer();
    assert.equal((await sent).offset, -1);
    const result = await committing;
    assert.equal(result.mode, 'two-phase');
    assert.deepEqual(fake.calls.slice(4), ['commit false']);
    assert.equal(db.committed.size, 1);
    await tm.close();
  });

  it('a send not awaited that fails after the votes: no decision, every prepared branch rolled back', async () => {
    const { fake, producer, db, log, tm, tx, answer } = await withHeldSend();
    const sent = tx.send(producer, { topic: 'orders', data: 'x' });
    const committing = tx.commit();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(fake.calls, ['start', 'send orders', 'end success', 'prepare'], 'both voted yes before the send was answered');
    answer(new Error('no answer within 5000 ms'));
    await assert.rejects(sent, /no answer/);
    await assert.rejects(
      committing,
      (e: unknown) => e instanceof TransactionRolledBackError && /1 send\(s\) of the transaction failed, and a transaction commits all its sends or none: no answer/.test(e.message),
    );
    assert.ok(fake.calls.includes('rollback'), `the prepared broker branch is rolled back: ${fake.calls.join(', ')}`);
    assert.ok(!fake.calls.some((c) => c.startsWith('commit')), 'the broker branch never committed');
    assert.equal(db.rolledBack.size, 1, 'the prepared PostgreSQL-like branch is rolled back');
    assert.equal(db.committed.size, 0);
    assert.equal(tm.metrics().commits, 0, 'no commit decision');
    assert.ok(log.pending().every((e) => e.state !== 'committing'), 'no COMMITTING record');
    await tm.close();
  });

  it('a send that failed, even one the application caught, makes the commit roll back every branch (all the sends or none)', async () => {
    for (const only of [true, false]) {
      const { fake, producer } = fakeProducer();
      const xa = producer.getXAResource();
      const send = xa.send.bind(xa);
      (xa as { send: typeof send }).send = (xid, message, options) =>
        message.topic === 'unpublished' ? Promise.reject(new Error('topic unpublished was not published')) : send(xid, message, options);
      const tm = await createTransactionManager({ nodeName: 'n', log: new MemoryCoordinatorLog(), recoveryIntervalMs: 0 });
      const tx = tm.begin();
      if (!only) await tx.send(producer, { topic: 'orders', data: 'kept' });
      await assert.rejects(tx.send(producer, { topic: 'unpublished', data: 'x' }), /was not published/);
      await assert.rejects(
        tx.commit(),
        (e: unknown) =>
          e instanceof TransactionRolledBackError && /1 send\(s\) of the transaction failed, and a transaction commits all its sends or none: topic unpublished was not published/.test(e.message),
      );
      const expected = only ? ['start', 'end fail', 'rollback'] : ['start', 'send orders', 'end fail', 'rollback'];
      assert.deepEqual(fake.calls, expected, `${only ? 'the only send failed' : 'one of two sends failed'}: rolled back, never prepared or committed`);
      assert.equal(tm.metrics().rollbacks, 1);
      await tm.close();
    }
  });

  it('enlistPostgres explains a pool without a registered PostgresResource', async () => {
    const tm = await createTransactionManager({ nodeName: 'n', log: new MemoryCoordinatorLog(), recoveryIntervalMs: 0 });
    const tx = tm.begin();
    await assert.rejects(tx.enlistPostgres({} as never), /no registered PostgresResource uses this pool/);
    await tx.rollback();
    await tm.close();
  });

  it('enlistPostgres finds the registered PostgresResource of a pool', async () => {
    const pool = Object.assign(new EventEmitter(), {
      options: { max: 2 },
      connect: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      },
    });
    const resource = createPostgresResource({ pool: pool as unknown as Pool, name: 'orders' });
    const tm = await createTransactionManager({ nodeName: 'n', log: new MemoryCoordinatorLog(), resources: [resource], recoveryIntervalMs: 0, recoverOnStart: false });
    const tx = tm.begin();
    // Found: its begin ran (and failed to connect, as XAER_RMFAIL), instead of "no registered PostgresResource".
    await assert.rejects(tx.enlistPostgres(pool as unknown as Pool), (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_RMFAIL);
    await assert.rejects(tx.enlistPostgres(resource), (e: unknown) => e instanceof XaError);
    await tx.rollback();
    await tm.close();
  });
});

/** An XA resource whose BEGIN and END answers the test releases by hand; calls are recorded when made. */
function gatedProducer() {
  const calls: string[] = [];
  const gates = new Map<string, { resolve: () => void; reject: (error: unknown) => void }>();
  const gated = (name: string): Promise<void> => {
    calls.push(name);
    return new Promise<void>((resolve, reject) => gates.set(name, { resolve, reject }));
  };
  const xa = {
    uniqueQualifier: 'tm-1',
    brokerUrl: 'meta://127.0.0.1:8123',
    start: () => gated('start'),
    end: () => gated('end'),
    async prepare() {
      calls.push('prepare');
      return 0;
    },
    async commit(_xid: Xid, onePhase: boolean) {
      calls.push(`commit ${onePhase}`);
    },
    async rollback() {
      calls.push('rollback');
    },
    async send(_xid: Xid, message: Message): Promise<SendResult> {
      calls.push(`send ${message.topic}`);
      return { id: 1n, topic: message.topic, partition: 0, offset: -1, brokerUrl: 'meta://127.0.0.1:8123' };
    },
    setTransactionTimeout: () => true,
    getTransactionTimeout: () => 60,
  };
  const producer = { getXAResource: (): XAResource => xa as unknown as XAResource };
  const release = (name: string, error?: unknown): void => {
    const gate = gates.get(name);
    assert.ok(gate !== undefined, `${name} was called`);
    if (error === undefined) gate.resolve();
    else gate.reject(error);
  };
  return { calls, producer, release };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('broker resource: round trips saved', () => {
  it('the first put is written behind BEGIN without waiting for its answer; prepare behind END', async () => {
    const { calls, producer, release } = gatedProducer();
    const branch = await createBrokerResource(producer).begin(XID);
    const sent = branch.send({ topic: 'orders', data: 'x' });
    await tick();
    assert.deepEqual(calls, ['start', 'send orders'], 'the put went out before BEGIN was answered');
    release('start');
    await sent;
    await branch.end(true);
    const vote = branch.prepare();
    await tick();
    assert.deepEqual(calls.slice(2), ['end', 'prepare'], 'PREPARE went out before END was answered');
    release('end');
    assert.equal(await vote, 'ok');
  });

  it("a refused BEGIN: the send reports BEGIN's error, so does the prepare behind END, and rollback sends nothing", async () => {
    const { calls, producer, release } = gatedProducer();
    const branch = await createBrokerResource(producer).begin(XID);
    const sent = branch.send({ topic: 'orders', data: 'x' });
    release('start', xaFail(XaCode.XAER_RMERR));
    await assert.rejects(sent, (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_RMERR);
    assert.equal(branch.hasWork, false);
    await branch.end(true);
    await assert.rejects(branch.prepare(), (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_RMERR, "BEGIN's error, not END's");
    await branch.rollback();
    assert.deepEqual(calls, ['start', 'send orders', 'end', 'prepare'], 'no rollback of a branch the broker never began');
  });

  it('sends not awaited: BEGIN, the put, END and PREPARE all go out before any answer', async () => {
    const { calls, producer, release } = gatedProducer();
    const branch = await createBrokerResource(producer).begin(XID);
    const sent = branch.send({ topic: 'orders', data: 'x' });
    assert.equal(branch.hasWork, true, 'a send in flight is work');
    await branch.end(true);
    const vote = branch.prepare();
    await tick();
    assert.deepEqual(calls, ['start', 'send orders', 'end', 'prepare']);
    release('start');
    release('end');
    assert.equal(await vote, 'ok');
    await sent;
    assert.equal(branch.sentCount, 1);
  });

  it('a BEGIN without an answer leaves the branch in doubt: it counts as work and is rolled back', async () => {
    const { calls, producer, release } = gatedProducer();
    const branch = await createBrokerResource(producer).begin(XID);
    const sent = branch.send({ topic: 'orders', data: 'x' });
    release('start', xaFail(XaCode.XAER_RMFAIL));
    await assert.rejects(sent, XaError);
    assert.equal(branch.hasWork, true, 'the put behind BEGIN may be staged');
    await branch.rollback();
    assert.deepEqual(calls, ['start', 'send orders', 'rollback']);
  });

  it("a failed END: the prepare written behind it rejects with END's error", async () => {
    const { producer, release } = gatedProducer();
    const branch = await createBrokerResource(producer).begin(XID);
    release('start');
    await branch.send({ topic: 'orders', data: 'x' });
    await branch.end(true);
    const vote = branch.prepare();
    release('end', xaFail(XaCode.XA_RBTIMEOUT));
    await assert.rejects(vote, (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XA_RBTIMEOUT);
  });
});
