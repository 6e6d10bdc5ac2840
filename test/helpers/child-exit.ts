/**
 * Waiting for a test's child process to exit, with a bound: the shared part of the worker
 * wrappers (xa-worker-process.ts, xa-ctp-process.ts) and the example runs.
 */

/** What {@link exitWithin} needs of a child wrapper. */
export interface ExitingChild<E> {
  /** Resolves once the process exited. */
  readonly exited: Promise<E>;
  /** A description for the error message (exit, output tail). */
  describe(): string;
  /** Sends `signal` if the process still runs. */
  kill(signal: NodeJS.Signals): void;
}

/**
 * Waits for `child` to exit; after `timeoutMs` SIGKILLs it, waits for that exit and rejects with
 * `<what> did not exit within <timeoutMs> ms` and its description (taken before the kill).
 */
export async function exitWithin<E>(child: ExitingChild<E>, timeoutMs: number, what: string): Promise<E> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const result = await Promise.race([child.exited, timeout]);
  clearTimeout(timer);
  if (result !== 'timeout') return result;
  const description = child.describe();
  child.kill('SIGKILL');
  await child.exited;
  throw new Error(`${what} did not exit within ${timeoutMs} ms\n${description}`);
}
