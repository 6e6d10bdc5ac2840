/**
 * Child process of the XA crash-point test: one two-phase commit over a fake broker resource and
 * a fake PostgreSQL resource, printing every call as it happens (stdout is a pipe: synchronous on
 * Linux), so the parent sees exactly how far the manager got before METAQ_XA_CRASH_POINT killed it.
 */
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { createTransactionManager } from '../../src/xa/transaction-manager.js';
import { FAST_RETRY, FakeResource, RecordingLog } from './xa-fakes.js';

const journal: string[] = [];
journal.push = (...items: string[]): number => {
  for (const item of items) process.stdout.write(`${item}\n`);
  return Array.prototype.push.apply(journal, items);
};
// Enlisted PostgreSQL first, so that the broker-first order of crash mode is visible.
const db = new FakeResource('postgres:db', journal);
const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
const tm = await createTransactionManager({
  nodeName: 'crash-node',
  log: new RecordingLog(journal, new MemoryCoordinatorLog()),
  resources: [db, broker],
  recoveryIntervalMs: 0,
  recoverOnStart: false,
  phaseTwoRetry: FAST_RETRY,
});
await tm.run(async (tx) => {
  (await tx.enlist(db)).work();
  (await tx.enlist(broker)).work();
});
await tm.close();
process.stdout.write('done\n');
