/**
 * A scripted node-postgres pool for unit tests of the consume-transform-produce mode
 * (test/unit/xa-consume-transform-produce.test.ts): unlike fake-pg-pool.ts, its clients are
 * good enough for a real XA `PostgresBranch` (transaction status, `escapeLiteral`), so the
 * offset storage, the recover store and the XA PostgreSQL resource all run on it unchanged and
 * every statement is recorded with the client it ran on.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Pool } from 'pg';

/** One recorded statement; `client` is 0 for `pool.query`, else the checkout number (1, 2, …). */
export interface CtpQuery {
  readonly client: number;
  readonly text: string;
  readonly values: readonly unknown[] | undefined;
}

/** A scripted answer (rows / rowCount / command tag), or an error to throw. */
export type CtpResponse = { rows?: unknown[]; rowCount?: number; command?: string } | Error;

/** What a scripted statement answers. */
type CtpResult = { rows: unknown[]; rowCount: number; command: string };

class ScriptedClient extends EventEmitter {
  readonly id: number;
  readonly escapeLiteral = pg.escapeLiteral;
  status: 'I' | 'T' | 'E' = 'I';
  readonly #pool: ScriptedPgPool;

  constructor(pool: ScriptedPgPool, id: number) {
    super();
    this.#pool = pool;
    this.id = id;
  }

  getTransactionStatus(): 'I' | 'T' | 'E' {
    return this.status;
  }

  /**
   * Like node-pg: a query string of several statements separated by `; ` (sent in one round trip,
   * e.g. the marker row + `PREPARE TRANSACTION`) runs them in order — each recorded as its own
   * statement — stops at the first error, and answers an array of results.
   */
  async query(textOrConfig: string | { text: string; values?: unknown[] }, values?: unknown[]): Promise<CtpResult | CtpResult[]> {
    const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text;
    const parts = text.split('; ');
    const results: CtpResult[] = [];
    for (const part of parts) {
      const answer = await this.#pool.run(this.id, part, values ?? (typeof textOrConfig === 'string' ? undefined : textOrConfig.values));
      const verb = part.split(' ')[0] ?? '';
      if (answer instanceof Error) {
        if (this.status === 'T') this.status = 'E';
        throw answer;
      }
      if (verb === 'BEGIN') this.status = 'T';
      if (verb === 'PREPARE' || verb === 'COMMIT' || verb === 'ROLLBACK') this.status = 'I';
      results.push(answer);
    }
    return parts.length === 1 ? (results[0] as CtpResult) : results;
  }

  release(arg?: unknown): void {
    this.#pool.releases.push({ client: this.id, arg });
  }
}

/** The scripted pool; use {@link ScriptedPgPool.pool} where a `pg.Pool` is expected. */
export class ScriptedPgPool extends EventEmitter {
  readonly queries: CtpQuery[] = [];
  readonly releases: { client: number; arg: unknown }[] = [];
  readonly options = { max: 10 };
  /** Answers a statement; default: no rows, the tag from its first word. */
  respond: (text: string, values: readonly unknown[] | undefined, client: number) => CtpResponse | undefined = () => undefined;
  #checkouts = 0;

  /** The fake, typed as a pool. */
  get pool(): Pool {
    return this as unknown as Pool;
  }

  /** Statements (on `client` only, when given). */
  texts(client?: number): string[] {
    return this.queries.filter((q) => client === undefined || q.client === client).map((q) => q.text);
  }

  async query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number; command: string }> {
    const answer = await this.run(0, text, values);
    if (answer instanceof Error) throw answer;
    return answer;
  }

  async connect(): Promise<ScriptedClient> {
    return new ScriptedClient(this, ++this.#checkouts);
  }

  /** @internal */
  async run(client: number, text: string, values: readonly unknown[] | undefined): Promise<{ rows: unknown[]; rowCount: number; command: string } | Error> {
    this.queries.push({ client, text, values });
    await Promise.resolve();
    const response = this.respond(text, values, client) ?? {};
    if (response instanceof Error) return response;
    const rows = response.rows ?? [];
    return { rows, rowCount: response.rowCount ?? rows.length, command: response.command ?? (text.split(' ')[0] ?? '').toUpperCase() };
  }
}
