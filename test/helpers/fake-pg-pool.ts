/**
 * A scripted stand-in for a node-postgres `Pool`, for unit tests of code that runs SQL: it
 * records every statement (with the client it ran on) and every release, and answers through a
 * `respond` function (default: no rows, the command tag from the statement's first word).
 */
import { EventEmitter } from 'node:events';
import type { Pool, PoolClient } from 'pg';

/** One recorded statement. `client` is 0 for `pool.query`, else the checkout number (1, 2, …). */
export interface FakeQuery {
  readonly client: number;
  readonly text: string;
  readonly values: readonly unknown[] | undefined;
}

/** What `respond` returns: a result (partial) or an error to throw. */
export type FakeResponse = { rows?: unknown[]; rowCount?: number; command?: string } | Error;

/** The fake pool; use {@link FakePgPool.pool} where a `pg.Pool` is expected. */
export class FakePgPool {
  readonly queries: FakeQuery[] = [];
  /** `release(arg)` calls: the client number and the argument (an Error destroys the client). */
  readonly releases: { client: number; arg: unknown }[] = [];
  /** Checked-out clients, to check that 'error' listeners are removed. */
  readonly clients: EventEmitter[] = [];
  respond: (text: string, values: readonly unknown[] | undefined) => FakeResponse = () => ({});
  #checkouts = 0;

  /** The fake, typed as a pool. */
  get pool(): Pool {
    return this as unknown as Pool;
  }

  /** Statements only, for compact assertions. */
  texts(client?: number): string[] {
    return this.queries.filter((q) => client === undefined || q.client === client).map((q) => q.text);
  }

  async query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number; command: string }> {
    return this.#run(0, text, values);
  }

  async connect(): Promise<PoolClient> {
    const id = ++this.#checkouts;
    const client = new EventEmitter() as EventEmitter & { query: unknown; release: unknown };
    client.query = (text: string, values?: unknown[]) => this.#run(id, text, values);
    client.release = (arg?: unknown) => {
      this.releases.push({ client: id, arg });
    };
    this.clients.push(client);
    return client as unknown as PoolClient;
  }

  async #run(client: number, text: string, values: unknown[] | undefined): Promise<{ rows: unknown[]; rowCount: number; command: string }> {
    this.queries.push({ client, text, values });
    await Promise.resolve();
    const response = this.respond(text, values);
    if (response instanceof Error) throw response;
    const rows = response.rows ?? [];
    return { rows, rowCount: response.rowCount ?? rows.length, command: response.command ?? (text.split(' ')[0] ?? '').toUpperCase() };
  }
}
