/**
 * Parent side of the consume-transform-produce worker (xa-ctp-worker.ts): spawns it (optionally
 * with a manager crash point armed), waits for its `ready` line, kills it, and keeps its stderr
 * (logs, the crash-point notice) for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { XA_CRASH_POINT_ENV } from '../../src/xa/index.js';
import { exitWithin } from './child-exit.js';
import type { CtpWorkerConfig, CtpWorkerLine } from './xa-ctp-protocol.js';

const WORKER = fileURLToPath(new URL('./xa-ctp-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How a worker ended: its exit code, or the signal that killed it. */
export interface CtpExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const live = new Set<CtpWorker>();
process.on('exit', () => {
  for (const worker of live) worker.kill('SIGKILL');
});

/** One worker process. */
export class CtpWorker {
  readonly child: ChildProcess;
  readonly lines: CtpWorkerLine[] = [];
  /** Resolves once the process exited (stdout read to its end). */
  readonly exited: Promise<CtpExit>;
  /** Resolves on the `ready` line; rejects if the worker exits or prints `fatal` first. */
  readonly ready: Promise<void>;
  #stderr = '';
  #exit: CtpExit | undefined;

  constructor(config: CtpWorkerConfig, crashPoint?: string) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env[XA_CRASH_POINT_ENV];
    if (crashPoint !== undefined) env[XA_CRASH_POINT_ENV] = crashPoint;
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const stdout = this.child.stdout;
      if (stdout === null) return reject(new Error('no stdout'));
      createInterface({ input: stdout }).on('line', (text) => {
        let line: CtpWorkerLine;
        try {
          line = JSON.parse(text) as CtpWorkerLine;
        } catch {
          this.#stderr += `[unparsable stdout] ${text}\n`;
          return;
        }
        this.lines.push(line);
        if ('ready' in line) resolve();
        if ('fatal' in line) reject(new Error(`worker failed to start: ${line.fatal}\n${this.describe()}`));
      });
      void this.exited.then(() => reject(new Error(`worker exited before it was ready\n${this.describe()}`)));
    });
    this.ready.catch(() => undefined);
  }

  /** Everything written to stderr. */
  stderr(): string {
    return this.#stderr;
  }

  /** How it ended, once it did. */
  get exit(): CtpExit | undefined {
    return this.#exit;
  }

  /** Exit and stderr tail, for assertion messages. */
  describe(): string {
    const exit = this.#exit === undefined ? 'running' : `exit code ${String(this.#exit.code)} signal ${String(this.#exit.signal)}`;
    return `ctp worker: ${exit}\n  stderr tail:\n${this.#stderr.slice(-3000)}`;
  }

  /** Sends `signal` if the process still runs. */
  kill(signal: NodeJS.Signals): void {
    if (this.#exit === undefined && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** Waits for the exit; SIGKILLs and rejects after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<CtpExit> {
    return exitWithin(this, timeoutMs, 'worker');
  }

}

/** SIGKILLs every worker still running and waits for them (for `after` hooks). */
export async function killAllCtpWorkers(): Promise<void> {
  const workers = [...live];
  for (const worker of workers) worker.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
}
