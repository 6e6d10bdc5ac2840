/**
 * Applies a committed transaction's batches to the partition logs, exactly once.
 *
 * Live: each partition's messages are appended as one contiguous batch (one write).
 * Replay after a crash (the COMMIT record is in the journal, the APPLIED record is not): the
 * batch may be absent, whole, or (a crash in the middle of its write) partly present at the
 * very end of the log. Message ids are unique per broker, so the replay looks for the batch's
 * first id between the offset recorded in the COMMIT record and the end of the log:
 * absent → append; whole → nothing to do; partial → cut it off and append it whole.
 * This closes MetaQ's window in which a replay appended a committed batch a second time.
 */
import type { MessageStoreManager } from '../store/message-store-manager.js';
import type { PartitionLog } from '../store/partition-log.js';
import { decodeRecordAt } from '../protocol/record.js';
import type { CommitBatch } from './staged-message.js';

/** Where a batch landed. */
export interface AppliedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly length: number;
}

/** Appends every batch (live commit). Batches of different partitions go in parallel. */
export async function applyBatches(store: MessageStoreManager, batches: readonly CommitBatch[]): Promise<AppliedBatch[]> {
  return Promise.all(
    batches.map(async (batch) => {
      const log = await store.getOrCreate(batch.topic, batch.partition);
      const appended = await log.appendBatch(batch.messages.map((m) => ({ id: m.id, flag: m.flag, data: m.data, checksum: m.checksum })));
      return { topic: batch.topic, partition: batch.partition, offset: appended.offset, length: appended.length };
    }),
  );
}

/** What replay found for one batch. */
export type ReplayOutcome = 'already-applied' | 'appended' | 'completed-partial';

/** Replays one batch idempotently (start-up recovery; nothing else writes meanwhile). */
export async function replayBatch(store: MessageStoreManager, batch: CommitBatch): Promise<ReplayOutcome> {
  const log = await store.getOrCreate(batch.topic, batch.partition);
  const found = await findBatch(log, batch);
  if (found.present === batch.messages.length) return 'already-applied';
  if (found.present > 0 && found.offset !== undefined) await log.truncateTail(found.offset);
  await log.appendBatch(batch.messages.map((m) => ({ id: m.id, flag: m.flag, data: m.data, checksum: m.checksum })));
  return found.present > 0 ? 'completed-partial' : 'appended';
}

/** Largest read of the replay search: a record of the largest message the broker accepts fits. */
const MAX_REPLAY_READ = 512 * 1024 * 1024;

/** How much of `batch` is in `log` from `batch.lowerBound` on. */
async function findBatch(log: PartitionLog, batch: CommitBatch): Promise<{ offset: number | undefined; present: number }> {
  const first = batch.messages[0];
  if (first === undefined) return { offset: undefined, present: 0 };
  let offset = Math.max(batch.lowerBound, log.minOffset);
  let start: number | undefined;
  let present = 0;
  let readSize = 4 * 1024 * 1024;
  while (offset < log.writtenOffset) {
    const slice = await log.read(offset, readSize);
    if (slice.kind !== 'data') break;
    let pos = 0;
    for (;;) {
      const record = decodeRecordAt(slice.data, pos, 256 * 1024 * 1024);
      if (typeof record === 'string') break;
      if (start === undefined) {
        if (record.id === first.id) {
          start = offset + pos;
          present = 1;
        }
      } else if (present < batch.messages.length && record.id === batch.messages[present]?.id) {
        present += 1;
      } else {
        // The batch was one write: once it started, anything else means it ended.
        return { offset: start, present };
      }
      pos += record.size;
    }
    if (pos === 0) {
      // A record larger than the read (maxMessageSize may exceed 4 MiB): read again with room
      // for it. Stopping here would report the batch absent and append it a second time.
      if (slice.data.length === readSize && readSize < MAX_REPLAY_READ) {
        readSize *= 2;
        continue;
      }
      break;
    }
    offset += pos;
  }
  return { offset: start, present };
}
