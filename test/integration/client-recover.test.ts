/**
 * The retry → recover store → re-delivery path against a real broker: a listener that fails a
 * message on every retry does not stop consumption; the message lands in the local recover
 * store and is re-delivered later; one that keeps failing stays without blocking the others.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { createLocalOffsetStorage, createMessageSessionFactory, recoverStoreDir, type ConsumedMessage, type MessageSessionFactory } from '../../src/index.js';
import { parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { sendPipelined, waitUntil } from '../helpers/client-workload.js';

describe('client ↔ broker: listener retries and the recover store', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;

  before(async () => {
    broker = await startClientTestBroker({ system: { numPartitions: 2 }, topics: '[topic=jobs]\n' });
    factory = createMessageSessionFactory({ serverUrl: broker.url });
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  it('moves a failing message to the recover store, keeps consuming, and re-delivers it later', async () => {
    const N = 200;
    const producer = factory.createProducer();
    await producer.publish('jobs');
    const outcomes = await sendPipelined(producer, N, 100, (i) => ({ topic: 'jobs', data: `job-${i}` }));
    assert.ok(outcomes.every((o) => o.ok));

    const recoverPath = join(broker.dir, 'recover');
    const offsetsFile = join(broker.dir, 'offsets.json');
    const attempts = new Map<string, number>();
    const delivered: ConsumedMessage[] = [];
    const events: string[] = [];
    factory.on('consumer.message_recovered', (e) => events.push(`recovered ${e.partition}:${e.offset}`));
    factory.on('consumer.message_redelivered', (e) => events.push(`redelivered ${e.partition}:${e.offset}`));
    const consumer = factory.createConsumer(
      {
        group: 'workers',
        recoverPath,
        maxFetchRetries: 2,
        maxDelayFetchTimeInMills: 50,
        recoverMessageIntervalInMills: 300,
        commitOffsetPeriodInMills: 100,
      },
      createLocalOffsetStorage(offsetsFile),
    );
    consumer.subscribe('jobs', { maxSize: 16 * 1024 }, (m) => {
      const text = m.data.toString();
      const n = (attempts.get(text) ?? 0) + 1;
      attempts.set(text, n);
      if (text === 'job-50') throw new Error('poison: always fails');
      if (text === 'job-121' && n <= 3) throw new Error('flaky: fails three times');
      delivered.push({ ...m, data: Buffer.from(m.data) });
    });
    await consumer.completeSubscribe();

    const store = recoverStoreDir(recoverPath, 'jobs', 'workers');
    await waitUntil(() => events.filter((e) => e.startsWith('recovered')).length === 2, 'both failing messages stored');
    await waitUntil(() => delivered.filter((m) => !m.recovered).length === N - 2, 'every other message');
    await waitUntil(() => delivered.some((m) => m.data.toString() === 'job-121'), 'the flaky message redelivered', 10_000);
    const flaky = delivered.find((m) => m.data.toString() === 'job-121');
    assert.equal(flaky?.recovered, true);
    assert.equal(attempts.get('job-121'), 4, '3 failed attempts (1 + maxFetchRetries), then 1 redelivery');
    await waitUntil(() => (attempts.get('job-50') ?? 0) >= 5, 'the poison message retried by later rounds', 10_000);
    const left = fs.readdirSync(store).filter((n) => n.endsWith('.msg'));
    assert.equal(left.length, 1, `only the poison message stays: ${left.join(',')}`);
    assert.ok(delivered.every((m) => m.data.toString() !== 'job-50'));

    // Consumption went past both failures; each other message exactly once, in order per partition.
    const firstPass = delivered.filter((m) => !m.recovered);
    assert.equal(new Set(firstPass.map((m) => m.data.toString())).size, N - 2);
    for (const p of [0, 1]) {
      const offsets = firstPass.filter((m) => m.partition === p).map((m) => m.offset);
      assert.ok(offsets.every((o, k) => k === 0 || o > (offsets[k - 1] as number)));
    }
    await consumer.close();
    const committed = parseOffsetsFile(fs.readFileSync(offsetsFile, 'utf8')).get('workers') ?? [];
    const ends = ((await factory.getStats('offsets'))['jobs'] ?? '').split('\n').map((l) => Number(l.split(' ')[5]));
    assert.deepEqual(
      committed.map((o) => o.offset).sort((a, b) => a - b),
      ends.sort((a, b) => a - b),
      'offsets committed past the recovered messages',
    );
    const stored = events.filter((e) => e.startsWith('recovered')).length;
    assert.equal(stored, 2);
  });
});
