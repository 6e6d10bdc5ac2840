/**
 * The fetch loop's handling of an offset beyond the end of the log (fetch-runner.ts step 7)
 * against a scripted partition that answers like MetaQ's broker with
 * updateConsumerOffsets=false: 404 past the end, 301 + max offset for a get at Long.MAX_VALUE,
 * the first segment start for `offset 0`.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { ConnectionError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import { ClientEmitter, type ClientEvents } from '../../src/client/instrumentation.js';
import { resolveConsumerConfig, type ConsumerConfig } from '../../src/client/consumer/consumer-config.js';
import { FetchRunner, OFFSET_RANGE_CHECK_INTERVAL_MS } from '../../src/client/consumer/fetch-runner.js';
import type { RecoverStore } from '../../src/client/consumer/recover-store.js';
import type { OpaquelessRequest, ResponseInterpreter } from '../../src/client/transport/request.js';
import type { ConsumedMessage } from '../../src/index.js';
import { LONG_MAX_OFFSET, type ResponseFrame } from '../../src/protocol/frames.js';
import { encodeRecord } from '../../src/protocol/record.js';

function record(id: number, text: string): Buffer {
  return encodeRecord({ id: BigInt(id), flag: 0, data: Buffer.from(text) });
}

/** A partition log whose retained bytes start at `min`; `append` adds records at the end. */
function partition(min: number, records: Buffer[]) {
  let log = Buffer.concat(records);
  const requests: OpaquelessRequest[] = [];
  let fail = 0;
  const end = (): number => min + log.length;
  const connection = {
    request<T>(frame: OpaquelessRequest, _timeoutMs: number, interpret: ResponseInterpreter<T>): Promise<T> {
      requests.push(frame);
      if (fail > 0) {
        fail--;
        return Promise.reject(new ConnectionError('connection lost'));
      }
      let response: ResponseFrame;
      const answer = (code: number, body: string): ResponseFrame => ({ type: 'result', code, body: Buffer.from(body), opaque: requests.length });
      if (frame.type === 'offset') response = answer(200, String(frame.offset >= end() ? end() : min));
      else if (frame.type === 'get') {
        if (frame.offset === LONG_MAX_OFFSET) response = answer(301, String(end()));
        else if (frame.offset < min) response = answer(301, String(min));
        else if (frame.offset >= end()) response = answer(404, `Could not find message at position ${frame.offset}`);
        else response = { type: 'value', body: log.subarray(frame.offset - min, frame.offset - min + frame.maxSize), opaque: requests.length };
      } else throw new Error(`unexpected ${frame.type}`);
      return Promise.resolve().then(() => interpret(response, frame, 'meta://fake:1'));
    },
  };
  return {
    requests,
    connection,
    end,
    append(...more: Buffer[]) {
      log = Buffer.concat([log, ...more]);
    },
    failNext(n: number) {
      fail = n;
    },
    /** Gets at Long.MAX_VALUE: the "where does the log end" questions. */
    endQueries(): number {
      return requests.filter((f) => f.type === 'get' && f.offset === LONG_MAX_OFFSET).length;
    },
  };
}

const NO_STORE: RecoverStore = { dir: '/nowhere', save: async () => undefined, names: async () => [], read: async () => undefined, remove: async () => undefined };
const runners: FetchRunner[] = [];

function start(p: ReturnType<typeof partition>, offset: number, config: Partial<ConsumerConfig> = {}) {
  const delivered: ConsumedMessage[] = [];
  const resets: ClientEvents['consumer.offset_reset'][] = [];
  const emitter = new ClientEmitter();
  emitter.on('consumer.offset_reset', (e) => resets.push(e));
  const runner = new FetchRunner({
    topic: 't',
    ref: { brokerId: 1, brokerUrl: 'meta://fake:1', partition: 3 },
    offset,
    messageId: 99n,
    maxSize: 1024,
    config: resolveConsumerConfig({ group: 'g', maxDelayFetchTimeInMills: 20, ...config }),
    listener: (m) => void delivered.push(m),
    filter: undefined,
    connection: p.connection,
    recoverStore: NO_STORE,
    emitter,
    log: componentLogger('test'),
  });
  runners.push(runner);
  runner.start();
  return { runner, delivered, resets, emitter };
}

/** Polls `predicate` (timed with performance.now(): one test mocks Date). */
async function until(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('FetchRunner: offset beyond the end of the log', () => {
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
  });

  it("offsetOutOfRange='max' (default): moves to the end, reports it, and consumes what arrives next", async () => {
    const p = partition(0, [record(1, 'old-1'), record(2, 'old-2')]);
    const { runner, delivered, resets } = start(p, 5000);
    await until(() => resets.length === 1, 'the reset');
    const end = p.end();
    assert.deepEqual(resets[0], { topic: 't', group: 'g', partition: 3, from: 5000, to: end, policy: 'max', maxOffset: end });
    assert.equal(runner.position().offset, end);
    assert.ok(runner.position().version > 0, 'the new offset is committed like other progress');
    p.append(record(3, 'new'));
    await until(() => delivered.length === 1, 'the new message');
    assert.deepEqual(
      delivered.map((m) => [m.id, m.offset]),
      [[3n, end]],
      'nothing before the end is delivered, the new message is',
    );
  });

  it("offsetOutOfRange='min': moves to the start of the retained log and re-reads it", async () => {
    const p = partition(300, [record(1, 'a'), record(2, 'b')]);
    const { delivered, resets } = start(p, 9999, { offsetOutOfRange: 'min' });
    await until(() => delivered.length === 2, 'the retained messages');
    assert.equal(resets.length, 1);
    assert.equal(resets[0]?.to, 300);
    assert.equal(resets[0]?.policy, 'min');
    assert.deepEqual(
      delivered.map((m) => m.offset),
      [300, 300 + (record(1, 'a').length)],
    );
    assert.ok(p.requests.some((f) => f.type === 'offset' && f.offset === 0), 'asked for the first segment start');
  });

  it('a consumer that starts at the end asks where the log ends once per 404 streak, not at every poll', async () => {
    const p = partition(0, [record(1, 'x')]);
    const { delivered, resets } = start(p, p.end()); // e.g. a committed offset: not confirmed by the broker yet
    const polls = (): number => p.requests.filter((f) => f.type === 'get' && f.offset === p.end()).length;
    await until(() => polls() >= 10, '10 empty polls');
    assert.equal(p.endQueries(), 1, 'one check for the whole streak');
    assert.equal(resets.length, 0, 'an offset at the end is not out of range');
    p.append(record(2, 'y'));
    await until(() => delivered.length === 1, 'the new message');
    await until(() => polls() >= 5, 'a new streak');
    assert.equal(p.endQueries(), 1, 'no check at an offset the broker just confirmed (the end of data it sent)');
  });

  it('during a long streak it checks again every OFFSET_RANGE_CHECK_INTERVAL_MS (the log may be recreated meanwhile)', async (t) => {
    const p = partition(0, [record(1, 'x'), record(2, 'y')]);
    const { resets } = start(p, p.end());
    await until(() => p.endQueries() === 1, 'the first check');
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const polls = p.requests.length;
    await until(() => p.requests.length >= polls + 5, 'more empty polls');
    assert.equal(p.endQueries(), 1);
    t.mock.timers.tick(OFFSET_RANGE_CHECK_INTERVAL_MS);
    await until(() => p.endQueries() === 2, 'the periodic check');
    assert.equal(resets.length, 0);
  });

  it('a reconnect to its broker re-arms the check (the broker may have restarted with less data)', async () => {
    const p = partition(0, [record(1, 'x')]);
    const { emitter } = start(p, p.end());
    await until(() => p.endQueries() === 1, 'the first check');
    emitter.emit('connection.connect', { brokerUrl: 'meta://other:1', reconnect: true });
    emitter.emit('connection.connect', { brokerUrl: 'meta://fake:1', reconnect: false });
    const polls = p.requests.length;
    await until(() => p.requests.length >= polls + 3, 'more polls');
    assert.equal(p.endQueries(), 1, 'not for another broker or a first connect');
    emitter.emit('connection.connect', { brokerUrl: 'meta://fake:1', reconnect: true });
    await until(() => p.endQueries() === 2, 'a check after the reconnect');
  });

  it('a failed fetch re-arms the check; a partition the broker does not have is not asked about', async () => {
    const p = partition(0, [record(1, 'x')]);
    const { runner, resets } = start(p, p.end());
    await until(() => p.endQueries() === 1, 'the first check');
    p.failNext(1);
    await until(() => p.endQueries() === 2, 'a check after the outage');
    assert.equal(resets.length, 0);
    assert.equal(runner.position().version, 0);

    const missing = {
      requests: [] as OpaquelessRequest[],
      request<T>(frame: OpaquelessRequest, _t: number, interpret: ResponseInterpreter<T>): Promise<T> {
        this.requests.push(frame);
        return Promise.resolve().then(() => interpret({ type: 'result', code: 404, body: Buffer.from('The topic `t` in partition `3` is not exists'), opaque: 1 }, frame, 'meta://fake:1'));
      },
    };
    const { runner: r2, resets: resets2 } = start({ ...p, connection: missing }, 700);
    await until(() => missing.requests.length >= 4, 'a few polls');
    assert.equal(resets2.length, 0);
    assert.equal(r2.position().offset, 700);
    assert.ok(
      missing.requests.every((f) => f.type === 'get' && f.offset === 700),
      'only the fetch itself: no question about the end of a log that does not exist',
    );
  });
});
