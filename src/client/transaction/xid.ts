/**
 * XIDs and the resource manager's unique qualifier, and how they become MetaQ `XID:` keys
 * (`XID:<formatId>:<gtridHex>:<bqualHex>:<uniqueQualifier>`, metaq-reference §1.7).
 */
import os from 'node:os';
import { formatTransactionKey, type XaTransactionKey } from '../../protocol/transaction-key.js';
import { isInt32 } from '../../protocol/numbers.js';
import { XaCode } from './xa-codes.js';
import { xaError } from './xa-errors.js';

/** An X/Open transaction branch identifier (`javax.transaction.xa.Xid`). */
export interface Xid {
  /** Format id; the transaction manager's namespace (a 32-bit integer, not -1: that is the null XID). */
  readonly formatId: number;
  /** Global transaction id, 1–64 bytes. */
  readonly globalTransactionId: Buffer;
  /** Branch qualifier, 0–64 bytes. */
  readonly branchQualifier: Buffer;
}

/** X/Open limit on both parts of an XID. */
export const MAXGTRIDSIZE = 64;
export const MAXBQUALSIZE = 64;

/** Prefix of the default unique qualifier (MetaQ's `XAMessageProducer-<hostname>`). */
export const DEFAULT_UNIQUE_QUALIFIER_PREFIX = 'XAMessageProducer';

/** Longest unique qualifier accepted (it is repeated in every XA key on the wire and in the broker's log). */
export const MAX_UNIQUE_QUALIFIER_LENGTH = 128;

/**
 * Why `qualifier` cannot be a unique qualifier, or `undefined` when it can. Refused: empty,
 * longer than {@link MAX_UNIQUE_QUALIFIER_LENGTH}, any whitespace (CR, LF, TAB, space: the frame
 * header is space-separated), `:` (it separates the parts of an XA key), and all digits (MetaQ's
 * decoder would read it as a timeout when no timeout precedes it).
 */
export function uniqueQualifierError(qualifier: unknown): string | undefined {
  if (typeof qualifier !== 'string') return 'it is not a string';
  if (qualifier === '') return 'it is empty';
  if (qualifier.length > MAX_UNIQUE_QUALIFIER_LENGTH) return `it is longer than ${MAX_UNIQUE_QUALIFIER_LENGTH} characters`;
  if (/\s/.test(qualifier)) return 'it contains whitespace (CR, LF, TAB or space)';
  if (qualifier.includes(':')) return "it contains ':'";
  if (/^\d+$/.test(qualifier)) return 'it is all digits (MetaQ would read it as a timeout)';
  return undefined;
}

/** Replaces every character a qualifier or session id may not contain with `_`. */
export function sanitizeToken(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]/g, '_');
  return cleaned === '' ? 'unknown' : cleaned;
}

/**
 * `XAMessageProducer-<hostname>`: stable across restarts of the same host, which is what lets
 * `recover()` find the branches an earlier run of this producer left prepared. The hostname is
 * sanitised (anything but letters, digits, `.`, `_`, `-` becomes `_`).
 */
export function defaultUniqueQualifier(hostname: string = os.hostname()): string {
  return `${DEFAULT_UNIQUE_QUALIFIER_PREFIX}-${sanitizeToken(hostname)}`.slice(0, MAX_UNIQUE_QUALIFIER_LENGTH);
}

/**
 * Checks an XID's shape.
 *
 * @throws {XaError} XAER_INVAL naming what is wrong.
 */
export function checkXid(xid: Xid): void {
  if (xid === null || typeof xid !== 'object') throw xaError(XaCode.XAER_INVAL, 'the xid must be an object { formatId, globalTransactionId, branchQualifier }');
  if (typeof xid.formatId !== 'number' || !isInt32(xid.formatId) || xid.formatId === -1) {
    throw xaError(XaCode.XAER_INVAL, `xid.formatId must be a 32-bit integer other than -1 (the null XID), got ${String(xid.formatId)}`);
  }
  const { globalTransactionId: gtrid, branchQualifier: bqual } = xid;
  if (!Buffer.isBuffer(gtrid) || gtrid.length < 1 || gtrid.length > MAXGTRIDSIZE) {
    throw xaError(XaCode.XAER_INVAL, `xid.globalTransactionId must be a Buffer of 1 to ${MAXGTRIDSIZE} bytes`);
  }
  if (!Buffer.isBuffer(bqual) || bqual.length > MAXBQUALSIZE) {
    throw xaError(XaCode.XAER_INVAL, `xid.branchQualifier must be a Buffer of 0 to ${MAXBQUALSIZE} bytes`);
  }
}

/** The protocol key of `xid` on the resource manager `uniqueQualifier`. */
export function xaKeyOf(xid: Xid, uniqueQualifier: string): XaTransactionKey {
  return {
    kind: 'xa',
    formatId: xid.formatId,
    globalTransactionId: Buffer.from(xid.globalTransactionId),
    branchQualifier: Buffer.from(xid.branchQualifier),
    uniqueQualifier,
  };
}

/** The `XID:` key text of `xid` on `uniqueQualifier` (the branch's identity on the broker). */
export function xaKeyText(xid: Xid, uniqueQualifier: string): string {
  return formatTransactionKey(xaKeyOf(xid, uniqueQualifier));
}

/** The {@link Xid} of a key (copies of the byte parts). */
export function xidOf(key: XaTransactionKey): Xid {
  return Object.freeze({
    formatId: key.formatId,
    globalTransactionId: Buffer.from(key.globalTransactionId),
    branchQualifier: Buffer.from(key.branchQualifier),
  });
}

/** True when both XIDs name the same branch. */
export function xidEquals(a: Xid, b: Xid): boolean {
  return a.formatId === b.formatId && a.globalTransactionId.equals(b.globalTransactionId) && a.branchQualifier.equals(b.branchQualifier);
}

/** `formatId:gtridHex:bqualHex`, for messages and logs. */
export function describeXid(xid: Xid): string {
  return `${xid.formatId}:${xid.globalTransactionId.toString('hex')}:${xid.branchQualifier.toString('hex')}`;
}
