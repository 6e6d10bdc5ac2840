/**
 * Server-side consumer filters against a real broker process and the client: the filtered
 * group gets exactly the accepted messages at their log offsets and commits offsets past the
 * rejected ones, resumes without loss or duplicates after a broker and consumer restart; a group
 * without a filter gets everything; a bad filter module stops the broker at start-up with a
 * clear error. The filter is the shipped example, examples/filters/even-orders.mjs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLocalOffsetStorage, createMessageSessionFactory, type ConsumedMessage, type MessageSessionFactory, type SendResult } from '../../src/index.js';
import { parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker } from '../helpers/broker-process.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { payloadFor, sendPipelined } from '../helpers/client-workload.js';
import { freePort } from '../helpers/free-port.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const EVEN_ORDERS = fileURLToPath(new URL('../../examples/filters/even-orders.mjs', import.meta.url));

/** Message `i`: attribute = its order number, except every 7th has none (rejected too). */
const attributeOf = (i: number): string | undefined => (i % 7 === 3 ? undefined : String(i));
/** What even-orders.mjs accepts. */
const accepted = (i: number): boolean => attributeOf(i) !== undefined && i % 2 === 0;

describe('server-side consumer filters (real broker process)', () => {
  let broker: ClientTestBroker;
  let factory: MessageSessionFactory;
  const sent: SendResult[] = [];

  before(async () => {
    broker = await startClientTestBroker({
      port: await freePort(),
      system: { numPartitions: 2 },
      topics: ['[topic=orders]', `group.evens=${EVEN_ORDERS}`, ''].join('\n'),
    });
    factory = createMessageSessionFactory({ serverUrl: broker.url });
  });
  after(async () => {
    await factory?.close();
    await broker?.cleanup();
  });

  async function produce(from: number, count: number): Promise<void> {
    const producer = factory.createProducer();
    await producer.publish('orders');
    const outcomes = await sendPipelined(producer, count, 200, (k) => {
      const i = from + k;
      const attribute = attributeOf(i);
      return { topic: 'orders', data: payloadFor(i), ...(attribute === undefined ? {} : { attribute }) };
    });
    await producer.close();
    outcomes.forEach((o, k) => {
      if (!o.ok) throw new Error(`send ${from + k} failed: ${o.error instanceof Error ? o.error.message : String(o.error)}`, { cause: o.error });
      sent[from + k] = o.result;
    });
  }

  /** Runs a consumer of `group` until it has `expected` messages and has committed the log ends. */
  async function consume(group: string, file: string, expected: number): Promise<ConsumedMessage[]> {
    const received: ConsumedMessage[] = [];
    const consumer = factory.createConsumer(
      { group, recoverPath: join(broker.dir, 'recover'), maxDelayFetchTimeInMills: 100, commitOffsetPeriodInMills: 50 },
      createLocalOffsetStorage(file),
    );
    consumer.subscribe('orders', { maxSize: 16 * 1024 }, (m) => void received.push({ ...m, data: Buffer.from(m.data) }));
    await consumer.completeSubscribe();
    try {
      await waitFor(() => received.length >= expected, { what: `${expected} messages for ${group}`, timeoutMs: 30_000, intervalMs: 20 });
      // Trailing rejected messages are skipped with a 301: the committed offsets reach the log ends.
      const ends = await logEnds();
      await waitFor(
        () => {
          const committed = fs.existsSync(file) ? (parseOffsetsFile(fs.readFileSync(file, 'utf8')).get(group) ?? []) : [];
          return committed.length === ends.size && committed.every((o) => ends.get(o.partition) === o.offset);
        },
        { what: `${group}'s committed offsets at the log ends ${JSON.stringify([...ends])}`, timeoutMs: 10_000, intervalMs: 20 },
      );
    } finally {
      await consumer.close();
    }
    return received;
  }

  async function logEnds(): Promise<Map<number, number>> {
    const lines = ((await factory.getStats('offsets'))['orders'] ?? '').split('\n');
    return new Map(lines.map((line) => line.split(' ')).map((t) => [Number(t[1]), Number(t[5])]));
  }

  /** Checks `received` is exactly the messages `indexes` with their ids, data, attributes and log offsets. */
  function assertExactly(received: ConsumedMessage[], indexes: number[]): void {
    const byPosition = new Map(indexes.map((i) => [`${sent[i]?.partition}:${sent[i]?.offset}`, i]));
    const seen = new Set<number>();
    for (const m of received) {
      const i = byPosition.get(`${m.partition}:${m.offset}`);
      assert.ok(i !== undefined, `unexpected message at ${m.partition}:${m.offset} (attribute ${m.attribute})`);
      assert.ok(!seen.has(i), `message ${i} delivered twice`);
      seen.add(i);
      assert.equal(m.id, sent[i]?.id, `id of message ${i} (its offset is its true log offset)`);
      assert.equal(m.data.toString(), payloadFor(i));
      assert.equal(m.attribute, attributeOf(i));
    }
    assert.equal(seen.size, indexes.length, 'every expected message arrived');
  }

  it('a filtered group gets exactly the accepted messages at their log offsets; a group without a filter gets all', async () => {
    await produce(0, 150);
    const evens = Array.from({ length: 150 }, (_, i) => i).filter(accepted);
    const filtered = await consume('evens', join(broker.dir, 'evens.json'), evens.length);
    assertExactly(filtered, evens);
    for (const p of [0, 1]) {
      const offsets = filtered.filter((m) => m.partition === p).map((m) => m.offset);
      assert.ok(
        offsets.every((o, k) => k === 0 || o > (offsets[k - 1] as number)),
        `log order kept in partition ${p}`,
      );
    }

    const everything = await consume('everyone', join(broker.dir, 'everyone.json'), 150);
    assertExactly(
      everything,
      Array.from({ length: 150 }, (_, i) => i),
    );
  });

  it('after a broker restart, the filtered group resumes from its committed offsets: only new accepted messages', async () => {
    await broker.restart();
    await produce(150, 90);
    const fresh = Array.from({ length: 90 }, (_, k) => 150 + k).filter(accepted);
    const resumed = await consume('evens', join(broker.dir, 'evens.json'), fresh.length);
    assertExactly(resumed, fresh);
  });
});

describe('a bad filter module stops the broker at start-up', () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => {
    ({ path: dir, remove } = await makeTempDir('metaq-bad-filter-'));
    fs.mkdirSync(join(dir, 'filters'));
    fs.writeFileSync(join(dir, 'filters', 'no-function.mjs'), 'export const accept = true;\n');
  });
  after(async () => {
    await remove();
  });

  async function refusedStart(groupLine: string): Promise<string> {
    const ini = join(dir, 'server.ini');
    fs.writeFileSync(ini, testBrokerIni(join(dir, 'data'), { topics: ['[topic=orders]', 'numPartitions=2', groupLine, ''].join('\n') }));
    const lineNumber = fs.readFileSync(ini, 'utf8').split('\n').indexOf(groupLine) + 1;
    const process = spawnBroker(['start', '-c', ini]);
    assert.equal(await process.exited, 2, 'exit status 2: start-up error');
    const stderr = process.stderr();
    assert.ok(stderr.startsWith(`metaq-server: ${ini}:${lineNumber}: ${groupLine} in [topic=orders]: `), stderr);
    assert.match(stderr, /\[METAQ_ERR_CONFIG\]/);
    assert.equal(process.logs.find((l) => l['msg'] === 'broker started'), undefined);
    assert.equal(fs.existsSync(join(dir, 'data')), false, 'nothing was created or locked');
    return stderr;
  }

  it('a module without a filter function: names the line, the module and the fix', async () => {
    const stderr = await refusedStart('group.evens=filters/no-function.mjs');
    assert.match(stderr, new RegExp(`the filter module ${join(dir, 'filters', 'no-function.mjs')} cannot be used: it exports no filter function \\(exports: accept\\)`));
    assert.match(stderr, /add `export default function \(group, message\)/);
  });

  it('a missing module (or a Java class name): names the resolved path and the fix', async () => {
    const stderr = await refusedStart('group.evens=com.taobao.EvenFilter');
    assert.match(stderr, new RegExp(`${join(dir, 'com.taobao.EvenFilter')} \\(resolved against the configuration file's directory ${dir}\\) does not exist`));
    assert.match(stderr, /looks like a Java class name/);
  });
});
