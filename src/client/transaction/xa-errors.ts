/**
 * Error mapping of transaction calls (transactions.md §0.5, §5.5): where real systems lose data.
 *
 * XA calls:
 *
 * | what happened | xaCode | retriable |
 * |---|---|---|
 * | no answer in time, connection lost or not (re-)established, client closed | XAER_RMFAIL (-7) | yes: the outcome is unknown, ask again |
 * | `result 500 XAException:code=<n>,msg=<text>` | `<n>` (e.g. XAER_NOTA -4, XA_RBTIMEOUT 106) | only for -7 / 4 |
 * | any other error answer (plain 500, 400, …) or a malformed answer | XAER_RMERR (-3) | no |
 *
 * A timeout is never mapped to XA_RB* (MetaQ did: a transaction manager then believes the branch
 * rolled back while it may have committed).
 *
 * Local transactions have no codes on the wire: the broker answers plain 500 texts, classified by
 * {@link classifyLocalRefusal}.
 */
import { BrokerError, ClientClosedError, ConnectionError, RequestTimeoutError, XaError } from '../../common/errors.js';
import { parseXaExceptionBody } from '../../protocol/transaction-bodies.js';
import { XaCode, xaCodeName } from './xa-codes.js';

/** An {@link XaError} whose message starts with the code's name: `XAER_NOTA (-4): …`. */
export function xaError(code: number, message: string, cause?: unknown): XaError {
  return new XaError(code, `${xaCodeName(code)} (${code}): ${message}`, cause === undefined ? {} : { cause });
}

/**
 * True for failures that say nothing about what the broker did: no answer in time, the
 * connection lost after the request was written (or never made), the client closed.
 */
export function isTransportFailure(error: unknown): boolean {
  return error instanceof RequestTimeoutError || error instanceof ConnectionError || error instanceof ClientClosedError;
}

/**
 * The {@link XaError} for a failed XA call.
 *
 * @param what - The call, e.g. `prepare of XID:1:0102:ab:XAMessageProducer-host1 on meta://…`.
 */
export function toXaError(error: unknown, what: string): XaError {
  if (error instanceof XaError) return error;
  if (isTransportFailure(error)) {
    const reason = error instanceof Error ? error.message : String(error);
    return xaError(XaCode.XAER_RMFAIL, `${what}: the broker could not be reached or did not answer (${reason}); the outcome is unknown, try again`, error);
  }
  if (error instanceof BrokerError) {
    const parsed = parseXaExceptionBody(error.detail);
    if (parsed !== undefined) return xaError(parsed.code, `${what}: ${parsed.message}`, error);
    return xaError(XaCode.XAER_RMERR, `${what}: the broker answered ${error.status}: ${error.detail}`, error);
  }
  const reason = error instanceof Error ? error.message : String(error);
  return xaError(XaCode.XAER_RMERR, `${what}: ${reason}`, error);
}

/** What a broker's error answer about a local transaction says about it. */
export type LocalRefusal =
  /** Rolled back by a client or because the producer's connection closed. */
  | 'rolled-back'
  /** Rolled back by the broker's timer. */
  | 'timed-out'
  /** Already committed (answer to a rollback). */
  | 'committed'
  /** A commit is being applied (answer to a rollback). */
  | 'committing'
  /** The broker does not know the key: never begun, restarted since, or forgotten. */
  | 'not-started'
  /** Anything else (unknown topic, wrong partition, the broker's internal errors). */
  | 'other';

const IN_STATE = /\ba local transaction in state ([A-Z_]+):/;
const NOT_STARTED = /^Local transaction '[^']*' has not been started\.$/;

/**
 * Reads a plain 500 answer about a local transaction: the broker's state-machine refusals say
 * `cannot <event> a local transaction in state <STATE>: <reason>`, unknown keys
 * `Local transaction '<key>' has not been started.` (transaction-state.ts, xa-replies.ts).
 */
export function classifyLocalRefusal(detail: string): LocalRefusal {
  if (NOT_STARTED.test(detail.trim())) return 'not-started';
  const state = IN_STATE.exec(detail)?.[1];
  switch (state) {
    case 'ROLLED_BACK':
      return 'rolled-back';
    case 'TIMED_OUT':
      return 'timed-out';
    case 'COMMITTED':
      return 'committed';
    case 'COMMITTING':
      return 'committing';
    default:
      return 'other';
  }
}
