/**
 * Error mapping of client transactions: XAException bodies → XaError codes, plain 500 → XAER_RMERR,
 * no answer → XAER_RMFAIL (retriable, never XA_RB*); local refusals classified from the broker's
 * real texts; and end to end through the real client stack against a scripted fake broker:
 * a prepare/commit/recover that times out or loses its connection is XAER_RMFAIL, a local commit
 * that loses its connection is "outcome unknown" and can be retried.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BrokerError,
  ClientClosedError,
  ConnectionError,
  createMessageSessionFactory,
  RequestTimeoutError,
  TransactionOutcomeUnknownError,
  XaCode,
  XaError,
  type MessageSessionFactory,
  type Xid,
} from '../../src/index.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';
import { formatTransactionKey } from '../../src/protocol/transaction-key.js';
import type { RequestFrame, TransactionFrame } from '../../src/protocol/frames.js';
import { localTransactionNotStartedBody, xaExceptionBody } from '../../src/protocol/transaction-bodies.js';
import { nextState, TRANSACTION_STATES } from '../../src/transaction/transaction-state.js';
import { classifyLocalRefusal, toXaError } from '../../src/client/transaction/xa-errors.js';
import { xaCodeName } from '../../src/client/transaction/xa-codes.js';
import { answerHeartbeats, startFakeBroker, type FakeBroker, type FakeConnection } from '../helpers/client-fake-broker.js';

const brokerError = (detail: string, status = 500): BrokerError => new BrokerError(status, detail, { context: 'transaction X on meta://h:1' });

describe('client tx: error mapping', () => {
  it('XAException:code=<n>,msg=<text> → XaError with that code; only RMFAIL and XA_RETRY are retriable', () => {
    for (const code of [XaCode.XAER_NOTA, XaCode.XA_RBTIMEOUT, XaCode.XAER_PROTO, XaCode.XA_HEURCOM, XaCode.XAER_DUPID, 100]) {
      const error = toXaError(brokerError(xaExceptionBody(code, 'the reason, with, commas')), 'commit of K');
      assert.ok(error instanceof XaError);
      assert.equal(error.xaCode, code);
      assert.equal(error.code, 'METAQ_ERR_XA');
      assert.equal(error.retriable, false);
      assert.match(error.message, /commit of K: the reason, with, commas/);
      assert.ok(error.message.startsWith(`${xaCodeName(code)} (${code})`));
      assert.ok(error.cause instanceof BrokerError);
    }
    assert.equal(toXaError(brokerError(xaExceptionBody(-7, 'x')), 'w').retriable, true);
    assert.equal(toXaError(brokerError(xaExceptionBody(4, 'x')), 'w').retriable, true);
  });

  it('a plain 500 (or 400) on an XA call → XAER_RMERR; a malformed answer → XAER_RMERR', () => {
    assert.equal(toXaError(brokerError('Timer size 3 is great than maxTimerCapacity 2'), 'begin').xaCode, XaCode.XAER_RMERR);
    assert.equal(toXaError(brokerError('bad', 400), 'begin').xaCode, XaCode.XAER_RMERR);
    assert.equal(toXaError(new ProtocolError('unexpected value answer'), 'prepare').xaCode, XaCode.XAER_RMERR);
  });

  it('no answer, a lost connection or a closed client → XAER_RMFAIL (retriable), never XA_RB*', () => {
    for (const cause of [new RequestTimeoutError('no answer'), new ConnectionError('lost'), new ClientClosedError('The connection')]) {
      const error = toXaError(cause, 'commit of K');
      assert.equal(error.xaCode, XaCode.XAER_RMFAIL);
      assert.equal(error.retriable, true);
      assert.match(error.message, /outcome is unknown/);
      assert.equal(error.cause, cause);
    }
  });

  it('classifies the broker\'s real local-transaction refusal texts', () => {
    const expected: Record<string, string> = { ROLLED_BACK: 'rolled-back', TIMED_OUT: 'timed-out', COMMITTED: 'committed', COMMITTING: 'committing' };
    for (const state of TRANSACTION_STATES) {
      for (const event of ['put', 'commitOnePhase', 'rollback'] as const) {
        const result = nextState('local', state, event);
        if (result.ok) continue;
        assert.equal(classifyLocalRefusal(result.message), expected[state] ?? 'other', result.message);
      }
    }
    assert.equal(classifyLocalRefusal(localTransactionNotStartedBody('TX:h-1-1.1:3')), 'not-started');
    assert.equal(classifyLocalRefusal('Put message to [x] failed. Detail:wrong partition 9'), 'other');
  });
});

// ---------------------------------------------------------------------------------------------

const XID: Xid = { formatId: 7, globalTransactionId: Buffer.from('a1', 'hex'), branchQualifier: Buffer.from('01', 'hex') };

function isTx(request: RequestFrame, type?: string): request is TransactionFrame {
  return request.type === 'transaction' && (type === undefined || request.transactionType === type);
}

/** Answers like a healthy broker, except for the requests `silence` picks (left unanswered) or `drop` (connection destroyed). */
function healthy(options: { silence?: (r: RequestFrame) => boolean; drop?: (r: RequestFrame) => boolean } = {}) {
  let id = 1;
  return (request: RequestFrame, connection: FakeConnection): boolean => {
    if (answerHeartbeats(request, connection)) return true;
    if (options.drop?.(request) === true) {
      connection.destroy();
      return true;
    }
    if (options.silence?.(request) === true) return false;
    if (request.type === 'put') connection.reply(request.opaque, 200, `${id++} ${request.partition} -1`);
    else if (isTx(request, 'PREPARE')) connection.reply(request.opaque, 200, '0');
    else if (request.type !== 'quit') connection.reply(request.opaque, 200);
    return true;
  };
}

describe('client tx: through the client stack against a fake broker', () => {
  let broker: FakeBroker;
  let factory: MessageSessionFactory;

  beforeEach(async () => {
    broker = await startFakeBroker();
    factory = createMessageSessionFactory({
      serverUrl: broker.url,
      partitions: { test: 2 },
      timerResolutionMs: 10,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
  });
  afterEach(async () => {
    await factory.close();
    await broker.close();
  });

  async function resource(requestTimeoutMs = 300) {
    const producer = factory.createProducer();
    await producer.publish('test');
    return { producer, xa: producer.getXAResource({ uniqueQualifier: 'rm-1', requestTimeoutMs }) };
  }

  it('writes the XA wire sequence byte-compatible with MetaQ', async () => {
    broker.respond(healthy());
    const { producer, xa } = await resource();
    xa.setTransactionTimeout(9);
    await xa.start(XID);
    await xa.send(XID, { topic: 'test', data: 'hello' });
    await xa.end(XID);
    assert.equal(await xa.prepare(XID), 0);
    await xa.commit(XID, false);
    await xa.recover();
    const requests = (await broker.connection(0)).requests.filter((r) => r.type !== 'version');
    const key = 'XID:7:a1:01:rm-1';
    const shapes = requests.map((r) =>
      r.type === 'transaction'
        ? `${formatTransactionKey(r.transactionKey)} ${r.sessionId === producer.sessionId} ${r.transactionType} ${r.timeout} ${r.uniqueQualifier}`
        : r.type === 'put'
          ? `put ${r.topic} ${formatTransactionKey(r.transactionKey ?? null)} ${r.checksum !== -1}`
          : r.type,
    );
    assert.deepEqual(shapes, [
      `${key} true BEGIN 9 rm-1`,
      `put test ${key} true`,
      `${key} true END 0 rm-1`,
      `${key} true PREPARE 0 rm-1`,
      `${key} true COMMIT_TWO_PHASE 0 rm-1`,
      'null true RECOVER 0 rm-1',
    ]);
    const put = requests[1];
    assert.ok(put?.type === 'put' && put.form === 8, 'a transactional put carries checksum and key (8 tokens)');
  });

  it('prepare, commit, rollback and recover without an answer → XAER_RMFAIL (retriable)', async () => {
    broker.respond(healthy({ silence: (r) => isTx(r) && ['PREPARE', 'COMMIT_TWO_PHASE', 'ROLLBACK', 'RECOVER'].includes(r.transactionType) }));
    const { xa } = await resource(150);
    await xa.start(XID);
    await xa.end(XID);
    for (const call of [() => xa.prepare(XID), () => xa.commit({ ...XID, formatId: 8 }, false), () => xa.rollback(XID), () => xa.recover()]) {
      const started = Date.now();
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof XaError, String(error));
        assert.equal(error.xaCode, XaCode.XAER_RMFAIL);
        assert.equal(error.retriable, true);
        assert.ok(error.cause instanceof RequestTimeoutError);
        return true;
      });
      assert.ok(Date.now() - started < 2000, 'the request timeout is real');
    }
  });

  it('a commit whose connection drops → XAER_RMFAIL; the retry after the reconnect succeeds', async () => {
    let drops = 0;
    broker.respond(healthy({ drop: (r) => isTx(r, 'COMMIT_TWO_PHASE') && drops++ === 0 }));
    const { xa } = await resource(2000);
    await xa.start(XID);
    await xa.end(XID);
    await xa.prepare(XID);
    await assert.rejects(xa.commit(XID, false), (error: unknown) => error instanceof XaError && error.xaCode === XaCode.XAER_RMFAIL && error.cause instanceof ConnectionError);
    await xa.commit(XID, false);
    assert.equal(broker.connections.length, 2);
  });

  it('a local commit whose connection drops is "outcome unknown"; commit() again settles it', async () => {
    let drops = 0;
    broker.respond(healthy({ drop: (r) => isTx(r, 'COMMIT_ONE_PHASE') && drops++ === 0 }));
    const producer = factory.createProducer();
    await producer.publish('test');
    const tx = producer.beginTransaction({ requestTimeoutMs: 2000 });
    await tx.send({ topic: 'test', data: 'a' });
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionOutcomeUnknownError && error.retriable && error.cause instanceof ConnectionError);
    assert.equal(tx.state, 'FAILED');
    await tx.commit();
    assert.equal(tx.state, 'COMMITTED');
    const wire = broker.connections.flatMap((c) => c.requests).filter((r) => r.type !== 'version').map((r) => (isTx(r) ? r.transactionType : r.type));
    assert.deepEqual(wire, ['BEGIN', 'put', 'COMMIT_ONE_PHASE', 'COMMIT_ONE_PHASE']);
    const begin = broker.connections[0]!.requests.find((r) => isTx(r, 'BEGIN'));
    assert.ok(begin !== undefined && isTx(begin));
    assert.equal(begin.timeout, 30, 'the default local timeout is real (30 s), never 0');
    assert.equal(begin.uniqueQualifier, undefined);
    assert.equal(formatTransactionKey(begin.transactionKey), tx.transactionKey);
    assert.equal(tx.transactionKey, `TX:${producer.sessionId}:1`);
  });

  it('an XAException answer reaches the caller with its code', async () => {
    broker.respond((request, connection) => {
      if (answerHeartbeats(request, connection)) return true;
      if (isTx(request)) connection.reply(request.opaque, 500, xaExceptionBody(-4, `XA transaction '${formatTransactionKey(request.transactionKey)}' has not been started.`));
      return true;
    });
    const { xa } = await resource();
    await assert.rejects(xa.commit(XID, false), (error: unknown) => error instanceof XaError && error.xaCode === XaCode.XAER_NOTA && !error.retriable);
  });
});
