/**
 * A MetaQ-aware TCP proxy for tests that need a broker's answer to get lost on the way back: the
 * request reaches the broker and is handled there (a put IS staged), but the client never hears
 * the answer and times out — the "lost response" of transactions.md §5.7 row 25.
 *
 * Client → broker bytes are forwarded unchanged (they are decoded on the side, only to see which
 * request passes); broker → client frames are decoded and re-encoded one by one, so that exactly
 * one answer can be left out while everything else arrives as the broker sent it.
 *
 * @example
 * ```ts
 * const proxy = await startFrameProxy(brokerPort);
 * const factory = createMessageSessionFactory({ serverUrl: proxy.url });
 * const lost = proxy.loseNextAnswer(isTransactionalPut);
 * await assert.rejects(tx.send(message, { timeoutMs: 300 }), RequestTimeoutError);
 * const { answer } = await lost; // what the broker answered (e.g. `result 200 "<id> <partition> -1"`)
 * ```
 */
import net from 'node:net';
import { encodeFrame } from '../../src/protocol/encode.js';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import type { RequestFrame, ResponseFrame } from '../../src/protocol/frames.js';

/** A request whose answer the proxy swallowed, with that answer. */
export interface LostAnswer {
  readonly request: RequestFrame;
  readonly answer: ResponseFrame;
}

/** A running proxy; see {@link startFrameProxy}. */
export interface FrameProxy {
  /** The proxy's loopback port. */
  readonly port: number;
  /** `meta://127.0.0.1:<port>`: give this to the client instead of the broker's URL. */
  readonly url: string;
  /** Client connections accepted so far. */
  readonly accepted: number;
  /**
   * Arms the proxy: the answer to the next request (on any connection) for which `match` is true
   * is not delivered. One request only; arm again for another.
   * @returns resolves once the broker's answer to that request arrived (and was swallowed).
   * @throws Error (synchronously) when an earlier arming has not matched a request yet.
   */
  loseNextAnswer(match: (request: RequestFrame) => boolean): Promise<LostAnswer>;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

/** A put that carries a transaction key (local or XA): a send inside a transaction. */
export function isTransactionalPut(request: RequestFrame): boolean {
  return request.type === 'put' && request.transactionKey !== undefined && request.transactionKey !== null;
}

interface Arming {
  readonly match: (request: RequestFrame) => boolean;
  readonly resolve: (lost: LostAnswer) => void;
}

/** Starts a proxy on a free loopback port in front of the broker on `targetPort` (127.0.0.1). */
export async function startFrameProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FrameProxy> {
  let armed: Arming | undefined;
  let accepted = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    // Opaque of a request whose answer must be swallowed → who waits for it (per connection:
    // opaques are only unique within one).
    const doomed = new Map<number, { request: RequestFrame; arming: Arming }>();
    const requests = new FrameDecoder({ accept: 'requests', maxBodySize: 64 * 1024 * 1024 });
    const responses = new FrameDecoder({ accept: 'responses', maxValueBodySize: 256 * 1024 * 1024, maxResultBodySize: 64 * 1024 * 1024 });
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      try {
        // Decided before the bytes go on: the answer cannot arrive before its request was seen.
        for (const frame of requests.push(chunk)) {
          const request = frame as RequestFrame;
          if (armed !== undefined && armed.match(request) && 'opaque' in request) {
            doomed.set(request.opaque, { request, arming: armed });
            armed = undefined;
          }
        }
      } catch {
        cut(); // not MetaQ: nothing sensible to forward
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      let frames: ResponseFrame[];
      try {
        frames = [...responses.push(chunk)] as ResponseFrame[];
      } catch {
        cut();
        return;
      }
      for (const answer of frames) {
        const lost = doomed.get(answer.opaque);
        if (lost === undefined) {
          client.write(encodeFrame(answer));
          continue;
        }
        doomed.delete(answer.opaque);
        lost.arming.resolve({ request: lost.request, answer });
      }
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        cut();
      });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');
  const port = address.port;

  return {
    port,
    url: `meta://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    loseNextAnswer(match) {
      if (armed !== undefined) throw new Error('the proxy is already armed for an answer to lose');
      return new Promise<LostAnswer>((resolve) => {
        armed = { match, resolve };
      });
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
