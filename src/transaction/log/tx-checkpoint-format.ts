/**
 * The bytes of a checkpoint file, big-endian:
 *
 * | bytes  | field                                                     |
 * |--------|-----------------------------------------------------------|
 * | 0–3    | magic `MQCK` (0x4D51434B)                                 |
 * | 4–5    | u16 format version (1)                                    |
 * | 6–7    | u16 reserved, 0                                           |
 * | 8–15   | u64 checkpoint sequence (also in the file name)           |
 * | 16–23  | u64 journal position: file sequence                       |
 * | 24–31  | u64 journal position: byte offset                         |
 * | 32–35  | u32 payload length L                                      |
 * | 36–39  | u32 CRC-32 of bytes 0–35 followed by the payload           |
 * | 40…    | payload (L bytes, the engine's snapshot of live transactions) |
 *
 * Why the sequence is stored inside too: a checkpoint copied or renamed by hand is recognised as
 * not being the file its name claims. Why a version: a later format can be told apart instead of
 * failing its CRC and being silently skipped.
 */
import { crc32 } from 'node:zlib';
import type { JournalPosition } from './journal-position.js';

/** `MQCK`. */
export const CHECKPOINT_MAGIC = 0x4d51434b;
/** The format version this code writes and reads. */
export const CHECKPOINT_VERSION = 1;
/** Bytes before the payload. */
export const CHECKPOINT_HEADER_SIZE = 40;

/** What a checkpoint file holds. */
export interface CheckpointContent {
  /** The checkpoint's sequence number. */
  readonly sequence: number;
  /** Where journal replay starts for this checkpoint. */
  readonly position: JournalPosition;
  /** The engine's snapshot. */
  readonly payload: Buffer;
}

/** Header and payload, ready for one `writev`. */
export function encodeCheckpoint(content: CheckpointContent): [Buffer, Buffer] {
  const header = Buffer.alloc(CHECKPOINT_HEADER_SIZE);
  header.writeUInt32BE(CHECKPOINT_MAGIC, 0);
  header.writeUInt16BE(CHECKPOINT_VERSION, 4);
  header.writeBigUInt64BE(BigInt(content.sequence), 8);
  header.writeBigUInt64BE(BigInt(content.position.file), 16);
  header.writeBigUInt64BE(BigInt(content.position.offset), 24);
  header.writeUInt32BE(content.payload.length, 32);
  header.writeUInt32BE(crc32(content.payload, crc32(header.subarray(0, 36))), 36);
  return [header, content.payload];
}

/**
 * Decodes and validates a whole checkpoint file.
 * @returns the content, or a sentence saying why the file is not a valid checkpoint.
 */
export function decodeCheckpoint(file: Buffer): CheckpointContent | string {
  if (file.length < CHECKPOINT_HEADER_SIZE) return `file of ${file.length} bytes is shorter than the ${CHECKPOINT_HEADER_SIZE}-byte header`;
  const magic = file.readUInt32BE(0);
  if (magic !== CHECKPOINT_MAGIC) return `bad magic 0x${magic.toString(16)}`;
  const version = file.readUInt16BE(4);
  if (version !== CHECKPOINT_VERSION) return `unsupported format version ${version} (this broker reads version ${CHECKPOINT_VERSION})`;
  const length = file.readUInt32BE(32);
  if (file.length !== CHECKPOINT_HEADER_SIZE + length) return `file is ${file.length} bytes but its header announces ${CHECKPOINT_HEADER_SIZE + length}`;
  const payload = file.subarray(CHECKPOINT_HEADER_SIZE);
  if (crc32(payload, crc32(file.subarray(0, 36))) !== file.readUInt32BE(36)) return 'CRC mismatch';
  const sequence = Number(file.readBigUInt64BE(8));
  const position = { file: Number(file.readBigUInt64BE(16)), offset: Number(file.readBigUInt64BE(24)) };
  if (![sequence, position.file, position.offset].every(Number.isSafeInteger)) return 'sequence or position out of range';
  return { sequence, position, payload };
}
