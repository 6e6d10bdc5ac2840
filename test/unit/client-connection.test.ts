/**
 * The broker connection against a scripted fake broker on loopback: opaque correlation with
 * out-of-order answers, pipelining and write coalescing, timeouts, half frames, garbage,
 * mid-frame closes, reconnect with back-off, requests waiting for a reconnect, heartbeats.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { ClientClosedError, ConnectionError, ErrorCode, RequestTimeoutError } from '../../src/common/errors.js';
import { encodePut, encodeResult, FrameDecoder, type RequestFrame, type ResponseFrame } from '../../src/protocol/index.js';
import { parseBrokerUrl } from '../../src/client/broker-url.js';
import { ClientEmitter } from '../../src/client/instrumentation.js';
import { createBrokerConnection, type BrokerConnection } from '../../src/client/transport/broker-connection.js';
import { resolveConnectionSettings, type ConnectionSettings } from '../../src/client/transport/connection-options.js';
import { encodeRequestHead } from '../../src/client/transport/encode-request.js';
import { connectTcp } from '../../src/client/transport/tcp-transport.js';
import { startFakeBroker, type FakeBroker } from '../helpers/client-fake-broker.js';

const raw = (response: ResponseFrame): ResponseFrame => response;
const text = (response: ResponseFrame): string => response.body.toString();

describe('client connection', () => {
  let broker: FakeBroker;
  let emitter: ClientEmitter;
  const open: BrokerConnection[] = [];

  function connect(settings: ConnectionSettings = {}): BrokerConnection {
    const connection = createBrokerConnection(parseBrokerUrl(broker.url), resolveConnectionSettings({ timerResolutionMs: 10, ...settings }), emitter);
    open.push(connection);
    return connection;
  }

  beforeEach(async () => {
    broker = await startFakeBroker();
    emitter = new ClientEmitter();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    await broker.close();
  });

  it('correlates answers by opaque when they come out of order', async () => {
    const connection = connect();
    const results = ['a', 'b', 'c'].map((item) => connection.request({ type: 'stats', item }, 2000, text));
    const server = await broker.connection(0);
    const requests = await server.waitForRequests(3);
    for (const request of [...requests].reverse()) {
      assert.equal(request.type, 'stats');
      if (request.type === 'stats') server.reply(request.opaque, 200, `answer ${request.item}`);
    }
    assert.deepEqual(await Promise.all(results), ['answer a', 'answer b', 'answer c']);
    assert.equal(connection.inFlight, 0);
  });

  it('pipelines many requests and writes a burst with one write', async () => {
    let writes = 0;
    const connection = connect({
      connector: async (address, handlers, options) => {
        const transport = await connectTcp(address, handlers, options);
        return { ...transport, write: (data) => (writes++, transport.write(data)) };
      },
    });
    await connection.request({ type: 'version' }, 2000, text); // connected (heartbeats are answered)
    writes = 0;
    const data = Buffer.from('hello');
    const sends = Array.from({ length: 200 }, (_, i) =>
      connection.request({ type: 'put', topic: 'test', partition: i % 3, data, flag: 0, checksum: 907060870, transactionKey: undefined }, 2000, raw),
    );
    const server = await broker.connection(0);
    const requests = await server.waitForRequests(201);
    assert.equal(writes, 1, 'one coalesced write for 200 puts made in one turn');
    assert.equal(connection.inFlight, 200);
    for (const request of requests.slice(1)) {
      assert.equal(request.type, 'put');
      if (request.type === 'put') server.reply(request.opaque, 200, `1 ${request.partition} 0`);
    }
    const answers = await Promise.all(sends);
    assert.deepEqual(
      answers.map((a) => a.body.toString()),
      sends.map((_, i) => `1 ${i % 3} 0`),
    );
  });

  it("writes a put exactly as the protocol's encodePut does", () => {
    const data = Buffer.from('héllo');
    const frame = { type: 'put', topic: 'tøpic', partition: -1, data, flag: 1, checksum: 12345, transactionKey: undefined } as const;
    const head = encodeRequestHead(frame, -77);
    assert.equal(typeof head, 'string');
    assert.deepEqual(Buffer.concat([Buffer.from(head as string), data]), encodePut({ ...frame, opaque: -77 }));
  });

  it('decodes an answer that arrives one byte at a time', async () => {
    const connection = connect();
    const answer = connection.request({ type: 'stats', item: 'topics' }, 5000, text);
    const server = await broker.connection(0);
    const request = await server.nextRequest();
    const bytes = Buffer.from(`result 200 11 ${request.type === 'stats' ? request.opaque : 0}\r\nhello world`);
    for (const byte of bytes) {
      server.write(Buffer.from([byte]));
      await delay(1);
    }
    assert.equal(await answer, 'hello world');
  });

  it('times out a request with an error naming the request, broker, opaque and wait, and drops the late answer', async () => {
    const timeouts: unknown[] = [];
    emitter.on('request.timeout', (event) => timeouts.push(event));
    const connection = connect();
    const started = Date.now();
    await assert.rejects(connection.request({ type: 'stats', item: 'offsets' }, 150, text), (error: unknown) => {
      assert.ok(error instanceof RequestTimeoutError);
      assert.equal(error.code, ErrorCode.Timeout);
      assert.equal(error.retriable, true);
      assert.match(error.message, new RegExp(`stats offsets on ${broker.url.replace(/[/.]/g, '\\$&')} \\(opaque -?\\d+\\) got no answer within 150 ms \\(waited \\d+ ms\\)`));
      return true;
    });
    assert.ok(Date.now() - started >= 140);
    assert.equal(timeouts.length, 1);
    const server = await broker.connection(0);
    const request = await server.nextRequest();
    if (request.type === 'stats') server.reply(request.opaque, 200, 'too late');
    // The connection stays usable and the late answer resolves nothing.
    const next = connection.request({ type: 'stats', item: 'x' }, 2000, text);
    const second = await server.nextRequest();
    if (second.type === 'stats') server.reply(second.opaque, 200, 'on time');
    assert.equal(await next, 'on time');
  });

  it('fails in-flight requests with a retriable ConnectionError on garbage, then reconnects', async () => {
    const disconnects: unknown[] = [];
    emitter.on('connection.disconnect', (event) => disconnects.push(event));
    const connection = connect({ reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0 } });
    const pending = connection.request({ type: 'stats', item: 'a' }, 5000, text);
    const server = await broker.connection(0);
    await server.nextRequest();
    server.write('this is not a frame\r\n');
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(error instanceof ConnectionError);
      assert.equal(error.retriable, true);
      assert.match(error.message, /connection lost before the answer/);
      assert.match(error.message, /not a MetaQ answer/);
      return true;
    });
    assert.equal(disconnects.length, 1);
    const again = connection.request({ type: 'stats', item: 'b' }, 5000, text);
    const reconnected = await broker.connection(1);
    const request = await reconnected.nextRequest();
    if (request.type === 'stats') reconnected.reply(request.opaque, 200, 'back');
    assert.equal(await again, 'back');
  });

  it('fails in-flight requests when the broker closes mid-frame, then reconnects', async () => {
    const connection = connect({ reconnect: { initialDelayMs: 10, maxDelayMs: 50, jitter: 0 } });
    const pending = connection.request({ type: 'get', topic: 't', group: 'g', partition: 0, offset: 0, maxSize: 1024 }, 5000, raw);
    const server = await broker.connection(0);
    const request = await server.nextRequest();
    server.write(`value 100 ${request.type === 'get' ? request.opaque : 0}\r\nonly part of the body`);
    await delay(20);
    server.destroy();
    await assert.rejects(pending, (error: unknown) => error instanceof ConnectionError && error.retriable);
    const again = connection.request({ type: 'version' }, 5000, text);
    await broker.connection(1);
    assert.equal(await again, 'fake');
  });

  it('keeps requests made while the broker is down and sends them after the reconnect', async () => {
    const connection = connect({ reconnect: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 } });
    assert.equal(await connection.request({ type: 'version' }, 2000, text), 'fake');
    await broker.stop();
    await delay(30);
    const waiting = connection.request({ type: 'stats', item: 'later' }, 5000, text);
    const tooShort = connection.request({ type: 'stats', item: 'short' }, 100, text);
    await assert.rejects(tooShort, (error: unknown) => {
      assert.ok(error instanceof ConnectionError, String(error));
      assert.match(error.message, /stats short on .* was not sent: no connection to the broker within 100 ms \(waited \d+ ms\)/);
      return true;
    });
    await broker.start();
    const server = await broker.connection(1);
    const request = await server.nextRequest();
    assert.equal(request.type === 'stats' && request.item, 'later');
    if (request.type === 'stats') server.reply(request.opaque, 200, 'sent after reconnect');
    assert.equal(await waiting, 'sent after reconnect');
  });

  it('backs off exponentially between failed connection attempts', async () => {
    const delays: number[] = [];
    emitter.on('connection.reconnect_scheduled', (event) => delays.push(event.delayMs));
    await broker.stop();
    const connection = connect({ reconnect: { initialDelayMs: 10, maxDelayMs: 80, jitter: 0 } });
    // 2 s, not less: four refused connects and their delays must fit in it on a loaded machine.
    const pending = connection.request({ type: 'version' }, 2000, text);
    await assert.rejects(pending, ConnectionError);
    assert.ok(delays.length >= 4, `attempts: ${delays.join(',')}`);
    assert.deepEqual(delays.slice(0, 5), [10, 20, 40, 80, 80].slice(0, Math.min(5, delays.length)));
  });

  it('draws jittered delays within [base × (1 − jitter), base]', async () => {
    const { backoffDelay } = await import('../../src/client/transport/backoff.js');
    const options = { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 };
    assert.equal(backoffDelay(0, options, () => 0), 100);
    assert.equal(backoffDelay(0, options, () => 1), 50);
    assert.equal(backoffDelay(3, options, () => 0), 800);
    assert.equal(backoffDelay(10, options, () => 0), 1000);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, options);
      assert.ok(d >= 200 && d <= 400, String(d));
    }
  });

  it('by default, a request made while a broker restarts gets several reconnect attempts before its deadline', async () => {
    const { backoffDelay } = await import('../../src/client/transport/backoff.js');
    const { DEFAULT_REQUEST_TIMEOUT_MS } = await import('../../src/client/session/factory-options.js');
    const { reconnect } = resolveConnectionSettings({});
    // However long the broker was down, the next attempt is at most this far away.
    const longestWait = backoffDelay(30, reconnect, () => 0);
    assert.ok(longestWait * 3 <= DEFAULT_REQUEST_TIMEOUT_MS, `longest reconnect wait ${longestWait} ms vs request timeout ${DEFAULT_REQUEST_TIMEOUT_MS} ms`);
  });

  it('sends a version heartbeat when idle', async () => {
    const connection = connect({ heartbeatIdleMs: 60, heartbeatTimeoutMs: 500 });
    const started = Date.now();
    assert.equal(await connection.request({ type: 'version' }, 2000, text), 'fake');
    const server = await broker.connection(0);
    const requests = await server.waitForRequests(3); // the request above, then two heartbeats
    assert.ok(requests.every((r) => r.type === 'version'));
    assert.ok(Date.now() - started >= 110, 'heartbeats only after the idle time');
  });

  it('reconnects after heartbeatMaxFailures heartbeats in a row go unanswered', async () => {
    broker.respond(undefined); // the broker answers nothing
    const failures: number[] = [];
    emitter.on('connection.heartbeat_failed', (event) => failures.push(event.failures));
    const connection = connect({ heartbeatIdleMs: 30, heartbeatTimeoutMs: 40, heartbeatMaxFailures: 3, reconnect: { initialDelayMs: 10, jitter: 0 } });
    void connection.request({ type: 'version' }, 100, text).catch(() => undefined);
    const first = await broker.connection(0);
    await broker.connection(1);
    assert.deepEqual(failures.slice(0, 3), [1, 2, 3]);
    assert.ok((await first.waitForRequests(4)).every((r) => r.type === 'version'));
  });

  it('close() waits for written requests, refuses new ones, and says quit', async () => {
    const connection = connect();
    const pending = connection.request({ type: 'stats', item: 'slow' }, 5000, text);
    const server = await broker.connection(0);
    const request = await server.nextRequest();
    const closing = connection.close();
    await assert.rejects(connection.request({ type: 'version' }, 1000, text), ClientClosedError);
    if (request.type === 'stats') server.reply(request.opaque, 200, 'answered while closing');
    assert.equal(await pending, 'answered while closing');
    await closing;
    assert.equal(connection.state, 'closed');
    const all = await server.waitForRequests(2);
    assert.equal(all[1]?.type, 'quit');
  });

  it('close() still sends what was queued in the same turn, and fails what waits for a connection', async () => {
    const connection = connect();
    assert.equal(await connection.request({ type: 'version' }, 2000, text), 'fake');
    const queued = connection.request({ type: 'version' }, 2000, text);
    const closing = connection.close();
    assert.equal(await queued, 'fake');
    await closing;

    await broker.stop();
    const offline = connect();
    const waiting = offline.request({ type: 'version' }, 5000, text);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await offline.close();
    await assert.rejects(waiting, (error: unknown) => error instanceof ClientClosedError && /was never sent/.test(error.message));
  });

  it('runs over an in-memory transport (no socket at all)', async () => {
    const written: RequestFrame[] = [];
    const connection = connect({
      connector: async (_address, handlers) => {
        const decoder = new FrameDecoder({ accept: 'requests' });
        return {
          write: (data) => {
            for (const frame of decoder.push(Buffer.from(data))) {
              const request = frame as RequestFrame;
              written.push(request);
              if (request.type === 'stats') {
                // Answer asynchronously, in two halves, like a network would.
                const bytes = encodeResult({ type: 'result', code: 200, body: Buffer.from(`in memory ${request.item}`), opaque: request.opaque });
                setImmediate(() => handlers.data(bytes.subarray(0, 7)));
                setImmediate(() => handlers.data(bytes.subarray(7)));
              }
            }
          },
          end: () => setImmediate(() => handlers.close(undefined)),
          destroy: () => setImmediate(() => handlers.close(undefined)),
        };
      },
    });
    assert.deepEqual(await Promise.all([connection.request({ type: 'stats', item: 'a' }, 1000, text), connection.request({ type: 'stats', item: 'b' }, 1000, text)]), [
      'in memory a',
      'in memory b',
    ]);
    await connection.close();
    assert.deepEqual(
      written.map((r) => r.type),
      ['stats', 'stats', 'quit'],
    );
  });

  it('rejects an unencodable request at once', async () => {
    const connection = connect();
    await assert.rejects(
      connection.request({ type: 'put', topic: 'bad topic', partition: 0, data: Buffer.alloc(1), flag: 0, checksum: -1, transactionKey: undefined }, 1000, raw),
      /topic "bad topic" must be non-empty and contain no whitespace/,
    );
    assert.equal(connection.inFlight, 0);
  });
});
