/**
 * The stored record, byte-compatible with MetaQ (metaq-reference §1.5): a 20-byte big-endian
 * header followed by the message data.
 *
 * | bytes | field                                              |
 * |-------|----------------------------------------------------|
 * | 0–3   | int32 data length                                  |
 * | 4–7   | int32 CRC-32 (IEEE) of the data, masked 0x7FFFFFFF |
 * | 8–15  | int64 message id                                   |
 * | 16–19 | int32 flag (bit 0: data starts with an attribute)  |
 * | 20…   | data                                               |
 *
 * The same bytes are what a `get` returns, so records are never re-encoded on the read path.
 */
import { crc32 } from 'node:zlib';

/** Size of the record header in bytes. */
export const RECORD_HEADER_SIZE = 20;

/** MetaQ's checksum: CRC-32 of the data with the sign bit cleared (always non-negative). */
export function messageChecksum(data: Uint8Array): number {
  return crc32(data) & 0x7fffffff;
}

/** What the store needs to write one record. */
export interface RecordInput {
  /** 64-bit message id, assigned by the broker. */
  readonly id: bigint;
  /** Flag word; bit 0 means `data` carries an attribute block. */
  readonly flag: number;
  /** The message data (attribute block + payload), exactly as the producer sent it. */
  readonly data: Buffer;
  /** The checksum, when the caller already verified it; computed otherwise. */
  readonly checksum?: number;
}

/** Builds the 20-byte header of a record. The data is written separately (no copy). */
export function encodeRecordHeader(record: RecordInput): Buffer {
  const header = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
  header.writeInt32BE(record.data.length, 0);
  header.writeInt32BE(record.checksum ?? messageChecksum(record.data), 4);
  header.writeBigInt64BE(record.id, 8);
  header.writeInt32BE(record.flag | 0, 16);
  return header;
}

/** Encodes a whole record (header + data) into one buffer. */
export function encodeRecord(record: RecordInput): Buffer {
  return Buffer.concat([encodeRecordHeader(record), record.data]);
}

/** A record decoded from a buffer; `data` is a view into the source buffer, not a copy. */
export interface DecodedRecord {
  readonly id: bigint;
  readonly flag: number;
  readonly checksum: number;
  readonly data: Buffer;
  /** Header + data length. */
  readonly size: number;
}

/** Why {@link decodeRecordAt} stopped. */
export type RecordProblem =
  /** Fewer bytes remain than the header or the announced data length. */
  | 'incomplete'
  /** The length field is negative or larger than the caller's limit. */
  | 'bad-length'
  /** The checksum does not match the data. */
  | 'bad-checksum';

/**
 * Decodes the record starting at `pos`, or says why there is no valid record there.
 * `maxDataLength` guards against a garbage length field making us read gigabytes.
 */
export function decodeRecordAt(buffer: Buffer, pos: number, maxDataLength: number): DecodedRecord | RecordProblem {
  if (buffer.length - pos < RECORD_HEADER_SIZE) return 'incomplete';
  const length = buffer.readInt32BE(pos);
  if (length < 0 || length > maxDataLength) return 'bad-length';
  const end = pos + RECORD_HEADER_SIZE + length;
  if (end > buffer.length) return 'incomplete';
  const checksum = buffer.readInt32BE(pos + 4);
  const data = buffer.subarray(pos + RECORD_HEADER_SIZE, end);
  if (messageChecksum(data) !== checksum) return 'bad-checksum';
  return {
    id: buffer.readBigInt64BE(pos + 8),
    flag: buffer.readInt32BE(pos + 16),
    checksum,
    data,
    size: RECORD_HEADER_SIZE + length,
  };
}
