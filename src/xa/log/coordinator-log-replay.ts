/**
 * Rebuilding the pending entries when the coordinator log opens (transactions.md §5.6): the newest
 * valid checkpoint's snapshot (a corrupt newer one is skipped by `loadNewestCheckpoint`), then every
 * journal record after its marker; without a checkpoint, the whole journal. The journal has already
 * cut a torn tail off its newest file when it was opened.
 */
import { StoreCorruptError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { formatJournalPosition } from '../../transaction/log/journal-position.js';
import { loadNewestCheckpoint } from '../../transaction/log/tx-checkpoint.js';
import type { TxJournal } from '../../transaction/log/tx-journal.js';
import { coordinatorRecordName, decodeCoordinatorRecord } from './coordinator-records.js';
import { decodeCoordinatorSnapshot } from './coordinator-snapshot.js';
import type { PendingTable } from './pending-table.js';

/** What {@link replayCoordinatorLog} did. */
export interface CoordinatorReplayStats {
  /** Sequence of the checkpoint replay started from; undefined when it started from the first journal file. */
  readonly checkpointSequence: number | undefined;
  /** Entries the checkpoint held. */
  readonly checkpointEntries: number;
  /** Journal records read after the checkpoint. */
  readonly records: number;
  /** Records ignored as illegal transitions (never written by this code; reported as an error). */
  readonly ignored: number;
}

/**
 * Fills `table` from the checkpoints and journal of `dir`.
 * @throws StoreCorruptError when a record or snapshot cannot be decoded, or when the journal's
 *   first files were deleted and no valid checkpoint covers them.
 */
export async function replayCoordinatorLog(dir: string, journal: TxJournal, table: PendingTable, log: Logger): Promise<CoordinatorReplayStats> {
  const checkpoint = await loadNewestCheckpoint(dir, { logger: log });
  let checkpointEntries = 0;
  if (checkpoint !== undefined) {
    const entries = withContext(`checkpoint ${checkpoint.sequence} in ${dir}`, () => decodeCoordinatorSnapshot(checkpoint.payload));
    table.restore(entries);
    checkpointEntries = entries.length;
  }
  let records = 0;
  let ignored = 0;
  for await (const raw of journal.readFrom(checkpoint?.position)) {
    const where = `record at ${formatJournalPosition(raw.position)} of the coordinator log in ${dir}`;
    const record = withContext(where, () => decodeCoordinatorRecord(raw.type, raw.payload));
    records += 1;
    const problem = table.apply(record);
    if (problem !== undefined) {
      ignored += 1;
      // The live log refuses these before writing, so one on disk is a bug or a hand-made file;
      // ignoring it keeps the first claim, which is what the live log would have done.
      log.error({ position: formatJournalPosition(raw.position), record: coordinatorRecordName(record) }, `coordinator log replay ignored an illegal ${problem}`);
    }
  }
  return { checkpointSequence: checkpoint?.sequence, checkpointEntries, records, ignored };
}

function withContext<T>(where: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof StoreCorruptError) {
      throw new StoreCorruptError(
        `${where} cannot be decoded: ${error.message}. The file passed its CRC, so it was written by another program or ` +
          `another version of metaq; do not delete it: the transactions it records would be presumed aborted.`,
        { cause: error },
      );
    }
    throw error;
  }
}
