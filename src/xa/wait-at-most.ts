/** Bounded waiting for work that must not be cancelled (phase two keeps going after the wait). */

/**
 * Resolves with `work`'s value, or with undefined once `ms` passed (`work` keeps running; its
 * later rejection is the caller's to handle). `Infinity` waits for `work`.
 */
export async function waitAtMost<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  if (!Number.isFinite(ms)) return work;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
