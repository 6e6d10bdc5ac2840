/**
 * `result` bodies of the `transaction` command (metaq-reference §1.7): PREPARE votes, RECOVER
 * key lists and the `XAException:code=…,msg=…` errors that the Java client turns back into an
 * XAException with the same code.
 */
import { ProtocolError } from './protocol-error.js';
import { formatTransactionKey, parseTransactionKey, type TransactionKey } from './transaction-key.js';

/** The standard X/Open XA codes MetaQ uses (javax.transaction.xa.XAException / XAResource). */
export const XaCode = {
  /** PREPARE vote: prepared, commit may follow. */
  XA_OK: 0,
  /** PREPARE vote: nothing was written, the branch is finished. */
  XA_RDONLY: 3,
  XA_HEURRB: 6,
  XA_HEURCOM: 7,
  XA_HEURHAZ: 8,
  XA_RBOTHER: 104,
  /** Rolled back because the transaction timed out. */
  XA_RBTIMEOUT: 106,
  /** Resource manager error (also what the Java client uses for a plain 500 on an XA call). */
  XAER_RMERR: -3,
  /** Unknown XID. */
  XAER_NOTA: -4,
  XAER_INVAL: -5,
  /** The operation is not legal in the transaction's state. */
  XAER_PROTO: -6,
  XAER_RMFAIL: -7,
  XAER_DUPID: -8,
} as const;

/** One of the values of {@link XaCode}. */
export type XaCodeValue = (typeof XaCode)[keyof typeof XaCode];

/** The 200 body of PREPARE: the vote as a decimal (`0` or `3`). */
export function prepareResultBody(vote: typeof XaCode.XA_OK | typeof XaCode.XA_RDONLY): string {
  return String(vote);
}

/** The 500 body of a failed XA operation: `XAException:code=<n>,msg=<text>`. */
export function xaExceptionBody(code: number, message: string): string {
  return `XAException:code=${code},msg=${message}`;
}

/** An XA error parsed from a 500 body. */
export interface XaError {
  readonly code: number;
  readonly message: string;
}

const XA_EXCEPTION = /code=(-?\d+),msg=(.*)/s;

/**
 * Parses an `XAException:code=…,msg=…` body the way the Java client does (searching for
 * `code=(-?\d+),msg=(.*)`); `undefined` for any other text, which the client maps to XAER_RMERR.
 */
export function parseXaExceptionBody(body: Buffer | string): XaError | undefined {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const match = XA_EXCEPTION.exec(text);
  if (match === null) return undefined;
  const code = Number(match[1]);
  return Number.isSafeInteger(code) ? { code, message: match[2] ?? '' } : undefined;
}

/** The message of an XAER_NOTA error for an XID the broker does not know. */
export function xaTransactionNotStartedMessage(key: string): string {
  return `XA transaction '${key}' has not been started.`;
}

/** The 500 body for a put/commit/rollback of an unknown local transaction. */
export function localTransactionNotStartedBody(key: string): string {
  return `Local transaction '${key}' has not been started.`;
}

/** The 500 body when too many transaction timeouts are armed. */
export function timerCapacityExceededBody(size: number, maxTimerCapacity: number): string {
  return `Timer size ${size} is great than maxTimerCapacity ${maxTimerCapacity}`;
}

/** The 200 body of RECOVER: the keys joined by CRLF (empty when there are none). */
export function recoverResultBody(keys: readonly (TransactionKey | string)[]): string {
  return keys.map((key) => (typeof key === 'string' ? key : formatTransactionKey(key))).join('\r\n');
}

/**
 * Parses a RECOVER body into keys (an empty body means none).
 *
 * @throws {ProtocolError} when a line is not a transaction key (or is `null`).
 */
export function parseRecoverResultBody(body: Buffer | string): TransactionKey[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  if (text === '') return [];
  return text.split('\r\n').map((line) => {
    const key = parseTransactionKey(line);
    if (key === null) throw new ProtocolError('RECOVER result lists the null transaction key');
    return key;
  });
}
