/**
 * Producer → real broker → consumer: 10,000 messages exactly once with content, attributes,
 * ids and per-partition order checked; restart resumes from the committed offset (graceful
 * and after a crash); client-side filters; starting at the end; stats.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import {
  BrokerError,
  createLocalOffsetStorage,
  createMessageSessionFactory,
  type ConsumedMessage,
  type MessageSessionFactory,
  type SendResult,
} from '../../src/index.js';
import { parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { payloadFor, sendPipelined, waitUntil } from '../helpers/client-workload.js';
import { closeAtGate, gateAfter } from '../helpers/listener-gate.js';

const TOPICS = ['[topic=bulk]', 'numPartitions=3', '[topic=resume]', '[topic=crash]', '[topic=filtered]', '[topic=latest]', ''].join('\n');

describe('client ↔ broker: produce and consume', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  let recoverPath: string;

  before(async () => {
    broker = await startClientTestBroker({ system: { numPartitions: 2 }, topics: TOPICS });
    factory = createMessageSessionFactory({ serverUrl: broker.url });
    recoverPath = join(broker.dir, 'recover');
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  async function produce(topic: string, count: number, attribute?: (i: number) => string | undefined): Promise<SendResult[]> {
    const producer = factory.createProducer();
    await producer.publish(topic);
    const outcomes = await sendPipelined(producer, count, 1000, (i) => {
      const a = attribute?.(i);
      return { topic, data: payloadFor(i), ...(a === undefined ? {} : { attribute: a }) };
    });
    await producer.close();
    return outcomes.map((o, i) => {
      if (!o.ok) throw new Error(`send ${i} failed`, { cause: o.error });
      return o.result;
    });
  }

  it('delivers 10,000 messages exactly once, in order per partition, with content, attributes and ids', async () => {
    const N = 10_000;
    const attributeOf = (i: number): string | undefined => (i % 3 === 0 ? `attr-${i % 7}` : undefined);
    const results = await produce('bulk', N, attributeOf);
    assert.deepEqual(new Set(results.map((r) => r.partition)), new Set([0, 1, 2]), 'round-robin uses every partition');
    assert.ok(results.every((r) => r.topic === 'bulk' && r.brokerUrl === broker.url));
    // Pipelined sends on one connection are stored in send order per partition.
    for (const p of [0, 1, 2]) {
      const offsets = results.filter((r) => r.partition === p).map((r) => r.offset);
      assert.ok(offsets.every((o, k) => k === 0 || o > (offsets[k - 1] as number)), `send order = log order in partition ${p}`);
    }
    const byOffset = new Map(results.map((r, i) => [`${r.partition}:${r.offset}`, i]));

    const received: ConsumedMessage[] = [];
    const consumer = factory.createConsumer(
      { group: 'bulk-readers', recoverPath, maxDelayFetchTimeInMills: 200, commitOffsetPeriodInMills: 500 },
      createLocalOffsetStorage(join(broker.dir, 'bulk-offsets.json')),
    );
    consumer.subscribe('bulk', { maxSize: 64 * 1024 }, (m) => {
      received.push({ ...m, data: Buffer.from(m.data) });
    });
    await consumer.completeSubscribe();
    await waitUntil(() => received.length >= N, `${N} messages`, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing extra arrives
    await consumer.close();

    assert.equal(received.length, N);
    const seen = new Set<number>();
    const lastByPartition = new Map<number, { id: bigint; offset: number; i: number }>();
    for (const m of received) {
      const i = byOffset.get(`${m.partition}:${m.offset}`);
      assert.ok(i !== undefined, `unknown message at ${m.partition}:${m.offset}`);
      assert.ok(!seen.has(i), `message ${i} delivered twice`);
      seen.add(i);
      const sent = results[i] as SendResult;
      assert.equal(m.data.toString(), payloadFor(i));
      assert.equal(m.attribute, attributeOf(i));
      assert.equal(m.id, sent.id);
      assert.equal(m.topic, 'bulk');
      assert.equal(m.recovered, false);
      const last = lastByPartition.get(m.partition);
      if (last !== undefined) {
        assert.ok(m.id > last.id, `ids strictly increase in partition ${m.partition}`);
        assert.ok(m.offset > last.offset && i > last.i, `order kept in partition ${m.partition}`);
      }
      lastByPartition.set(m.partition, { id: m.id, offset: m.offset, i });
    }
    assert.equal(seen.size, N);
  });

  it('a restarted consumer resumes from the committed offset after a graceful close (no loss, no duplicate)', async () => {
    const N = 1000;
    await produce('resume', N);
    const file = join(broker.dir, 'resume-offsets.json');
    const first: ConsumedMessage[] = [];
    const config = { group: 'resumers', recoverPath, maxDelayFetchTimeInMills: 100 };
    const c1 = factory.createConsumer(config, createLocalOffsetStorage(file));
    const gate = gateAfter(300);
    c1.subscribe('resume', { maxSize: 8 * 1024 }, async (m) => {
      await gate.pass();
      first.push(m);
    });
    await c1.completeSubscribe();
    await waitUntil(() => gate.reached(), 'some messages');
    await closeAtGate(c1, gate);
    assert.ok(first.length < N, 'stopped before the end');

    const second: ConsumedMessage[] = [];
    const c2 = factory.createConsumer(config, createLocalOffsetStorage(file));
    c2.subscribe('resume', { maxSize: 8 * 1024 }, (m) => void second.push(m));
    await c2.completeSubscribe();
    await waitUntil(() => first.length + second.length >= N, 'the rest');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await c2.close();
    const key = (m: ConsumedMessage): string => `${m.partition}:${m.offset}`;
    const firstKeys = new Set(first.map(key));
    assert.equal(first.length + second.length, N);
    assert.ok(second.every((m) => !firstKeys.has(key(m))), 'no duplicates after a graceful close');
  });

  it('after a crash, only messages after the last commit are delivered again', async () => {
    const N = 600;
    await produce('crash', N);
    const file = join(broker.dir, 'crash-offsets.json');
    const config = { group: 'crashers', recoverPath, maxDelayFetchTimeInMills: 100, commitOffsetPeriodInMills: 50 };
    const first: ConsumedMessage[] = [];
    let release: () => void = () => undefined;
    const hung = new Promise<void>((resolve) => (release = resolve));
    const c1 = factory.createConsumer(config, createLocalOffsetStorage(file));
    c1.subscribe('crash', { maxSize: 4 * 1024 }, async (m) => {
      first.push(m);
      if (m.partition === 0 && first.filter((x) => x.partition === 0).length === 150) await hung; // the process "dies" here
    });
    await c1.completeSubscribe();
    await waitUntil(() => first.filter((m) => m.partition === 0).length >= 150, 'the hang').catch((error: unknown) => {
      release();
      throw error;
    });
    await new Promise((resolve) => setTimeout(resolve, 300)); // a few periodic commits happen meanwhile
    const crashFile = join(broker.dir, 'crash-offsets-at-crash.json');
    fs.copyFileSync(file, crashFile); // what a restarted process finds on disk
    const committed = new Map((parseOffsetsFile(fs.readFileSync(crashFile, 'utf8')).get('crashers') ?? []).map((o) => [o.partition, o.offset]));

    const second: ConsumedMessage[] = [];
    const c2 = factory.createConsumer(config, createLocalOffsetStorage(crashFile));
    c2.subscribe('crash', { maxSize: 4 * 1024 }, (m) => void second.push(m));
    const key = (m: ConsumedMessage): string => `${m.partition}:${m.offset}`;
    try {
      await c2.completeSubscribe();
      await waitUntil(() => new Set([...first, ...second].map(key)).size >= N, 'every message');
    } finally {
      release(); // or closing c1 (and the factory) would wait for the hung listener forever
      await Promise.all([c1.close(), c2.close()]);
    }
    for (const m of second) {
      assert.ok(m.offset >= (committed.get(m.partition) ?? 0), `redelivered ${key(m)} was before the committed offset`);
    }
    const firstKeys = new Set(first.map(key));
    const duplicates = second.filter((m) => firstKeys.has(key(m)));
    assert.ok(duplicates.length >= 1, 'the message in progress at the crash is delivered again');
    assert.equal(new Set(second.map(key)).size, second.length);
  });

  it('skips what a client-side filter rejects, and the offset still advances', async () => {
    await produce('filtered', 100, (i) => (i % 2 === 0 ? 'even' : 'odd'));
    const received: ConsumedMessage[] = [];
    const file = join(broker.dir, 'filtered-offsets.json');
    const consumer = factory.createConsumer({ group: 'evens', recoverPath, maxDelayFetchTimeInMills: 100 }, createLocalOffsetStorage(file));
    consumer.subscribe('filtered', { maxSize: 64 * 1024 }, (m) => void received.push(m), (m) => m.attribute === 'even');
    await consumer.completeSubscribe();
    await waitUntil(() => received.length >= 50, '50 even messages');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await consumer.close();
    assert.equal(received.length, 50);
    assert.ok(received.every((m) => m.attribute === 'even'));
    const stats = await factory.getStats('offsets');
    const ends = (stats['filtered'] ?? '').split('\n').map((line) => Number(line.split(' ')[5]));
    const committed = parseOffsetsFile(fs.readFileSync(file, 'utf8')).get('evens') ?? [];
    assert.deepEqual(
      committed.map((o) => o.offset).sort((a, b) => a - b),
      ends.sort((a, b) => a - b),
    );
  });

  it('consumeFromMaxOffset starts at the end of the log', async () => {
    await produce('latest', 20);
    const received: ConsumedMessage[] = [];
    const file = join(broker.dir, 'latest-offsets.json');
    const consumer = factory.createConsumer(
      { group: 'latecomers', recoverPath, consumeFromMaxOffset: true, maxDelayFetchTimeInMills: 50, commitOffsetPeriodInMills: 50 },
      createLocalOffsetStorage(file),
    );
    consumer.subscribe('latest', { maxSize: 64 * 1024 }, (m) => void received.push(m));
    await consumer.completeSubscribe();
    await waitUntil(() => fs.existsSync(file) && (parseOffsetsFile(fs.readFileSync(file, 'utf8')).get('latecomers')?.length ?? 0) === 2, 'both ends known');
    const producer = factory.createProducer();
    await producer.publish('latest');
    await producer.send({ topic: 'latest', data: 'fresh' });
    await waitUntil(() => received.length >= 1, 'the new message');
    await consumer.close();
    assert.deepEqual(
      received.map((m) => m.data.toString()),
      ['fresh'],
    );

    // Published while the group had no consumer: a plain restart resumes at the committed offsets
    // and gets it; alwaysConsumeFromMaxOffset skips it although the offsets are committed.
    await producer.send({ topic: 'latest', data: 'missed' });
    const offsetsNow = (): string => (parseOffsetsFile(fs.readFileSync(file, 'utf8')).get('latecomers') ?? []).map((o) => `${o.partition}@${o.offset}`).sort().join();
    const stored = offsetsNow();
    const live: ConsumedMessage[] = [];
    const always = factory.createConsumer(
      { group: 'latecomers', recoverPath, alwaysConsumeFromMaxOffset: true, maxDelayFetchTimeInMills: 50, commitOffsetPeriodInMills: 50 },
      createLocalOffsetStorage(file),
    );
    always.subscribe('latest', { maxSize: 64 * 1024 }, (m) => void live.push(m));
    await always.completeSubscribe();
    await waitUntil(() => offsetsNow() !== stored, 'the ends committed');
    await producer.send({ topic: 'latest', data: 'live' });
    await waitUntil(() => live.length >= 1, 'the live message');
    await always.close();
    await producer.close();
    assert.deepEqual(
      live.map((m) => m.data.toString()),
      ['live'],
      'the message published while no consumer ran was skipped',
    );
  });

  it('answers stats, stats config and partition lookups', async () => {
    const info = await factory.getStats();
    assert.equal(info['broker_id'], '7');
    const config = await factory.getStats('config');
    assert.match(config, /\[topic=bulk\]/);
    assert.deepEqual((await factory.getPartitionsForTopic('bulk')).map((p) => p.partition), [0, 1, 2]);
    assert.deepEqual((await factory.getPartitionsForTopic('resume')).map((p) => p.partition), [0, 1]);
  });

  it('reports a broker refusal as a typed BrokerError', async () => {
    const producer = factory.createProducer();
    await producer.publish('unknown-topic');
    await assert.rejects(producer.send({ topic: 'unknown-topic', data: 'x' }), (error: unknown) => {
      assert.ok(error instanceof BrokerError);
      assert.equal(error.status, 500);
      assert.equal(error.code, 'METAQ_ERR_BROKER');
      assert.equal(error.retriable, false, 'an unconfigured topic stays unconfigured');
      assert.match(error.message, /The server do not accept topic unknown-topic/);
      return true;
    });
    await producer.close();
  });
});
