/**
 * The message "data" a producer puts (metaq-reference §1.5): the payload, optionally preceded by
 * an attribute block. Flag bit 0 says whether the block is there:
 *
 * | flag bit 0 | data                                                          |
 * |------------|---------------------------------------------------------------|
 * | 0          | payload                                                       |
 * | 1          | int32 BE attribute byte length, attribute (UTF-8), payload   |
 *
 * The checksum in `put` headers and stored records covers the whole data block.
 */
import { ProtocolError } from './protocol-error.js';

/** Flag bit 0: the data starts with an attribute block. */
export const ATTRIBUTE_FLAG = 1;

const ATTRIBUTE_LENGTH_SIZE = 4;

/** What {@link encodeMessageData} returns: the data block and the flag to send with it. */
export interface EncodedMessageData {
  readonly data: Buffer;
  readonly flag: number;
}

/** A decoded data block. */
export interface MessageData {
  /** The user payload (a view into the data block, not a copy). */
  readonly payload: Buffer;
  /** The attribute, when flag bit 0 is set (may be the empty string). */
  readonly attribute?: string;
}

/**
 * Builds a data block. With an attribute (even `''`, as in Java where only `null` means "none")
 * the block gets the attribute prefix and flag bit 0 is set; other bits of `flag` are kept.
 * Without one, the payload is returned as is (no copy) and bit 0 is cleared.
 */
export function encodeMessageData(payload: Buffer, attribute?: string, flag = 0): EncodedMessageData {
  if (attribute === undefined) return { data: payload, flag: flag & ~ATTRIBUTE_FLAG };
  const attributeLength = Buffer.byteLength(attribute, 'utf8');
  const data = Buffer.allocUnsafe(ATTRIBUTE_LENGTH_SIZE + attributeLength + payload.length);
  data.writeInt32BE(attributeLength, 0);
  data.write(attribute, ATTRIBUTE_LENGTH_SIZE, 'utf8');
  payload.copy(data, ATTRIBUTE_LENGTH_SIZE + attributeLength);
  return { data, flag: (flag & ~ATTRIBUTE_FLAG) | ATTRIBUTE_FLAG };
}

/**
 * Splits a data block into attribute and payload according to `flag`.
 *
 * @throws {ProtocolError} when flag bit 0 is set but the block is shorter than 4 bytes or its
 *   attribute length is negative or runs past the end.
 */
export function decodeMessageData(data: Buffer, flag: number): MessageData {
  if ((flag & ATTRIBUTE_FLAG) === 0) return { payload: data };
  if (data.length < ATTRIBUTE_LENGTH_SIZE) {
    throw new ProtocolError(`Message data of ${data.length} bytes is too short for the attribute length its flag announces`);
  }
  const attributeLength = data.readInt32BE(0);
  if (attributeLength < 0 || attributeLength > data.length - ATTRIBUTE_LENGTH_SIZE) {
    throw new ProtocolError(`Attribute length ${attributeLength} does not fit in message data of ${data.length} bytes`);
  }
  const payloadStart = ATTRIBUTE_LENGTH_SIZE + attributeLength;
  return {
    attribute: data.toString('utf8', ATTRIBUTE_LENGTH_SIZE, payloadStart),
    payload: data.subarray(payloadStart),
  };
}
