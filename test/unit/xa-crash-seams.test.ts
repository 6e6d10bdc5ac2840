/**
 * The test seams of src/xa/crash-points.ts beyond the crash points themselves:
 * `METAQ_XA_CRASH_SKIP` (the armed point lets that many passes through, then fires) and
 * `METAQ_XA_DELAYS` (a random sleep at a named point: here between the prepares and COMMITTING).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { XA_CRASH_POINT_ENV, XA_CRASH_SKIP_ENV, XA_DELAYS_ENV } from '../../src/xa/crash-points.js';
import { createTransactionManager } from '../../src/xa/transaction-manager.js';
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { FAST_RETRY, FakeResource, RecordingLog } from '../helpers/xa-fakes.js';

const CHILD = fileURLToPath(new URL('../helpers/xa-seam-child.ts', import.meta.url));
const MAX_DELAY_MS = 120;

// Read by the manager at the first pass of a delay point, i.e. in the first commit below.
process.env[XA_DELAYS_ENV] = `xa.after-prepare=${MAX_DELAY_MS}`;

function runChild(env: NodeJS.ProcessEnv): { lines: string[]; signal: NodeJS.Signals | null } {
  const childEnv = { ...process.env, ...env };
  delete childEnv[XA_DELAYS_ENV];
  const child = spawnSync(process.execPath, ['--import', 'tsx', CHILD, '5'], { env: childEnv, encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.error, undefined);
  return { lines: child.stdout.split('\n').filter((l) => l !== ''), signal: child.signal };
}

describe('XA test seams', () => {
  it(`${XA_CRASH_SKIP_ENV}=3: three commits pass the armed point, the fourth dies there`, () => {
    const { lines, signal } = runChild({ [XA_CRASH_POINT_ENV]: 'xa.after-postgres-commit', [XA_CRASH_SKIP_ENV]: '3' });
    assert.equal(signal, 'SIGKILL', lines.join('\n'));
    assert.deepEqual(
      lines.filter((l) => l.startsWith('committed')),
      ['committed 0', 'committed 1', 'committed 2'],
    );
    assert.equal(lines.filter((l) => l.startsWith('postgres:db commitPrepared')).length, 4, 'the fourth died right after its PostgreSQL commit');
    assert.equal(lines.filter((l) => l.startsWith('metaq:meta://localhost:8123#tm commitPrepared')).length, 3);
    assert.equal(lines.at(-1)?.startsWith('postgres:db commitPrepared'), true);
  });

  it('without a skip count, the armed point fires at its first pass', () => {
    const { lines, signal } = runChild({ [XA_CRASH_POINT_ENV]: 'xa.after-postgres-commit' });
    assert.equal(signal, 'SIGKILL');
    assert.equal(lines.filter((l) => l.startsWith('committed')).length, 0);
  });

  it(`${XA_DELAYS_ENV}: the manager waits between the last prepare and COMMITTING (random, up to the maximum)`, async () => {
    const stamps: { line: string; at: number }[] = [];
    const journal: string[] = [];
    journal.push = (...items: string[]): number => {
      for (const line of items) stamps.push({ line, at: performance.now() });
      return Array.prototype.push.apply(journal, items);
    };
    const db = new FakeResource('postgres:db', journal);
    const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
    const tm = await createTransactionManager({ nodeName: 'delay-node', log: new RecordingLog(journal, new MemoryCoordinatorLog()), resources: [db, broker], recoveryIntervalMs: 0, recoverOnStart: false, phaseTwoRetry: FAST_RETRY });
    const gaps: number[] = [];
    for (let i = 0; i < 15; i++) {
      stamps.length = 0;
      await tm.run(async (tx) => {
        (await tx.enlist(db)).work();
        (await tx.enlist(broker)).work();
      });
      const prepared = Math.max(...stamps.filter((s) => / prepare /.test(s.line)).map((s) => s.at));
      const decided = stamps.find((s) => s.line.startsWith('log committing'))?.at ?? Number.NaN;
      gaps.push(decided - prepared);
    }
    await tm.close();
    // Uniform 0…120 ms: all 15 gaps under 40 ms has a probability below 1e-7.
    assert.ok(Math.max(...gaps) >= 40, `some commit waited between prepare and decision: ${gaps.map((g) => g.toFixed(1)).join(', ')}`);
  });
});
