/**
 * Server-side consumer filters (src/broker/filters): the applier's three answers (accepted
 * prefix, 301 skip, slice unchanged) and that a client following them sees exactly the accepted
 * messages at their true offsets; failures of the filter function; and the loader's module
 * resolution and start-up errors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '../../src/common/logger.js';
import { componentLogger } from '../../src/common/logger.js';
import { parseBrokerConfig } from '../../src/common/config/index.js';
import { ConfigError } from '../../src/common/errors.js';
import { encodeMessageData } from '../../src/protocol/message-data.js';
import { readMessageRecords } from '../../src/protocol/message-records.js';
import { encodeRecord } from '../../src/protocol/record.js';
import { applyConsumerFilter, type FilteredSlice } from '../../src/broker/filters/filter-applier.js';
import { ConsumerFilter, ERROR_LOG_INTERVAL_MS, type ServerFilterMessage, type ServerMessageFilter } from '../../src/broker/filters/consumer-filter.js';
import { ConsumerFilters, loadConsumerFilters } from '../../src/broker/filters/filter-loader.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const ORIGIN = { topic: 'orders', partition: 2, offset: 1000 };

function record(id: number, text: string, attribute?: string): Buffer {
  const { data, flag } = encodeMessageData(Buffer.from(text), attribute);
  return encodeRecord({ id: BigInt(id), flag, data });
}

/** A filter around `fn` with a logger that records error calls, and a settable clock. */
function makeFilter(fn: ServerMessageFilter, clock = { now: 0 }) {
  const errors: unknown[][] = [];
  const log = { error: (...args: unknown[]) => void errors.push(args) } as unknown as Logger;
  const filter = new ConsumerFilter({ pattern: 'orders', group: 'billing', module: '/x/f.mjs' }, fn, log, () => clock.now);
  return { filter, errors, clock };
}

const byAttribute: ServerMessageFilter = (_group, message) => message.attribute === 'keep';

describe('applyConsumerFilter', () => {
  it('all accepted: the complete records of the slice, byte for byte; the partial tail is left out', () => {
    const records = [record(1, 'a', 'keep'), record(2, 'bb', 'keep'), record(3, 'ccc', 'keep')];
    const log = Buffer.concat(records);
    const slice = log.subarray(0, log.length - 5); // ends inside the third record
    const { filter } = makeFilter(byAttribute);
    const answer = applyConsumerFilter(filter, slice, ORIGIN);
    assert.equal(answer.kind, 'value');
    const body = (answer as Extract<FilteredSlice, { kind: 'value' }>).data;
    assert.deepEqual(body, Buffer.concat(records.slice(0, 2)));
    const decoded = readMessageRecords(body);
    assert.deepEqual(
      decoded.records.map((r) => [r.id, r.position]),
      [
        [1n, 0],
        [2n, records[0]?.length],
      ],
      'positions in the body are the log positions (CRC-checked records)',
    );
    assert.equal(decoded.consumed, body.length);
    assert.deepEqual(filter.counters, { delivered: 2, filtered: 0, errors: 0 });
  });

  it('an accepted run ends at the first rejected record, which the next get skips with a 301', () => {
    const records = [record(1, 'a', 'keep'), record(2, 'b', 'keep'), record(3, 'c', 'drop'), record(4, 'd', 'drop'), record(5, 'e', 'keep')];
    const log = Buffer.concat(records);
    const { filter } = makeFilter(byAttribute);
    const first = applyConsumerFilter(filter, log, ORIGIN);
    assert.equal(first.kind, 'value');
    const body = (first as Extract<FilteredSlice, { kind: 'value' }>).data;
    assert.deepEqual(body, Buffer.concat(records.slice(0, 2)), 'no rejected record inside the body');
    const next = ORIGIN.offset + body.length;
    const second = applyConsumerFilter(filter, log.subarray(body.length), { ...ORIGIN, offset: next });
    const skipTo = next + (records[2]?.length ?? 0) + (records[3]?.length ?? 0);
    assert.deepEqual(second, { kind: 'skip', nextOffset: skipTo, rejected: 2 }, 'skips exactly to the next accepted record');
    const third = applyConsumerFilter(filter, log.subarray(skipTo - ORIGIN.offset), { ...ORIGIN, offset: skipTo });
    assert.equal(third.kind, 'value');
    assert.deepEqual((third as Extract<FilteredSlice, { kind: 'value' }>).data, records[4]);
    assert.deepEqual(filter.counters, { delivered: 3, filtered: 2, errors: 0 });
  });

  it('all rejected: 301 to the offset after the last examined record (the start of a partial tail)', () => {
    const records = [record(1, 'x', 'drop'), record(2, 'y', 'drop'), record(3, 'z', 'keep')];
    const log = Buffer.concat(records);
    const examined = (records[0]?.length ?? 0) + (records[1]?.length ?? 0);
    const { filter } = makeFilter(byAttribute);
    assert.deepEqual(applyConsumerFilter(filter, log.subarray(0, examined + 10), ORIGIN), { kind: 'skip', nextOffset: ORIGIN.offset + examined, rejected: 2 });
    assert.deepEqual(applyConsumerFilter(filter, log.subarray(0, examined), ORIGIN), { kind: 'skip', nextOffset: ORIGIN.offset + examined, rejected: 2 });
  });

  it('no complete record at the start (a large message, a misaligned or corrupt offset): the slice goes out unchanged', () => {
    const { filter } = makeFilter(() => {
      throw new Error('must not be called');
    });
    const big = record(1, 'x'.repeat(500), 'drop');
    assert.deepEqual(applyConsumerFilter(filter, big.subarray(0, 100), ORIGIN), { kind: 'unfiltered' });
    const bad = record(2, 'corrupt', 'keep');
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    assert.deepEqual(applyConsumerFilter(filter, Buffer.concat([bad, record(3, 'ok', 'keep')]), ORIGIN), { kind: 'unfiltered' });
    assert.deepEqual(applyConsumerFilter(filter, Buffer.concat([record(1, 'x')]).subarray(3), ORIGIN), { kind: 'unfiltered' }, 'misaligned');
    assert.equal(filter.counters.errors, 0);
  });

  it('rejected records before a corrupt one are skipped; the corrupt one is left to the client', () => {
    const bad = record(2, 'corrupt', 'keep');
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    const drop = record(1, 'x', 'drop');
    const { filter } = makeFilter(byAttribute);
    assert.deepEqual(applyConsumerFilter(filter, Buffer.concat([drop, bad]), ORIGIN), { kind: 'skip', nextOffset: ORIGIN.offset + drop.length, rejected: 1 });
  });

  it('shows the filter the message with its log offset, payload, attribute and flag; the payload is a copy', () => {
    const seen: ServerFilterMessage[] = [];
    const records = [record(7, 'plain'), record(8, 'payload', 'attr')];
    const slice = Buffer.concat(records);
    const original = Buffer.from(slice);
    const { filter } = makeFilter((group, message) => {
      assert.equal(group, 'billing');
      seen.push(message);
      message.data.fill(0); // a misbehaving filter cannot damage what is sent
      return true;
    });
    const answer = applyConsumerFilter(filter, slice, ORIGIN);
    assert.deepEqual(
      seen.map((m) => [m.id, m.topic, m.partition, m.offset, m.attribute, m.flag, m.data.length]),
      [
        [7n, 'orders', 2, 1000, undefined, 0, 5],
        [8n, 'orders', 2, 1000 + (records[0]?.length ?? 0), 'attr', 1, 7],
      ],
    );
    assert.deepEqual((answer as Extract<FilteredSlice, { kind: 'value' }>).data, original);
  });

  it('an exception, a non-boolean or a Promise counts as a rejection; errors are logged once per burst', () => {
    let mode: 'throw' | 'number' | 'promise' = 'throw';
    const { filter, errors, clock } = makeFilter(() => {
      if (mode === 'throw') throw new Error('filter bug');
      if (mode === 'number') return 1 as unknown as boolean;
      return Promise.reject(new Error('async')) as unknown as boolean;
    });
    const log = Buffer.concat([record(1, 'a'), record(2, 'b'), record(3, 'c')]);
    assert.deepEqual(applyConsumerFilter(filter, log, ORIGIN), { kind: 'skip', nextOffset: ORIGIN.offset + log.length, rejected: 3 });
    assert.equal(errors.length, 1, 'one log line for the burst');
    assert.match(String((errors[0]?.[0] as { err: Error }).err.message), /filter bug/);
    mode = 'number';
    clock.now += ERROR_LOG_INTERVAL_MS;
    applyConsumerFilter(filter, log, ORIGIN);
    assert.equal(errors.length, 2);
    const second = errors[1]?.[0] as { err: Error; suppressedSinceLastLog: number };
    assert.match(second.err.message, /returned number 1, expected true or false/);
    assert.equal(second.suppressedSinceLastLog, 2);
    mode = 'promise';
    clock.now += ERROR_LOG_INTERVAL_MS;
    applyConsumerFilter(filter, log, ORIGIN);
    assert.match((errors[2]?.[0] as { err: Error }).err.message, /Promise \(filters must be synchronous\)/);
    assert.equal(filter.counters.errors, 9);
    assert.equal(filter.counters.filtered, 9);
  });

  it('a client following the answers gets exactly the accepted messages at their true offsets (random logs)', () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const count = 1 + Math.floor(random() * 40);
      const acceptRate = random();
      const records: { id: number; offset: number; keep: boolean; bytes: Buffer }[] = [];
      let offset = 0;
      for (let i = 0; i < count; i++) {
        const keep = random() < acceptRate;
        const bytes = record(i + 1, 'p'.repeat(Math.floor(random() * 60)), keep ? 'keep' : 'drop');
        records.push({ id: i + 1, offset, keep, bytes });
        offset += bytes.length;
      }
      const log = Buffer.concat(records.map((r) => r.bytes));
      let maxSize = 30 + Math.floor(random() * 200);
      const { filter } = makeFilter(byAttribute);
      const delivered: [number, number][] = [];
      let position = 0;
      for (let step = 0; position < log.length; step++) {
        assert.ok(step < 10_000, 'the client makes progress');
        const slice = log.subarray(position, position + maxSize);
        const answer = applyConsumerFilter(filter, slice, { topic: 't', partition: 0, offset: position });
        if (answer.kind === 'skip') {
          assert.ok(answer.nextOffset > position, 'a skip moves forward');
          position = answer.nextOffset;
          continue;
        }
        const body = answer.kind === 'value' ? answer.data : slice;
        const { records: got, consumed } = readMessageRecords(body);
        if (consumed === 0) {
          maxSize *= 2; // what the client does when no whole message fits
          continue;
        }
        for (const r of got) delivered.push([Number(r.id), position + r.position]);
        position += consumed;
      }
      assert.deepEqual(
        delivered,
        records.filter((r) => r.keep).map((r) => [r.id, r.offset]),
        `round ${round}`,
      );
    }
  });
});

describe('loadConsumerFilters', () => {
  let dir: string;
  let remove: () => Promise<void>;
  const ini = (topics: string, system = ''): string => ['[system]', 'brokerId=1', system, '[zookeeper]', 'zk.zkEnable=false', topics, ''].join('\n');
  const parse = (text: string) => parseBrokerConfig(text, { file: join(dir, 'conf', 'server.ini'), baseDir: dir });
  const silent = componentLogger('test');

  before(async () => {
    ({ path: dir, remove } = await makeTempDir('metaq-filters-'));
    fs.mkdirSync(join(dir, 'conf', 'filters'), { recursive: true });
    fs.mkdirSync(join(dir, 'provided'));
    fs.writeFileSync(join(dir, 'conf', 'filters', 'even.mjs'), 'export default (group, message) => message.id % 2n === 0n;\n');
    fs.writeFileSync(join(dir, 'conf', 'filters', 'named.mjs'), "export const other = 1;\nexport function filter(group) { return group === 'g2'; }\n");
    fs.writeFileSync(join(dir, 'provided', 'vip.mjs'), "export default function (group, message) { return message.attribute === 'vip'; }\n");
    fs.writeFileSync(join(dir, 'conf', 'filters', 'none.mjs'), 'export const answer = 42;\n');
    fs.writeFileSync(join(dir, 'conf', 'filters', 'class.mjs'), 'export default class Filter { accept() { return true; } }\n');
    fs.writeFileSync(join(dir, 'conf', 'filters', 'throws.mjs'), "throw new Error('cannot start: no database');\n");
    fs.writeFileSync(join(dir, 'conf', 'filters', 'syntax.mjs'), 'export default (group, message) => {\n');
  });
  after(async () => {
    await remove();
  });

  it('loads default and named exports, resolved against the configuration file directory, and finds them by section and group', async () => {
    const config = parse(ini(['[topic=orders-*]', 'group.g1=filters/even.mjs', 'group.g2=./filters/named.mjs', '[topic=audit]', `group.g1=${join(dir, 'conf', 'filters', 'even.mjs')}`].join('\n')));
    const filters = await loadConsumerFilters(config, { log: silent });
    assert.equal(filters.all().length, 3);
    const even = filters.find('orders-*', 'g1');
    assert.equal(even?.source.module, join(dir, 'conf', 'filters', 'even.mjs'));
    const message = { id: 4n, topic: 'orders-eu', partition: 0, offset: 0, data: Buffer.alloc(0), flag: 0 };
    assert.equal(even?.accepts(message), true);
    assert.equal(even?.accepts({ ...message, id: 5n }), false);
    assert.equal(filters.find('orders-*', 'g2')?.accepts(message), true);
    assert.ok(filters.find('audit', 'g1'));
    assert.equal(filters.find('orders-*', 'g3'), undefined);
    assert.equal(filters.find('audit', 'g2'), undefined);
    assert.equal(filters.find(undefined, 'g1'), undefined);
  });

  it('resolves relative modules against appClassPath when it is set', async () => {
    const config = parse(ini('[topic=t]\ngroup.vips=vip.mjs', 'appClassPath=provided'));
    const filters = await loadConsumerFilters(config, { log: silent });
    assert.equal(filters.find('t', 'vips')?.source.module, join(dir, 'provided', 'vip.mjs'));
  });

  it('without group.* entries there are no filters', async () => {
    assert.equal(await loadConsumerFilters(parse(ini('[topic=t]')), { log: silent }), ConsumerFilters.NONE);
  });

  async function startupError(topicLines: string[]): Promise<ConfigError> {
    const text = ini(['[topic=t]', ...topicLines].join('\n'));
    const error = await loadConsumerFilters(parse(text), { log: silent }).then(
      () => assert.fail('expected a ConfigError'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.file, join(dir, 'conf', 'server.ini'));
    return error;
  }

  it('a missing module: file:line, the resolved path and the fix; a Java class name is called out', async () => {
    const missing = await startupError(['numPartitions=2', 'group.billing=filters/nope.mjs']);
    assert.equal(missing.line, 8);
    assert.ok(missing.message.startsWith(`${join(dir, 'conf', 'server.ini')}:8: group.billing=filters/nope.mjs in [topic=t]: `), missing.message);
    assert.match(missing.message, new RegExp(`the filter module ${join(dir, 'conf', 'filters', 'nope.mjs').replace(/[/\\.]/g, '\\$&')} \\(resolved against the configuration file's directory`));
    assert.match(missing.message, /does not exist/);
    assert.match(missing.message, /default export \(or named export `filter`\) is a synchronous function \(group, message\) => boolean/);
    const java = await startupError(['group.billing=com.example.BillingFilter']);
    assert.match(java.message, /looks like a Java class name/);
    const directory = await startupError(['group.billing=filters']);
    assert.match(directory.message, /is not a file/);
  });

  it('a module that fails to load, or exports no function or a class: the reason and the fix', async () => {
    const throws = await startupError(['group.g=filters/throws.mjs']);
    assert.equal(throws.line, 7);
    assert.match(throws.message, /cannot load the filter module .*throws\.mjs: cannot start: no database\. Fix the module/);
    const syntax = await startupError(['group.g=filters/syntax.mjs']);
    assert.match(syntax.message, /cannot load the filter module .*syntax\.mjs: /);
    const none = await startupError(['group.g=filters/none.mjs']);
    assert.match(none.message, /none\.mjs cannot be used: it exports no filter function \(exports: answer\); add `export default function/);
    const cls = await startupError(['group.g=filters/class.mjs']);
    assert.match(cls.message, /is a class; export a function/);
  });
});
