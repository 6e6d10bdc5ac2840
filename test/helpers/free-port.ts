/**
 * Finding a free TCP port on the loopback interface for a test server.
 */
import { connect, createServer } from 'node:net';

/**
 * Returns a TCP port that was free on 127.0.0.1 a moment ago.
 *
 * Binds `127.0.0.1:0`, lets the kernel pick a port, reads it and closes the socket. There is an
 * unavoidable race (another process may take the port before the caller binds it); the kernel
 * hands out ephemeral ports round-robin, so in practice a just-released one is not reused at once.
 *
 * @param host - The address to probe; defaults to `127.0.0.1`.
 * @returns The port number.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: could not read the port bound on ${host}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err === undefined ? resolve(port) : reject(err)));
    });
  });
}

/**
 * Tells whether something is listening on `host:port` right now (a TCP connect succeeds).
 *
 * Tests use it to prove that a stopped server really released its port.
 *
 * @param port - The TCP port.
 * @param host - The address; defaults to `127.0.0.1`.
 */
export function isPortListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (listening: boolean): void => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Tells whether `host:port` can be bound right now, i.e. no socket (listening or lingering in a
 * state that blocks `bind`) holds it.
 *
 * @param port - The TCP port.
 * @param host - The address; defaults to `127.0.0.1`.
 */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
