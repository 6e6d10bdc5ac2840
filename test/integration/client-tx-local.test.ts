/**
 * Local transactions against a real broker process: committed messages become visible exactly
 * once and only after the commit; rolled-back ones never; a transaction left open when the
 * producer's connection closes is rolled back by the broker; a commit that loses its answer is
 * "outcome unknown" and a repeated commit learns the truth; the broker's timeout rolls back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  connectTcp,
  createLocalOffsetStorage,
  createMessageSessionFactory,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
  type MessageSessionFactory,
  type Transport,
  type TransportConnector,
} from '../../src/index.js';
import { decodeMessageData } from '../../src/protocol/message-data.js';
import { readMessageRecords } from '../../src/protocol/message-records.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitUntil } from '../helpers/client-workload.js';

const PARTITIONS = 3;
const TOPICS = `[topic=tx-*]\nnumPartitions=${PARTITIONS}\n`;

/** Every payload in the log of `topic` right now, read with raw `get`s (what any consumer would see). */
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
        if (frame.type !== 'value') break; // 404: nothing (more) in this partition
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

/** What the trace holds for data received from the broker (writes are recorded as their text). */
const ANSWER = '<answer>';

type FaultMode = 'none' | 'drop-commit' | 'lose-commit-answer' | 'bad-partition-next-put';

/**
 * A TCP connector whose next COMMIT can be made to vanish before or after the broker sees it, or
 * whose next put can be sent to a partition that does not exist (the broker refuses it). `trace`
 * records what went over the wire, in order.
 */
function faultyConnector(): { connector: TransportConnector; fault: { mode: FaultMode }; trace: string[] } {
  const fault: { mode: FaultMode } = { mode: 'none' };
  const trace: string[] = [];
  const connector: TransportConnector = async (address, handlers, options) => {
    let loseNextAnswer = false;
    let transport: Transport | undefined;
    const inner = await connectTcp(
      address,
      {
        data: (chunk) => {
          trace.push(ANSWER);
          if (loseNextAnswer) {
            loseNextAnswer = false;
            transport?.destroy(); // the broker committed; the client never hears it
            return;
          }
          handlers.data(chunk);
        },
        close: handlers.close,
      },
      options,
    );
    transport = inner;
    return {
      write(data) {
        const text = data.toString('latin1');
        trace.push(text);
        const put = /(^|\n)put (\S+) (\d+) /.exec(text);
        if (fault.mode === 'bad-partition-next-put' && put !== null) {
          fault.mode = 'none';
          const at = put.index + (put[1] ?? '').length;
          inner.write(Buffer.from(`${text.slice(0, at)}put ${put[2] ?? ''} 99 ${text.slice(at + put[0].length - (put[1] ?? '').length)}`, 'latin1'));
          return;
        }
        if ((fault.mode === 'drop-commit' || fault.mode === 'lose-commit-answer') && data.includes('COMMIT_ONE_PHASE')) {
          const mode = fault.mode;
          fault.mode = 'none';
          if (mode === 'drop-commit') {
            inner.destroy(); // the COMMIT never reaches the broker
            return;
          }
          loseNextAnswer = true;
        }
        inner.write(data);
      },
      end: () => inner.end(),
      destroy: (error) => inner.destroy(error),
    };
  };
  return { connector, fault, trace };
}

describe('client ↔ broker: local transactions', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  let fault: { mode: FaultMode };
  let trace: string[];

  before(async () => {
    broker = await startClientTestBroker({ topics: TOPICS });
    const faulty = faultyConnector();
    fault = faulty.fault;
    trace = faulty.trace;
    factory = createMessageSessionFactory({ serverUrl: broker.url, connector: faulty.connector, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  it('commit: nothing is visible before, everything exactly once after (raw get and consumer)', async () => {
    const topic = 'tx-commit';
    const producer = factory.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => tx.send({ topic, data: `c-${i}`, attribute: 'tx' })));
    assert.ok(results.every((r) => r.offset === -1 && r.brokerUrl === broker.url));
    assert.equal(new Set(results.map((r) => r.id)).size, 20, 'every message has its own id');
    assert.deepEqual(await readLog(broker.port, topic), [], 'nothing is visible while the transaction is open');

    // A consumer running while the transaction is open sees nothing either.
    const seen: string[] = [];
    const consumer = factory.createConsumer(
      { group: 'tx-commit-readers', recoverPath: join(broker.dir, 'recover'), maxDelayFetchTimeInMills: 50 },
      createLocalOffsetStorage(join(broker.dir, 'offsets-commit.json')),
    );
    consumer.subscribe(topic, { maxSize: 1024 * 1024 }, (m) => {
      seen.push(m.data.toString());
    });
    await consumer.completeSubscribe();
    await sleep(300);
    assert.deepEqual(seen, []);

    await tx.commit();
    assert.equal(tx.state, 'COMMITTED');
    await waitUntil(() => seen.length >= 20, 'the committed messages');
    await sleep(300);
    await consumer.close();
    assert.deepEqual([...seen].sort(), Array.from({ length: 20 }, (_, i) => `c-${i}`).sort(), 'exactly once');
    assert.deepEqual((await readLog(broker.port, topic)).sort(), [...seen].sort());
    await producer.close();
  });

  it('commit without awaiting the sends: COMMIT goes out behind the puts before any answer; a refused put rolls the whole transaction back', async () => {
    const topic = 'tx-pipe';
    const producer = factory.createProducer();
    await producer.publish(topic);
    await producer.send({ topic, data: 'warm-up' }); // connect first, so the trace holds only the transaction

    trace.length = 0;
    const tx = producer.beginTransaction();
    const sends = Array.from({ length: 5 }, (_, i) => tx.send({ topic, data: `p-${i}` }));
    await tx.commit();
    await Promise.all(sends);
    const beforeAnswer = trace.slice(0, trace.indexOf(ANSWER)).join('');
    const headers = [...beforeAnswer.matchAll(/put tx-pipe \d+ | BEGIN | COMMIT_ONE_PHASE /g)].map((m) => (m[0].startsWith('put') ? 'put' : m[0].trim()));
    assert.deepEqual(headers, ['BEGIN', 'put', 'put', 'put', 'put', 'put', 'COMMIT_ONE_PHASE'], `written before the first answer: ${JSON.stringify(beforeAnswer)}`);
    assert.deepEqual((await readLog(broker.port, topic)).sort(), ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'warm-up']);

    // The third put goes to a partition that does not exist: the broker refuses it, and the COMMIT
    // already queued behind it rolls back the whole transaction instead of publishing the others.
    const doomed = producer.beginTransaction();
    const first = doomed.send({ topic, data: 'd-0' });
    const second = doomed.send({ topic, data: 'd-1' });
    await waitUntil(() => trace.join('').includes('d-1'), 'the first two puts written');
    fault.mode = 'bad-partition-next-put';
    const refused = doomed.send({ topic, data: 'd-2' });
    const fourth = doomed.send({ topic, data: 'd-3' });
    await assert.rejects(doomed.commit(), (e: unknown) => e instanceof TransactionRolledBackError && /refused/.test(e.message));
    assert.equal(doomed.state, 'ROLLED_BACK');
    await Promise.all([first, second, fourth]);
    await assert.rejects(refused, /partition|99/);
    await sleep(100);
    assert.deepEqual((await readLog(broker.port, topic)).sort(), ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'warm-up'], 'nothing of the rolled-back transaction is visible');
    await producer.close();
  });

  it('rollback: the messages are never visible; an empty transaction commits without the broker', async () => {
    const topic = 'tx-rollback';
    const producer = factory.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction();
    for (let i = 0; i < 5; i++) await tx.send({ topic, data: `r-${i}` });
    await tx.rollback();
    assert.equal(tx.state, 'ROLLED_BACK');
    const empty = producer.beginTransaction();
    await empty.commit();
    assert.equal(empty.state, 'COMMITTED');
    await producer.send({ topic, data: 'sentinel' });
    assert.deepEqual(await readLog(broker.port, topic), ['sentinel']);
    await producer.close();
  });

  it('closing the factory with an open transaction rolls it back', async () => {
    const topic = 'tx-close';
    const own = createMessageSessionFactory({ serverUrl: broker.url });
    const producer = own.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction();
    for (let i = 0; i < 5; i++) await tx.send({ topic, data: `x-${i}` });
    await own.close();
    assert.equal(tx.state, 'ROLLED_BACK');
    const check = factory.createProducer();
    await check.publish(topic);
    await check.send({ topic, data: 'sentinel' });
    assert.deepEqual(await readLog(broker.port, topic), ['sentinel']);
    await check.close();
  });

  it('the broker rolls back an open transaction when the producer\'s connection drops', async () => {
    const topic = 'tx-drop';
    const producer = factory.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction();
    for (let i = 0; i < 5; i++) await tx.send({ topic, data: `d-${i}` });
    fault.mode = 'drop-commit'; // the socket dies just before the COMMIT is written
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionOutcomeUnknownError && error.retriable);
    assert.equal(tx.state, 'FAILED');
    await sleep(300); // let the broker notice the closed connection
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && /rolled back/.test(error.message));
    assert.equal(tx.state, 'ROLLED_BACK');
    await producer.send({ topic, data: 'sentinel' });
    assert.deepEqual(await readLog(broker.port, topic), ['sentinel']);
    await producer.close();
  });

  it('a commit whose answer is lost is "outcome unknown"; commit() again finds it committed (exactly once)', async () => {
    const topic = 'tx-lost-answer';
    const producer = factory.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction();
    for (let i = 0; i < 5; i++) await tx.send({ topic, data: `l-${i}` });
    fault.mode = 'lose-commit-answer';
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionOutcomeUnknownError && error.retriable && /call commit\(\) again/.test(error.message));
    assert.equal(tx.state, 'FAILED');
    await tx.commit(); // the broker keeps the outcome: a repeated commit is OK
    assert.equal(tx.state, 'COMMITTED');
    assert.deepEqual((await readLog(broker.port, topic)).sort(), ['l-0', 'l-1', 'l-2', 'l-3', 'l-4']);
    await producer.close();
  });

  it('the broker\'s timeout rolls back a transaction that is not committed in time', async () => {
    const topic = 'tx-timeout';
    const producer = factory.createProducer();
    await producer.publish(topic);
    const tx = producer.beginTransaction({ timeoutSeconds: 1 });
    await tx.send({ topic, data: 't-0' });
    // The broker's timeout wheel ticks every 500 ms, so the rollback comes 1–1.5 s after BEGIN,
    // plus the broker's own lag on a loaded machine.
    await sleep(3000);
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && /timed out/.test(error.message));
    assert.equal(tx.state, 'ROLLED_BACK');
    assert.deepEqual(await readLog(broker.port, topic), []);
    await producer.close();
  });
});
