/**
 * Answers to the `transaction` command (metaq-reference §1.7), turned into values or thrown as
 * `BrokerError` (the caller maps those to XA codes or local outcomes). Plain module-level
 * functions, handed to the connection as interpreters.
 */
import type { ResponseFrame } from '../../protocol/frames.js';
import { ProtocolError } from '../../protocol/protocol-error.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { parseRecoverResultBody } from '../../protocol/transaction-bodies.js';
import type { XaTransactionKey } from '../../protocol/transaction-key.js';
import { brokerErrorFor, unexpectedResponse } from '../broker-errors.js';
import type { OpaquelessRequest } from '../transport/request.js';
import { XaCode } from './xa-codes.js';

function context(request: OpaquelessRequest, brokerUrl: string): string {
  return request.type === 'transaction' ? `transaction ${request.transactionType} on ${brokerUrl}` : `${request.type} on ${brokerUrl}`;
}

function checkSuccess(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): void {
  if (response.type !== 'result') throw unexpectedResponse(response, context(request, brokerUrl));
  if (response.code !== ResultCode.Success) throw brokerErrorFor(response.code, response.body, context(request, brokerUrl));
}

/** `result 200` (BEGIN, END, COMMIT_*, ROLLBACK, FORGET): resolves; anything else throws. */
export function interpretTransactionOk(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): void {
  checkSuccess(response, request, brokerUrl);
}

/** The PREPARE vote: body `0` (XA_OK) or `3` (XA_RDONLY). */
export function interpretPrepareVote(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): 0 | 3 {
  checkSuccess(response, request, brokerUrl);
  const text = response.body.toString('utf8').trim();
  if (text === String(XaCode.XA_OK)) return XaCode.XA_OK;
  if (text === String(XaCode.XA_RDONLY)) return XaCode.XA_RDONLY;
  throw new ProtocolError(`${context(request, brokerUrl)}: the prepare vote ${JSON.stringify(text.slice(0, 50))} is neither 0 (XA_OK) nor 3 (XA_RDONLY)`);
}

/** The RECOVER list: XA keys, CRLF-separated (an empty body: none). */
export function interpretRecoverList(response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string): XaTransactionKey[] {
  checkSuccess(response, request, brokerUrl);
  const keys = parseRecoverResultBody(response.body);
  const xa: XaTransactionKey[] = [];
  for (const key of keys) {
    if (key.kind !== 'xa') throw new ProtocolError(`${context(request, brokerUrl)}: RECOVER listed a local transaction key`);
    xa.push(key);
  }
  return xa;
}
