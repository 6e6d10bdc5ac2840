/**
 * The answer to a `put`, turned into a {@link SendResult} or a typed error. A plain function
 * (no closure), handed to the connection for every send.
 */
import type { ResponseFrame } from '../../protocol/frames.js';
import { INT64_MAX, INT64_MIN } from '../../protocol/numbers.js';
import { parsePutResultBody, type PutResult } from '../../protocol/response-bodies.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { brokerErrorFor, unexpectedResponse } from '../broker-errors.js';
import type { SendResult } from '../message.js';
import type { OpaquelessRequest } from '../transport/request.js';

function context(request: OpaquelessRequest, brokerUrl: string): string {
  return request.type === 'put' ? `put to '${request.topic}' partition ${request.partition} on ${brokerUrl}` : `${request.type} on ${brokerUrl}`;
}

/**
 * `result 200 <id> <partition> <offset>` → {@link SendResult}; any other answer throws.
 *
 * @throws {BrokerError} for an error status (403 → `METAQ_ERR_PARTITION_CLOSED`); a
 *   {@link ProtocolError} for a malformed answer.
 */
export function interpretPut(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): SendResult {
  if (response.type !== 'result') throw unexpectedResponse(response, context(request, brokerUrl));
  if (response.code !== ResultCode.Success) throw brokerErrorFor(response.code, response.body, context(request, brokerUrl));
  const body = response.body;
  const fast = parsePutAnswerFast(body);
  const put = fast ?? parsePutResultBody(body);
  return {
    id: put.messageId,
    topic: request.type === 'put' ? request.topic : '',
    partition: put.partition,
    offset: put.offset,
    brokerUrl,
  };
}

const SPACE = 0x20;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Parses a decimal integer in `body[start, end)` without creating strings: `undefined` unless
 * it is an optional `-` and 1–15 digits (always a safe integer; longer ones take the slow path).
 */
function decimalAt(body: Buffer, start: number, end: number): number | undefined {
  let i = start;
  const negative = i < end && body.readUInt8(i) === MINUS;
  if (negative) i++;
  if (i === end || end - i > 15) return undefined;
  let value = 0;
  for (; i < end; i++) {
    const c = body.readUInt8(i);
    if (c < ZERO || c > NINE) return undefined;
    value = value * 10 + (c - ZERO);
  }
  return negative ? -value : value;
}

/**
 * The common case of a put answer, `<msgId> <partition> <offset>`, parsed straight from the
 * bytes (a producer parses one per message). Returns `undefined` for anything unusual, which
 * `parsePutResultBody` then parses or rejects with a proper message.
 */
export function parsePutAnswerFast(body: Buffer): PutResult | undefined {
  const first = body.indexOf(SPACE);
  if (first <= 0) return undefined;
  const second = body.indexOf(SPACE, first + 1);
  if (second === -1 || body.indexOf(SPACE, second + 1) !== -1) return undefined;
  const partition = decimalAt(body, first + 1, second);
  const offset = decimalAt(body, second + 1, body.length);
  if (partition === undefined || offset === undefined || partition > 0x7fffffff || partition < -0x80000000) return undefined;
  // Ids use all 64 bits: check the characters, let BigInt convert, check the range.
  const negative = body.readUInt8(0) === MINUS;
  const digits = first - (negative ? 1 : 0);
  if (digits === 0 || digits > 19) return undefined;
  for (let i = negative ? 1 : 0; i < first; i++) {
    const c = body.readUInt8(i);
    if (c < ZERO || c > NINE) return undefined;
  }
  const messageId = BigInt(body.toString('latin1', 0, first));
  if (messageId > INT64_MAX || messageId < INT64_MIN) return undefined;
  return { messageId, partition, offset };
}
