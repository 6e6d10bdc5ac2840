/**
 * CPU time of the processes a benchmark drives, read from `/proc` (Linux), so that a figure bound
 * by CPU shows in the same run where each transaction's CPU goes and how it compares with what
 * the machine has: on two cores, N transactions per second leave at most 2 s / N of CPU to each.
 *
 * Why `/proc` and not a profiler: a profiler slows the process it watches and sees one process;
 * the kernel's accounting is free and covers the broker and PostgreSQL's backends as well.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** Kernel clock ticks per second, the unit of `/proc/<pid>/stat` times (100 on common kernels). */
const TICKS_PER_SECOND = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/** The fields of a `/proc/…/stat` file (`<pid>` or `<pid>/task/<tid>`) after the command name, or undefined once gone. */
function statFields(path: string): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${path}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself hold spaces or parentheses.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** Fields (0-based, after the command name) of stat(5): state is 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14. */
const PPID = 1;
const UTIME = 11;

function seconds(fields: readonly string[], from: number, count: number): number {
  let ticks = 0;
  for (let i = from; i < from + count; i++) ticks += Number(fields[i] ?? 0);
  return ticks / TICKS_PER_SECOND;
}

/** User + system CPU seconds in the `/proc/<path>/stat` file so far (0 once it is gone). */
function cpuSecondsOf(path: string): number {
  const fields = statFields(path);
  return fields === undefined ? 0 : seconds(fields, UTIME, 2);
}

/**
 * User + system CPU seconds of the main thread of the process `pid` so far (0 once it is gone):
 * for a Node.js process, the event loop, whose one thread bounds what the process can serve
 * whatever the number of cores (libuv's thread pool and V8's helpers run beside it).
 */
export function mainThreadCpuSeconds(pid: number): number {
  return cpuSecondsOf(`${pid}/task/${pid}`);
}

/** User + system CPU seconds of the process `pid` so far (0 once it is gone). */
export function processCpuSeconds(pid: number): number {
  return cpuSecondsOf(String(pid));
}

/**
 * CPU seconds of the process `pid` and of its children: the live ones, and those that already
 * exited and were reaped (the kernel adds their time to the parent's `cutime`/`cstime`). For
 * PostgreSQL's postmaster, that is every backend and auxiliary process.
 */
export function processTreeCpuSeconds(pid: number): number {
  const fields = statFields(String(pid));
  if (fields === undefined) return 0;
  let total = seconds(fields, UTIME, 4);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = statFields(entry);
    if (child !== undefined && Number(child[PPID]) === pid) total += seconds(child, UTIME, 2);
  }
  return total;
}

/** CPU seconds of this process so far. */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** Named CPU clocks, e.g. `{ manager: ownCpuSeconds, broker: () => processCpuSeconds(pid) }`. */
export type CpuClocks = Readonly<Record<string, () => number>>;

/** What each clock used between {@link startCpuWindow} and `end`, in µs per operation. */
export interface CpuWindow {
  end(operations: number): Readonly<Record<string, number>>;
}

/** Starts measuring `clocks`; `end(n)` gives each one's µs per operation over the window. */
export function startCpuWindow(clocks: CpuClocks): CpuWindow {
  const before = Object.fromEntries(Object.entries(clocks).map(([name, clock]) => [name, clock()]));
  return {
    end(operations) {
      return Object.fromEntries(
        Object.entries(clocks).map(([name, clock]) => [name, operations > 0 ? ((clock() - (before[name] ?? 0)) / operations) * 1e6 : 0]),
      );
    },
  };
}

/** The sum of every clock's µs per operation. */
export function totalCpuPerOperation(perOperation: Readonly<Record<string, number>>): number {
  return Object.values(perOperation).reduce((sum, value) => sum + value, 0);
}

/** `manager 667 + broker 523 + PostgreSQL 399 = 1589 µs` */
export function formatCpuPerOperation(perOperation: Readonly<Record<string, number>>): string {
  const parts = Object.entries(perOperation).map(([name, value]) => `${name} ${value.toFixed(0)}`);
  return `${parts.join(' + ')} = ${totalCpuPerOperation(perOperation).toFixed(0)} µs`;
}
