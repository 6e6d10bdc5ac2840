/**
 * Encoding requests for the wire, with a fast path for `put`.
 *
 * Why a fast path: a producer may send 100 000 puts per second over one connection, and the
 * generic encoder (src/protocol/encode.ts) builds token arrays and copies the message data
 * into a fresh frame buffer, which the connection then copies again when it coalesces a burst
 * into one write. Here a put becomes just its header string; the connection writes header and
 * data straight into the coalesced buffer (one copy of the data in all). The bytes are exactly
 * what `encodePut` writes for a non-transactional put (7 tokens); a unit test checks it.
 */
import { encodeFrame } from '../../protocol/encode.js';
import type { RequestFrame } from '../../protocol/frames.js';
import { isInt32 } from '../../protocol/numbers.js';
import { ProtocolError } from '../../protocol/protocol-error.js';
import type { OpaquelessRequest } from './request.js';

const WHITESPACE = /\s/;

/**
 * The bytes of `frame` with `opaque`: for a put without transaction key, its header line as a
 * string (the data follows it on the wire); for anything else, the whole encoded frame.
 *
 * @throws {ProtocolError} for a frame that cannot be written faithfully.
 */
export function encodeRequestHead(frame: OpaquelessRequest, opaque: number): string | Buffer {
  if (frame.type !== 'put' || frame.transactionKey !== undefined) return encodeFrame({ ...frame, opaque } as RequestFrame);
  const { topic, partition, flag, checksum } = frame;
  if (topic === '' || WHITESPACE.test(topic)) throw new ProtocolError(`Cannot encode put: topic ${JSON.stringify(topic)} must be non-empty and contain no whitespace`);
  if (!isInt32(partition) || !isInt32(flag) || !isInt32(checksum) || !isInt32(opaque)) {
    throw new ProtocolError(`Cannot encode put: partition ${partition}, flag ${flag}, checksum ${checksum} and opaque ${opaque} must be 32-bit integers`);
  }
  return `put ${topic} ${partition} ${frame.data.length} ${flag} ${checksum} ${opaque}\r\n`;
}

/** The body that follows a head from {@link encodeRequestHead} (a put's data), if any. */
export function requestBody(frame: OpaquelessRequest, head: string | Buffer): Buffer | undefined {
  return typeof head === 'string' && frame.type === 'put' ? frame.data : undefined;
}
