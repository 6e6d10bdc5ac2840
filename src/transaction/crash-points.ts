/**
 * Named crash points for crash tests: when the environment variable `METAQ_CRASH_POINT` names
 * a point, the broker kills itself with SIGKILL the moment it reaches that point, so a test can
 * stop it exactly between two steps of a commit or a prepare. Unset (always, in production),
 * a crash point costs one comparison.
 *
 * Points (in the order a commit passes them):
 * - `prepare.before-log`, `prepare.after-log` (the PREPARE record is on disk), `prepare.before-answer`
 * - `commit.before-log`, `commit.after-log` (COMMIT record written/forced), `commit.after-append`
 *   (batches in the partitions), `commit.after-applied` (APPLIED record written), `commit.before-answer`
 * - `rollback.after-log`
 * - `checkpoint.after-write` (checkpoint file written, old journal files not yet deleted)
 */

/** Every crash point name, so tests can iterate them. */
export const CRASH_POINTS = [
  'prepare.before-log',
  'prepare.after-log',
  'prepare.before-answer',
  'commit.before-log',
  'commit.after-log',
  'commit.after-append',
  'commit.after-applied',
  'commit.before-answer',
  'rollback.after-log',
  'checkpoint.after-write',
] as const;

/** One of {@link CRASH_POINTS}. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

const armed = process.env['METAQ_CRASH_POINT'];

/** Kills the process with SIGKILL if `point` is the armed crash point. */
export function crashPoint(point: CrashPoint): void {
  if (armed !== undefined && armed === point) {
    process.stderr.write(`metaq: crash point ${point} reached; SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
