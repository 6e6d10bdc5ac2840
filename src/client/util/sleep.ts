/**
 * Waiting that a `close()` can cut short: every delay of a consumer (back-off, retry) goes
 * through here so that shutting down never waits for a timer.
 */

/**
 * Resolves `true` after `ms`, or `false` as soon as `signal` aborts (at once if it already has).
 * With `unref`, the timer does not keep the process alive (for background chores).
 */
export function sleep(ms: number, signal: AbortSignal, unref = false): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    if (unref) timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** What {@link untilAborted} resolves with when the signal wins. */
export const ABORTED: unique symbol = Symbol('aborted');

/**
 * Resolves like `promise`, or with {@link ABORTED} as soon as `signal` aborts. The promise
 * itself keeps running (a request stays in flight until answered or timed out); its outcome
 * is then ignored.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve(ABORTED);
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
