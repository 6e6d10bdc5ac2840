/**
 * The transaction log: journal, checkpoints, record framing and payload codec helpers. The
 * transaction engine imports from here; the files behind it are implementation detail.
 */
export { BinaryWriter } from './binary-writer.js';
export { BinaryReader, BinaryReadError } from './binary-reader.js';
export {
  compareJournalPositions,
  formatJournalPosition,
  assertJournalPosition,
  type JournalPosition,
} from './journal-position.js';
export {
  durabilityForFlushTxLogAtCommit,
  isJournalDurability,
  JOURNAL_DURABILITIES,
  type JournalDurability,
} from './journal-durability.js';
export type { JournalIo } from './journal-io.js';
export {
  TxJournal,
  DEFAULT_TX_JOURNAL_MAX_FILE_SIZE,
  DEFAULT_DEFERRED_SYNC_INTERVAL_MS,
  type TxJournalOptions,
  type JournalRecord,
} from './tx-journal.js';
export {
  writeCheckpoint,
  loadNewestCheckpoint,
  oldestCheckpointPosition,
  DEFAULT_MAX_CHECKPOINTS,
  type CheckpointInput,
  type LoadedCheckpoint,
  type WriteCheckpointOptions,
  type LoadCheckpointOptions,
} from './tx-checkpoint.js';
export { FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD } from './tx-record-frame.js';
export { FIRST_JOURNAL_SEQUENCE, journalFileName, checkpointFileName } from './tx-file-names.js';
