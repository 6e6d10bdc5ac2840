/**
 * A scripted fake MetaQ broker on a loopback port (nats.js's `TestServer`): tests decide what
 * each connection answers, and when — out of order, byte by byte, garbage, half a frame then a
 * close — to drive the client's transport through its edge cases.
 */
import net, { type Socket } from 'node:net';
import { FrameDecoder, encodeResult, encodeValue, type RequestFrame } from '../../src/protocol/index.js';

/** One client connection as the fake broker sees it. */
export interface FakeConnection {
  readonly socket: Socket;
  /** Every request decoded so far, in arrival order. */
  readonly requests: RequestFrame[];
  /** Number of `data` chunks received (coalesced writes arrive as few chunks). */
  readonly chunks: number;
  /** Resolves with the next request (already received or future). */
  nextRequest(): Promise<RequestFrame>;
  /** Resolves once `count` requests have arrived in total. */
  waitForRequests(count: number): Promise<RequestFrame[]>;
  /** Writes raw bytes. */
  write(bytes: Buffer | string): void;
  /** Answers `result <code>` with `body`. */
  reply(opaque: number, code: number, body?: string | Buffer): void;
  /** Answers `value` with `body`. */
  value(opaque: number, body: Buffer): void;
  /** Closes the socket at once. */
  destroy(): void;
  /** True once the client closed or the socket was destroyed. */
  readonly closed: boolean;
}

/** Answers requests automatically; return false to leave a request unanswered. */
export type AutoResponder = (request: RequestFrame, connection: FakeConnection) => boolean | void;

/** A running fake broker. */
export interface FakeBroker {
  readonly port: number;
  readonly url: string;
  readonly connections: FakeConnection[];
  /** Resolves with the n-th connection (0-based), waiting for it if needed. */
  connection(index: number): Promise<FakeConnection>;
  /** Installs a responder that answers every new request of every connection. */
  respond(responder: AutoResponder | undefined): void;
  /** Stops listening and destroys every connection (the port stays reserved for {@link start}). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

/** Answers `version` with 200 and everything else with nothing (the default responder). */
export const answerHeartbeats: AutoResponder = (request, connection) => {
  if (request.type !== 'version') return false;
  connection.reply(request.opaque, 200, 'fake');
  return true;
};

/** Starts a fake broker on 127.0.0.1 (port 0 = any free port). */
export async function startFakeBroker(port = 0): Promise<FakeBroker> {
  const connections: FakeConnection[] = [];
  const connectionWaiters: { index: number; resolve: (c: FakeConnection) => void }[] = [];
  let responder: AutoResponder | undefined = answerHeartbeats;
  let server: net.Server | undefined;
  let boundPort = port;

  const accept = (socket: Socket): void => {
    const decoder = new FrameDecoder({ accept: 'requests' });
    const requests: RequestFrame[] = [];
    const waiters: { count: number; resolve: (r: RequestFrame[]) => void }[] = [];
    let consumed = 0;
    let chunks = 0;
    let closed = false;
    const connection: FakeConnection = {
      socket,
      requests,
      get chunks() {
        return chunks;
      },
      get closed() {
        return closed;
      },
      nextRequest() {
        const index = consumed++;
        return connection.waitForRequests(index + 1).then((all) => all[index] as RequestFrame);
      },
      waitForRequests(count) {
        if (requests.length >= count) return Promise.resolve(requests.slice());
        return new Promise((resolve) => waiters.push({ count, resolve }));
      },
      write(bytes) {
        if (!socket.destroyed) socket.write(bytes);
      },
      reply(opaque, code, body = '') {
        connection.write(encodeResult({ type: 'result', code, body: Buffer.isBuffer(body) ? body : Buffer.from(body), opaque }));
      },
      value(opaque, body) {
        connection.write(encodeValue({ type: 'value', body, opaque }));
      },
      destroy() {
        socket.destroy();
      },
    };
    socket.on('data', (chunk: Buffer) => {
      chunks += 1;
      try {
        for (const frame of decoder.push(chunk)) {
          const request = frame as RequestFrame;
          requests.push(request);
          responder?.(request, connection);
        }
      } catch {
        socket.destroy();
      }
      for (const waiter of waiters.splice(0)) {
        if (requests.length >= waiter.count) waiter.resolve(requests.slice());
        else waiters.push(waiter);
      }
    });
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => undefined);
    connections.push(connection);
    for (const waiter of connectionWaiters.splice(0)) {
      if (connections.length > waiter.index) waiter.resolve(connections[waiter.index] as FakeConnection);
      else connectionWaiters.push(waiter);
    }
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.createServer(accept);
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port: boundPort }, () => {
        const address = s.address();
        if (address !== null && typeof address === 'object') boundPort = address.port;
        server = s;
        resolve();
      });
    });

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const c of connections) c.destroy();
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return boundPort;
    },
    get url() {
      return `meta://127.0.0.1:${boundPort}`;
    },
    connections,
    connection(index) {
      const existing = connections[index];
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve) => connectionWaiters.push({ index, resolve }));
    },
    respond(next) {
      responder = next;
    },
    stop,
    start: listen,
    close: stop,
  };
}
