/**
 * Named crash points of the transaction manager, for crash tests (transactions.md §5.7): when
 * the environment variable `METAQ_XA_CRASH_POINT` names a point, the process kills itself with
 * SIGKILL the moment the manager reaches it, so a test can stop a coordinator exactly between
 * two steps of a two-phase commit and check what recovery does after a restart. Unset (always,
 * in production), a crash point costs one comparison. The broker's points use a different
 * variable (`METAQ_CRASH_POINT`, src/transaction/crash-points.ts), so both can be armed at once.
 *
 * Points, in the order a two-phase commit passes them:
 * - `xa.after-first-prepare`: one branch prepared (the broker's), the others not asked yet;
 * - `xa.after-prepare`: every branch prepared, COMMITTING not written (presumed abort applies);
 * - `xa.after-committing`: the decision is durable, no phase-two call made yet;
 * - `xa.after-first-commit`: the broker branch committed, the PostgreSQL one not yet;
 * - `xa.after-postgres-commit`: the PostgreSQL branch committed, the broker one not yet;
 * - `xa.before-end`: every participant committed, END not written.
 *
 * While a point is armed the manager runs prepares and phase-two calls one at a time in a fixed
 * order (broker branches first; PostgreSQL first for `xa.after-postgres-commit`), so that "the
 * first one" is the same participant in every run.
 *
 * `METAQ_XA_CRASH_SKIP=<n>` lets the armed point pass `n` times before it fires, so that a run
 * can finish `n` transactions (END written, markers not swept yet) before it dies at the point.
 *
 * Delay points (race tests, transactions.md §5.7 row 16): `METAQ_XA_DELAYS` =
 * `<point>=<maxMs>[,<point>=<maxMs>…]` makes the manager sleep a random 0…maxMs at each pass of
 * the named point (`xa.after-prepare`: prepared everywhere, no decision yet; `xa.after-committing`;
 * `xa.phase-two`: at the start of phase two, which with `phaseTwo: 'background'` is after
 * `commit()` resolved).
 * Read at the first pass, not at load, so an in-process test can set it before its first commit.
 */

import { isBrokerResourceId } from './broker-resource.js';

/** Every crash point name, so tests can iterate them. */
export const XA_CRASH_POINTS = [
  'xa.after-first-prepare',
  'xa.after-prepare',
  'xa.after-committing',
  'xa.after-first-commit',
  'xa.after-postgres-commit',
  'xa.before-end',
] as const;

/** One of {@link XA_CRASH_POINTS}. */
export type XaCrashPoint = (typeof XA_CRASH_POINTS)[number];

/** The environment variable that arms a crash point. */
export const XA_CRASH_POINT_ENV = 'METAQ_XA_CRASH_POINT';

const armed = process.env[XA_CRASH_POINT_ENV];

/** The armed crash point, or undefined (production). */
export function armedXaCrashPoint(): string | undefined {
  return armed === undefined || armed === '' ? undefined : armed;
}

/** The environment variable: how many passes of the armed point to let through before it fires. */
export const XA_CRASH_SKIP_ENV = 'METAQ_XA_CRASH_SKIP';

let skips = Math.max(0, Math.trunc(Number(process.env[XA_CRASH_SKIP_ENV] ?? 0)) || 0);

/** Kills the process with SIGKILL if `point` is the armed crash point (after the skipped passes). */
export function xaCrashPoint(point: XaCrashPoint): void {
  if (armed !== undefined && armed === point) {
    if (skips > 0) {
      skips -= 1;
      return;
    }
    process.stderr.write(`metaq: XA crash point ${point} reached; SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}

/**
 * The order in which to call participants one at a time while a crash point is armed (broker
 * resources first; PostgreSQL and other resources first for `xa.after-postgres-commit`), or
 * undefined when none is armed (then calls run in parallel).
 */
export function crashOrder<T>(items: readonly T[], resourceIdOf: (item: T) => string): T[] | undefined {
  if (armedXaCrashPoint() === undefined) return undefined;
  const brokerFirst = armed !== 'xa.after-postgres-commit';
  const rank = (item: T): number => (isBrokerResourceId(resourceIdOf(item)) === brokerFirst ? 0 : 1);
  // Stable sort: within a rank, enlistment order.
  return [...items].sort((a, b) => rank(a) - rank(b));
}

/** The environment variable of the delay points: `<point>=<maxMs>[,…]`. */
export const XA_DELAYS_ENV = 'METAQ_XA_DELAYS';

/** Points a delay can be armed at (where the manager awaits {@link xaDelayPoint}). */
export type XaDelayPoint = Extract<XaCrashPoint, 'xa.after-prepare' | 'xa.after-committing'> | 'xa.phase-two';

let delays: ReadonlyMap<string, number> | undefined;

function parseDelays(spec: string | undefined): ReadonlyMap<string, number> {
  const map = new Map<string, number>();
  for (const item of (spec ?? '').split(',')) {
    const [name, ms] = item.split('=');
    const max = Number(ms);
    if (name !== undefined && name.trim() !== '' && Number.isFinite(max) && max > 0) map.set(name.trim(), max);
  }
  return map;
}

/**
 * A random sleep of 0…maxMs when `METAQ_XA_DELAYS` arms `point`; undefined otherwise, so the
 * caller awaits nothing in production (one map lookup).
 */
export function xaDelayPoint(point: XaDelayPoint): Promise<void> | undefined {
  delays ??= parseDelays(process.env[XA_DELAYS_ENV]);
  const max = delays.get(point);
  if (max === undefined) return undefined;
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * (max + 1))));
}
