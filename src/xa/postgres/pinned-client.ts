/**
 * A pool client checked out for a while (a branch's whole work phase, or one phase-two call),
 * watched for connection errors and given back to the pool exactly once.
 *
 * Why the 'error' listener: pg-pool removes its own listener from a client while it is checked
 * out, and a pg client whose backend dies between two statements (`pg_terminate_backend`, a
 * server restart) emits 'error'. Without a listener that is an uncaught exception that kills the
 * process — exactly during the database outage the transaction manager must survive.
 *
 * Why `release(err)` for a broken client: pg-pool then closes it instead of handing a dead (or
 * mid-transaction) connection to the next user.
 */
import type { Pool, PoolClient } from 'pg';
import { isPostgresConnectionError } from './connection-errors.js';

/** A checked-out pool client plus what happened to its connection. */
export class PinnedClient {
  /** The pg client; valid until {@link release}. */
  readonly client: PoolClient;
  #broken: unknown;
  #released = false;
  readonly #onError = (err: Error): void => {
    this.#broken ??= err;
  };

  constructor(client: PoolClient) {
    this.client = client;
    client.on('error', this.#onError);
  }

  /** Checks a client out of `pool` (rejects with the pool's error, e.g. ECONNREFUSED). */
  static async pin(pool: Pool): Promise<PinnedClient> {
    return new PinnedClient(await pool.connect());
  }

  /** The error that broke the connection, or undefined while it looks healthy. */
  get brokenBy(): unknown {
    return this.#broken;
  }

  /** True once the connection failed (an 'error' event or a connection error of a statement). */
  get broken(): boolean {
    return this.#broken !== undefined;
  }

  /** True after {@link release}. */
  get released(): boolean {
    return this.#released;
  }

  /** Records `err` as breaking the connection when it is a connection error; returns `err`. */
  noteError(err: unknown): unknown {
    if (isPostgresConnectionError(err)) this.#broken ??= err;
    return err;
  }

  /**
   * Gives the client back to the pool, once. A broken client — or one the caller wants
   * discarded (`discard`: its session state is not known to be clean) — is destroyed.
   */
  release(discard = false): void {
    if (this.#released) return;
    this.#released = true;
    this.client.removeListener('error', this.#onError);
    if (this.#broken !== undefined || discard) {
      const reason = this.#broken instanceof Error ? this.#broken : new Error('discarded by the XA PostgreSQL resource');
      this.client.release(reason);
    } else {
      this.client.release();
    }
  }
}

/**
 * Runs `fn` on a client checked out of `pool` and always releases it (destroying it when its
 * connection broke). Rejections of `pool.connect()` and of `fn` pass through unchanged.
 */
export async function withPinnedClient<T>(pool: Pool, fn: (pinned: PinnedClient) => Promise<T>): Promise<T> {
  const pinned = await PinnedClient.pin(pool);
  try {
    return await fn(pinned);
  } catch (err) {
    throw pinned.noteError(err);
  } finally {
    pinned.release();
  }
}
