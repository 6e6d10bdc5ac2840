/**
 * The manager's crash points: a child process running one two-phase commit with
 * METAQ_XA_CRASH_POINT set is killed (SIGKILL) exactly at the named step, with phase one and
 * phase two in the deterministic crash-mode order (broker first; PostgreSQL first for
 * `xa.after-postgres-commit`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { XA_CRASH_POINTS, type XaCrashPoint } from '../../src/xa/crash-points.js';

const CHILD = fileURLToPath(new URL('../helpers/xa-crash-child.ts', import.meta.url));

function run(point: XaCrashPoint | undefined): { lines: string[]; signal: NodeJS.Signals | null } {
  const env = { ...process.env };
  delete env['METAQ_XA_CRASH_POINT'];
  if (point !== undefined) env['METAQ_XA_CRASH_POINT'] = point;
  const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.error, undefined);
  return { lines: child.stdout.split('\n').filter((l) => l !== ''), signal: child.signal };
}

const has = (lines: readonly string[], prefix: string): boolean => lines.some((l) => l.startsWith(prefix));

describe('XA crash points', () => {
  it('without a crash point the commit completes', () => {
    const { lines, signal } = run(undefined);
    assert.equal(signal, null);
    assert.equal(lines.at(-1), 'done');
    assert.ok(has(lines, 'log end'));
  });

  const expectations: Record<XaCrashPoint, { present: string[]; absent: string[] }> = {
    'xa.after-first-prepare': { present: ['metaq:meta://localhost:8123#tm prepare'], absent: ['postgres:db prepare', 'log committing'] },
    'xa.after-prepare': { present: ['metaq:meta://localhost:8123#tm prepare', 'postgres:db prepare'], absent: ['log committing'] },
    'xa.after-committing': { present: ['log committing'], absent: ['metaq:meta://localhost:8123#tm commitPrepared', 'postgres:db commitPrepared'] },
    'xa.after-first-commit': { present: ['metaq:meta://localhost:8123#tm commitPrepared'], absent: ['postgres:db commitPrepared'] },
    'xa.after-postgres-commit': { present: ['postgres:db commitPrepared'], absent: ['metaq:meta://localhost:8123#tm commitPrepared'] },
    'xa.before-end': { present: ['metaq:meta://localhost:8123#tm commitPrepared', 'postgres:db commitPrepared'], absent: ['log end'] },
  };

  for (const point of XA_CRASH_POINTS) {
    it(`${point} kills the process at that step`, () => {
      const { lines, signal } = run(point);
      assert.equal(signal, 'SIGKILL', lines.join('\n'));
      for (const prefix of expectations[point].present) assert.ok(has(lines, prefix), `${prefix} expected in\n${lines.join('\n')}`);
      for (const prefix of expectations[point].absent) assert.ok(!has(lines, prefix), `${prefix} not expected in\n${lines.join('\n')}`);
    });
  }
});
