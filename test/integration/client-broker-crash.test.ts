/**
 * A broker SIGKILLed while a producer has a thousand group-commit sends in flight, then
 * restarted: every acknowledged message is in the log exactly once (read back with a
 * consumer), unacknowledged ones at most once, and the producer's connection comes back by
 * itself after the restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConnectionError, createLocalOffsetStorage, createMessageSessionFactory, MetaqError, type MessageSessionFactory } from '../../src/index.js';
import { freePort } from '../helpers/free-port.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { sendPipelined, waitUntil } from '../helpers/client-workload.js';

describe('client ↔ broker: SIGKILL during pipelined sends', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;

  before(async () => {
    broker = await startClientTestBroker({ port: await freePort(), system: { numPartitions: 3, unflushThreshold: 0 }, topics: '[topic=durable]\n' });
    factory = createMessageSessionFactory({ serverUrl: broker.url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  it('keeps every acknowledged message exactly once and reconnects after the restart', async () => {
    const reconnects: boolean[] = [];
    factory.on('connection.connect', (e) => reconnects.push(e.reconnect));
    const producer = factory.createProducer();
    await producer.publish('durable');

    const N = 30_000;
    let killed: Promise<void> | undefined;
    // The kill comes after 5,000 acknowledgements (not 5,000 settled sends: on a loaded machine
    // a few may time out before, and the test needs 5,000 acknowledged to check).
    let acknowledged = 0;
    const phase1 = await sendPipelined(producer, N, 1000, (i) => ({ topic: 'durable', data: `p1-${i}-${'x'.repeat(100)}` }), {
      onSettled: (_i, outcome) => {
        if (outcome.ok) acknowledged += 1;
        if (acknowledged === 5000 && killed === undefined) killed = broker.kill();
      },
      // Sends made while the broker is down wait for it up to their timeout.
      timeoutMs: 2000,
      stop: () => killed !== undefined,
    });
    await killed;
    const started = phase1.length;
    const acked = phase1.flatMap((o, i) => (o.ok ? [i] : []));
    const failed = phase1.filter((o) => !o.ok);
    assert.equal(acked.length + failed.length, started);
    assert.ok(acked.length >= 5000, `acked ${acked.length}`);
    assert.ok(failed.length > 0, 'some sends failed when the broker died');
    for (const o of failed) {
      if (o.ok) continue;
      assert.ok(o.error instanceof MetaqError && o.error.retriable, `retriable failure: ${String(o.error)}`);
    }
    assert.ok(failed.some((o) => !o.ok && o.error instanceof ConnectionError), 'in-flight sends failed with ConnectionError');

    await broker.restart();
    // The producer needs no help: its connection comes back and new sends go through.
    const phase2 = await sendPipelined(producer, 500, 100, (i) => ({ topic: 'durable', data: `p2-${i}` }), { timeoutMs: 10_000 });
    assert.ok(phase2.every((o) => o.ok), 'every send after the restart succeeds');
    assert.ok(reconnects.includes(true), 'the connection was re-established');
    await producer.close();

    const seen = new Map<string, number>();
    const consumer = factory.createConsumer(
      { group: 'auditors', recoverPath: join(broker.dir, 'recover'), maxDelayFetchTimeInMills: 100 },
      createLocalOffsetStorage(join(broker.dir, 'offsets.json')),
    );
    let total = 0;
    consumer.subscribe('durable', { maxSize: 256 * 1024 }, (m) => {
      const text = m.data.toString();
      const key = text.startsWith('p1-') ? `p1-${text.split('-')[1]}` : text;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      total++;
    });
    await consumer.completeSubscribe();
    await waitUntil(() => acked.every((i) => seen.has(`p1-${i}`)) && phase2.every((_, i) => seen.has(`p2-${i}`)), 'every acknowledged message', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await consumer.close();
    for (const [key, count] of seen) assert.equal(count, 1, `${key} stored ${count} times`);
    assert.ok(total <= started + 500);
    assert.ok(total >= acked.length + 500);
  });
});
