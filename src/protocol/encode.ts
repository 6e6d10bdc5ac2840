/**
 * Encoders: one pure function per frame, writing exactly what MetaQ writes: tokens joined by one
 * space, CRLF, then the body with no trailing CRLF.
 *
 * Encoders validate what they write: a topic with a space or an opaque outside Java `int` would
 * produce a frame the peer misreads (or, worse, reads as two frames), so they throw a
 * {@link ProtocolError} instead. The checks are cheap (a regex and a few comparisons).
 */
import type {
  Frame,
  GetFrame,
  OffsetFrame,
  PutFrame,
  QuitFrame,
  ResultFrame,
  StatsFrame,
  SyncFrame,
  TransactionFrame,
  ValueFrame,
  VersionFrame,
} from './frames.js';
import { LONG_MAX_OFFSET } from './frames.js';
import { INT32_MAX, isInt32, isInt64 } from './numbers.js';
import { ProtocolError } from './protocol-error.js';
import { formatTransactionKey } from './transaction-key.js';
import { isTransactionType } from './transaction-type.js';

const CRLF = '\r\n';
// What would break the header line: the separator and the terminator. (Tabs and other odd
// characters are legal token bytes, as in MetaQ; the broker's topic rules decide about them.)
const BAD_TOKEN = /[ \r\n]/;
const ALL_DIGITS = /^\d+$/;

function invalid(frame: string, message: string): ProtocolError {
  return new ProtocolError(`Cannot encode ${frame}: ${message}`);
}

function token(frame: string, field: string, value: string): string {
  if (value === '' || BAD_TOKEN.test(value)) {
    throw invalid(frame, `${field} ${JSON.stringify(value)} must be non-empty without spaces, CR or LF`);
  }
  return value;
}

function int32(frame: string, field: string, value: number): number {
  if (!isInt32(value)) throw invalid(frame, `${field} ${value} is not a 32-bit integer`);
  return value;
}

function offset(frame: string, value: number): number {
  if (!Number.isSafeInteger(value)) throw invalid(frame, `offset ${value} is not a safe integer`);
  return value;
}

function bodyLength(frame: string, body: Buffer): number {
  if (body.length > INT32_MAX) throw invalid(frame, `body of ${body.length} bytes exceeds 2^31-1`);
  return body.length;
}

/** Joins header tokens and appends the body into one buffer. */
function frameBytes(tokens: readonly (string | number | bigint)[], body?: Buffer): Buffer {
  const header = tokens.join(' ') + CRLF;
  if (body === undefined || body.length === 0) return Buffer.from(header, 'utf8');
  const headerLength = Buffer.byteLength(header, 'utf8');
  const out = Buffer.allocUnsafe(headerLength + body.length);
  out.write(header, 0, 'utf8');
  body.copy(out, headerLength);
  return out;
}

/**
 * Encodes a `put`. Without `form`, writes what MetaQ ≥ 1.4.4 writes: 8 tokens when a
 * transaction key is present (`null` included), 7 otherwise.
 *
 * @throws {ProtocolError} when the fields do not fit the form (form 6 has neither checksum nor
 *   key; form 7 has a checksum or a key, never both; form 8 needs a key) or are out of range.
 */
export function encodePut(frame: PutFrame): Buffer {
  const key = frame.transactionKey;
  const form = frame.form ?? (key === undefined ? 7 : 8);
  const head = [
    'put',
    token('put', 'topic', frame.topic),
    int32('put', 'partition', frame.partition),
    bodyLength('put', frame.data),
    int32('put', 'flag', frame.flag),
  ];
  const checksum = int32('put', 'checksum', frame.checksum);
  const opaque = int32('put', 'opaque', frame.opaque);
  switch (form) {
    case 6:
      if (checksum !== -1 || key !== undefined) throw invalid('put', 'the 6-token form carries neither a checksum nor a transaction key');
      return frameBytes([...head, opaque], frame.data);
    case 7:
      if (key === undefined) return frameBytes([...head, checksum, opaque], frame.data);
      if (checksum !== -1) throw invalid('put', 'the 7-token form carries a checksum or a transaction key, not both; use form 8');
      return frameBytes([...head, formatTransactionKey(key), opaque], frame.data);
    case 8:
      if (key === undefined) throw invalid('put', 'the 8-token form needs a transaction key (null for none)');
      return frameBytes([...head, checksum, formatTransactionKey(key), opaque], frame.data);
  }
  // Unreachable for typed callers; guards JavaScript callers passing another form.
  throw invalid('put', `unknown form ${String(form)} (expected 6, 7 or 8)`);
}

/** Encodes a `get`. {@link LONG_MAX_OFFSET} is written as `9223372036854775807`. */
export function encodeGet(frame: GetFrame): Buffer {
  return frameBytes([
    'get',
    token('get', 'topic', frame.topic),
    token('get', 'group', frame.group),
    int32('get', 'partition', frame.partition),
    frame.offset === LONG_MAX_OFFSET ? LONG_MAX_OFFSET : offset('get', frame.offset),
    int32('get', 'maxSize', frame.maxSize),
    int32('get', 'opaque', frame.opaque),
  ]);
}

/** Encodes an `offset` request. */
export function encodeOffset(frame: OffsetFrame): Buffer {
  return frameBytes([
    'offset',
    token('offset', 'topic', frame.topic),
    token('offset', 'group', frame.group),
    int32('offset', 'partition', frame.partition),
    offset('offset', frame.offset),
    int32('offset', 'opaque', frame.opaque),
  ]);
}

/**
 * Encodes `stats`. Without an item MetaQ's client writes two spaces (an empty item token):
 * `stats  <opaque>`; so do we, byte for byte.
 */
export function encodeStats(frame: StatsFrame): Buffer {
  const opaque = int32('stats', 'opaque', frame.opaque);
  if (frame.item === undefined || frame.item === '') return frameBytes(['stats', '', opaque]);
  return frameBytes(['stats', token('stats', 'item', frame.item), opaque]);
}

/** Encodes `version <opaque>` (the heartbeat). */
export function encodeVersion(frame: VersionFrame): Buffer {
  return frameBytes(['version', int32('version', 'opaque', frame.opaque)]);
}

/** Encodes `quit`. */
export function encodeQuit(_frame?: QuitFrame): Buffer {
  return frameBytes(['quit']);
}

/**
 * Encodes a `transaction` frame like MetaQ: the timeout token only when `timeout > 0`, the
 * unique-qualifier token only when non-empty.
 *
 * @throws {ProtocolError} also for an all-digit unique qualifier without a timeout: MetaQ's
 *   decoder would read it as a timeout (a MetaQ quirk), so it cannot be sent in that form.
 */
export function encodeTransaction(frame: TransactionFrame): Buffer {
  if (!isTransactionType(frame.transactionType)) {
    throw invalid('transaction', `unknown transaction type ${JSON.stringify(frame.transactionType)}`);
  }
  const tokens: (string | number)[] = [
    'transaction',
    formatTransactionKey(frame.transactionKey),
    token('transaction', 'sessionId', frame.sessionId),
    frame.transactionType,
  ];
  const timeout = int32('transaction', 'timeout', frame.timeout);
  const qualifier = frame.uniqueQualifier;
  if (timeout > 0) tokens.push(timeout);
  if (qualifier !== undefined && qualifier !== '') {
    token('transaction', 'uniqueQualifier', qualifier);
    if (timeout <= 0 && ALL_DIGITS.test(qualifier)) {
      throw invalid('transaction', `an all-digit unique qualifier (${qualifier}) without a timeout would be read as a timeout`);
    }
    tokens.push(qualifier);
  }
  tokens.push(int32('transaction', 'opaque', frame.opaque));
  return frameBytes(tokens);
}

/** Encodes a `sync`; 8 tokens unless `form` is 7 (legacy, which needs `checksum === -1`). */
export function encodeSync(frame: SyncFrame): Buffer {
  if (!isInt64(frame.messageId)) throw invalid('sync', `messageId ${frame.messageId} is not a 64-bit integer`);
  const head = [
    'sync',
    token('sync', 'topic', frame.topic),
    int32('sync', 'partition', frame.partition),
    bodyLength('sync', frame.data),
    int32('sync', 'flag', frame.flag),
    frame.messageId,
  ];
  const checksum = int32('sync', 'checksum', frame.checksum);
  const opaque = int32('sync', 'opaque', frame.opaque);
  if (frame.form === 7) {
    if (checksum !== -1) throw invalid('sync', 'the 7-token form carries no checksum; use form 8');
    return frameBytes([...head, opaque], frame.data);
  }
  return frameBytes([...head, checksum, opaque], frame.data);
}

/**
 * The header of a `result` frame alone, for a broker that streams the body separately
 * (MetaQ sends `stats config` this way, straight from the file).
 */
export function encodeResultHeader(code: number, bodyLength: number, opaque: number): Buffer {
  if (!isInt32(bodyLength) || bodyLength < 0) throw invalid('result', `body length ${bodyLength} is not a non-negative 32-bit integer`);
  return frameBytes(['result', int32('result', 'code', code), bodyLength, int32('result', 'opaque', opaque)]);
}

/** Encodes a `result` with its body. */
export function encodeResult(frame: ResultFrame): Buffer {
  const header = encodeResultHeader(frame.code, bodyLength('result', frame.body), frame.opaque);
  return frame.body.length === 0 ? header : Buffer.concat([header, frame.body], header.length + frame.body.length);
}

/**
 * The header of a `value` frame alone: a broker answers a `get` with this header followed by
 * `bodyLength` bytes read straight from a segment file (no copy through a frame object).
 */
export function encodeValueHeader(bodyLength: number, opaque: number): Buffer {
  if (!isInt32(bodyLength) || bodyLength < 0) throw invalid('value', `body length ${bodyLength} is not a non-negative 32-bit integer`);
  return frameBytes(['value', bodyLength, int32('value', 'opaque', opaque)]);
}

/** Encodes a `value` with its body. */
export function encodeValue(frame: ValueFrame): Buffer {
  const header = encodeValueHeader(bodyLength('value', frame.body), frame.opaque);
  return frame.body.length === 0 ? header : Buffer.concat([header, frame.body], header.length + frame.body.length);
}

/** Encodes any frame (dispatches on `type`). */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case 'put':
      return encodePut(frame);
    case 'get':
      return encodeGet(frame);
    case 'offset':
      return encodeOffset(frame);
    case 'stats':
      return encodeStats(frame);
    case 'version':
      return encodeVersion(frame);
    case 'quit':
      return encodeQuit(frame);
    case 'transaction':
      return encodeTransaction(frame);
    case 'sync':
      return encodeSync(frame);
    case 'result':
      return encodeResult(frame);
    case 'value':
      return encodeValue(frame);
  }
}
