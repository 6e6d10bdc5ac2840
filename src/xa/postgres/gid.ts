/**
 * PostgreSQL gids of XA branches (transactions.md §2.5, §5.2): pgjdbc's
 * `formatId_base64(gtrid)_base64(bqual)`, validated before any statement uses it.
 *
 * Why validate although {@link pgGidOf} builds the gid itself: `PREPARE TRANSACTION`,
 * `COMMIT PREPARED` and `ROLLBACK PREPARED` are utility statements and cannot take bind
 * parameters, so the gid ends up inside the SQL text. A strict character set makes that safe by
 * construction; `escapeLiteral` is applied on top as a second line of defence.
 */
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import type { XaError } from '../../common/errors.js';
import { MAX_PG_GID_BYTES, METAQ_TM_FORMAT_ID, pgGidOf, type Xid } from '../xid.js';

/** Characters a gid of ours may contain: digits, `-` (a negative formatId), base64 and `_`. */
const GID_CHARSET = /^[A-Za-z0-9+/=_-]+$/;

/**
 * Why `gid` cannot be used as a PostgreSQL gid of this resource, or undefined when it can.
 * Refused: empty, 200 bytes or more (PostgreSQL's limit), any character outside
 * `[A-Za-z0-9+/=_-]` (quotes, backslashes, whitespace, non-ASCII).
 */
export function pgGidProblem(gid: string): string | undefined {
  if (gid === '') return 'it is empty';
  const bytes = Buffer.byteLength(gid, 'utf8');
  if (bytes > MAX_PG_GID_BYTES) return `it is ${bytes} bytes long; PostgreSQL needs fewer than 200`;
  if (!GID_CHARSET.test(gid)) return 'it contains characters other than [A-Za-z0-9+/=_-]';
  return undefined;
}

/**
 * The validated PostgreSQL gid of `xid`.
 *
 * Also refuses a formatId other than {@link METAQ_TM_FORMAT_ID}: recovery only lists gids with
 * that formatId, so a branch prepared under another one would never be found again and would
 * hold its locks (and VACUUM's horizon) until an administrator noticed.
 *
 * @throws XaError XAER_INVAL naming the problem.
 */
export function pgGidFor(xid: Xid, resourceId: string): string {
  if (xid.formatId !== METAQ_TM_FORMAT_ID) {
    throw invalid(`${resourceId}: XID formatId ${xid.formatId} is not this transaction manager's (${METAQ_TM_FORMAT_ID}); recovery would never find such a branch`);
  }
  let gid: string;
  try {
    gid = pgGidOf(xid);
  } catch (err) {
    throw invalid(`${resourceId}: cannot make a PostgreSQL gid of this XID: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const problem = pgGidProblem(gid);
  if (problem !== undefined) throw invalid(`${resourceId}: PostgreSQL gid ${JSON.stringify(gid)} is not usable: ${problem}`);
  return gid;
}

/** Something with pg's `escapeLiteral` (a `pg.Client`/`PoolClient`). */
export interface LiteralEscaper {
  escapeLiteral(text: string): string;
}

/**
 * The SQL string literal of a gid, for `PREPARE TRANSACTION <literal>` and friends.
 *
 * @throws XaError XAER_INVAL when the gid fails {@link pgGidProblem} (never builds SQL from it).
 */
export function pgGidLiteral(escaper: LiteralEscaper, gid: string): string {
  const problem = pgGidProblem(gid);
  if (problem !== undefined) throw invalid(`PostgreSQL gid ${JSON.stringify(gid)} is not usable: ${problem}`);
  return escaper.escapeLiteral(gid);
}

/**
 * The `LIKE` pattern matching the gids of {@link METAQ_TM_FORMAT_ID} (`_` escaped: in `LIKE` it
 * is a one-character wildcard). Passed as a bind parameter: `SELECT` can take one.
 */
export const OWN_GID_LIKE_PATTERN = `${METAQ_TM_FORMAT_ID}\\_%`;

function invalid(message: string, cause?: unknown): XaError {
  return xaError(XaCode.XAER_INVAL, message, cause);
}
