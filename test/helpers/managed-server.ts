/**
 * What the private test servers in this folder (ZooKeeper, PostgreSQL) have in common: the
 * public lifecycle interface, starting on a free port with a retry when the port was taken, and
 * the life of the one child process each of them runs (spawn, readiness wait, kill, stop,
 * cleanup registration, log tail).
 *
 * A concrete server describes itself once with a {@link ServerKind}, extends
 * {@link ChildProcessServer} with what only it knows (writing its configuration, the command
 * line, the readiness probe) and is started with {@link startOnFreePort}.
 */
import { type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasExited, reapOrphans, terminateChild, trackServer, writeOwnerFile } from './cleanup.js';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

/** The address every test server listens on. */
export const LOOPBACK_HOST = '127.0.0.1';

/** Options every test server accepts. */
export interface ManagedServerOptions {
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** How long to wait for the server to become ready, in ms. Default 60 000. */
  startTimeoutMs?: number;
}

/** A running private test server: one child process with its own temporary directory. */
export interface ManagedServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The port it listens on. Stays the same across {@link kill}/{@link start}. */
  readonly port: number;
  /** The private temporary directory (configuration, data, logs); deleted by {@link stop}. */
  readonly dataDir: string;
  /** The server's log file (inside {@link dataDir}); read it when a test fails oddly. */
  readonly logFile: string;
  /** The server process's pid, or undefined while the server is not running. */
  readonly pid: number | undefined;
  /** True while the server process runs. */
  readonly running: boolean;
  /**
   * Stops the server for good, waits for its process to exit and deletes {@link dataDir}.
   * Idempotent; never throws for an already-stopped server.
   */
  stop(): Promise<void>;
  /** Simulates a crash: ends the process and waits for it to exit, keeping {@link dataDir}. */
  kill(): Promise<void>;
  /** Starts the server again after {@link kill}, on the same port and data; waits until ready. */
  start(): Promise<void>;
  /** {@link kill} followed by {@link start}. */
  restart(): Promise<void>;
}

/** A signal and how long to wait for the process to exit before SIGKILLing it. */
export interface Termination {
  readonly signal: NodeJS.Signals;
  readonly graceMs: number;
}

/** The fixed facts about one kind of test server. */
export interface ServerKind {
  /** Product name for messages, e.g. `ZooKeeper`. */
  readonly name: string;
  /** The process in "exited during start-up" messages, e.g. `the ZooKeeper JVM`. */
  readonly processName: string;
  /** The public function that starts one, named in the error of a start after stop(). */
  readonly startFunction: string;
  /** Prefix of the temporary directory name; {@link reapOrphans} looks for it. */
  readonly dirPrefix: string;
  /** File in the directory that receives the process's stdout and stderr. */
  readonly outputFile: string;
  /** The server's own log file in the directory (may equal {@link outputFile}). */
  readonly logFile: string;
  /** What readiness means, completing "waiting for ZooKeeper on host:port to ...". */
  readonly readyWhat: string;
  /** Matches the log of a server that could not bind its port because it was taken. */
  readonly portTaken: RegExp;
  /** Signal for the exit handler and orphan reaping (see `TrackedServer.exitSignal`). */
  readonly exitSignal: NodeJS.Signals;
  /** How {@link ChildProcessServer.stop} ends the process. */
  readonly stop: Termination;
  /** How {@link ChildProcessServer.kill} ends the process. */
  readonly kill: Termination;
  /** How a process that failed to become ready is ended. */
  readonly abortStart: Termination;
}

/**
 * Creates, sets up and starts a server on a free port (or on `port` when given). Reaps servers
 * orphaned by dead test processes first.
 *
 * @param kind - The kind of server, for orphan reaping.
 * @param port - A fixed port, or undefined to pick a free one.
 * @param create - Makes the (not yet set up) server for a port.
 * @returns The server, set up and ready.
 * @throws The set-up error; the half-started server has been stopped and its directory deleted.
 */
export async function startOnFreePort<S extends ChildProcessServer>(
  kind: ServerKind,
  port: number | undefined,
  create: (port: number) => S,
): Promise<S> {
  reapOrphans(kind.dirPrefix, kind.exitSignal);
  // Why retry: freePort() only says the port was free a moment ago; if another process grabbed
  // it before the server bound it, pick another one rather than fail the test.
  for (let attempt = 1; ; attempt++) {
    const server = create(port ?? (await freePort(LOOPBACK_HOST)));
    try {
      await server.setUp();
      return server;
    } catch (err) {
      const portTaken = kind.portTaken.test(server.readLog());
      await server.stop();
      if (!portTaken || port !== undefined || attempt >= 3) throw err;
    }
  }
}

/**
 * A {@link ManagedServer} that runs one child process in a private temporary directory.
 * Subclasses supply the directory's contents, the command line and the readiness probe.
 */
export abstract class ChildProcessServer implements ManagedServer {
  readonly host = LOOPBACK_HOST;
  readonly port: number;
  dataDir = '';
  logFile = '';
  protected readonly kind: ServerKind;
  #startTimeoutMs: number;
  #child: ChildProcess | undefined;
  #untrack: (() => void) | undefined;
  #stopped = false;

  constructor(kind: ServerKind, port: number, options: ManagedServerOptions) {
    this.kind = kind;
    this.port = port;
    this.#startTimeoutMs = options.startTimeoutMs ?? 60_000;
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && !hasExited(this.#child);
  }

  /** E.g. `ZooKeeper 127.0.0.1:2181`. */
  get #label(): string {
    return `${this.kind.name} ${this.host}:${this.port}`;
  }

  /** Creates the directory, registers it for cleanup on exit, then calls {@link prepare}. */
  async init(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), this.kind.dirPrefix));
    writeOwnerFile(this.dataDir, undefined);
    this.logFile = join(this.dataDir, this.kind.logFile);
    this.#untrack = trackServer({ name: this.#label, dir: this.dataDir, pid: () => this.pid, exitSignal: this.kind.exitSignal });
    await this.prepare();
  }

  /** Everything the first start needs: {@link init} and {@link start}; extend for more. */
  async setUp(): Promise<void> {
    await this.init();
    await this.start();
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error(`${this.#label} was stopped and its data deleted; start a new one with ${this.kind.startFunction}().`);
    if (this.running) return;
    const out = openSync(join(this.dataDir, this.kind.outputFile), 'a');
    let child: ChildProcess;
    try {
      child = this.spawnProcess(out);
    } finally {
      closeSync(out); // the child has its own copy of the descriptor
    }
    // Why unref: a test that forgets stop() must not hang the test run; the exit handler in
    // cleanup.ts ends the server when the process ends.
    child.unref();
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    this.#child = child;
    writeOwnerFile(this.dataDir, child.pid);
    try {
      await Promise.race([
        spawnError,
        waitFor(() => this.isReady(), {
          timeoutMs: this.#startTimeoutMs,
          intervalMs: 100,
          what: `${this.kind.name} on ${this.host}:${this.port} to ${this.kind.readyWhat}`,
          abortIf: () => {
            if (hasExited(child)) throw new Error(`${this.kind.processName} exited during start-up (code ${child.exitCode}, signal ${child.signalCode})`);
          },
        }),
      ]);
    } catch (err) {
      await terminateChild(child, this.kind.abortStart.signal, this.kind.abortStart.graceMs);
      throw new Error(`${this.kind.name} did not start on ${this.host}:${this.port}: ${(err as Error).message}\n--- log tail (${this.logFile}) ---\n${this.readLog().split('\n').slice(-30).join('\n')}`, { cause: err });
    }
  }

  async kill(): Promise<void> {
    if (this.#child !== undefined) await terminateChild(this.#child, this.kind.kill.signal, this.kind.kill.graceMs);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#child !== undefined) await terminateChild(this.#child, this.kind.stop.signal, this.kind.stop.graceMs);
    if (this.dataDir !== '') await rm(this.dataDir, { recursive: true, force: true });
    this.#untrack?.();
  }

  /** The process's stdout/stderr followed by the server's log (once), or '' when there is none yet. */
  readLog(): string {
    if (this.dataDir === '') return '';
    let text = '';
    for (const file of new Set([join(this.dataDir, this.kind.outputFile), this.logFile])) {
      try {
        text += readFileSync(file, 'utf8');
      } catch {
        // not written yet
      }
    }
    return text;
  }

  /** Fills the fresh {@link dataDir} (configuration, initial data) before the first start. */
  protected abstract prepare(): Promise<void>;

  /**
   * Spawns the server process in {@link dataDir}.
   *
   * @param out - File descriptor for the child's stdout and stderr (closed again by the caller).
   */
  protected abstract spawnProcess(out: number): ChildProcess;

  /** One readiness probe; may throw or return false while the server is still starting. */
  protected abstract isReady(): Promise<boolean>;
}
