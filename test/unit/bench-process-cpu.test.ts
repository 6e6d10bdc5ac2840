import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { formatCpuPerOperation, mainThreadCpuSeconds, ownCpuSeconds, processCpuSeconds, processTreeCpuSeconds, startCpuWindow } from '../bench/process-cpu.js';

/** Burns about `ms` of CPU on this thread. */
function burn(ms: number): void {
  const until = ownCpuSeconds() + ms / 1000;
  let x = 0;
  while (ownCpuSeconds() < until) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
}

describe('benchmark CPU accounting (/proc)', () => {
  it("reads this process's own CPU time as process.cpuUsage() does (to a few clock ticks)", () => {
    burn(200);
    const fromProc = processCpuSeconds(process.pid);
    const own = ownCpuSeconds();
    assert.ok(fromProc > 0.15, `read ${fromProc} s from /proc after burning 0.2 s`);
    assert.ok(Math.abs(fromProc - own) < 0.1, `/proc ${fromProc} s vs cpuUsage ${own} s`);
    // The burn ran on the main thread: its own clock has it, and never more than the process's.
    const mainThread = mainThreadCpuSeconds(process.pid);
    assert.ok(mainThread > 0.15, `main thread ${mainThread} s after burning 0.2 s on it`);
    assert.ok(mainThread <= processCpuSeconds(process.pid) + 0.02, `main thread ${mainThread} s > process`);
  });

  it('counts the CPU of children that already exited (cutime/cstime) in the tree', () => {
    const before = processTreeCpuSeconds(process.pid) - processCpuSeconds(process.pid);
    // The child burns 0.4 s of its own CPU time, not of wall-clock time: on a loaded machine a
    // wall-clock burn may get only a fraction of a core.
    const child = spawnSync(process.execPath, ['-e', 'let x = 0; while (process.cpuUsage().user < 400e3) x += Math.sqrt(x + 1);']);
    assert.equal(child.status, 0);
    const after = processTreeCpuSeconds(process.pid) - processCpuSeconds(process.pid);
    assert.ok(after - before > 0.2, `children's CPU grew by ${after - before} s after a child burned ~0.4 s`);
  });

  it('reads 0 for a process that does not exist', () => {
    assert.equal(processCpuSeconds(2 ** 22 + 12345), 0);
    assert.equal(processTreeCpuSeconds(2 ** 22 + 12345), 0);
    assert.equal(mainThreadCpuSeconds(2 ** 22 + 12345), 0);
  });

  it('gives µs per operation over a window, and formats a sum', () => {
    let a = 1;
    let b = 10;
    const window = startCpuWindow({ a: () => a, b: () => b });
    a += 0.5;
    b += 0.25;
    const perOperation = window.end(1000);
    assert.deepEqual(perOperation, { a: 500, b: 250 });
    assert.equal(formatCpuPerOperation(perOperation), 'a 500 + b 250 = 750 µs');
    assert.deepEqual(startCpuWindow({ a: () => a }).end(0), { a: 0 });
  });
});
