/**
 * A private, throw-away PostgreSQL 15 server for integration tests (XA via
 * `PREPARE TRANSACTION`, "database without prepared transactions" errors, ...).
 *
 * `initdb`s a fresh cluster into a temporary directory and runs `postgres` directly (not through
 * `pg_ctl` or the Debian cluster wrappers), listening only on a free loopback port.
 *
 * @example
 * ```ts
 * const pgServer = await startPostgres();
 * after(() => pgServer.stop());
 * const client = new pg.Client({ connectionString: pgServer.connectionString });
 * ```
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ChildProcessServer, type ManagedServer, type ManagedServerOptions, type ServerKind, startOnFreePort } from './managed-server.js';
import { ensureDebianPackage } from './system-packages.js';

const BIN = '/usr/lib/postgresql/15/bin';

const POSTGRES: ServerKind = {
  name: 'PostgreSQL',
  processName: 'postgres',
  startFunction: 'startPostgres',
  dirPrefix: 'metaq-test-pg-',
  // No logging_collector: the server logs to stderr, straight into postgres.log.
  outputFile: 'postgres.log',
  logFile: 'postgres.log',
  readyWhat: 'accept connections',
  portTaken: /could not bind|Address already in use/,
  // Immediate shutdown everywhere: see PostgresServer.kill for why not SIGKILL.
  exitSignal: 'SIGQUIT',
  stop: { signal: 'SIGQUIT', graceMs: 10_000 },
  kill: { signal: 'SIGQUIT', graceMs: 10_000 },
  abortStart: { signal: 'SIGQUIT', graceMs: 5000 },
};

/** Options of {@link startPostgres}. */
export interface PostgresOptions extends ManagedServerOptions {
  /** Superuser role name created by initdb. Default `postgres`. */
  user?: string;
  /** Database to connect to; created after start unless it is `postgres`. Default `postgres`. */
  database?: string;
  /**
   * `max_prepared_transactions`. Default 64. Pass 0 to get a server that refuses
   * `PREPARE TRANSACTION`, as PostgreSQL does out of the box.
   */
  maxPreparedTransactions?: number;
  /** `max_connections`. Default 100. Must exceed the number of concurrent clients a test opens. */
  maxConnections?: number;
  /**
   * Whether to fsync. Default false: the cluster is thrown away after the test, and fsync makes
   * every commit wait for the disk. Crash tests ({@link PostgresServer.kill}) still work because
   * the OS page cache survives a process crash.
   */
  fsync?: boolean;
  /** Extra `-c name=value` settings, e.g. `{ log_statement: 'all' }`. */
  settings?: Record<string, string | number | boolean>;
}

/**
 * A running private PostgreSQL; see {@link startPostgres}. Its process ({@link pid},
 * {@link running}) is the postmaster; {@link dataDir} holds the cluster in `data/`, the socket
 * and the log.
 */
export interface PostgresServer extends ManagedServer {
  /** The superuser role (trust authentication, no password). */
  readonly user: string;
  /** The database {@link connectionString} points at. */
  readonly database: string;
  /** `postgresql://user@127.0.0.1:port/database`, ready for `new pg.Client({ connectionString })`. */
  readonly connectionString: string;
  /**
   * Stops the server for good (immediate shutdown: SIGQUIT, SIGKILL after a grace period), waits
   * for it to exit and deletes {@link dataDir}. Idempotent.
   */
  stop(): Promise<void>;
  /**
   * Simulates a crash, keeping the data: an immediate shutdown (SIGQUIT), which like a crash
   * writes no checkpoint, so the next {@link start} runs WAL recovery. Prepared transactions
   * survive it, as they would a real crash. (Not SIGKILL: that leaves backends and shared memory
   * behind, which blocks the restart for a while.)
   */
  kill(): Promise<void>;
}

/**
 * Starts a private PostgreSQL 15 on a free loopback port and waits until `SELECT 1` works.
 *
 * Installs the Debian package `postgresql-15` first if it is missing. When this process runs as
 * root, the cluster is owned by and the server runs as the `postgres` OS user, because
 * PostgreSQL refuses to run as root. Always pair with `stop()` in `after`/`finally`.
 *
 * @param options - See {@link PostgresOptions}.
 * @throws Error with the tail of the server log when initdb fails or the server does not come up.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  await ensureDebianPackage('postgresql-15', join(BIN, 'postgres'));
  return startOnFreePort(POSTGRES, options.port, (port) => new PgServer(port, options));
}

/** The uid/gid to run PostgreSQL as: the `postgres` OS user when we are root, else ourselves. */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch (err) {
    throw new Error("This process runs as root and PostgreSQL refuses to, but there is no 'postgres' OS user to run it as. Install 'postgresql-15' (it creates the user) or run the tests as a normal user.", { cause: err });
  }
}

class PgServer extends ChildProcessServer implements PostgresServer {
  readonly user: string;
  readonly database: string;
  readonly connectionString: string;
  #options: PostgresOptions;
  #identity: { uid: number; gid: number } | undefined;

  constructor(port: number, options: PostgresOptions) {
    super(POSTGRES, port, options);
    this.user = options.user ?? 'postgres';
    this.database = options.database ?? 'postgres';
    this.connectionString = `postgresql://${encodeURIComponent(this.user)}@${this.host}:${port}/${encodeURIComponent(this.database)}`;
    this.#options = options;
    this.#identity = serverIdentity();
  }

  /** Init and start, then creates {@link database}. */
  override async setUp(): Promise<void> {
    await super.setUp();
    await this.createDatabase();
  }

  /** Runs initdb into `data/`. */
  protected override async prepare(): Promise<void> {
    if (this.#identity !== undefined) chownSync(this.dataDir, this.#identity.uid, this.#identity.gid);
    const args = ['-D', join(this.dataDir, 'data'), '-U', this.user, '-A', 'trust', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'];
    await new Promise<void>((resolve, reject) => {
      execFile(join(BIN, 'initdb'), args, { cwd: this.dataDir, env: this.#env(), ...this.#identity, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err === null) resolve();
        else reject(new Error(`initdb failed (${err.message.split('\n')[0]}):\n${stdout}\n${stderr}`, { cause: err }));
      });
    });
  }

  protected override spawnProcess(out: number): ChildProcess {
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: this.host,
      port: this.port,
      unix_socket_directories: this.dataDir,
      max_prepared_transactions: this.#options.maxPreparedTransactions ?? 64,
      max_connections: this.#options.maxConnections ?? 100,
      fsync: this.#options.fsync ?? false,
      // Speed: the cluster is disposable, and a small shared_buffers starts faster.
      synchronous_commit: this.#options.fsync === true ? 'on' : 'off',
      full_page_writes: this.#options.fsync === true,
      shared_buffers: '32MB',
      logging_collector: false,
      ...this.#options.settings,
    };
    const args = ['-D', join(this.dataDir, 'data')];
    for (const [name, value] of Object.entries(settings)) {
      args.push('-c', `${name}=${typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value)}`);
    }
    return spawn(join(BIN, 'postgres'), args, { cwd: this.dataDir, env: this.#env(), stdio: ['ignore', out, out], ...this.#identity });
  }

  /** `SELECT 1` works. */
  protected override async isReady(): Promise<boolean> {
    await this.#query('postgres', 'SELECT 1');
    return true;
  }

  /** Creates {@link database} when it is not the built-in `postgres` one. */
  async createDatabase(): Promise<void> {
    if (this.database === 'postgres') return;
    await this.#query('postgres', `CREATE DATABASE "${this.database.replaceAll('"', '""')}"`);
  }

  /** Runs one statement on a short-lived connection. */
  async #query(database: string, sql: string): Promise<void> {
    const client = new pg.Client({ host: this.host, port: this.port, user: this.user, database, connectionTimeoutMillis: 2000 });
    // A server that shuts down mid-query emits 'error' on the client; without a listener that
    // would crash the process instead of failing this attempt.
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query(sql);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Environment for initdb/postgres: ours minus libpq variables that could redirect them. */
  #env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    for (const name of Object.keys(env)) {
      if (name.startsWith('PG')) delete env[name];
    }
    return env;
  }
}
