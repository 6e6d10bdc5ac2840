/**
 * The consumer's fetch loop against a scripted in-memory partition log: order and offsets,
 * back-off, 301, realignment after a bad record (no duplicates), real corruption, filters,
 * listener retries into the recover store, maxSize growth, and stopping mid-retry.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import { encodeMessageData, type ResponseFrame } from '../../src/protocol/index.js';
import { encodeRecord } from '../../src/protocol/record.js';
import type { ConsumedMessage, MessageFilter, MessageListener } from '../../src/index.js';
import { ClientEmitter } from '../../src/client/instrumentation.js';
import { resolveConsumerConfig, type ConsumerConfig } from '../../src/client/consumer/consumer-config.js';
import { retryDelay } from '../../src/client/consumer/deliver.js';
import { FetchBackoff } from '../../src/client/consumer/fetch-backoff.js';
import { FetchRunner } from '../../src/client/consumer/fetch-runner.js';
import { FetchSizeTuner, MAX_FETCH_SIZE } from '../../src/client/consumer/fetch-size.js';
import type { RecoverStore } from '../../src/client/consumer/recover-store.js';
import type { OpaquelessRequest, ResponseInterpreter } from '../../src/client/transport/request.js';
import { LONG_MAX_OFFSET } from '../../src/protocol/frames.js';

describe('FetchSizeTuner (maxSize growth, metaq-reference §1.6)', () => {
  it('doubles after more than maxIncreaseFetchDataRetries answers without a whole message, up to 2 MiB', () => {
    const tuner = new FetchSizeTuner(1024, 2);
    assert.equal(tuner.record(1024, false), false);
    assert.equal(tuner.record(1024, false), false);
    assert.equal(tuner.record(1024, false), true);
    assert.equal(tuner.current, 2048);
    for (let i = 0; i < 100; i++) tuner.record(tuner.current, false);
    assert.equal(tuner.current, MAX_FETCH_SIZE);
    assert.equal(tuner.atCeiling, true);
  });

  it('halves back toward the original once answers are under half the size', () => {
    const tuner = new FetchSizeTuner(1000, 0);
    tuner.record(1000, false);
    tuner.record(2000, false);
    assert.equal(tuner.current, 4000);
    assert.equal(tuner.record(3000, true), false, 'a big answer keeps the size');
    assert.equal(tuner.record(1500, true), true);
    assert.equal(tuner.current, 2000);
    tuner.record(10, true);
    tuner.record(10, true);
    assert.equal(tuner.current, 1000, 'never below the subscription maxSize');
  });

  it('a complete answer resets the count of incomplete ones', () => {
    const tuner = new FetchSizeTuner(1024, 1);
    tuner.record(1024, false);
    tuner.record(500, true);
    assert.equal(tuner.record(1024, false), false);
  });
});

describe('fetch delays', () => {
  it('empty fetches back off by maxDelay/10 per miss up to maxDelay; data resets', () => {
    const backoff = new FetchBackoff(5000);
    assert.deepEqual([backoff.miss(), backoff.miss(), backoff.miss()], [500, 1000, 1500]);
    for (let i = 0; i < 20; i++) backoff.miss();
    assert.equal(backoff.miss(), 5000);
    backoff.reset();
    assert.equal(backoff.miss(), 500);
  });

  it('listener retries wait maxDelay/10 × attempt', () => {
    assert.deepEqual([1, 2, 3, 20].map((a) => retryDelay(a, 5000)), [500, 1000, 1500, 5000]);
  });
});

/** A partition log in memory and a fake connection serving it. */
function fakePartition(records: Buffer[]) {
  const log = Buffer.concat(records);
  const requests: OpaquelessRequest[] = [];
  let calls = 0;
  const connection = {
    request<T>(frame: OpaquelessRequest, _timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T> {
      requests.push(frame);
      calls++;
      let response: ResponseFrame;
      if (frame.type === 'offset') response = { type: 'result', code: 200, body: Buffer.from('0'), opaque: calls };
      else if (frame.type === 'get') {
        if (frame.offset === LONG_MAX_OFFSET) response = { type: 'result', code: 301, body: Buffer.from(String(log.length)), opaque: calls };
        else if (frame.offset >= log.length) response = { type: 'result', code: 404, body: Buffer.from('Could not find message'), opaque: calls };
        else response = { type: 'value', body: log.subarray(frame.offset, frame.offset + frame.maxSize), opaque: calls };
      } else throw new Error(`unexpected ${frame.type}`);
      return Promise.resolve().then(() => interpret(response, frame, 'meta://fake:1'));
    },
  };
  return { log, requests, connection };
}

function record(id: number, text: string, attribute?: string): Buffer {
  const { data, flag } = encodeMessageData(Buffer.from(text), attribute);
  return encodeRecord({ id: BigInt(id), flag, data });
}

function fakeStore() {
  const saved: ConsumedMessage[] = [];
  const store: RecoverStore = {
    dir: '/nowhere',
    save: async (_brokerId, message) => void saved.push(message),
    names: async () => [],
    read: async () => undefined,
    remove: async () => undefined,
  };
  return { saved, store };
}

interface RunOptions {
  offset?: number | typeof LONG_MAX_OFFSET;
  maxSize?: number;
  config?: Partial<ConsumerConfig>;
  filter?: MessageFilter;
  listener?: MessageListener;
}

/** Every runner created, stopped after each test even when it fails (a running loop would keep the process alive). */
const runners: FetchRunner[] = [];

function runner(partition: ReturnType<typeof fakePartition>, delivered: ConsumedMessage[], options: RunOptions = {}) {
  const { saved, store } = fakeStore();
  const emitter = new ClientEmitter();
  const r = new FetchRunner({
    topic: 't',
    ref: { brokerId: 1, brokerUrl: 'meta://fake:1', partition: 0 },
    offset: options.offset ?? 0,
    messageId: -1n,
    maxSize: options.maxSize ?? 1024,
    config: resolveConsumerConfig({ group: 'g', maxDelayFetchTimeInMills: 20, ...options.config }),
    listener: options.listener ?? ((m) => void delivered.push(m)),
    filter: options.filter,
    connection: partition.connection,
    recoverStore: store,
    emitter,
    log: componentLogger('test'),
  });
  runners.push(r);
  return { runner: r, saved, emitter };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FetchRunner', () => {
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });

  it('delivers records in order with offsets, ids and attributes, then polls with back-off', async () => {
    const records = [record(1, 'one'), record(2, 'two', 'vip'), record(3, 'three')];
    const partition = fakePartition(records);
    const delivered: ConsumedMessage[] = [];
    const { runner: r } = runner(partition, delivered);
    r.start();
    await until(() => delivered.length === 3, '3 messages');
    await until(() => partition.requests.length >= 4, 'polls after the end');
    await r.stop();
    assert.deepEqual(
      delivered.map((m) => [m.id, m.offset, m.data.toString(), m.attribute, m.flag]),
      [
        [1n, 0, 'one', undefined, 0],
        [2n, records[0]?.length, 'two', 'vip', 1],
        [3n, (records[0]?.length ?? 0) + (records[1]?.length ?? 0), 'three', undefined, 0],
      ],
    );
    assert.deepEqual(r.position().offset, partition.log.length);
    assert.equal(r.position().messageId, 3n);
  });

  it('starts at the end with LONG_MAX (301 → max offset)', async () => {
    const partition = fakePartition([record(1, 'old')]);
    const delivered: ConsumedMessage[] = [];
    const { runner: r } = runner(partition, delivered, { offset: LONG_MAX_OFFSET });
    assert.equal(r.position().offset, undefined);
    r.start();
    await until(() => r.position().offset === partition.log.length, '301 applied');
    await r.stop();
    assert.deepEqual(delivered, []);
  });

  it('realigns a misaligned offset through the segment start without delivering records before it', async () => {
    const records = [record(1, 'a'.repeat(50)), record(2, 'b'), record(3, 'c')];
    const partition = fakePartition(records);
    const delivered: ConsumedMessage[] = [];
    const { runner: r } = runner(partition, delivered, { offset: 7 });
    r.start();
    await until(() => delivered.length === 2, 'realigned delivery');
    await r.stop();
    assert.deepEqual(
      delivered.map((m) => m.id),
      [2n, 3n],
    );
    assert.ok(partition.requests.some((f) => f.type === 'offset' && f.offset === 7), 'asked the broker for the segment start');
  });

  it('skips a corrupt record found twice at the same offset, without duplicates', async () => {
    const bad = record(2, 'corrupt me');
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    const partition = fakePartition([record(1, 'before'), bad, record(3, 'after')]);
    const delivered: ConsumedMessage[] = [];
    const { runner: r } = runner(partition, delivered);
    r.start();
    await until(() => delivered.some((m) => m.id === 3n), 'the record after the corrupt one');
    await r.stop();
    assert.deepEqual(
      delivered.map((m) => m.id),
      [1n, 3n],
    );
  });

  it('skips what the filter rejects (and what it throws on), still advancing the offset', async () => {
    const partition = fakePartition([record(1, 'x', 'keep'), record(2, 'y', 'drop'), record(3, 'z'), record(4, 'w', 'keep')]);
    const delivered: ConsumedMessage[] = [];
    const filter: MessageFilter = (m) => {
      if (m.attribute === undefined) throw new Error('no attribute');
      return m.attribute === 'keep';
    };
    const { runner: r } = runner(partition, delivered, { filter });
    r.start();
    await until(() => r.position().offset === partition.log.length, 'end of log');
    await r.stop();
    assert.deepEqual(
      delivered.map((m) => m.id),
      [1n, 4n],
    );
  });

  it('retries a failing listener maxFetchRetries times, then stores the message and moves on', async () => {
    const partition = fakePartition([record(1, 'ok'), record(2, 'poison'), record(3, 'ok too')]);
    const delivered: ConsumedMessage[] = [];
    let attempts = 0;
    const listener: MessageListener = async (m) => {
      if (m.id === 2n) {
        attempts++;
        throw new Error('cannot handle');
      }
      delivered.push(m);
    };
    const { runner: r, saved, emitter } = runner(partition, delivered, { listener, config: { maxFetchRetries: 2 } });
    const failures: number[] = [];
    emitter.on('consumer.listener_failed', (e) => failures.push(e.attempt));
    r.start();
    await until(() => delivered.length === 2, 'consumption continues');
    await r.stop();
    assert.equal(attempts, 3);
    assert.deepEqual(failures, [1, 2, 3]);
    assert.deepEqual(
      saved.map((m) => m.id),
      [2n],
    );
    assert.deepEqual(
      delivered.map((m) => m.id),
      [1n, 3n],
    );
  });

  it('grows maxSize until a large message fits', async () => {
    const partition = fakePartition([record(1, 'x'.repeat(5000)), record(2, 'small')]);
    const delivered: ConsumedMessage[] = [];
    const { runner: r } = runner(partition, delivered, { maxSize: 1024, config: { maxIncreaseFetchDataRetries: 1, maxDelayFetchTimeInMills: 5 } });
    r.start();
    await until(() => delivered.length === 2, 'both messages');
    await r.stop();
    assert.equal(delivered[0]?.data.length, 5000);
    const sizes = partition.requests.flatMap((f) => (f.type === 'get' ? [f.maxSize] : []));
    assert.deepEqual([...new Set(sizes)].slice(0, 4), [1024, 2048, 4096, 8192]);
  });

  it('stop() cuts a retry delay short and leaves the message unconsumed', async () => {
    const partition = fakePartition([record(1, 'never accepted')]);
    const { runner: r } = runner(partition, [], {
      listener: () => {
        throw new Error('no');
      },
      config: { maxFetchRetries: 5, maxDelayFetchTimeInMills: 10_000 },
    });
    r.start();
    await until(() => partition.requests.length >= 1, 'first fetch');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await r.stop();
    // The retry delay it cuts short is 10 s; well under that proves it was cut (with room for a loaded machine).
    const stoppedMs = Date.now() - started;
    assert.ok(stoppedMs < 5000, `stopped after ${stoppedMs} ms`);
    assert.equal(r.position().offset, 0);
    assert.equal(r.position().version, 0);
  });

  it('keeps retrying failed fetches (lost connection, 5xx) with back-off', async () => {
    const partition = fakePartition([record(1, 'after the outage')]);
    let failures = 0;
    const flaky = {
      request<T>(frame: OpaquelessRequest, timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T> {
        if (failures < 3) {
          failures++;
          if (failures === 2) return Promise.resolve().then(() => interpret({ type: 'result', code: 503, body: Buffer.from('busy'), opaque: 0 }, frame, 'meta://fake:1'));
          return Promise.reject(new ConnectionError('connection lost'));
        }
        return partition.connection.request(frame, timeoutMs, interpret);
      },
    };
    const delivered: ConsumedMessage[] = [];
    const { runner: r, emitter } = runner({ ...partition, connection: flaky }, delivered);
    const errors: unknown[] = [];
    emitter.on('consumer.fetch_error', (e) => errors.push(e.error));
    r.start();
    await until(() => delivered.length === 1, 'the message after the outage');
    await r.stop();
    assert.equal(errors.length, 3);
  });

  it('stop() waits for the listener call in progress', async () => {
    const partition = fakePartition([record(1, 'slow')]);
    let finished = false;
    const { runner: r } = runner(partition, [], {
      listener: async () => {
        await new Promise((resolve) => setTimeout(resolve, 150));
        finished = true;
      },
    });
    r.start();
    await until(() => partition.requests.length >= 1, 'first fetch');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await r.stop();
    assert.equal(finished, true);
    assert.equal(r.position().offset, partition.log.length, 'the finished message counts as consumed');
  });
});
