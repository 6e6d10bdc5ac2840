/**
 * A shipped example (`examples/<name>.ts`) run as a child process exactly as its header tells a
 * user to run it: `node --import tsx examples/<name>.ts <args…>` from the repository's root,
 * configured by its environment only. Collects its output lines, lets a test wait for a line,
 * stop it as Ctrl-C would (SIGTERM) or kill it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exitWithin } from './child-exit.js';

/** How long a wait for an example's output lasts unless the caller says otherwise. */
const DEFAULT_WAIT_MS = 60_000;

/** The repository's root: examples run from there, as their headers show. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** How a run ended. */
export interface ExampleExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One run of an example; see {@link runExample}. */
export interface ExampleRun {
  /** The process id (examples print it into their messages). */
  readonly pid: number;
  /** Every stdout line so far. */
  readonly lines: string[];
  readonly stderr: () => string;
  readonly exited: Promise<ExampleExit>;
  /**
   * Resolves with the first line (already printed or still to come) matching `pattern`; rejects
   * if the run exits first or after `timeoutMs` (default 60 s), with the output tails.
   */
  readonly waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
  /** Resolves once `count` lines match `pattern`; rejects as {@link ExampleRun.waitForLine} does. */
  readonly waitForLines: (pattern: RegExp, count: number, timeoutMs?: number) => Promise<string[]>;
  /** Sends `signal` if the process still runs. */
  readonly kill: (signal: NodeJS.Signals) => void;
  /** The output tails, for assertion messages. */
  readonly describe: () => string;
}

/**
 * Starts `examples/<file>` with `args`, the test's environment plus `env` (a key set to
 * `undefined` is removed), and calls `onLine` for every stdout line.
 */
export function runExample(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, onLine?: (line: string) => void): ExampleRun {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete childEnv[key];
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'examples', file), ...args], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    onLine?.(line);
    for (const check of [...waiters]) check();
  });
  const exited = new Promise<ExampleExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const describe = (): string => `${file} ${args.join(' ')}\n--- stdout (last 20 lines)\n${lines.slice(-20).join('\n')}\n--- stderr (last 3000 chars)\n${stderr.slice(-3000)}`;
  const waitForLines = (pattern: RegExp, count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<string[]> =>
    new Promise<string[]>((resolve, reject) => {
      const fail = (why: string): void => {
        if (!waiters.delete(check)) return;
        clearTimeout(timer);
        reject(new Error(`${why} before printing ${count} line(s) matching ${pattern}\n${describe()}`));
      };
      const check = (): void => {
        const matching = lines.filter((line) => pattern.test(line));
        if (matching.length < count || !waiters.delete(check)) return;
        clearTimeout(timer);
        resolve(matching);
      };
      const timer = setTimeout(() => fail(`${timeoutMs} ms passed`), timeoutMs);
      waiters.add(check);
      check();
      void exited.then((exit) => fail(`the example exited (${JSON.stringify(exit)})`));
    });
  return {
    pid: child.pid ?? -1,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine: async (pattern, timeoutMs) => {
      const [line] = await waitForLines(pattern, 1, timeoutMs);
      const match = line === undefined ? null : pattern.exec(line);
      if (match === null) throw new Error(`no line matches ${pattern}`);
      return match;
    },
    waitForLines,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    describe,
  };
}

/** The runs a test file started, so that its `after` can kill those still running. */
export class ExampleRuns {
  readonly #running = new Set<ExampleRun>();

  /** {@link runExample}, remembered until the run exits. */
  start(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, onLine?: (line: string) => void): ExampleRun {
    const run = runExample(file, args, env, onLine);
    this.#running.add(run);
    void run.exited.then(() => this.#running.delete(run));
    return run;
  }

  /** SIGKILLs every run still going and waits for their exits. */
  async killAll(): Promise<void> {
    for (const run of this.#running) run.kill('SIGKILL');
    await Promise.all([...this.#running].map((run) => run.exited));
  }
}

/** Waits (at most `timeoutMs`) for `run` to exit and returns its exit; SIGKILLs it and rejects on timeout. */
export function exampleExit(run: ExampleRun, timeoutMs = 60_000): Promise<ExampleExit> {
  return exitWithin(run, timeoutMs, `example ${run.describe().split('\n')[0] ?? ''}`);
}
