/**
 * A consumer whose offset is beyond the end of a partition's log, against a real broker
 * process running with updateConsumerOffsets=false (which answers 404 there, forever): with a
 * committed offset written by hand, and with a running consumer whose broker restarts with its
 * data directory wiped. Both offsetOutOfRange policies resume consuming, report the move
 * (`consumer.offset_reset`) and commit the new offset; nothing loops on 404.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createLocalOffsetStorage,
  createMessageSessionFactory,
  type ClientEvents,
  type ConsumedMessage,
  type ConsumerConfig,
  type MessageConsumer,
  type MessageSessionFactory,
} from '../../src/index.js';
import { formatOffsetsFile, parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

type Reset = ClientEvents['consumer.offset_reset'];

describe('consumer offset beyond the end of the log', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  const resets: Reset[] = [];

  before(async () => {
    broker = await startClientTestBroker({ port: await freePort(), system: { numPartitions: 1 }, topics: '[topic=handmade]\n[topic=wiped]\n' });
    // Quick reconnects: one test restarts the broker.
    factory = createMessageSessionFactory({ serverUrl: broker.url, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
    factory.on('consumer.offset_reset', (event) => resets.push(event));
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  async function produce(topic: string, texts: string[]): Promise<void> {
    const producer = factory.createProducer();
    await producer.publish(topic);
    for (const data of texts) await producer.send({ topic, data });
    await producer.close();
  }

  async function maxOffset(topic: string): Promise<number> {
    const line = (await factory.getStats('offsets'))[topic] ?? '';
    return Number(line.split(' ')[5]);
  }

  function startConsumer(topic: string, config: Omit<ConsumerConfig, 'recoverPath'>, file: string, received: ConsumedMessage[]): MessageConsumer {
    const consumer = factory.createConsumer(
      { maxDelayFetchTimeInMills: 200, commitOffsetPeriodInMills: 50, recoverPath: join(broker.dir, 'recover'), ...config },
      createLocalOffsetStorage(file),
    );
    consumer.subscribe(topic, { maxSize: 64 * 1024 }, (m) => void received.push({ ...m, data: Buffer.from(m.data) }));
    return consumer;
  }

  const texts = (list: ConsumedMessage[]): string[] => list.map((m) => m.data.toString());
  const committed = (file: string, group: string): number | undefined =>
    fs.existsSync(file) ? parseOffsetsFile(fs.readFileSync(file, 'utf8')).get(group)?.[0]?.offset : undefined;

  it('a committed offset past the end (written by hand): max continues with new messages, min re-reads the log', async () => {
    await produce('handmade', ['old-0', 'old-1', 'old-2']);
    const end = await maxOffset('handmade');
    const beyond = end + 100_000;
    // One file per consumer: two storages on one file would overwrite each other's groups.
    const file = (group: string): string => join(broker.dir, `${group}-offsets.json`);
    for (const group of ['to-max', 'to-min']) {
      fs.writeFileSync(file(group), formatOffsetsFile(new Map([[group, [{ topic: 'handmade', brokerId: 7, partition: 0, offset: beyond, messageId: 12345n }]]])));
    }

    const toMax: ConsumedMessage[] = [];
    const toMin: ConsumedMessage[] = [];
    const consumers = [startConsumer('handmade', { group: 'to-max' }, file('to-max'), toMax), startConsumer('handmade', { group: 'to-min', offsetOutOfRange: 'min' }, file('to-min'), toMin)];
    try {
      const started = Date.now();
      for (const consumer of consumers) await consumer.completeSubscribe();
      await waitFor(() => resets.filter((r) => r.topic === 'handmade').length === 2, { what: 'both resets', timeoutMs: 10_000, intervalMs: 20 });
      assert.ok(Date.now() - started < 5000, 'resolved at the first 404, not after a long loop');
      const byGroup = new Map(resets.filter((r) => r.topic === 'handmade').map((r) => [r.group, r]));
      assert.deepEqual(byGroup.get('to-max'), { topic: 'handmade', group: 'to-max', partition: 0, from: beyond, to: end, policy: 'max', maxOffset: end });
      assert.deepEqual(byGroup.get('to-min'), { topic: 'handmade', group: 'to-min', partition: 0, from: beyond, to: 0, policy: 'min', maxOffset: end });

      await produce('handmade', ['new-0', 'new-1']);
      await waitFor(() => toMax.length >= 2 && toMin.length >= 5, { what: 'the messages after the reset', timeoutMs: 10_000, intervalMs: 20 });
      const newEnd = await maxOffset('handmade');
      await waitFor(() => committed(file('to-max'), 'to-max') === newEnd && committed(file('to-min'), 'to-min') === newEnd, { what: 'commits at the new end', timeoutMs: 10_000, intervalMs: 20 });
    } finally {
      await Promise.all(consumers.map((c) => c.close()));
    }
    assert.deepEqual(texts(toMax), ['new-0', 'new-1']);
    assert.ok(toMax.every((m) => m.offset >= end));
    assert.deepEqual(texts(toMin), ['old-0', 'old-1', 'old-2', 'new-0', 'new-1']);
    assert.equal(resets.filter((r) => r.topic === 'handmade').length, 2, 'one reset each, no repeated resets');
  });

  it('a running consumer whose broker restarts with its data wiped: both policies resume with the new log', async () => {
    await produce('wiped', ['before-0', 'before-1', 'before-2', 'before-3']);
    const file = (group: string): string => join(broker.dir, `${group}-offsets.json`);
    const toMax: ConsumedMessage[] = [];
    const toMin: ConsumedMessage[] = [];
    const consumers = [startConsumer('wiped', { group: 'wiped-max' }, file('wiped-max'), toMax), startConsumer('wiped', { group: 'wiped-min', offsetOutOfRange: 'min' }, file('wiped-min'), toMin)];
    try {
      for (const consumer of consumers) await consumer.completeSubscribe();
      await waitFor(() => toMax.length === 4 && toMin.length === 4, { what: 'the messages before the wipe', timeoutMs: 10_000, intervalMs: 20 });
      const oldEnd = await maxOffset('wiped');

      await broker.kill();
      fs.rmSync(join(broker.dir, 'data'), { recursive: true, force: true });
      await broker.restart();
      // The partition exists again once a message is put; both consumers are now past its end.
      await produce('wiped', ['after-0']);
      await waitFor(() => resets.filter((r) => r.topic === 'wiped').length === 2, { what: 'both resets after the wipe', timeoutMs: 20_000, intervalMs: 20 });
      const byGroup = new Map(resets.filter((r) => r.topic === 'wiped').map((r) => [r.group, r]));
      assert.equal(byGroup.get('wiped-max')?.from, oldEnd);
      assert.equal(byGroup.get('wiped-min')?.from, oldEnd);
      assert.equal(byGroup.get('wiped-min')?.to, 0);
      assert.equal(byGroup.get('wiped-max')?.to, byGroup.get('wiped-max')?.maxOffset);

      await produce('wiped', ['after-1', 'after-2']);
      await waitFor(() => toMax.length >= 6 && toMin.length >= 7, { what: 'the messages after the wipe', timeoutMs: 10_000, intervalMs: 20 });
      const newEnd = await maxOffset('wiped');
      await waitFor(() => committed(file('wiped-max'), 'wiped-max') === newEnd && committed(file('wiped-min'), 'wiped-min') === newEnd, { what: 'commits in the new log', timeoutMs: 10_000, intervalMs: 20 });
    } finally {
      await Promise.all(consumers.map((c) => c.close()));
    }
    // 'max' continues at the end of the new log as it was when the consumer noticed (after-0 was already there).
    assert.deepEqual(texts(toMax), ['before-0', 'before-1', 'before-2', 'before-3', 'after-1', 'after-2']);
    assert.deepEqual(texts(toMin), ['before-0', 'before-1', 'before-2', 'before-3', 'after-0', 'after-1', 'after-2']);
  });
});
