/**
 * The XA resource against a real broker process: a prepared branch survives SIGKILL and restart,
 * is listed by recover and commits exactly once; rollback after prepare, read-only prepare,
 * idempotent commit, XAER_NOTA for an unknown xid, XA_RBTIMEOUT for a branch that timed out
 * before prepare, a branch made roll-back-only by a send that never left the client, one-phase
 * commit, and recover filtered by unique qualifier.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMessageSessionFactory, XaCode, XaError, xidEquals, type MessageProducer, type MessageSessionFactory, type Xid } from '../../src/index.js';
import { decodeMessageData } from '../../src/protocol/message-data.js';
import { readMessageRecords } from '../../src/protocol/message-records.js';
import { freePort } from '../helpers/free-port.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { RawClient } from '../helpers/raw-client.js';

const PARTITIONS = 2;
const TOPICS = `[topic=xa-*]\nnumPartitions=${PARTITIONS}\n`;
const QUALIFIER = 'it-rm-1';

/** Every payload in the log of `topic` right now, read with raw `get`s. */
async function readLog(port: number, topic: string): Promise<string[]> {
  const client = await RawClient.connect(port);
  const payloads: string[] = [];
  let opaque = 1;
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let offset = 0;
      for (;;) {
        const frame = await client.request(`get ${topic} audit ${partition} ${offset} 1048576 ${opaque}\r\n`, opaque);
        opaque++;
        if (frame.type !== 'value') break;
        const { records, consumed } = readMessageRecords(frame.body);
        if (consumed === 0) break;
        for (const record of records) payloads.push(decodeMessageData(record.data, record.flag).payload.toString());
        offset += consumed;
      }
    }
  } finally {
    client.close();
  }
  return payloads;
}

const newXid = (): Xid => ({ formatId: 0x4d515453, globalTransactionId: randomBytes(24), branchQualifier: Buffer.from([1]) });

function isXa(code: number): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof XaError, String(error));
    assert.equal(error.xaCode, code, error.message);
    return true;
  };
}

describe('client ↔ broker: XA resource', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  let producer: MessageProducer;

  before(async () => {
    broker = await startClientTestBroker({ port: await freePort(), topics: TOPICS });
    factory = createMessageSessionFactory({ serverUrl: broker.url, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    producer = factory.createProducer();
    for (const topic of ['xa-crash', 'xa-rollback', 'xa-empty', 'xa-timeout', 'xa-one-phase', 'xa-partial']) await producer.publish(topic);
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  it('a prepared branch survives SIGKILL: recover lists it after the restart, commit makes it visible exactly once', async () => {
    const topic = 'xa-crash';
    const xa = producer.getXAResource({ uniqueQualifier: QUALIFIER });
    assert.equal(xa.brokerUrl, broker.url);
    const xid = newXid();
    await xa.start(xid);
    for (let i = 0; i < 10; i++) assert.equal((await xa.send(xid, { topic, data: `k-${i}` })).offset, -1);
    await xa.end(xid);
    assert.equal(await xa.prepare(xid), XaCode.XA_OK);
    assert.deepEqual(await readLog(broker.port, topic), [], 'prepared is not visible');
    assert.ok((await xa.recover()).some((x) => xidEquals(x, xid)), 'recover lists the prepared branch');

    await broker.kill();
    await broker.restart();

    // A transaction manager restarting too: a fresh resource with the same (stable) qualifier.
    const again = producer.getXAResource({ uniqueQualifier: QUALIFIER, requestTimeoutMs: 15_000 });
    assert.ok(again.isSameRM(xa));
    const listed = await again.recover();
    assert.equal(listed.filter((x) => xidEquals(x, xid)).length, 1, 'recover still lists it after the crash');
    assert.deepEqual(await readLog(broker.port, topic), [], 'still not visible after the restart');
    await again.commit(xid, false);
    const visible = await readLog(broker.port, topic);
    assert.deepEqual([...visible].sort(), Array.from({ length: 10 }, (_, i) => `k-${i}`).sort(), 'exactly once');
    await again.commit(xid, false); // a repeated commit is OK (tombstone)
    assert.equal((await readLog(broker.port, topic)).length, 10);
    assert.ok(!(await again.recover()).some((x) => xidEquals(x, xid)));
  });

  it('rollback after prepare: never visible, no longer recovered; a repeated rollback is OK', async () => {
    const topic = 'xa-rollback';
    const xa = producer.getXAResource({ uniqueQualifier: QUALIFIER });
    const xid = newXid();
    await xa.start(xid);
    for (let i = 0; i < 3; i++) await xa.send(xid, { topic, data: `r-${i}` });
    await xa.end(xid);
    assert.equal(await xa.prepare(xid), XaCode.XA_OK);
    await xa.rollback(xid);
    await xa.rollback(xid);
    assert.ok(!(await xa.recover()).some((x) => xidEquals(x, xid)));
    await producer.send({ topic, data: 'sentinel' });
    assert.deepEqual(await readLog(broker.port, topic), ['sentinel']);
    await assert.rejects(xa.commit(xid, false), isXa(100)); // XA_RBROLLBACK: the outcome is known, not "unknown xid"
  });

  it('a send that fails before it is written (topic not published) makes the branch roll-back-only: prepare and one-phase commit answer XA_RBROLLBACK, its other messages are never visible', async () => {
    const topic = 'xa-partial';
    const xa = producer.getXAResource({ uniqueQualifier: QUALIFIER });
    for (const onePhase of [false, true]) {
      const xid = newXid();
      await xa.start(xid);
      await xa.send(xid, { topic, data: `kept-${onePhase}` });
      await assert.rejects(xa.send(xid, { topic: 'xa-never-published', data: 'x' }), /publish/i);
      await xa.end(xid);
      await assert.rejects(onePhase ? xa.commit(xid, true) : xa.prepare(xid), isXa(XaCode.XA_RBROLLBACK));
      assert.ok(!(await xa.recover()).some((x) => xidEquals(x, xid)), 'nothing prepared');
    }
    await producer.send({ topic, data: 'sentinel' });
    assert.deepEqual(await readLog(broker.port, topic), ['sentinel'], 'the branches rolled back on the broker');
  });

  it('prepare of an empty branch votes XA_RDONLY; commit of an unknown xid is XAER_NOTA; a reused xid is XAER_DUPID', async () => {
    const xa = producer.getXAResource({ uniqueQualifier: QUALIFIER });
    const xid = newXid();
    await xa.start(xid);
    await xa.end(xid);
    assert.equal(await xa.prepare(xid), XaCode.XA_RDONLY);
    assert.ok(!(await xa.recover()).some((x) => xidEquals(x, xid)), 'a read-only branch is finished');
    await assert.rejects(xa.commit(newXid(), false), isXa(XaCode.XAER_NOTA));
    await assert.rejects(xa.commit(newXid(), true), isXa(XaCode.XAER_NOTA));
    await assert.rejects(xa.start(xid), isXa(XaCode.XAER_DUPID));
  });

  it('a branch that outlives its timeout before prepare is rolled back: prepare answers XA_RBTIMEOUT', async () => {
    const topic = 'xa-timeout';
    const xa = producer.getXAResource({ uniqueQualifier: QUALIFIER });
    xa.setTransactionTimeout(1);
    const xid = newXid();
    await xa.start(xid);
    await xa.send(xid, { topic, data: 'late' });
    await xa.end(xid);
    await sleep(3000); // the timeout wheel's 500 ms ticks and a loaded broker's lag (see client-tx-local)
    await assert.rejects(xa.prepare(xid), (error: unknown) => isXa(XaCode.XA_RBTIMEOUT)(error) && !(error as XaError).retriable);
    await xa.rollback(xid); // what a manager does next: OK
    assert.deepEqual(await readLog(broker.port, topic), []);
  });

  it('one-phase commit; recover is filtered by unique qualifier', async () => {
    const topic = 'xa-one-phase';
    const mine = producer.getXAResource({ uniqueQualifier: 'it-rm-2' });
    const other = producer.getXAResource({ uniqueQualifier: 'it-rm-3' });
    assert.ok(!mine.isSameRM(other));
    const a = newXid();
    await mine.start(a);
    await mine.send(a, { topic, data: 'one-phase' });
    await mine.end(a);
    await mine.commit(a, true);
    assert.deepEqual(await readLog(broker.port, topic), ['one-phase']);

    const b = newXid();
    await other.start(b);
    await other.send(b, { topic, data: 'prepared-elsewhere' });
    await other.end(b);
    await other.prepare(b);
    assert.ok(!(await mine.recover()).some((x) => xidEquals(x, b)), "another qualifier's branch is not listed");
    assert.ok((await other.recover()).some((x) => xidEquals(x, b)));
    await other.rollback(b);
  });
});
