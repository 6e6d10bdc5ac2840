/**
 * Where a consumed message ends in its partition log: the offset the consumer fetches next once
 * it is done with the message, which is what an exactly-once transaction stores.
 *
 * Why compute it instead of taking it from the fetch loop: a {@link ConsumedMessage} carries
 * its start offset only. Its stored record is the 20-byte header plus the data block, and the
 * data block is re-created exactly from the message: the payload, preceded by the attribute
 * block (int32 length + UTF-8) when there is an attribute (message-data.ts). A message whose
 * attribute block could not be decoded is delivered with its raw data block and no attribute,
 * which the same formula covers.
 */
import { RECORD_HEADER_SIZE } from '../../protocol/record.js';
import type { ConsumedMessage } from '../message.js';

const ATTRIBUTE_LENGTH_SIZE = 4;

/** Size in bytes of the stored record of `message` (header and data block). */
export function recordSizeOf(message: Pick<ConsumedMessage, 'data' | 'attribute'>): number {
  const block = message.attribute === undefined ? message.data.length : ATTRIBUTE_LENGTH_SIZE + Buffer.byteLength(message.attribute, 'utf8') + message.data.length;
  return RECORD_HEADER_SIZE + block;
}

/** The offset right after `message`: the next one to fetch. */
export function nextOffsetOf(message: Pick<ConsumedMessage, 'offset' | 'data' | 'attribute'>): number {
  return message.offset + recordSizeOf(message);
}
