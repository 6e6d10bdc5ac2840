/**
 * Replies of the `transaction` command and of transactional puts, in MetaQ's wire texts:
 * XA errors as `XAException:code=<n>,msg=<text>` (the Java client rethrows them with that code),
 * local-transaction errors as plain 500 texts.
 */
import { ResultCode } from '../protocol/result-codes.js';
import { localTransactionNotStartedBody, xaExceptionBody, xaTransactionNotStartedMessage, XaCode } from '../protocol/transaction-bodies.js';
import { result, type Reply } from '../broker/commands/reply.js';
import type { TransactionKind } from './transaction-state.js';

/** `result 200` with an empty body. */
export const OK: Reply = result(ResultCode.Success);

/** A refused XA operation: `result 500 XAException:code=<n>,msg=<text>`. */
export function xaError(code: number, message: string): Reply {
  return result(ResultCode.InternalServerError, xaExceptionBody(code, message));
}

/** A refused operation, in the form its kind of transaction uses. */
export function txError(kind: TransactionKind, code: number, message: string): Reply {
  return kind === 'xa' ? xaError(code, message) : result(ResultCode.InternalServerError, message);
}

/** The transaction is not known (never begun, or forgotten long ago). */
export function notStarted(kind: TransactionKind, key: string): Reply {
  return kind === 'xa' ? xaError(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(key)) : result(ResultCode.InternalServerError, localTransactionNotStartedBody(key));
}
