/**
 * Errors raised by the wire codec. A {@link ProtocolError} means "the peer sent bytes that are
 * not a MetaQ frame" (or the caller asked to encode a frame that cannot be written); the
 * connection cannot be resynchronised after it, so the caller closes it.
 */
import { ErrorCode, MetaqError, type ErrorCodeValue, type MetaqErrorOptions } from '../common/errors.js';

/** How much of an offending header an error message quotes. */
export const ERROR_HEADER_EXCERPT_LENGTH = 200;

/** Where a {@link ProtocolError} came from, for logs and for the broker's `result 400` reply. */
export interface ProtocolErrorDetails {
  /** The offending header line (already truncated to {@link ERROR_HEADER_EXCERPT_LENGTH} characters). */
  readonly header?: string;
  /**
   * The opaque of the offending request, when its header got far enough to carry a valid one.
   * A broker answering `result 400` should use it so the client can correlate the answer.
   */
  readonly opaque?: number;
}

/** The peer violated the MetaQ wire protocol, or a frame to encode is not representable. */
export class ProtocolError extends MetaqError {
  /** The offending header line (truncated), when the error is about one. */
  readonly header: string | undefined;
  /** The offending request's opaque, when it could be read; see {@link ProtocolErrorDetails.opaque}. */
  readonly opaque: number | undefined;

  constructor(message: string, details: ProtocolErrorDetails = {}, options: MetaqErrorOptions & { code?: ErrorCodeValue } = {}) {
    super(options.code ?? ErrorCode.Protocol, message, options);
    this.header = details.header;
    this.opaque = details.opaque;
  }
}

/** Why a record in a `value` body was rejected. */
export type InvalidRecordReason = 'bad-checksum' | 'bad-length';

/**
 * A stored record inside a `value` body is corrupt (CRC mismatch) or announces an impossible
 * length. MetaQ's client calls this InvalidMessageException and re-syncs its offset with an
 * `offset` request; {@link position} tells it how far the good records went.
 */
export class InvalidRecordError extends ProtocolError {
  /** Byte position of the bad record inside the body (= bytes of good records before it). */
  readonly position: number;
  /** What is wrong with the record. */
  readonly reason: InvalidRecordReason;

  constructor(message: string, position: number, reason: InvalidRecordReason) {
    super(message, {}, { code: ErrorCode.InvalidMessage });
    this.position = position;
    this.reason = reason;
  }
}

/**
 * Quotes a header for an error message: at most {@link ERROR_HEADER_EXCERPT_LENGTH} characters,
 * JSON-escaped so control bytes and garbage stay readable in logs.
 */
export function quoteHeader(header: string): string {
  return header.length > ERROR_HEADER_EXCERPT_LENGTH
    ? `${JSON.stringify(header.slice(0, ERROR_HEADER_EXCERPT_LENGTH))}…`
    : JSON.stringify(header);
}
