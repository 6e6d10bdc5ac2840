/**
 * The client session of one `metaq` command: a session factory for the one broker, plus the
 * "fail fast" the CLI needs. The client library waits and reconnects (a request fails only when
 * its timeout passes); a person typing a command wants to hear at once that the broker is not
 * there. So until the first connection is made, the first failed attempt ends the command with
 * `cannot connect to <url> (<reason>)`. After that, the library's reconnects apply (a long
 * `metaq sub` survives a broker restart).
 */
import { createMessageSessionFactory, type MessageSessionFactory } from '../../client/index.js';
import { ConnectionError } from '../../common/errors.js';
import { cannotConnectError } from '../output/errors.js';
import { deferred } from './context.js';

/** How long closing the session may take before the command ends anyway. */
const CLOSE_DEADLINE_MS = 5_000;

/** A command's connection to the broker. */
export interface CliSession {
  readonly serverUrl: string;
  readonly factory: MessageSessionFactory;
  /** True once a connection to the broker was open. */
  everConnected(): boolean;
  /**
   * Resolves like `work`, but rejects with the "cannot connect" error as soon as a connection
   * attempt fails before the broker was ever reached.
   */
  guard<T>(work: Promise<T>): Promise<T>;
  /** Closes the factory (bounded by a deadline). */
  close(): Promise<void>;
}

/** Opens the session; nothing is sent until a command makes a request. */
export function openSession(serverUrl: string, options: { requestTimeoutMs?: number | undefined } = {}): CliSession {
  const factory = createMessageSessionFactory({
    serverUrl,
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
  });
  let connected = false;
  const failed = deferred<never>();
  failed.promise.catch(() => undefined); // observed through guard(); never an unhandled rejection
  const offConnect = factory.on('connection.connect', () => {
    connected = true;
    offConnect();
    offFailure();
  });
  const offFailure = factory.on('connection.reconnect_scheduled', ({ error }) => {
    if (!connected) failed.reject(cannotConnectError(serverUrl, error));
  });
  return {
    serverUrl,
    factory,
    everConnected: () => connected,
    async guard<T>(work: Promise<T>): Promise<T> {
      work.catch(() => undefined); // if the connection failure wins, the request's own rejection is expected
      try {
        return await Promise.race([work, failed.promise]);
      } catch (error) {
        // A request that timed out waiting for a first connection is the same story.
        if (!connected && error instanceof ConnectionError) throw cannotConnectError(serverUrl, error.cause ?? error);
        throw error;
      }
    },
    async close() {
      offConnect();
      offFailure();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_DEADLINE_MS);
        timer.unref();
      });
      await Promise.race([factory.close().catch(() => undefined), deadline]);
      clearTimeout(timer);
    },
  };
}
