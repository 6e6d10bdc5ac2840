/**
 * The TCP front of the broker: accepts MetaQ protocol connections on `serverPort` and closes
 * them gracefully on shutdown (stop accepting, answer what is in progress, then close).
 */
import net from 'node:net';
import type { Logger } from '../../common/logger.js';
import { ErrorCode, MetaqError } from '../../common/errors.js';
import type { BrokerContext } from '../commands/broker-context.js';
import { BrokerConnection } from './broker-connection.js';

/** A listening MetaQ protocol server. */
export class BrokerServer {
  readonly #server: net.Server;
  readonly #connections = new Set<BrokerConnection>();
  readonly #log: Logger;

  private constructor(server: net.Server, log: Logger) {
    this.#server = server;
    this.#log = log;
  }

  /**
   * Listens on `host:port` (port 0 = any free port).
   * @throws MetaqError (METAQ_ERR_STARTUP) when the port is taken or cannot be bound.
   */
  static async listen(ctx: BrokerContext, host: string, port: number, log: Logger): Promise<BrokerServer> {
    const server = net.createServer();
    const self = new BrokerServer(server, log);
    server.on('connection', (socket) => self.#accept(socket, ctx));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const hint = error.code === 'EADDRINUSE' ? ' (another process uses it: stop it, or change serverPort)' : '';
        reject(new MetaqError(ErrorCode.Startup, `cannot listen on ${host}:${port}: ${error.message}${hint}`, { cause: error }));
      });
      server.listen({ host, port }, () => resolve());
    });
    return self;
  }

  #accept(socket: net.Socket, ctx: BrokerContext): void {
    const connection = new BrokerConnection(socket, ctx, this.#log.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` }));
    this.#connections.add(connection);
    socket.once('close', () => this.#connections.delete(connection));
  }

  /** The port actually bound. */
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting, lets every connection answer the requests it is running, then closes them.
   * Connections still open after `deadlineMs` are destroyed.
   */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const graceful = Promise.all([...this.#connections].map((c) => c.close()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), deadlineMs);
    });
    if ((await Promise.race([graceful, deadline])) === 'deadline') {
      this.#log.warn({ open: this.#connections.size }, 'connections still open at the shutdown deadline; closing them');
      for (const c of this.#connections) c.destroy();
    }
    clearTimeout(timer);
    await closed;
  }
}
