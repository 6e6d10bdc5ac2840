/**
 * Where a record lives in the transaction journal: the sequence number of its file and its byte
 * offset in that file. Positions are totally ordered (file first, then offset), so the engine can
 * compare "the oldest record any live transaction still needs" against a checkpoint.
 */
import { InvalidArgumentError } from '../../common/errors.js';

/** The position of a record (or of the end of the journal) in the transaction journal. */
export interface JournalPosition {
  /** Sequence number of the journal file (`txlog-<20-digit sequence>.log`); the first file is 1. */
  readonly file: number;
  /** Byte offset of the record in that file. */
  readonly offset: number;
}

/** Negative when `a` comes before `b`, zero when equal, positive when after. */
export function compareJournalPositions(a: JournalPosition, b: JournalPosition): number {
  return a.file !== b.file ? a.file - b.file : a.offset - b.offset;
}

/** `3:1024` for file 3, offset 1024: the form used in log lines and error messages. */
export function formatJournalPosition(position: JournalPosition): string {
  return `${position.file}:${position.offset}`;
}

/**
 * Throws {@link InvalidArgumentError} unless both fields are non-negative safe integers.
 * @param what names the argument in the message (e.g. `readFrom position`).
 */
export function assertJournalPosition(position: JournalPosition, what: string): void {
  const ok = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!ok(position.file) || !ok(position.offset)) {
    throw new InvalidArgumentError(`${what} must have non-negative integer file and offset, got ${JSON.stringify(position)}`);
  }
}
