/**
 * File names in the transaction log directory (`<dataLogPath>/transactions`):
 * - journal files `txlog-<20-digit sequence>.log`, sequence 1, 2, 3, … with no gaps;
 * - checkpoints `checkpoint-<20-digit sequence>.ckp`, written as `….ckp.tmp` and renamed.
 *
 * Why 20 digits: the same zero padding as segment names, so `ls` sorts them in sequence order.
 */

/** Sequence number of the first journal file of a fresh journal. */
export const FIRST_JOURNAL_SEQUENCE = 1;

/** Suffix of a checkpoint that is still being written (never read; removed on the next write). */
export const CHECKPOINT_TEMP_SUFFIX = '.tmp';

const JOURNAL_NAME = /^txlog-(\d{20})\.log$/;
const CHECKPOINT_NAME = /^checkpoint-(\d{20})\.ckp$/;

function pad(sequence: number): string {
  return String(sequence).padStart(20, '0');
}

function parseSequence(pattern: RegExp, name: string): number | undefined {
  const match = pattern.exec(name);
  if (match === null) return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** `txlog-00000000000000000003.log` for sequence 3. */
export function journalFileName(sequence: number): string {
  return `txlog-${pad(sequence)}.log`;
}

/** The sequence a journal file name encodes, or undefined if `name` is not a journal file. */
export function parseJournalFileName(name: string): number | undefined {
  return parseSequence(JOURNAL_NAME, name);
}

/** `checkpoint-00000000000000000007.ckp` for sequence 7. */
export function checkpointFileName(sequence: number): string {
  return `checkpoint-${pad(sequence)}.ckp`;
}

/** The sequence a checkpoint file name encodes, or undefined if `name` is not a checkpoint. */
export function parseCheckpointFileName(name: string): number | undefined {
  return parseSequence(CHECKPOINT_NAME, name);
}

/** True for a leftover temporary checkpoint (`checkpoint-….ckp.tmp`). */
export function isCheckpointTempFileName(name: string): boolean {
  return name.endsWith(CHECKPOINT_TEMP_SUFFIX) && parseCheckpointFileName(name.slice(0, -CHECKPOINT_TEMP_SUFFIX.length)) !== undefined;
}
