/**
 * Transaction keys (metaq-reference §1.7): the text that names a transaction in `put` and
 * `transaction` frames.
 *
 * | form  | text                                                            |
 * |-------|-----------------------------------------------------------------|
 * | local | `TX:<sessionId>:<counter>`                                      |
 * | XA    | `XID:<formatId>:<gtridHex>:<bqualHex>:<uniqueQualifier>`        |
 * | none  | `null` (used by RECOVER, and accepted anywhere a key may appear) |
 *
 * Hex is lowercase, two digits per byte, and may be empty. Two XIDs are the same transaction
 * only if their unique qualifiers are equal too, so {@link formatTransactionKey} output is the
 * canonical identity (use it as a map key).
 */
import { isInt32, parseInt32 } from './numbers.js';
import { ProtocolError } from './protocol-error.js';

/** The literal that means "no transaction". */
export const NULL_TRANSACTION_KEY = 'null';

/** A local transaction: one producer session's n-th transaction. */
export interface LocalTransactionKey {
  readonly kind: 'local';
  /** The producer session, `<localIP>-<epochMillis>-<seq>` for Java clients. */
  readonly sessionId: string;
  /** Per-session counter; a Java `int` (MetaQ cannot parse larger values). */
  readonly counter: number;
}

/** An XA branch: the X/Open XID plus the resource manager's unique qualifier. */
export interface XaTransactionKey {
  readonly kind: 'xa';
  /** XID format id (a Java `int`). */
  readonly formatId: number;
  /** Global transaction id bytes (at most 64 in X/Open; not enforced on the wire). */
  readonly globalTransactionId: Buffer;
  /** Branch qualifier bytes. */
  readonly branchQualifier: Buffer;
  /** Identifies the resource-manager client, e.g. `XAMessageProducer-host1`. */
  readonly uniqueQualifier: string;
}

/** A parsed transaction key. `null` stands for the literal `null` (no transaction). */
export type TransactionKey = LocalTransactionKey | XaTransactionKey;

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
// ':' separates the key's parts; space, CR and LF would break the header line. Nothing else is
// refused, so that every key the parser accepts can be formatted back (the broker uses the
// formatted text as the transaction's identity).
const FORBIDDEN_IN_PART = /[: \r\n]/;

function invalid(text: string, reason: string): ProtocolError {
  return new ProtocolError(`Invalid transaction key ${JSON.stringify(text.slice(0, 200))}: ${reason}`);
}

/**
 * Parses a transaction key token. Returns `null` for the literal `null`.
 *
 * @throws {ProtocolError} when the text is not one of the three forms.
 */
export function parseTransactionKey(text: string): TransactionKey | null {
  if (text === NULL_TRANSACTION_KEY) return null;
  const parts = text.split(':');
  if (parts[0] === 'TX') {
    const [, sessionId, counterText] = parts;
    if (parts.length !== 3 || sessionId === undefined || counterText === undefined) {
      throw invalid(text, 'a local key has exactly 3 parts, TX:<sessionId>:<counter>');
    }
    if (sessionId === '') throw invalid(text, 'empty session id');
    const counter = parseInt32(counterText);
    if (counter === undefined) throw invalid(text, 'the counter is not a 32-bit decimal integer');
    return { kind: 'local', sessionId, counter };
  }
  if (parts[0] === 'XID') {
    const [, formatText, gtrid, bqual, uniqueQualifier] = parts;
    if (parts.length !== 5 || formatText === undefined || gtrid === undefined || bqual === undefined || uniqueQualifier === undefined) {
      throw invalid(text, 'an XA key has exactly 5 parts, XID:<formatId>:<gtridHex>:<bqualHex>:<uniqueQualifier>');
    }
    const formatId = parseInt32(formatText);
    if (formatId === undefined) throw invalid(text, 'the format id is not a 32-bit decimal integer');
    if (!HEX.test(gtrid)) throw invalid(text, 'the global transaction id is not hex with two digits per byte');
    if (!HEX.test(bqual)) throw invalid(text, 'the branch qualifier is not hex with two digits per byte');
    return {
      kind: 'xa',
      formatId,
      globalTransactionId: Buffer.from(gtrid, 'hex'),
      branchQualifier: Buffer.from(bqual, 'hex'),
      uniqueQualifier,
    };
  }
  throw invalid(text, 'expected TX:…, XID:… or null');
}

/**
 * Writes a key exactly as MetaQ does (lowercase hex). `null` gives the literal `null`.
 *
 * @throws {ProtocolError} when a part could not be parsed back (a `:`, space, CR or LF in the
 *   session id or unique qualifier, an empty session id, a counter or format id outside Java `int`).
 */
export function formatTransactionKey(key: TransactionKey | null): string {
  if (key === null) return NULL_TRANSACTION_KEY;
  if (key.kind === 'local') {
    if (key.sessionId === '' || FORBIDDEN_IN_PART.test(key.sessionId)) {
      throw new ProtocolError(`Invalid session id ${JSON.stringify(key.sessionId)}: must be non-empty without ':', space, CR or LF`);
    }
    if (!isInt32(key.counter)) throw new ProtocolError(`Invalid transaction counter ${key.counter}: must be a 32-bit integer`);
    return `TX:${key.sessionId}:${key.counter}`;
  }
  if (!isInt32(key.formatId)) throw new ProtocolError(`Invalid XID format id ${key.formatId}: must be a 32-bit integer`);
  if (FORBIDDEN_IN_PART.test(key.uniqueQualifier)) {
    throw new ProtocolError(`Invalid unique qualifier ${JSON.stringify(key.uniqueQualifier)}: must not contain ':', space, CR or LF`);
  }
  return `XID:${key.formatId}:${key.globalTransactionId.toString('hex')}:${key.branchQualifier.toString('hex')}:${key.uniqueQualifier}`;
}
