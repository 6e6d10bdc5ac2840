/**
 * What the parts of the transaction manager share (the manager, its transactions, phase two,
 * recovery): the log, the registered resources, counters, the retry policy and the signal that
 * `close()` aborts. One object passed around instead of module state, so several managers (tests,
 * several nodes in one process) never mix.
 */
import type { Logger } from '../common/logger.js';
import type { BackoffOptions } from '../client/transport/backoff.js';
import type { MarkerSweeper } from './marker-sweeper.js';
import type { MetricsCounters } from './metrics.js';
import type { RecoverableResource, ResourceId } from './resource.js';
import type { TrackedLog } from './tracked-log.js';

/** Back-off of retried phase-two calls (and of retried log writes during phase two). */
export interface PhaseTwoRetryOptions extends BackoffOptions {
  /** Log a retried call at `error` level (instead of `warn`) from this attempt on. Default 5. */
  readonly alertAfterAttempts?: number;
}

/** Default back-off of phase-two retries: 100 ms doubling up to 30 s, 20 % jitter. */
export const DEFAULT_PHASE_TWO_RETRY: Required<PhaseTwoRetryOptions> = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 30_000,
  jitter: 0.2,
  alertAfterAttempts: 5,
});

/** The shared state of one transaction manager. */
export interface CoordinatorContext {
  readonly log: TrackedLog;
  readonly logger: Logger;
  readonly counters: MetricsCounters;
  readonly retry: Required<PhaseTwoRetryOptions>;
  /** Aborted by `close()`: retry loops stop, waits end. */
  readonly signal: AbortSignal;
  readonly markers: MarkerSweeper;
  /** The registered resource with this id. */
  resource(resourceId: ResourceId): RecoverableResource | undefined;
}
