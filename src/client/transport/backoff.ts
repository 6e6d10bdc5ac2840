/**
 * Reconnect delays: exponential with jitter, so that many clients of a restarted broker do not
 * reconnect in lock-step (nats.js's `reconnectTimeWait` + `reconnectJitter`).
 */

/** Settings of {@link backoffDelay}. */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  readonly initialDelayMs: number;
  /** Upper bound of any delay, in ms. */
  readonly maxDelayMs: number;
  /**
   * Fraction of the delay that is random, 0–1: the delay is drawn uniformly from
   * `[base × (1 − jitter), base]`. 0 = no jitter.
   */
  readonly jitter: number;
}

/**
 * The delay before retry number `attempt` (0-based): `min(maxDelay, initialDelay × 2^attempt)`,
 * minus up to `jitter` of it at random.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, attempt), 30);
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.round(base * (1 - jitter * random()));
}
