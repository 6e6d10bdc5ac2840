/**
 * The framing of one transaction journal record, big-endian:
 *
 * | bytes | field                                         |
 * |-------|-----------------------------------------------|
 * | 0–3   | u32 payload length L (bytes after the header) |
 * | 4–7   | u32 CRC-32 (IEEE) of the type byte + payload  |
 * | 8     | u8 record type (defined by the engine)        |
 * | 9…    | payload (L bytes, opaque to the log)          |
 *
 * Why the type byte is inside the CRC: a run of zero bytes (what some file systems leave after a
 * crash that extended the file but lost the data) would otherwise decode as valid empty records;
 * CRC-32 of a single 0x00 byte is not 0, so zeros are always detected as damage.
 */
import { crc32 } from 'node:zlib';

/** Size of the frame header (length + CRC + type). */
export const FRAME_HEADER_SIZE = 9;

/**
 * Largest payload of one record, for appends and for decoding. Why a constant and not a setting:
 * if lowering a setting made valid old records "too long", recovery would truncate them as damage.
 * Why 256 MiB: a record is held in memory whole on replay, and no transaction event should come
 * near it (the engine splits large transactions into several records).
 */
export const MAX_FRAME_PAYLOAD = 256 * 1024 * 1024;

/** Why {@link decodeFrameAt} found no valid record. */
export type FrameProblem =
  /** Fewer bytes remain than the header or the announced payload (a torn write, or the end). */
  | 'incomplete'
  /** The length field is larger than the allowed maximum. */
  | 'bad-length'
  /** The CRC does not match the type byte and payload. */
  | 'bad-checksum';

/** A record decoded from a buffer. */
export interface DecodedFrame {
  /** Record type (0–255). */
  readonly type: number;
  /** The payload: a view into the source buffer, not a copy. */
  readonly payload: Buffer;
  /** Header + payload bytes. */
  readonly size: number;
}

/** CRC-32 of the type byte followed by the payload. */
export function frameChecksum(type: number, payload: Uint8Array): number {
  return crc32(payload, crc32(Uint8Array.of(type)));
}

/**
 * The 9-byte header of a record; the payload is written after it separately (no copy).
 * The caller validates `type` (0–255) and the payload length.
 */
export function encodeFrameHeader(type: number, payload: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt32BE(frameChecksum(type, payload), 4);
  header.writeUInt8(type, 8);
  return header;
}

/** A whole record (header + payload) in one buffer. */
export function encodeFrame(type: number, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeFrameHeader(type, payload), payload]);
}

/**
 * Decodes the record starting at `pos`, or says why there is none.
 * @param maxPayload a larger length field is `'bad-length'` (guards against garbage lengths).
 */
export function decodeFrameAt(buffer: Buffer, pos: number, maxPayload = MAX_FRAME_PAYLOAD): DecodedFrame | FrameProblem {
  if (buffer.length - pos < FRAME_HEADER_SIZE) return 'incomplete';
  const length = buffer.readUInt32BE(pos);
  if (length > maxPayload) return 'bad-length';
  const end = pos + FRAME_HEADER_SIZE + length;
  if (end > buffer.length) return 'incomplete';
  const type = buffer.readUInt8(pos + 8);
  const payload = buffer.subarray(pos + FRAME_HEADER_SIZE, end);
  if (frameChecksum(type, payload) !== buffer.readUInt32BE(pos + 4)) return 'bad-checksum';
  return { type, payload, size: FRAME_HEADER_SIZE + length };
}

/** A decoded record with its offset in the walked buffer. */
export interface LocatedFrame extends DecodedFrame {
  /** Offset of the record's header in the buffer. */
  readonly offset: number;
}

/** Result of {@link decodeFrames}. */
export interface FrameWalk {
  /** The valid records, in order. */
  readonly frames: readonly LocatedFrame[];
  /** Bytes from the start of the buffer covered by valid records. */
  readonly validLength: number;
  /** Why the walk stopped before the end of the buffer; undefined when it reached the end exactly. */
  readonly problem: FrameProblem | undefined;
}

/**
 * Walks `buffer` record by record and stops at the first torn or corrupt one: everything from
 * `validLength` on is what recovery would cut off.
 */
export function decodeFrames(buffer: Buffer, maxPayload = MAX_FRAME_PAYLOAD): FrameWalk {
  const frames: LocatedFrame[] = [];
  let pos = 0;
  while (pos < buffer.length) {
    const decoded = decodeFrameAt(buffer, pos, maxPayload);
    if (typeof decoded === 'string') return { frames, validLength: pos, problem: decoded };
    frames.push({ ...decoded, offset: pos });
    pos += decoded.size;
  }
  return { frames, validLength: pos, problem: undefined };
}
