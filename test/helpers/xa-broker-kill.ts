/**
 * The "broker SIGKILLed during a run of many orders" scenario shared by the XA crash tests of
 * both PostgreSQL modes (xa-coordinator-crash.test.ts, xa-decision-row-crash.test.ts): the run,
 * the kill and restart, and the order-by-order verdict. Each test keeps its own extra assertions.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertAgreement, type OrderState } from './xa-agreement.js';
import { spawnXaWorker, type XaWorker, type XaWorkerExit } from './xa-worker-process.js';
import { orderKey, type XaWorkerConfig } from './xa-worker-protocol.js';

/** What the run left: the exited worker and how many orders had committed when the broker died. */
export interface BrokerKillRun {
  readonly worker: XaWorker;
  readonly exit: XaWorkerExit;
  readonly committedAtKill: number;
}

/**
 * Spawns a worker placing orders (`config`), SIGKILLs the broker once 25 committed, waits until
 * an order fails while it is away, restarts it half a second later and waits for the worker to
 * finish. `restartBroker` must leave the restarted broker where the test's own handle sees it.
 */
export async function runOrdersThroughBrokerKill(config: XaWorkerConfig, killBroker: () => Promise<void>, restartBroker: () => Promise<void>): Promise<BrokerKillRun> {
  const worker = spawnXaWorker(config);
  await worker.waitForLine((l) => 'committed' in l && worker.committed.size >= 25, '25 committed orders', 60_000);
  await killBroker();
  const committedAtKill = worker.committed.size;
  // Orders in flight fail (XAER_RMFAIL) while the broker is away; decided ones wait in phase two.
  await worker.waitForLine((l) => 'rolledBack' in l || 'failed' in l, 'an order failing while the broker is down', 20_000);
  await sleep(500);
  await restartBroker();
  const exit = await worker.waitForExit(120_000);
  return { worker, exit, committedAtKill };
}

/**
 * The verdict of run `run` of `worker`: every order reported committed is in both the table and
 * the topic, every one rolled back in neither, and no order exists that was neither committed
 * nor of unknown outcome.
 */
export function assertOrdersAgree(state: OrderState, run: string, worker: XaWorker, context: string): void {
  const keys = (ids: Iterable<number>): string[] => [...ids].map((id) => orderKey(run, id));
  assertAgreement(state, { committed: keys(worker.committed), absent: keys(worker.rolledBack) }, context);
  const unknown = [...worker.failed].filter((id) => state.rows.has(orderKey(run, id)));
  assert.ok(state.rows.size >= worker.committed.size && state.rows.size <= worker.committed.size + unknown.length, 'no order exists that was neither committed nor of unknown outcome');
}
