/**
 * The answers to `get` and `offset`, turned into what the fetch loop acts on
 * (metaq-reference §1.4, §6.6). Plain functions handed to the connection.
 */
import type { ResponseFrame } from '../../protocol/frames.js';
import { parseOffsetBody } from '../../protocol/response-bodies.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { brokerErrorFor, unexpectedResponse } from '../broker-errors.js';
import type { OpaquelessRequest } from '../transport/request.js';

/** What a `get` brought. */
export type FetchOutcome =
  /** Raw stored records from the requested offset (may end inside a record). */
  | { readonly kind: 'value'; readonly body: Buffer }
  /** 301: continue from `offset` (before the first retained byte, or past the end). */
  | { readonly kind: 'moved'; readonly offset: number }
  /** 404 (nothing at/after the offset yet, or no such partition yet) or 403 (partition closed): back off. */
  | { readonly kind: 'empty'; readonly status: number; readonly detail: string };

/**
 * True for the 404 a broker answers when it has no log for the topic partition at all (MetaQ's
 * fixed text ``The topic `T` in partition `P` is not exists``), as opposed to "nothing at or
 * after this offset" (`Could not find message at position N`).
 */
export function isMissingPartition(outcome: FetchOutcome): boolean {
  return outcome.kind === 'empty' && outcome.status === ResultCode.NotFound && /^The topic `.*` in partition `-?\d+` is not exists$/s.test(outcome.detail);
}

function context(request: OpaquelessRequest, brokerUrl: string): string {
  return request.type === 'get' || request.type === 'offset'
    ? `${request.type} '${request.topic}' partition ${request.partition} offset ${request.offset} on ${brokerUrl}`
    : `${request.type} on ${brokerUrl}`;
}

/**
 * Interprets a `get` answer.
 *
 * @throws {BrokerError} for 400, 500, 503… (the loop backs off and retries); a ProtocolError for
 *   a malformed 301 body.
 */
export function interpretGet(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): FetchOutcome {
  if (response.type === 'value') return { kind: 'value', body: response.body };
  switch (response.code) {
    case ResultCode.Moved:
      return { kind: 'moved', offset: parseOffsetBody(response.body) };
    case ResultCode.NotFound:
    case ResultCode.Forbidden:
      return { kind: 'empty', status: response.code, detail: response.body.toString('utf8') };
    default:
      throw brokerErrorFor(response.code, response.body, context(request, brokerUrl));
  }
}

/**
 * Interprets an `offset` answer: the start of the segment holding the asked offset.
 *
 * @throws {BrokerError} for an error status.
 */
export function interpretOffset(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): number {
  if (response.type !== 'result') throw unexpectedResponse(response, context(request, brokerUrl));
  if (response.code !== ResultCode.Success) throw brokerErrorFor(response.code, response.body, context(request, brokerUrl));
  return parseOffsetBody(response.body);
}
