/**
 * Child process of test/unit/xa-crash-seams.test.ts: `count` (first argument, default 5)
 * two-phase commits, one after the other, over a fake broker and a fake PostgreSQL resource,
 * printing every call and `committed <i>` after each commit (stdout is a pipe: synchronous on
 * Linux), so the parent sees how many commits passed the armed crash point before it fired.
 */
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { createTransactionManager } from '../../src/xa/transaction-manager.js';
import { FAST_RETRY, FakeResource, RecordingLog } from './xa-fakes.js';

const count = Number(process.argv[2] ?? 5);
const journal: string[] = [];
journal.push = (...items: string[]): number => {
  for (const item of items) process.stdout.write(`${item}\n`);
  return Array.prototype.push.apply(journal, items);
};
const db = new FakeResource('postgres:db', journal);
const broker = new FakeResource('metaq:meta://localhost:8123#tm', journal);
const tm = await createTransactionManager({
  nodeName: 'seam-node',
  log: new RecordingLog(journal, new MemoryCoordinatorLog()),
  resources: [db, broker],
  recoveryIntervalMs: 0,
  recoverOnStart: false,
  phaseTwoRetry: FAST_RETRY,
});
for (let i = 0; i < count; i++) {
  await tm.run(async (tx) => {
    (await tx.enlist(db)).work();
    (await tx.enlist(broker)).work();
  });
  process.stdout.write(`committed ${i}\n`);
}
await tm.close();
process.stdout.write('done\n');
