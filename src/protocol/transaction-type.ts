/**
 * The eight transaction operations of the `transaction` command (metaq-reference §1.7). On the
 * wire they are the literal Java enum names. Messages of a transaction travel in ordinary `put`
 * frames carrying the transaction key; there is no "put in transaction" type.
 */

/** The `TYPE` token of a `transaction` frame. */
export const TransactionType = {
  /** Start a transaction (local: before its first put; XA: `XAResource.start`). May carry a timeout. */
  Begin: 'BEGIN',
  /** XA `end`: one-way in Java (no answer expected); metaq answers `result 200 0 <opaque>`. */
  End: 'END',
  /** XA phase one; the result body is `0` (XA_OK) or `3` (XA_RDONLY). */
  Prepare: 'PREPARE',
  /** Local commit, or XA one-phase commit. */
  CommitOnePhase: 'COMMIT_ONE_PHASE',
  /** XA phase two; only legal after PREPARE. */
  CommitTwoPhase: 'COMMIT_TWO_PHASE',
  /** Drop the transaction's messages. */
  Rollback: 'ROLLBACK',
  /** XA `recover`: sent with the key `null`; the result body lists prepared XIDs, CRLF-separated. */
  Recover: 'RECOVER',
  /** XA `forget` of a heuristically completed transaction. */
  Forget: 'FORGET',
} as const;

/** One of the values of {@link TransactionType}. */
export type TransactionTypeName = (typeof TransactionType)[keyof typeof TransactionType];

const NAMES: ReadonlySet<string> = new Set(Object.values(TransactionType));

/** True when `token` is one of the eight {@link TransactionType} names (case-sensitive, as in Java). */
export function isTransactionType(token: string): token is TransactionTypeName {
  return NAMES.has(token);
}
