/**
 * Polling until a condition holds, for readiness checks of test servers.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Pause between two attempts, in milliseconds. Default 100. */
  intervalMs?: number;
  /** What is being waited for, used in the timeout message, e.g. `"ZooKeeper on 127.0.0.1:2181"`. */
  what?: string;
  /**
   * Called before each attempt; if it throws, waiting stops at once with that error. Used to
   * fail fast when the process being waited on has already exited instead of burning the timeout.
   */
  abortIf?: () => void;
}

/**
 * Calls `predicate` every `intervalMs` until it returns (or resolves to) a truthy value, and
 * returns that value.
 *
 * A predicate that throws counts as "not yet": servers that are still starting refuse
 * connections, and that is exactly what is being polled for. The last such error is attached as
 * `cause` of the timeout error so that a server that never comes up still explains why.
 *
 * @param predicate - The condition; may be async.
 * @param options - Timeout, interval, description.
 * @returns The first truthy value the predicate produced.
 * @throws Error naming `what` when the timeout expires.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 100;
  const what = options.what ?? 'condition';
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let attempts = 0;
  for (;;) {
    options.abortIf?.();
    attempts++;
    try {
      const value = await predicate();
      if (value !== undefined && value !== null && value !== false && value !== 0 && value !== '') {
        return value as NonNullable<T>;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` Last error: ${lastError.message}` : '';
      throw new Error(
        `Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${what}.${detail}`,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}
