/**
 * The default transport: plain TCP, as MetaQ (no handshake, no TLS). The only file of the
 * client that imports `node:net`.
 */
import net from 'node:net';
import { ConnectionError } from '../../common/errors.js';
import type { BrokerAddress } from '../broker-url.js';
import type { ConnectOptions, Transport, TransportHandlers } from './transport.js';

/** TCP keep-alive probe delay: finds a dead peer behind an idle NAT long before the OS default. */
const KEEP_ALIVE_DELAY_MS = 30_000;

/** Connects over TCP with Nagle off (requests are small and latency-bound, as MetaQ's `tcp_nodelay`). */
export function connectTcp(address: BrokerAddress, handlers: TransportHandlers, options: ConnectOptions): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port });
    let open = false;
    let lastError: Error | undefined;
    const timer = setTimeout(() => {
      socket.destroy(new ConnectionError(`connecting to ${address.url} timed out after ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    socket.on('error', (error) => {
      lastError = error;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (open) handlers.close(lastError);
      else reject(lastError ?? new ConnectionError(`connection to ${address.url} closed before it opened`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      open = true;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
      socket.on('data', (chunk: Buffer) => handlers.data(chunk));
      resolve({
        write: (data) => {
          socket.write(data);
        },
        end: () => {
          socket.end();
        },
        destroy: (error) => {
          socket.destroy(error);
        },
      });
    });
  });
}
