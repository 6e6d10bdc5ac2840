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

/** A TCP connector whose next COMMIT can be made to vanish before or after the broker sees it. */
function faultyConnector(): { connector: TransportConnector; fault: { mode: 'none' | 'drop-commit' | 'lose-commit-answer' } } {
  const fault: { mode: 'none' | 'drop-commit' | 'lose-commit-answer' } = { mode: 'none' };
  const connector: TransportConnector = async (address, handlers, options) => {
    let loseNextAnswer = false;
    let transport: Transport | undefined;
    const inner = await connectTcp(
      address,
      {
        data: (chunk) => {
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
        if (fault.mode !== 'none' && data.includes('COMMIT_ONE_PHASE')) {
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
  return { connector, fault };
}

describe('client ↔ broker: local transactions', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  let fault: { mode: 'none' | 'drop-commit' | 'lose-commit-answer' };

  before(async () => {
    broker = await startClientTestBroker({ topics: TOPICS });
    const faulty = faultyConnector();
    fault = faulty.fault;
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
    await sleep(1800);
    await assert.rejects(tx.commit(), (error: unknown) => error instanceof TransactionRolledBackError && /timed out/.test(error.message));
    assert.equal(tx.state, 'ROLLED_BACK');
    assert.deepEqual(await readLog(broker.port, topic), []);
    await producer.close();
  });
});
