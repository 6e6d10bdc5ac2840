/**
 * Reading framed records from a journal file descriptor in blocks, shared by start-up validation
 * (which only counts) and replay (which yields every record). Like `src/store/recovery.ts`, it
 * reads large blocks and decodes in memory, and reads a record larger than a block on its own.
 */
import { readAt } from '../../store/file-io.js';
import { decodeFrameAt, FRAME_HEADER_SIZE, MAX_FRAME_PAYLOAD, type FrameProblem } from './tx-record-frame.js';

/** Default bytes read per block. */
export const FRAME_BLOCK_SIZE = 8 * 1024 * 1024;

/** A record read from a file. */
export interface FileFrame {
  /** Offset of the record's header in the file. */
  readonly offset: number;
  /** Record type. */
  readonly type: number;
  /** The payload: a view into the block buffer (copy it to keep it without the whole block). */
  readonly payload: Buffer;
}

/** One block of records, see {@link readFrameBlock}. */
export interface FrameBlock {
  /** Complete, valid records, in order. */
  readonly frames: readonly FileFrame[];
  /** File offset just after the last record of `frames` (where the next block starts). */
  readonly end: number;
  /** Set when the bytes at `end` are not a valid record; the file is damaged or torn there. */
  readonly problem: FrameProblem | undefined;
}

/**
 * Reads and decodes the records of the file open at `fd` from `offset`, up to at most `limit`
 * (the end of the valid data as far as the caller knows). Always makes progress: returns at least
 * one record, a problem, or `end === limit`; call it again from `end` until one of the last two.
 */
export async function readFrameBlock(fd: number, offset: number, limit: number, blockSize = FRAME_BLOCK_SIZE): Promise<FrameBlock> {
  if (offset >= limit) return { frames: [], end: offset, problem: undefined };
  const want = Math.min(limit - offset, Math.max(blockSize, FRAME_HEADER_SIZE));
  const buffer = await readAt(fd, want, offset);
  // True when this buffer holds everything up to `limit` that can be read: it reaches `limit`, or
  // a short read showed that the file is shorter than the caller thought (what is missing is torn).
  const final = buffer.length < want || offset + buffer.length >= limit;
  const frames: FileFrame[] = [];
  let pos = 0;
  for (;;) {
    const decoded = decodeFrameAt(buffer, pos, MAX_FRAME_PAYLOAD);
    if (typeof decoded !== 'string') {
      frames.push({ offset: offset + pos, type: decoded.type, payload: decoded.payload });
      pos += decoded.size;
      continue;
    }
    const end = offset + pos;
    if (decoded !== 'incomplete') return { frames, end, problem: decoded };
    if (final) return { frames, end, problem: end >= limit ? undefined : 'incomplete' };
    // The block ends inside a record: hand back what we have and let the next call start at it.
    if (frames.length > 0) return { frames, end, problem: undefined };
    return readLargeFrame(fd, end, limit, buffer.readUInt32BE(pos));
  }
}

/**
 * Reads the one record at `offset` that does not fit in a block. Its length was already checked
 * against MAX_FRAME_PAYLOAD by decodeFrameAt, so this allocation is bounded.
 */
async function readLargeFrame(fd: number, offset: number, limit: number, payloadLength: number): Promise<FrameBlock> {
  const size = FRAME_HEADER_SIZE + payloadLength;
  if (offset + size > limit) return { frames: [], end: offset, problem: 'incomplete' };
  const decoded = decodeFrameAt(await readAt(fd, size, offset), 0, MAX_FRAME_PAYLOAD);
  if (typeof decoded === 'string') return { frames: [], end: offset, problem: decoded };
  return { frames: [{ offset, type: decoded.type, payload: decoded.payload }], end: offset + size, problem: undefined };
}

/** Result of {@link scanFrames}. */
export interface FrameScan {
  /** Bytes from the start of the file holding complete, valid records. */
  readonly validLength: number;
  /** Number of valid records. */
  readonly records: number;
  /** Why the scan stopped before `size`, if it did. */
  readonly problem: FrameProblem | undefined;
}

/** Validates the first `size` bytes of the file open at `fd`, record by record. */
export async function scanFrames(fd: number, size: number, blockSize = FRAME_BLOCK_SIZE): Promise<FrameScan> {
  let offset = 0;
  let records = 0;
  while (offset < size) {
    const block = await readFrameBlock(fd, offset, size, blockSize);
    records += block.frames.length;
    offset = block.end;
    if (block.problem !== undefined) return { validLength: offset, records, problem: block.problem };
  }
  return { validLength: offset, records, problem: undefined };
}
