/**
 * Turning a broker's error answer into a typed error (one table, like KafkaJS's
 * `protocol/error.js`): the stable code and `retriable` depend on the status and, for a few
 * well-known texts, on the body.
 */
import { BrokerError, ErrorCode } from '../common/errors.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { ResponseFrame } from '../protocol/frames.js';
import { CHECKSUM_FAILURE_DETAIL, topicNotAcceptedDetail } from '../protocol/response-bodies.js';
import { ResultCode } from '../protocol/result-codes.js';

/**
 * Fixed parts of 500 details that no retry can fix: an unconfigured topic, a partition out of
 * range (the texts of `topicNotAcceptedDetail` and `wrongPartitionDetail` in response-bodies.ts).
 */
const PERMANENT_DETAILS = [topicNotAcceptedDetail(''), 'Detail:wrong partition '];

/**
 * The error for a non-200 `result`.
 *
 * | status | code | retriable |
 * |---|---|---|
 * | 403 (partition closed) | `METAQ_ERR_PARTITION_CLOSED` | yes: the partition may reopen, or another one can be used |
 * | 500 with MetaQ's checksum text | `METAQ_ERR_CHECKSUM` | yes: the bytes were damaged on the way |
 * | 500 "do not accept topic" / "wrong partition" | `METAQ_ERR_BROKER` | no: the topic or partition is not configured |
 * | 503, 504, other 5xx | `METAQ_ERR_BROKER` | yes |
 * | 400, 404, other | `METAQ_ERR_BROKER` | no |
 *
 * @param context - What was being done, e.g. `put to 'test' partition 2 on meta://…`.
 */
export function brokerErrorFor(status: number, body: Buffer, context: string): BrokerError {
  const detail = body.toString('utf8');
  if (status === ResultCode.Forbidden) return new BrokerError(status, detail, { code: ErrorCode.PartitionClosed, retriable: true, context });
  if (status === ResultCode.InternalServerError && detail.includes(CHECKSUM_FAILURE_DETAIL)) {
    return new BrokerError(status, detail, { code: ErrorCode.Checksum, retriable: true, context });
  }
  if (status === ResultCode.InternalServerError && PERMANENT_DETAILS.some((text) => detail.includes(text))) {
    // MetaQ answers 500 for everything; these two will fail the same way however often they are tried.
    return new BrokerError(status, detail, { context, retriable: false });
  }
  return new BrokerError(status, detail, { context });
}

/** The error for an answer of the wrong kind (a `value` where a `result` was due). */
export function unexpectedResponse(response: ResponseFrame, context: string): ProtocolError {
  return new ProtocolError(`${context}: unexpected '${response.type}' answer`);
}
