/**
 * Runs a real `metaq-server` process for integration tests (from the TypeScript sources, so
 * the test always runs the code in the tree), with its JSON log lines captured.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SERVER = fileURLToPath(new URL('../../src/cli/metaq-server.ts', import.meta.url));
const BUILT_SERVER = fileURLToPath(new URL('../../dist/src/cli/metaq-server.js', import.meta.url));

/** A running (or exited) broker process. */
export interface BrokerProcess {
  readonly child: ChildProcess;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** Everything written to stderr. */
  stderr(): string;
  /** Resolves with the first log line whose `msg` equals `msg` (rejects if the process exits first). */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | NodeJS.Signals>;
}

/**
 * Starts `metaq-server <args>`; logs at info level so tests can wait for them. Tests run the
 * TypeScript sources; benchmarks pass `{ built: true }` to run the compiled `dist/` that
 * `npm start` runs (tsx adds per-call helpers that would distort the figures).
 *
 * `METAQ_BROKER_NODE_ARGS` (space-separated) adds Node options to the broker processes only,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the broker under a benchmark (Node
 * refuses `--cpu-prof` in NODE_OPTIONS).
 */
export function spawnBroker(args: string[], env: NodeJS.ProcessEnv = {}, options: { built?: boolean } = {}): BrokerProcess {
  const command = options.built === true ? [BUILT_SERVER] : ['--import', 'tsx', SERVER];
  const nodeArgs = (process.env['METAQ_BROKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...nodeArgs, ...command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, METAQ_LOG_LEVEL: 'info', ...env },
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (line: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text };
      }
      logs.push(line);
      for (const waiter of waiters.splice(0)) {
        if (waiter.msg === line['msg']) waiter.resolve(line);
        else waiters.push(waiter);
      }
    });
  }
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  return {
    child,
    logs,
    exited,
    stderr: () => stderr,
    waitForLog(msg, timeoutMs = 30_000) {
      const seen = logs.find((l) => l['msg'] === msg);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${msg}' log from the broker in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        waiters.push({
          msg,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`broker exited (${code}) before logging '${msg}'; stderr: ${stderr}`));
        });
      });
    },
  };
}
