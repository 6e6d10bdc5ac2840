/**
 * Parent side of the XA order worker (xa-order-worker.ts): spawns it, parses its JSON lines as
 * they come, and tells how it ended (exit code, or the signal that killed it — SIGKILL at an
 * armed crash point).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { XA_CRASH_POINT_ENV, type TransactionManagerMetrics } from '../../src/xa/index.js';
import { exitWithin } from './child-exit.js';
import { isRecoveredLine, type XaWorkerConfig, type XaWorkerLine } from './xa-worker-protocol.js';

const WORKER = fileURLToPath(new URL('./xa-order-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How a worker process ended. */
export interface XaWorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Options of {@link spawnXaWorker}. */
export interface SpawnXaWorkerOptions {
  /** Arms this crash point of the manager (`METAQ_XA_CRASH_POINT`). */
  readonly crashPoint?: string;
  /** More environment variables. */
  readonly env?: NodeJS.ProcessEnv;
}

const live = new Set<XaWorker>();
// A test process that ends without its `after` hooks (a timeout, Ctrl-C: cleanup.ts exits on the
// signal) must not leave workers placing orders against servers that are gone.
process.on('exit', () => {
  for (const worker of live) worker.kill('SIGKILL');
});

/** A running (or exited) worker process and what it printed. */
export class XaWorker {
  readonly config: XaWorkerConfig;
  readonly child: ChildProcess;
  /** Every parsed stdout line, in order. */
  readonly lines: XaWorkerLine[] = [];
  /** Order ids reported committed / rolled back / heuristic / failed with an unknown outcome. */
  readonly committed = new Set<number>();
  readonly rolledBack = new Set<number>();
  readonly heuristic = new Set<number>();
  readonly failed = new Set<number>();
  /** Resolves once the process exited. */
  readonly exited: Promise<XaWorkerExit>;
  #stderr = '';
  #exit: XaWorkerExit | undefined;
  readonly #listeners = new Set<(line: XaWorkerLine) => void>();

  constructor(config: XaWorkerConfig, options: SpawnXaWorkerOptions = {}) {
    this.config = config;
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    delete env[XA_CRASH_POINT_ENV];
    if (options.crashPoint !== undefined) env[XA_CRASH_POINT_ENV] = options.crashPoint;
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
      // Bounded: a worker retrying against a dead server logs a lot.
      if (this.#stderr.length > 1_000_000) this.#stderr = this.#stderr.slice(-500_000);
    });
    const stdout = this.child.stdout;
    if (stdout !== null) {
      createInterface({ input: stdout }).on('line', (text) => {
        let line: XaWorkerLine;
        try {
          line = JSON.parse(text) as XaWorkerLine;
        } catch {
          this.#stderr += `[unparsable stdout] ${text}\n`;
          return;
        }
        this.lines.push(line);
        if ('committed' in line) this.committed.add(line.committed);
        else if ('rolledBack' in line) this.rolledBack.add(line.rolledBack);
        else if ('heuristic' in line) this.heuristic.add(line.heuristic);
        else if ('failed' in line) this.failed.add(line.failed);
        for (const listener of this.#listeners) listener(line);
      });
    }
    // 'close', not 'exit': stdout is read to its end before the worker counts as exited.
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
  }

  /** Everything the worker wrote to stderr (its logs, the crash point notice). */
  stderr(): string {
    return this.#stderr;
  }

  /** The exit, once it happened. */
  get exit(): XaWorkerExit | undefined {
    return this.#exit;
  }

  /** A description for assertion messages: exit, last lines, stderr tail. */
  describe(): string {
    const exit = this.#exit === undefined ? 'running' : `exit code ${String(this.#exit.code)} signal ${String(this.#exit.signal)}`;
    const last = this.lines.slice(-5).map((l) => JSON.stringify(l).slice(0, 600));
    return `worker ${this.config.nodeName} (${this.config.mode}): ${exit}\n  last lines:\n    ${last.join('\n    ')}\n  stderr tail:\n${this.#stderr.slice(-3000)}`;
  }

  /** Resolves with the first line (already printed or to come) for which `match` is true. */
  waitForLine(match: (line: XaWorkerLine) => boolean, what: string, timeoutMs = 30_000): Promise<XaWorkerLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
      };
      const listener = (line: XaWorkerLine): void => {
        if (!match(line)) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`));
      }, timeoutMs);
      this.#listeners.add(listener);
      void this.exited.then(() => {
        if (!this.#listeners.has(listener)) return;
        done();
        reject(new Error(`the worker exited before ${what}\n${this.describe()}`));
      });
    });
  }

  /** Waits for the exit; SIGKILLs the worker and rejects after `timeoutMs`. */
  waitForExit(timeoutMs = 60_000): Promise<XaWorkerExit> {
    return exitWithin(this, timeoutMs, 'worker');
  }

  /** Sends `signal` if the process still runs. */
  kill(signal: NodeJS.Signals): void {
    if (this.#exit === undefined && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** Spawns a worker (see xa-order-worker.ts); pair with {@link killAllXaWorkers} in `after`. */
export function spawnXaWorker(config: XaWorkerConfig, options: SpawnXaWorkerOptions = {}): XaWorker {
  return new XaWorker(config, options);
}

/** Spawns a worker and waits for it to exit (at most `timeoutMs`). */
export async function runXaWorker(config: XaWorkerConfig, options: SpawnXaWorkerOptions & { readonly timeoutMs?: number } = {}): Promise<XaWorker> {
  const worker = spawnXaWorker(config, options);
  await worker.waitForExit(options.timeoutMs ?? 90_000);
  return worker;
}

/**
 * Runs a worker in `recover` mode (`config.mode` must be `recover`) to its end and asserts that it
 * converged: exit 0 and a final "recovered" line. Returns the worker and its manager's metrics.
 */
export async function runRecoverWorker(config: XaWorkerConfig): Promise<{ worker: XaWorker; metrics: TransactionManagerMetrics }> {
  const worker = await runXaWorker(config, { timeoutMs: 60_000 });
  assert.equal(worker.exit?.code, 0, `the recover worker of ${config.nodeName} must converge and exit 0\n${worker.describe()}`);
  const last = worker.lines.find(isRecoveredLine);
  assert.ok(last !== undefined && last.recovered, `no "recovered" line\n${worker.describe()}`);
  return { worker, metrics: last.metrics };
}

/** SIGKILLs every worker still running (for `after` hooks) and waits for them. */
export async function killAllXaWorkers(): Promise<void> {
  const workers = [...live];
  for (const worker of workers) worker.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
}
