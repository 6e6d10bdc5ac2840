/**
 * Benchmark reporting: every figure is printed next to a baseline measured in the same run on
 * the same machine, because ratios hold on a noisy machine and absolute numbers do not.
 */

/** One measured figure. */
export interface BenchFigure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: number;
  /** What the target is, for the human reading the output (e.g. ">= 0.5 of baseline"). */
  readonly target?: string;
}

function round(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(4);
}

/** `BENCH <name> <value> <unit> baseline=<value> ratio=<value>` */
export function formatBenchLine(figure: BenchFigure): string {
  const ratio = figure.baseline > 0 ? figure.value / figure.baseline : 0;
  return `BENCH ${figure.name} ${round(figure.value)} ${figure.unit} baseline=${round(figure.baseline)} ratio=${ratio.toFixed(3)}`;
}

/** Runs `step` repeatedly for about `seconds` and returns operations per second. */
export async function measureRate(seconds: number, step: () => Promise<number>): Promise<number> {
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let operations = 0;
  let now = start;
  while (now < deadline) {
    operations += await step();
    now = process.hrtime.bigint();
  }
  return operations / (Number(now - start) / 1e9);
}

/**
 * Runs `clients` concurrent loops of `step(client, n)` for about `seconds`; returns completed
 * steps per second over all clients.
 */
export async function measureConcurrentRate(seconds: number, clients: number, step: (client: number, n: number) => Promise<void>): Promise<number> {
  let done = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let n = 0; process.hrtime.bigint() < deadline; n++) {
        await step(client, n);
        done += 1;
      }
    }),
  );
  return done / (Number(process.hrtime.bigint() - start) / 1e9);
}
