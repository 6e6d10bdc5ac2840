/**
 * The HTTP gateway (MetaQ's `jettyBroker` plugin, metaq-reference §8), on `httpPort`:
 *
 * - `POST /put/<brokerId>?topic=&partition=&flag=&length=[&checksum=]`, body = message data →
 *   `<msgId> <partition> <offset>`;
 * - `GET /get/<brokerId>?topic=&partition=&group=&offset=&maxsize=` → raw stored records;
 * - `GET /offset/<brokerId>?topic=&partition=&group=&offset=` → the segment start offset;
 * - `GET /healthz` (the process is alive) and `GET /readyz` (store recovered and listening);
 * - `/api/transactions...`: operator routes for prepared and heuristic branches (admin-routes.ts).
 *
 * Errors answer with the status code the TCP protocol would use and a text body; a bad or
 * missing parameter is a 400 naming it. (`<brokerId>` only helps an HTTP load balancer route.)
 */
import http from 'node:http';
import { ErrorCode, MetaqError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { LONG_MAX_OFFSET } from '../../protocol/frames.js';
import { parseInt32, parseSafeInteger } from '../../protocol/numbers.js';
import type { BrokerContext } from '../commands/broker-context.js';
import { handleGet, handleOffset } from '../commands/get-command.js';
import { handlePut, MAX_ATTRIBUTE_BLOCK } from '../commands/put-command.js';
import type { Reply } from '../commands/reply.js';
import { routeAdmin, type TransactionAdmin } from './admin-routes.js';

/** Thrown inside a route for a 400 with a message. */
class BadRequest extends Error {}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw new BadRequest(`missing query parameter '${name}'`);
  return value;
}

function int32Param(params: URLSearchParams, name: string, fallback?: number): number {
  const text = params.get(name);
  if ((text === null || text === '') && fallback !== undefined) return fallback;
  const value = parseInt32(required(params, name));
  if (value === undefined) throw new BadRequest(`query parameter '${name}' must be a 32-bit integer, got '${text}'`);
  return value;
}

function offsetParam(params: URLSearchParams, name: string): number {
  const text = required(params, name);
  const value = parseSafeInteger(text);
  if (value === undefined) throw new BadRequest(`query parameter '${name}' must be an integer offset, got '${text}'`);
  return value;
}

function readBody(request: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BadRequest(`request body exceeds ${limit} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** A running HTTP gateway. */
export class HttpGateway {
  readonly #server: http.Server;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  /** Listens on `host:port`; `isReady` answers `/readyz`; `admin` serves `/api/transactions`. */
  static async listen(ctx: BrokerContext, host: string, port: number, isReady: () => boolean, admin: TransactionAdmin, log: Logger): Promise<HttpGateway> {
    const server = http.createServer((request, response) => {
      route(ctx, request, isReady, admin).then(
        ({ status, body, type }) => {
          response.writeHead(status, { 'content-type': type, 'content-length': body.length });
          response.end(body);
        },
        (error: unknown) => {
          const status = error instanceof BadRequest ? 400 : 500;
          if (status === 500) log.error({ err: error, url: request.url }, 'HTTP request failed');
          const body = Buffer.from(error instanceof Error ? error.message : String(error));
          if (!response.headersSent) response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
          response.end(body);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new MetaqError(ErrorCode.Startup, `cannot listen for HTTP on ${host}:${port}: ${error.message}; change httpPort (0 = off)`, { cause: error })),
      );
      server.listen({ host, port }, () => resolve());
    });
    return new HttpGateway(server);
  }

  /** The port actually bound. */
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Stops accepting and closes idle keep-alive connections; in-flight requests finish. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    await closed;
  }
}

interface HttpAnswer {
  readonly status: number;
  readonly body: Buffer;
  readonly type: string;
}

function text(status: number, body: string): HttpAnswer {
  return { status, body: Buffer.from(body, 'utf8'), type: 'text/plain; charset=utf-8' };
}

function fromReply(reply: Reply): HttpAnswer {
  if (reply.kind === 'value') return { status: 200, body: reply.data, type: 'application/octet-stream' };
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
  return { status: reply.code, body, type: 'text/plain; charset=utf-8' };
}

async function route(ctx: BrokerContext, request: http.IncomingMessage, isReady: () => boolean, admin: TransactionAdmin): Promise<HttpAnswer> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (url.pathname.startsWith('/api/')) {
    const answer = await routeAdmin(admin, request.method ?? 'GET', url.pathname, url.searchParams);
    const json = answer ?? { status: 404, json: { error: `no route ${url.pathname}` } };
    return { status: json.status, body: Buffer.from(JSON.stringify(json.json)), type: 'application/json' };
  }
  const [, command] = url.pathname.split('/');
  const params = url.searchParams;
  const method = request.method ?? 'GET';
  if (url.pathname === '/healthz') return text(200, 'ok\n');
  if (url.pathname === '/readyz') return isReady() ? text(200, 'ready\n') : text(503, 'not ready\n');
  if (command === 'put' && method === 'POST') {
    const limit = ctx.config.system.maxMessageSize + MAX_ATTRIBUTE_BLOCK;
    const length = int32Param(params, 'length');
    if (length < 0 || length > limit) throw new BadRequest(`query parameter 'length' must be 0..${limit}, got ${length}`);
    const data = await readBody(request, limit);
    if (data.length !== length) throw new BadRequest(`query parameter 'length' says ${length} bytes but the body has ${data.length}`);
    return fromReply(
      await handlePut(ctx, {
        topic: required(params, 'topic'),
        partition: int32Param(params, 'partition'),
        data,
        flag: int32Param(params, 'flag', 0),
        checksum: int32Param(params, 'checksum', -1),
      }),
    );
  }
  if (command === 'get' && method === 'GET') {
    const offsetText = required(params, 'offset');
    return fromReply(
      await handleGet(ctx, {
        topic: required(params, 'topic'),
        group: required(params, 'group'),
        partition: int32Param(params, 'partition'),
        offset: offsetText === LONG_MAX_OFFSET.toString() ? LONG_MAX_OFFSET : offsetParam(params, 'offset'),
        maxSize: int32Param(params, 'maxsize'),
      }),
    );
  }
  if (command === 'offset' && method === 'GET') {
    required(params, 'group');
    return fromReply(handleOffset(ctx, { topic: required(params, 'topic'), partition: int32Param(params, 'partition'), offset: offsetParam(params, 'offset') }));
  }
  return text(400, 'Invalid request');
}
