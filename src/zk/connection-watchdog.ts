/**
 * Works around two gaps of `node-zookeeper-client` (1.1.x) that otherwise leave a client stuck
 * for good:
 * - a handshake that gets no answer is never timed out: the connect timer is cleared once TCP
 *   connects and the idle timer is only set once the session is confirmed. Seen in practice after a
 *   server restart (about one reconnection in ten to a just-started ZooKeeper hangs this way);
 * - a connected socket to a server that stopped answering (hung process, half-open connection)
 *   is never given up: the library pings, but never checks that anything comes back. The
 *   session then expires on the ensemble while the client still believes it is connected.
 *
 * The watchdog looks at the library's connection manager (private API, so every access is
 * guarded and it does nothing if the shape is not what it expects) and destroys such a socket;
 * the library then reconnects by itself (to the next server, learning of an expiry if any), as
 * after any connection loss. The Java client uses the same bounds: a handshake or a silence
 * longer than about a third / two thirds of the session timeout ends the connection.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { LibraryClient } from './library.js';

/** `ConnectionManager.STATES` of the library (not exported by it). */
const CONNECTING = 1;
const CONNECTED = 2;

interface ConnectionManagerShape {
  readonly state?: unknown;
  readonly socket?: unknown;
}

function isSocket(value: unknown): value is Socket {
  return typeof value === 'object' && value !== null && 'destroy' in value && 'readyState' in value && typeof (value as Socket).on === 'function';
}

/**
 * Watches one library client until the returned function is called.
 * @param sessionTimeoutMs - the requested session timeout; the negotiated one is used once known.
 */
export function watchConnection(lib: LibraryClient, sessionTimeoutMs: number, log: Logger): () => void {
  const manager = (lib as unknown as { readonly connectionManager?: ConnectionManagerShape }).connectionManager;
  if (manager === undefined) {
    log.debug('node-zookeeper-client internals not as expected; connection watchdog disabled');
    return () => undefined;
  }
  const hooked = new WeakSet<Socket>();
  let handshake: { socket: Socket; since: number } | undefined;
  let lastData = Date.now();
  const limits = (): { handshakeMs: number; silenceMs: number } => {
    const negotiated = lib.getSessionTimeout();
    const session = Number.isFinite(negotiated) && negotiated > 0 ? negotiated : sessionTimeoutMs;
    return { handshakeMs: Math.max(500, Math.floor(session / 3)), silenceMs: Math.max(1000, Math.floor((session * 2) / 3)) };
  };
  const check = (): void => {
    const socket = manager.socket;
    if (!isSocket(socket) || socket.destroyed) return;
    const { handshakeMs, silenceMs } = limits();
    const now = Date.now();
    if (manager.state === CONNECTING && socket.readyState === 'open') {
      if (handshake?.socket !== socket) handshake = { socket, since: now };
      else if (now - handshake.since >= handshakeMs) {
        log.warn({ waitedMs: now - handshake.since }, 'ZooKeeper did not answer the connection handshake; reconnecting');
        handshake = undefined;
        socket.destroy();
      }
      return;
    }
    handshake = undefined;
    if (manager.state !== CONNECTED) return;
    if (!hooked.has(socket)) {
      hooked.add(socket);
      lastData = now;
      socket.on('data', () => {
        lastData = Date.now();
      });
      return;
    }
    if (now - lastData >= silenceMs) {
      log.warn({ silentMs: now - lastData }, 'nothing heard from ZooKeeper (not even ping answers); dropping the connection');
      socket.destroy();
    }
  };
  const interval = Math.max(100, Math.floor(limits().handshakeMs / 4));
  const timer = setInterval(check, interval);
  timer.unref();
  return () => clearInterval(timer);
}
