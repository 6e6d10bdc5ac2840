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
import { chownSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { hasExited, reapOrphans, terminateChild, trackServer, writeOwnerFile } from './cleanup.js';
import { freePort } from './free-port.js';
import { ensureDebianPackage } from './system-packages.js';
import { waitFor } from './wait-for.js';

const BIN = '/usr/lib/postgresql/15/bin';
const DIR_PREFIX = 'metaq-test-pg-';
const HOST = '127.0.0.1';

/** Options of {@link startPostgres}. */
export interface PostgresOptions {
  /** TCP port; a free one is picked when omitted. */
  port?: number;
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
  /** How long to wait for the server to accept connections, in ms. Default 60 000. */
  startTimeoutMs?: number;
}

/** A running private PostgreSQL; see {@link startPostgres}. */
export interface PostgresServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The TCP port. Stays the same across {@link kill}/{@link start}. */
  readonly port: number;
  /** The superuser role (trust authentication, no password). */
  readonly user: string;
  /** The database {@link connectionString} points at. */
  readonly database: string;
  /** `postgresql://user@127.0.0.1:port/database`, ready for `new pg.Client({ connectionString })`. */
  readonly connectionString: string;
  /** The private temporary directory (cluster in `data/`, socket, log); deleted by {@link stop}. */
  readonly dataDir: string;
  /** The server log (inside {@link dataDir}); read it when a test fails oddly. */
  readonly logFile: string;
  /** The postmaster's pid, or undefined while the server is not running. */
  readonly pid: number | undefined;
  /** True while the postmaster runs. */
  readonly running: boolean;
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
  /** Starts the server again after {@link kill}, on the same port and data; waits until ready. */
  start(): Promise<void>;
  /** {@link kill} followed by {@link start}. */
  restart(): Promise<void>;
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
  reapOrphans(DIR_PREFIX, 'SIGQUIT');
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort(HOST));
    const server = new PgServer(port, options);
    try {
      await server.init();
      await server.start();
      await server.createDatabase();
      return server;
    } catch (err) {
      // Why retry: the free port may have been taken between freePort() and the bind.
      const portTaken = /could not bind|Address already in use/.test(server.readLog());
      await server.stop();
      if (!portTaken || options.port !== undefined || attempt >= 3) throw err;
    }
  }
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

class PgServer implements PostgresServer {
  readonly host = HOST;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  readonly connectionString: string;
  dataDir = '';
  logFile = '';
  #options: PostgresOptions;
  #identity: { uid: number; gid: number } | undefined;
  #child: ChildProcess | undefined;
  #untrack: (() => void) | undefined;
  #stopped = false;

  constructor(port: number, options: PostgresOptions) {
    this.port = port;
    this.user = options.user ?? 'postgres';
    this.database = options.database ?? 'postgres';
    this.connectionString = `postgresql://${encodeURIComponent(this.user)}@${HOST}:${port}/${encodeURIComponent(this.database)}`;
    this.#options = options;
    this.#identity = serverIdentity();
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && !hasExited(this.#child);
  }

  /** Creates the directory and runs initdb into `data/`. */
  async init(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    writeOwnerFile(this.dataDir, undefined);
    this.logFile = join(this.dataDir, 'postgres.log');
    this.#untrack = trackServer({ name: `PostgreSQL ${HOST}:${this.port}`, dir: this.dataDir, pid: () => this.pid, exitSignal: 'SIGQUIT' });
    if (this.#identity !== undefined) chownSync(this.dataDir, this.#identity.uid, this.#identity.gid);
    const args = ['-D', join(this.dataDir, 'data'), '-U', this.user, '-A', 'trust', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'];
    await new Promise<void>((resolve, reject) => {
      execFile(join(BIN, 'initdb'), args, { cwd: this.dataDir, env: this.#env(), ...this.#identity, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err === null) resolve();
        else reject(new Error(`initdb failed (${err.message.split('\n')[0]}):\n${stdout}\n${stderr}`, { cause: err }));
      });
    });
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error(`PostgreSQL on port ${this.port} was stopped and its data deleted; start a new one with startPostgres().`);
    if (this.running) return;
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: HOST,
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
    const out = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(join(BIN, 'postgres'), args, { cwd: this.dataDir, env: this.#env(), stdio: ['ignore', out, out], ...this.#identity });
    } finally {
      closeSync(out); // the child has its own copy of the descriptor
    }
    // Why unref: a test that forgets stop() must not hang the test run; the exit handler in
    // cleanup.ts shuts the server down when the process ends.
    child.unref();
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    this.#child = child;
    writeOwnerFile(this.dataDir, child.pid);
    try {
      await Promise.race([
        spawnError,
        waitFor(() => this.#query('postgres', 'SELECT 1').then(() => true), {
          timeoutMs: this.#options.startTimeoutMs ?? 60_000,
          intervalMs: 100,
          what: `PostgreSQL on ${HOST}:${this.port} to accept connections`,
          abortIf: () => {
            if (hasExited(child)) throw new Error(`postgres exited during start-up (code ${child.exitCode}, signal ${child.signalCode})`);
          },
        }),
      ]);
    } catch (err) {
      await terminateChild(child, 'SIGQUIT', 5000);
      throw new Error(`PostgreSQL did not start on ${HOST}:${this.port}: ${(err as Error).message}\n--- log tail (${this.logFile}) ---\n${this.readLog().split('\n').slice(-30).join('\n')}`, { cause: err });
    }
  }

  /** Creates {@link database} when it is not the built-in `postgres` one. */
  async createDatabase(): Promise<void> {
    if (this.database === 'postgres') return;
    await this.#query('postgres', `CREATE DATABASE "${this.database.replaceAll('"', '""')}"`);
  }

  async kill(): Promise<void> {
    if (this.#child !== undefined) await terminateChild(this.#child, 'SIGQUIT', 10_000);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#child !== undefined) await terminateChild(this.#child, 'SIGQUIT', 10_000);
    if (this.dataDir !== '') await rm(this.dataDir, { recursive: true, force: true });
    this.#untrack?.();
  }

  /** The server log, or '' when there is none yet. */
  readLog(): string {
    try {
      return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    } catch {
      return '';
    }
  }

  /** Runs one statement on a short-lived connection. */
  async #query(database: string, sql: string): Promise<void> {
    const client = new pg.Client({ host: HOST, port: this.port, user: this.user, database, connectionTimeoutMillis: 2000 });
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
