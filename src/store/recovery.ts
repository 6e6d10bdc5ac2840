/**
 * Start-up validation of the last (active) segment: walk it record by record and find where
 * the valid records end. Whatever follows (a torn write from a crash, or corrupted bytes) is
 * cut off by the caller. Older segments are trusted: they were fsynced when they were rolled.
 */
import { readAt } from './file-io.js';
import { decodeRecordAt, RECORD_HEADER_SIZE, type RecordProblem } from '../protocol/record.js';

/** Result of {@link scanSegment}. */
export interface ScanResult {
  /** Bytes from the start of the file that hold complete, valid records. */
  readonly validLength: number;
  /** Number of valid records. */
  readonly records: number;
  /** Id of the last valid record, if any. */
  readonly lastId: bigint | undefined;
  /** Why the scan stopped before the end of the file, if it did. */
  readonly problem: RecordProblem | undefined;
}

const CHUNK = 8 * 1024 * 1024;

/**
 * Scans `size` bytes of the segment open at `fd`.
 * @param maxDataLength a length field above this is treated as corruption.
 */
export async function scanSegment(fd: number, size: number, maxDataLength: number): Promise<ScanResult> {
  let position = 0;
  let records = 0;
  let lastId: bigint | undefined;
  while (position < size) {
    const want = Math.min(size - position, Math.max(CHUNK, RECORD_HEADER_SIZE));
    let chunk = await readAt(fd, want, position);
    let pos = 0;
    for (;;) {
      const decoded = decodeRecordAt(chunk, pos, maxDataLength);
      if (typeof decoded !== 'string') {
        records += 1;
        lastId = decoded.id;
        pos += decoded.size;
        continue;
      }
      if (decoded !== 'incomplete') return { validLength: position + pos, records, lastId, problem: decoded };
      // Incomplete within this chunk: either the chunk ends mid-record, or the file does.
      const remainingInFile = size - (position + pos);
      if (remainingInFile === chunk.length - pos) {
        return { validLength: position + pos, records, lastId, problem: remainingInFile === 0 ? undefined : 'incomplete' };
      }
      if (chunk.length - pos >= RECORD_HEADER_SIZE) {
        // A record larger than the chunk: read exactly it.
        const length = chunk.readInt32BE(pos) + RECORD_HEADER_SIZE;
        if (length > remainingInFile) return { validLength: position + pos, records, lastId, problem: 'incomplete' };
        chunk = await readAt(fd, length, position + pos);
        position += pos;
        pos = 0;
        continue;
      }
      break;
    }
    position += pos;
  }
  return { validLength: position, records, lastId, problem: undefined };
}
