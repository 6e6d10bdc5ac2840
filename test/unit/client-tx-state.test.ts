/**
 * The client's transaction logic over a scripted in-memory host (no sockets): local transaction
 * state machine and wire sequence, XA branch state machine and wire sequence, what each failure
 * does to the state, and the transition tables cell by cell.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BrokerError,
  IllegalStateError,
  InvalidArgumentError,
  RequestTimeoutError,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
  XaError,
} from '../../src/common/errors.js';
import type { ResponseFrame } from '../../src/protocol/frames.js';
import { formatTransactionKey, type TransactionKey } from '../../src/protocol/transaction-key.js';
import { interpretPut } from '../../src/client/producer/put-response.js';
import { roundRobinSelector } from '../../src/client/producer/partition-selectors.js';
import type { Message, SendResult } from '../../src/client/message.js';
import type { PartitionRef } from '../../src/client/session/broker-discovery.js';
import type { OpaquelessRequest, ResponseInterpreter } from '../../src/client/transport/request.js';
import { createProducerTransaction, type ProducerTransaction } from '../../src/client/transaction/producer-transaction.js';
import { LOCAL_TRANSITIONS, LocalTransactionState, type LocalTransactionStateName } from '../../src/client/transaction/local-states.js';
import { LocalKeyGenerator } from '../../src/client/transaction/session-id.js';
import type { ProducerBound, TransactionHost } from '../../src/client/transaction/transaction-host.js';
import { createXaResource, type XAResource } from '../../src/client/transaction/xa-resource.js';
import { XA_BRANCH_TRANSITIONS, XaBranchState } from '../../src/client/transaction/xa-states.js';
import { XaCode, XaFlags } from '../../src/client/transaction/xa-codes.js';
import type { Xid } from '../../src/client/transaction/xid.js';

const A = 'meta://10.0.0.1:8123';
const B = 'meta://10.0.0.2:8123';
const SESSION = '10.0.0.9-1700000000000-1.1';

/** What the fake answers: a frame, an error to reject with, or a promise of either. */
type Answer = ResponseFrame | Error | Promise<ResponseFrame | Error>;

const ok = (body = ''): ResponseFrame => ({ type: 'result', code: 200, body: Buffer.from(body), opaque: 0 });
const fail = (body: string, code = 500): ResponseFrame => ({ type: 'result', code, body: Buffer.from(body), opaque: 0 });
const timeout = (): RequestTimeoutError => new RequestTimeoutError('no answer within 5000 ms');

interface Sent {
  readonly brokerUrl: string;
  readonly frame: OpaquelessRequest;
}

/** A scripted {@link TransactionHost}: records every request and answers with `script`. */
class FakeHost implements TransactionHost {
  readonly selector = roundRobinSelector();
  readonly sendTimeoutMs = 1000;
  readonly keys = new LocalKeyGenerator(() => SESSION);
  closed = false;
  readonly sent: Sent[] = [];
  readonly bound = new Set<ProducerBound>();
  partitions: Record<string, PartitionRef[]> = {
    test: [
      { brokerId: 1, brokerUrl: A, partition: 0 },
      { brokerId: 1, brokerUrl: A, partition: 1 },
      { brokerId: 2, brokerUrl: B, partition: 0 },
    ],
  };
  #nextId = 100n;
  /** Overrides the default answer (OK, or a put answer) for a request; return undefined for the default. */
  script: (frame: OpaquelessRequest, brokerUrl: string) => Answer | undefined = () => undefined;

  async partitionsFor(topic: string): Promise<readonly PartitionRef[]> {
    const partitions = this.partitions[topic];
    if (partitions === undefined) throw new IllegalStateError(`Call producer.publish('${topic}') before sending to topic '${topic}'`);
    return partitions;
  }

  publishedBrokerUrls(): readonly string[] {
    return [A];
  }

  knownBrokerUrls(): readonly string[] {
    return [A, B];
  }

  putInTransaction(ref: PartitionRef, message: Message, key: TransactionKey, _timeoutMs: number): Promise<SendResult> {
    const data = Buffer.from(message.data);
    const frame: OpaquelessRequest = { type: 'put', topic: message.topic, partition: ref.partition, data, flag: 0, checksum: 0, transactionKey: key };
    return this.request(ref.brokerUrl, frame, 0, interpretPut);
  }

  async request<T>(brokerUrl: string, frame: OpaquelessRequest, _timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T> {
    this.sent.push({ brokerUrl, frame });
    const scripted = this.script(frame, brokerUrl);
    const answer = await (scripted ?? this.#default(frame));
    if (answer instanceof Error) throw answer;
    return interpret(answer, frame, brokerUrl);
  }

  /** What a healthy broker answers: put ids with offset -1, the XA_OK vote, an empty RECOVER list, OK. */
  #default(frame: OpaquelessRequest): ResponseFrame {
    if (frame.type === 'put') return ok(`${this.#nextId++} ${frame.partition} -1`);
    if (frame.type === 'transaction' && frame.transactionType === 'PREPARE') return ok('0');
    return ok();
  }

  bind(bound: ProducerBound): () => void {
    this.bound.add(bound);
    return () => this.bound.delete(bound);
  }

  /** `BEGIN`, `put`, `COMMIT_ONE_PHASE`, … in order. */
  wire(): string[] {
    return this.sent.map(({ frame }) => (frame.type === 'transaction' ? frame.transactionType : frame.type));
  }
}

function txOf(frame: OpaquelessRequest): Extract<OpaquelessRequest, { type: 'transaction' }> {
  assert.equal(frame.type, 'transaction');
  return frame as Extract<OpaquelessRequest, { type: 'transaction' }>;
}

async function rejects<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E, check: (error: E) => void = () => undefined): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    check(error);
    return error;
  }
  assert.fail(`expected a ${type.name} rejection`);
}

function local(host: FakeHost): { tx: ProducerTransaction; states: LocalTransactionStateName[] } {
  const tx = createProducerTransaction(host);
  const states: LocalTransactionStateName[] = [tx.state];
  tx.onTransition((t) => states.push(t.to));
  return { tx, states };
}

const msg = (data: string): Message => ({ topic: 'test', data });

describe('client tx: local transaction', () => {
  it('sends BEGIN with the timeout before the first put, puts with the key, then COMMIT_ONE_PHASE', async () => {
    const host = new FakeHost();
    const { tx, states } = local(host);
    assert.equal(tx.transactionKey, `TX:${SESSION}:1`);
    assert.equal(tx.state, 'READY');
    const results = await Promise.all([tx.send(msg('a')), tx.send(msg('b')), tx.send(msg('c'))]);
    assert.ok(results.every((r) => r.offset === -1));
    await tx.commit();
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'put', 'put', 'COMMIT_ONE_PHASE']);
    const begin = txOf(host.sent[0]!.frame);
    assert.equal(begin.timeout, 30);
    assert.equal(begin.sessionId, SESSION);
    assert.equal(begin.uniqueQualifier, undefined);
    assert.equal(formatTransactionKey(begin.transactionKey), tx.transactionKey);
    for (const { frame } of host.sent.filter((s) => s.frame.type === 'put')) {
      assert.ok(frame.type === 'put' && frame.transactionKey !== null && frame.transactionKey !== undefined);
      assert.equal(formatTransactionKey(frame.transactionKey), tx.transactionKey);
      assert.notEqual(frame.partition, -1);
    }
    assert.equal(txOf(host.sent[4]!.frame).timeout, 0);
    assert.deepEqual(states, ['READY', 'IN_TRANSACTION', 'COMMITTING', 'COMMITTED']);
    assert.equal(host.bound.size, 0, 'a finished transaction unbinds from the producer');
  });

  it('sends every message of one transaction to one broker', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    for (let i = 0; i < 10; i++) await tx.send(msg(`m${i}`));
    const urls = new Set(host.sent.map((s) => s.brokerUrl));
    assert.equal(urls.size, 1);
    assert.equal(tx.brokerUrl, [...urls][0]);
    const partitions = new Set(host.sent.flatMap((s) => (s.frame.type === 'put' ? [s.frame.partition] : [])));
    if (tx.brokerUrl === A) assert.deepEqual([...partitions].sort(), [0, 1], 'the selector spreads over that broker\'s partitions');
  });

  it('resolves a -1 partition (unknown count) to partition 0', async () => {
    const host = new FakeHost();
    host.partitions = { test: [{ brokerId: -1, brokerUrl: A, partition: -1 }] };
    const { tx } = local(host);
    await tx.send(msg('x'));
    const put = host.sent.find((s) => s.frame.type === 'put')!.frame;
    assert.ok(put.type === 'put' && put.partition === 0);
  });

  it('takes a new key per transaction and honours the options', async () => {
    const host = new FakeHost();
    const first = createProducerTransaction(host);
    const second = createProducerTransaction(host, { timeoutSeconds: 5, requestTimeoutMs: 100 });
    assert.equal(first.transactionKey, `TX:${SESSION}:1`);
    assert.equal(second.transactionKey, `TX:${SESSION}:2`);
    await second.send(msg('x'));
    assert.equal(txOf(host.sent[0]!.frame).timeout, 5);
    assert.throws(() => createProducerTransaction(host, { timeoutSeconds: 0 }), InvalidArgumentError);
    assert.throws(() => createProducerTransaction(host, { timeoutSeconds: 1.5 }), InvalidArgumentError);
    assert.throws(() => createProducerTransaction(host, { requestTimeoutMs: 0 }), InvalidArgumentError);
  });

  it('commits and rolls back an empty transaction without a word to the broker', async () => {
    const host = new FakeHost();
    const a = createProducerTransaction(host);
    await a.commit();
    assert.equal(a.state, 'COMMITTED');
    const b = createProducerTransaction(host);
    await b.rollback();
    assert.equal(b.state, 'ROLLED_BACK');
    assert.deepEqual(host.sent, []);
  });

  it('refuses send after commit, commit twice, rollback after commit, commit after rollback', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    await tx.send(msg('a'));
    await tx.commit();
    await rejects(tx.send(msg('b')), IllegalStateError, (e) => assert.match(e.message, /already committed/));
    await rejects(tx.commit(), IllegalStateError);
    await rejects(tx.rollback(), IllegalStateError);
    const other = createProducerTransaction(host);
    await other.send(msg('c'));
    await other.rollback();
    assert.equal(other.state, 'ROLLED_BACK');
    await rejects(other.commit(), IllegalStateError, (e) => assert.match(e.message, /rolled back/));
    await rejects(other.send(msg('d')), IllegalStateError);
  });

  it('a commit without an answer is FAILED (in doubt), retriable, and a repeated commit settles it', async () => {
    const host = new FakeHost();
    const { tx, states } = local(host);
    await tx.send(msg('a'));
    host.script = (frame) => (frame.type === 'transaction' && frame.transactionType === 'COMMIT_ONE_PHASE' ? timeout() : undefined);
    const error = await rejects(tx.commit(), TransactionOutcomeUnknownError, (e) => {
      assert.equal(e.retriable, true);
      assert.equal(e.code, 'METAQ_ERR_TX_OUTCOME_UNKNOWN');
      assert.match(e.message, /may or may not be committed; call commit\(\) again/);
      assert.ok(e.cause instanceof RequestTimeoutError);
    });
    assert.equal(error.transactionKey, tx.transactionKey);
    assert.equal(tx.state, 'FAILED');
    await rejects(tx.send(msg('b')), IllegalStateError, (e) => assert.match(e.message, /in doubt/));
    host.script = () => undefined; // the broker answers OK (it keeps tombstones of committed transactions)
    await tx.commit();
    assert.equal(tx.state, 'COMMITTED');
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'COMMIT_ONE_PHASE', 'COMMIT_ONE_PHASE']);
    assert.deepEqual(states, ['READY', 'IN_TRANSACTION', 'COMMITTING', 'FAILED', 'COMMITTING', 'COMMITTED']);
  });

  it('a repeated commit that finds the transaction rolled back reports it (no guessing)', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    await tx.send(msg('a'));
    host.script = () => new RequestTimeoutError('x');
    await rejects(tx.commit(), TransactionOutcomeUnknownError);
    host.script = () => fail(`cannot commitOnePhase a local transaction in state ROLLED_BACK: the branch was rolled back`);
    await rejects(tx.commit(), TransactionRolledBackError, (e) => assert.equal(e.retriable, false));
    assert.equal(tx.state, 'ROLLED_BACK');
  });

  it('a repeated commit the broker no longer knows stays in doubt, not retriable', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    await tx.send(msg('a'));
    host.script = () => timeout();
    await rejects(tx.commit(), TransactionOutcomeUnknownError);
    host.script = () => fail(`Local transaction '${tx.transactionKey}' has not been started.`);
    await rejects(tx.commit(), TransactionOutcomeUnknownError, (e) => assert.equal(e.retriable, false));
    assert.equal(tx.state, 'FAILED');
  });

  it('a first commit the broker answers with "timed out" or "not started" is a rollback', async () => {
    for (const body of [
      'cannot commitOnePhase a local transaction in state TIMED_OUT: the branch was rolled back because it timed out',
      `Local transaction 'TX:${SESSION}:1' has not been started.`,
    ]) {
      const host = new FakeHost();
      const { tx } = local(host);
      await tx.send(msg('a'));
      host.script = () => fail(body);
      await rejects(tx.commit(), TransactionRolledBackError, (e) => assert.equal(e.code, 'METAQ_ERR_TX_ROLLED_BACK'));
      assert.equal(tx.state, 'ROLLED_BACK');
    }
  });

  it('a send without an answer makes the transaction abort-only', async () => {
    const host = new FakeHost();
    const { tx, states } = local(host);
    await tx.send(msg('a'));
    host.script = (frame) => (frame.type === 'put' ? timeout() : undefined);
    await rejects(tx.send(msg('b')), RequestTimeoutError);
    assert.equal(tx.state, 'ABORT_ONLY');
    await rejects(tx.commit(), IllegalStateError, (e) => assert.match(e.message, /abort-only/));
    await rejects(tx.send(msg('c')), IllegalStateError);
    host.script = () => undefined;
    await tx.rollback();
    assert.equal(tx.state, 'ROLLED_BACK');
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'put', 'ROLLBACK']);
    assert.deepEqual(states, ['READY', 'IN_TRANSACTION', 'ABORT_ONLY', 'ABORTING', 'ROLLED_BACK']);
  });

  it('commit is queued behind the puts in flight without waiting for their answers: one round trip', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    let release!: (answer: ResponseFrame | Error) => void;
    host.script = (frame) => (frame.type === 'put' ? new Promise<ResponseFrame | Error>((resolve) => (release = resolve)) : undefined);
    const send = tx.send(msg('slow'));
    const commit = tx.commit();
    assert.equal(tx.state, 'COMMITTING');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'COMMIT_ONE_PHASE'], 'COMMIT written while the put is in flight');
    release(ok('5 0 -1'));
    await send;
    await commit;
    assert.equal(tx.state, 'COMMITTED');
  });

  it('a send that got no answer before commit() makes the commit refuse: nothing is committed', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    host.script = (frame) => (frame.type === 'put' ? timeout() : undefined);
    await rejects(tx.send(msg('lost')), RequestTimeoutError);
    await rejects(tx.commit(), IllegalStateError, (e) => assert.match(e.message, /abort-only .*call rollback/));
    assert.equal(tx.state, 'ABORT_ONLY');
    assert.deepEqual(host.wire(), ['BEGIN', 'put']);
  });

  it('a put refused after COMMIT was queued behind it: the broker rolls the commit back, commit() says why', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    // The put's refusal comes once COMMIT is on the wire, before COMMIT's own answer (in order).
    let refusePut!: () => void;
    host.script = (frame) => {
      if (frame.type === 'put') return new Promise<ResponseFrame>((resolve) => (refusePut = () => resolve(fail('Put message to [test] failed. Detail:wrong partition 9'))));
      if (frame.type === 'transaction' && frame.transactionType === 'COMMIT_ONE_PHASE') {
        refusePut();
        return fail('cannot commit a local transaction in state ROLLED_BACK: a put to test was refused (wrong partition 9), so the whole transaction was rolled back');
      }
      return undefined;
    };
    const send = tx.send(msg('refused'));
    const commit = tx.commit();
    await rejects(send, BrokerError);
    await rejects(commit, TransactionRolledBackError, (e) => assert.match(e.message, /refused/));
    assert.equal(tx.state, 'ROLLED_BACK');
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'COMMIT_ONE_PHASE']);
  });

  it('commit waits for a slow put and then commits it', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    let release!: (answer: ResponseFrame | Error) => void;
    host.script = (frame) => (frame.type === 'put' ? new Promise<ResponseFrame | Error>((resolve) => (release = resolve)) : undefined);
    const send = tx.send(msg('slow'));
    await new Promise((resolve) => setImmediate(resolve));
    const commit = tx.commit();
    release(ok('5 0 -1'));
    await send;
    await commit;
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'COMMIT_ONE_PHASE']);
  });

  it('a broker refusal of one message makes the transaction abort-only (all or none); "rolled back" ends it', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    host.script = (frame) => (frame.type === 'put' ? fail('Put message to [test] failed. Detail:wrong partition 9') : undefined);
    await rejects(tx.send(msg('a')), BrokerError);
    assert.equal(tx.state, 'ABORT_ONLY');
    await rejects(tx.commit(), IllegalStateError, (e) => assert.match(e.message, /abort-only/));
    await tx.rollback();
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'ROLLBACK']);
    const other = createProducerTransaction(host);
    host.script = (frame) => (frame.type === 'put' ? fail('cannot put a local transaction in state TIMED_OUT: the branch was rolled back because it timed out') : undefined);
    await rejects(other.send(msg('b')), TransactionRolledBackError, (e) => assert.match(e.message, /timed out/));
    assert.equal(other.state, 'ROLLED_BACK');
  });

  it('pipelines BEGIN with the first put; a refused BEGIN is retried on the next send', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    let first = true;
    host.script = (frame) => {
      if (frame.type === 'transaction' && frame.transactionType === 'BEGIN' && first) {
        first = false;
        return fail('timer capacity exceeded');
      }
      if (frame.type === 'put' && host.wire().filter((w) => w === 'BEGIN').length === 1) return fail('Transaction not started');
      return undefined;
    };
    const refused = await rejects(tx.send(msg('a')), BrokerError);
    assert.match(refused.message, /timer capacity/);
    assert.equal(tx.state, 'IN_TRANSACTION', 'nothing was staged without BEGIN: not abort-only');
    await tx.send(msg('b'));
    await tx.commit();
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'BEGIN', 'put', 'COMMIT_ONE_PHASE']);
  });

  it('a BEGIN without an answer leaves the pipelined put in doubt: abort-only', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    host.script = (frame) => (frame.type === 'transaction' && frame.transactionType === 'BEGIN' ? timeout() : undefined);
    await rejects(tx.send(msg('a')), RequestTimeoutError);
    assert.equal(tx.state, 'ABORT_ONLY');
  });

  it('a rollback without an answer counts as done when no commit was sent; after a commit in doubt it does not', async () => {
    const host = new FakeHost();
    const a = createProducerTransaction(host);
    await a.send(msg('a'));
    host.script = () => timeout();
    await a.rollback();
    assert.equal(a.state, 'ROLLED_BACK');

    host.script = () => undefined;
    const b = createProducerTransaction(host);
    await b.send(msg('b'));
    host.script = () => timeout();
    await rejects(b.commit(), TransactionOutcomeUnknownError);
    await rejects(b.rollback(), TransactionOutcomeUnknownError, (e) => assert.equal(e.retriable, true));
    assert.equal(b.state, 'FAILED');
    host.script = () => fail(`cannot rollback a local transaction in state COMMITTED: the branch is already committed`);
    await rejects(b.rollback(), IllegalStateError, (e) => assert.match(e.message, /already committed/));
    assert.equal(b.state, 'COMMITTED');
  });

  it('a rollback of a transaction the broker already dropped succeeds', async () => {
    const host = new FakeHost();
    const { tx } = local(host);
    await tx.send(msg('a'));
    host.script = () => fail(`Local transaction '${tx.transactionKey}' has not been started.`);
    await tx.rollback();
    assert.equal(tx.state, 'ROLLED_BACK');
  });

  it('the producer closing rolls back open transactions and leaves the others', async () => {
    const host = new FakeHost();
    const open = createProducerTransaction(host);
    await open.send(msg('a'));
    const ready = createProducerTransaction(host);
    assert.equal(host.bound.size, 2);
    await Promise.all([...host.bound].map((b) => b.producerClosing()));
    assert.equal(open.state, 'ROLLED_BACK');
    assert.equal(ready.state, 'READY');
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'ROLLBACK']);
  });

  it('the transition table: every refused cell throws IllegalStateError and leaves the state', async () => {
    const states = Object.keys(LOCAL_TRANSITIONS) as LocalTransactionStateName[];
    assert.deepEqual(states.sort(), Object.values(LocalTransactionState).sort());
    // Final states accept nothing.
    assert.deepEqual(LOCAL_TRANSITIONS.COMMITTED, {});
    assert.deepEqual(LOCAL_TRANSITIONS.ROLLED_BACK, {});
    // User calls per state.
    const allowed = (state: LocalTransactionStateName) =>
      (['send', 'commit', 'rollback'] as const).filter((event) => LOCAL_TRANSITIONS[state][event] !== undefined);
    assert.deepEqual(allowed('READY'), ['send', 'commit', 'rollback']);
    assert.deepEqual(allowed('IN_TRANSACTION'), ['send', 'commit', 'rollback']);
    assert.deepEqual(allowed('ABORT_ONLY'), ['rollback']);
    assert.deepEqual(allowed('COMMITTING'), []);
    assert.deepEqual(allowed('ABORTING'), []);
    assert.deepEqual(allowed('FAILED'), ['commit', 'rollback']);
  });
});

// ---------------------------------------------------------------------------------------------

const XID: Xid = { formatId: 0x4d515453, globalTransactionId: Buffer.from('0102', 'hex'), branchQualifier: Buffer.from('ab', 'hex') };
const QUALIFIER = 'XAMessageProducer-test';

function xa(host: FakeHost): XAResource {
  return createXaResource(host, { uniqueQualifier: QUALIFIER, brokerUrl: A });
}

async function xaRejects(promise: Promise<unknown>, code: number, retriable = false): Promise<XaError> {
  return rejects(promise, XaError, (e) => {
    assert.equal(e.xaCode, code, e.message);
    assert.equal(e.retriable, retriable);
    assert.equal(e.code, 'METAQ_ERR_XA');
  });
}

describe('client tx: XA resource', () => {
  it('start/send/end/prepare/commit on the wire, with the unique qualifier on every command', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    const states: string[] = [];
    resource.onTransition((t) => states.push(t.to));
    await resource.start(XID);
    const sent = await resource.send(XID, msg('a'));
    assert.equal(sent.offset, -1);
    await resource.end(XID);
    assert.equal(await resource.prepare(XID), XaCode.XA_OK);
    await resource.commit(XID, false);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'PREPARE', 'COMMIT_TWO_PHASE']);
    const key = `XID:${XID.formatId}:0102:ab:${QUALIFIER}`;
    for (const { brokerUrl, frame } of host.sent) {
      assert.equal(brokerUrl, A);
      if (frame.type === 'transaction') {
        assert.equal(frame.uniqueQualifier, QUALIFIER);
        assert.equal(frame.sessionId, SESSION);
        assert.equal(formatTransactionKey(frame.transactionKey), key);
      } else if (frame.type === 'put') {
        assert.equal(formatTransactionKey(frame.transactionKey ?? null), key);
      }
    }
    assert.equal(txOf(host.sent[0]!.frame).timeout, 60);
    assert.deepEqual(states, ['IDLE', 'PREPARED', 'COMMITTED']);
  });

  it('one-phase commit, read-only prepare, rollback', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    await resource.send(XID, msg('a'));
    await resource.end(XID);
    await resource.commit(XID, true);
    const other: Xid = { ...XID, branchQualifier: Buffer.from('cd', 'hex') };
    await resource.start(other);
    await resource.end(other);
    host.script = (frame) => (frame.type === 'transaction' && frame.transactionType === 'PREPARE' ? ok('3') : undefined);
    assert.equal(await resource.prepare(other), XaCode.XA_RDONLY);
    const third: Xid = { ...XID, branchQualifier: Buffer.from('ef', 'hex') };
    await resource.start(third);
    await resource.rollback(third);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'COMMIT_ONE_PHASE', 'BEGIN', 'END', 'PREPARE', 'BEGIN', 'ROLLBACK']);
  });

  it('refuses calls the branch state does not allow (XAER_PROTO / XAER_DUPID / XAER_NOTA) before the wire', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await xaRejects(resource.send(XID, msg('a')), XaCode.XAER_PROTO);
    await xaRejects(resource.end(XID), XaCode.XAER_NOTA);
    await resource.start(XID);
    await xaRejects(resource.start(XID), XaCode.XAER_DUPID);
    await xaRejects(resource.prepare(XID), XaCode.XAER_PROTO);
    await xaRejects(resource.commit(XID, false), XaCode.XAER_PROTO);
    await resource.end(XID);
    await xaRejects(resource.send(XID, msg('late')), XaCode.XAER_PROTO);
    await xaRejects(resource.commit(XID, false), XaCode.XAER_PROTO); // two-phase commit of an unprepared branch
    assert.deepEqual(host.wire(), ['BEGIN', 'END']);
  });

  it('suspend and resume, join', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    await resource.end(XID, XaFlags.TMSUSPEND);
    await xaRejects(resource.send(XID, msg('a')), XaCode.XAER_PROTO);
    await resource.start(XID, XaFlags.TMRESUME);
    await resource.send(XID, msg('a'));
    await resource.end(XID, XaFlags.TMSUCCESS);
    await resource.start(XID, XaFlags.TMJOIN);
    await resource.send(XID, msg('b'));
    await resource.end(XID);
    await xaRejects(resource.start({ ...XID, formatId: 9 }, XaFlags.TMRESUME), XaCode.XAER_NOTA);
    await xaRejects(resource.start(XID, 0x1234), XaCode.XAER_INVAL);
    await xaRejects(resource.end(XID, 0x1234), XaCode.XAER_INVAL);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'put', 'END']);
  });

  it('end(TMFAIL) makes prepare roll back and answer XA_RBROLLBACK', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    await resource.send(XID, msg('a'));
    await resource.end(XID, XaFlags.TMFAIL);
    await xaRejects(resource.prepare(XID), XaCode.XA_RBROLLBACK);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'ROLLBACK']);
  });

  it('a send without an answer makes the branch rollback-only: prepare answers XA_RBCOMMFAIL', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    host.script = (frame) => (frame.type === 'put' ? timeout() : undefined);
    await rejects(resource.send(XID, msg('a')), RequestTimeoutError);
    await resource.end(XID);
    await xaRejects(resource.prepare(XID), XaCode.XA_RBCOMMFAIL);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'ROLLBACK']);
  });

  it('maps answers: XAException codes pass through, plain 500 is XAER_RMERR, no answer is XAER_RMFAIL (retriable, branch kept)', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    await resource.end(XID);
    host.script = () => timeout();
    await xaRejects(resource.prepare(XID), XaCode.XAER_RMFAIL, true);
    host.script = () => undefined;
    assert.equal(await resource.prepare(XID), XaCode.XA_OK, 'the branch is still IDLE on the client after RMFAIL');
    host.script = () => timeout();
    const rmfail = await xaRejects(resource.commit(XID, false), XaCode.XAER_RMFAIL, true);
    assert.match(rmfail.message, /^XAER_RMFAIL \(-7\): COMMIT_TWO_PHASE of XID:.*outcome is unknown/);
    host.script = () => undefined;
    await resource.commit(XID, false); // retried: still PREPARED on the client

    host.script = () => fail('XAException:code=-4,msg=XA transaction \'x\' has not been started.');
    const nota = await xaRejects(resource.commit({ ...XID, formatId: 77 }, false), XaCode.XAER_NOTA);
    assert.match(nota.message, /has not been started/);
    host.script = () => fail('XAException:code=106,msg=the branch was rolled back because it timed out');
    await xaRejects(resource.prepare({ ...XID, formatId: 78 }), XaCode.XA_RBTIMEOUT);
    host.script = () => fail('something broke');
    await xaRejects(resource.rollback({ ...XID, formatId: 79 }), XaCode.XAER_RMERR);
    host.script = () => ok('7');
    await xaRejects(resource.prepare({ ...XID, formatId: 80 }), XaCode.XAER_RMERR); // malformed vote
  });

  it('a prepare that answers XA_RBTIMEOUT hands the branch to the broker', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    await resource.send(XID, msg('a'));
    await resource.end(XID);
    host.script = () => fail('XAException:code=106,msg=timed out');
    await xaRejects(resource.prepare(XID), XaCode.XA_RBTIMEOUT);
    host.script = () => undefined;
    await resource.rollback(XID); // forwarded, the broker answers OK for a timed-out branch
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'PREPARE', 'ROLLBACK']);
  });

  it('a send that found the branch timed out before end: end answers XA_RBTIMEOUT and sends nothing', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    host.script = (frame) => (frame.type === 'put' ? fail('XAException:code=106,msg=the branch was rolled back because it timed out') : undefined);
    await xaRejects(resource.send(XID, msg('a')), XaCode.XA_RBTIMEOUT);
    await xaRejects(resource.end(XID), XaCode.XAER_NOTA);
    assert.deepEqual(host.wire(), ['BEGIN', 'put'], 'no END for a branch the broker already rolled back');
  });

  /** A started branch with one send whose put's answer waits for `release`. */
  async function startedWithHeldPut() {
    const host = new FakeHost();
    const resource = xa(host);
    await resource.start(XID);
    let release!: (answer: ResponseFrame | Error) => void;
    host.script = (frame) => (frame.type === 'put' ? new Promise<ResponseFrame | Error>((resolve) => (release = resolve)) : undefined);
    const send = resource.send(XID, msg('a'));
    return { host, resource, send, release: (answer: ResponseFrame | Error) => release(answer) };
  }

  it('end does not wait for the answers of sends in flight: END and PREPARE are queued behind the put', async () => {
    const { host, resource, send, release } = await startedWithHeldPut();
    const end = resource.end(XID);
    const vote = resource.prepare(XID);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'PREPARE'], 'in this order, before the put was answered');
    release(ok('100 0 -1'));
    await send;
    await end;
    assert.equal(await vote, XaCode.XA_OK);
  });

  it('a send queued before END that gets no answer: the prepare behind it rolls the prepared branch back (XA_RBCOMMFAIL)', async () => {
    const { host, resource, send, release } = await startedWithHeldPut();
    void resource.end(XID);
    const vote = resource.prepare(XID);
    await new Promise((resolve) => setImmediate(resolve));
    // The broker prepared it (its answer is scripted as OK), but the put's answer was lost to a timeout.
    release(timeout());
    await assert.rejects(send);
    await xaRejects(vote, XaCode.XA_RBCOMMFAIL);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'PREPARE', 'ROLLBACK'], 'the prepared branch is rolled back');
  });

  it('a one-phase commit waits for the answers of sends in flight, and rolls back when one got none', async () => {
    const { host, resource, send, release } = await startedWithHeldPut();
    void resource.end(XID);
    const commit = resource.commit(XID, true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END'], 'no COMMIT before the put is answered');
    release(timeout());
    await assert.rejects(send);
    await xaRejects(commit, XaCode.XA_RBCOMMFAIL);
    assert.deepEqual(host.wire(), ['BEGIN', 'put', 'END', 'ROLLBACK']);
  });

  it('recover: scans with flags, parses XID keys, refuses bad flags', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    const keys = [`XID:1:0102:ab:${QUALIFIER}`, `XID:2:ff::${QUALIFIER}`].join('\r\n');
    host.script = (frame) => (frame.type === 'transaction' && frame.transactionType === 'RECOVER' ? ok(keys) : undefined);
    const xids = await resource.recover();
    assert.equal(xids.length, 2);
    assert.equal(xids[0]!.formatId, 1);
    assert.equal(xids[0]!.globalTransactionId.toString('hex'), '0102');
    assert.equal(xids[1]!.branchQualifier.length, 0);
    const recover = txOf(host.sent[0]!.frame);
    assert.equal(recover.transactionKey, null);
    assert.equal(recover.uniqueQualifier, QUALIFIER);
    assert.equal(recover.sessionId, SESSION);

    await xaRejects(resource.recover(XaFlags.TMNOFLAGS), XaCode.XAER_PROTO);
    assert.equal((await resource.recover(XaFlags.TMSTARTRSCAN)).length, 2);
    assert.deepEqual(await resource.recover(XaFlags.TMNOFLAGS), []);
    assert.deepEqual(await resource.recover(XaFlags.TMENDRSCAN), []);
    await xaRejects(resource.recover(XaFlags.TMENDRSCAN), XaCode.XAER_PROTO);
    await xaRejects(resource.recover(XaFlags.TMSUCCESS), XaCode.XAER_INVAL);
    host.script = () => timeout();
    await xaRejects(resource.recover(), XaCode.XAER_RMFAIL, true);
    host.script = () => ok('TX:s:1');
    await xaRejects(resource.recover(), XaCode.XAER_RMERR);
  });

  it('transaction timeout: default 60, set, 0 restores the default, negative is XAER_INVAL', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    assert.equal(resource.getTransactionTimeout(), 60);
    assert.equal(resource.setTransactionTimeout(1), true);
    assert.equal(resource.getTransactionTimeout(), 1);
    await resource.start(XID);
    assert.equal(txOf(host.sent[0]!.frame).timeout, 1);
    resource.setTransactionTimeout(0);
    assert.equal(resource.getTransactionTimeout(), 60);
    assert.throws(() => resource.setTransactionTimeout(-1), (e: unknown) => e instanceof XaError && e.xaCode === XaCode.XAER_INVAL);
    assert.throws(() => resource.setTransactionTimeout(1.5), XaError);
  });

  it('isSameRM: same broker and qualifier', () => {
    const host = new FakeHost();
    const a = xa(host);
    assert.ok(a.isSameRM(xa(host)));
    assert.ok(!a.isSameRM(createXaResource(host, { uniqueQualifier: 'other', brokerUrl: A })));
    assert.ok(!a.isSameRM(createXaResource(host, { uniqueQualifier: QUALIFIER, brokerUrl: B })));
  });

  it('binds to a broker hosting every published topic, validates options', () => {
    const host = new FakeHost();
    assert.equal(createXaResource(host).brokerUrl, A);
    assert.equal(createXaResource(host).uniqueQualifier.startsWith('XAMessageProducer-'), true);
    for (const uniqueQualifier of ['a b', 'a:b', '123', '', 'a\tb']) {
      assert.throws(() => createXaResource(host, { uniqueQualifier }), InvalidArgumentError, uniqueQualifier);
    }
    assert.throws(() => createXaResource(host, { timeoutSeconds: 0 }), InvalidArgumentError);
    assert.throws(() => createXaResource(host, { requestTimeoutMs: -5 }), InvalidArgumentError);
  });

  it('start after the producer closed is XAER_RMFAIL; send is ClientClosedError', async () => {
    const host = new FakeHost();
    const resource = xa(host);
    host.closed = true;
    await xaRejects(resource.start(XID), XaCode.XAER_RMFAIL, true);
    await rejects(resource.send(XID, msg('a')), Error, (e) => assert.equal((e as { code?: string }).code, 'METAQ_ERR_CLIENT_CLOSED'));
  });

  it('the branch table: sends only while ACTIVE, prepare only from IDLE, final states accept nothing', () => {
    for (const state of Object.values(XaBranchState)) {
      assert.equal(XA_BRANCH_TRANSITIONS[state].send !== undefined, state === 'ACTIVE', `send in ${state}`);
      assert.equal(XA_BRANCH_TRANSITIONS[state].prepared !== undefined, state === 'IDLE', `prepare in ${state}`);
    }
    assert.deepEqual(XA_BRANCH_TRANSITIONS.COMMITTED, {});
    assert.deepEqual(XA_BRANCH_TRANSITIONS.ROLLED_BACK, {});
  });
});
