/**
 * Turns one header line (without its CRLF) into a frame, or into "a frame once N body bytes
 * have arrived". This is where every token rule of metaq-reference §1.1–1.4 and §1.7 lives; the
 * incremental byte handling is in frame-decoder.ts.
 *
 * Every problem throws a {@link ProtocolError} naming the command, the field and the header.
 * Length limits are checked here, so an oversized body is refused before any of it is buffered.
 */
import type { Frame, GetFrame } from './frames.js';
import { LONG_MAX_OFFSET } from './frames.js';
import { DEFAULT_OPAQUE } from './limits.js';
import { INT32_MAX, INT64_MAX, parseInt32, parseInt64, parseSafeInteger } from './numbers.js';
import { ProtocolError, quoteHeader, ERROR_HEADER_EXCERPT_LENGTH } from './protocol-error.js';
import { parseTransactionKey, type TransactionKey } from './transaction-key.js';
import { isTransactionType } from './transaction-type.js';

/** Which frames a decoder accepts: a broker decodes requests, a client decodes responses. */
export type AcceptedFrames = 'requests' | 'responses' | 'all';

/** The limits {@link parseHeader} enforces; see limits.ts for the defaults. */
export interface HeaderLimits {
  readonly accept: AcceptedFrames;
  /** Largest `put`/`sync` body. */
  readonly maxBodySize: number;
  /** Largest `value` body. */
  readonly maxValueBodySize: number;
  /** Largest `result` body. */
  readonly maxResultBodySize: number;
}

/** What a header line turned into. */
export type ParsedHeader =
  /** A frame without body (or with an empty one). */
  | { readonly kind: 'frame'; readonly frame: Frame }
  /** A frame that is complete once `length` more bytes (the body) have arrived. */
  | { readonly kind: 'body'; readonly length: number; readonly complete: (body: Buffer) => Frame };

const EMPTY = Buffer.alloc(0);
const RESPONSES: ReadonlySet<string> = new Set(['result', 'value']);
const DIGITS = /^\d+$/;
const CR_OR_LF = /[\r\n]/;

/** The tokens of one header line, with field readers that fail with a precise message. */
class Header {
  readonly #text: string;
  readonly tokens: readonly string[];
  readonly command: string;

  constructor(text: string, tokens: readonly string[]) {
    this.#text = text;
    this.tokens = tokens;
    this.command = tokens[0] ?? '';
  }

  fail(problem: string): never {
    const last = this.tokens.length > 1 ? this.tokens[this.tokens.length - 1] : undefined;
    const opaque = last === undefined ? undefined : parseInt32(last);
    throw new ProtocolError(`${problem} in header ${quoteHeader(this.#text)}`, {
      header: this.#text.slice(0, ERROR_HEADER_EXCERPT_LENGTH),
      ...(opaque === undefined ? {} : { opaque }),
    });
  }

  expectCount(allowed: readonly number[], shape: string): number {
    const n = this.tokens.length;
    if (!allowed.includes(n)) {
      const expected = allowed.length === 1 ? `${allowed[0]}` : `${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]}`;
      this.fail(`${this.command}: expected ${expected} tokens (${shape}), got ${n}`);
    }
    return n;
  }

  #token(index: number): string {
    return this.tokens[index] ?? '';
  }

  string(index: number, name: string): string {
    const value = this.#token(index);
    if (value === '') this.fail(`${this.command}: empty ${name} (two spaces in a row?)`);
    return value;
  }

  int32(index: number, name: string): number {
    const value = this.#token(index);
    return parseInt32(value) ?? this.fail(`${this.command}: ${name} ${JSON.stringify(value)} is not a 32-bit decimal integer`);
  }

  length(index: number, limit: number, option: string): number {
    const value = this.#token(index);
    const length = parseInt32(value);
    if (length === undefined || length < 0) {
      this.fail(`${this.command}: body length ${JSON.stringify(value)} is not a decimal integer from 0 to ${INT32_MAX}`);
    }
    if (length > limit) {
      this.fail(`${this.command}: body of ${length} bytes exceeds the limit of ${limit} bytes (${option})`);
    }
    return length;
  }

  offset(index: number): number {
    const value = this.#token(index);
    return parseSafeInteger(value) ?? this.fail(`${this.command}: offset ${JSON.stringify(value)} is not a decimal integer within ±(2^53-1)`);
  }

  int64(index: number, name: string): bigint {
    const value = this.#token(index);
    return parseInt64(value) ?? this.fail(`${this.command}: ${name} ${JSON.stringify(value)} is not a 64-bit decimal integer`);
  }

  transactionKey(index: number): TransactionKey | null {
    const value = this.string(index, 'transaction key');
    try {
      return parseTransactionKey(value);
    } catch (error) {
      return this.fail(`${this.command}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function withBody(length: number, complete: (body: Buffer) => Frame): ParsedHeader {
  return length === 0 ? { kind: 'frame', frame: complete(EMPTY) } : { kind: 'body', length, complete };
}

function put(h: Header, limits: HeaderLimits): ParsedHeader {
  const form = h.expectCount([6, 7, 8], 'put topic partition length flag [checksum] [txKey] opaque') as 6 | 7 | 8;
  const topic = h.string(1, 'topic');
  const partition = h.int32(2, 'partition');
  const length = h.length(3, limits.maxBodySize, 'maxBodySize');
  const flag = h.int32(4, 'flag');
  let checksum = -1;
  let transactionKey: TransactionKey | null | undefined;
  if (form === 7) {
    // MetaQ's rule: the 6th token is a checksum when it starts with a digit or '-', otherwise
    // it is a transaction key (the legacy transactional form).
    const first = (h.tokens[5] ?? '').charAt(0);
    if ((first >= '0' && first <= '9') || first === '-') checksum = h.int32(5, 'checksum');
    else transactionKey = h.transactionKey(5);
  } else if (form === 8) {
    checksum = h.int32(5, 'checksum');
    transactionKey = h.transactionKey(6);
  }
  const opaque = h.int32(form - 1, 'opaque');
  return withBody(length, (data) => ({ type: 'put', topic, partition, data, flag, checksum, transactionKey, opaque, form }));
}

function get(h: Header): ParsedHeader {
  h.expectCount([7], 'get topic group partition offset maxSize opaque');
  const frame: GetFrame = {
    type: 'get',
    topic: h.string(1, 'topic'),
    group: h.string(2, 'group'),
    partition: h.int32(3, 'partition'),
    // Long.MAX_VALUE is the one offset beyond 2^53 a consumer legitimately sends.
    offset: parseInt64(h.tokens[4] ?? '') === INT64_MAX ? LONG_MAX_OFFSET : h.offset(4),
    maxSize: h.int32(5, 'maxSize'),
    opaque: h.int32(6, 'opaque'),
  };
  return { kind: 'frame', frame };
}

function offset(h: Header): ParsedHeader {
  h.expectCount([6], 'offset topic group partition offset opaque');
  return {
    kind: 'frame',
    frame: {
      type: 'offset',
      topic: h.string(1, 'topic'),
      group: h.string(2, 'group'),
      partition: h.int32(3, 'partition'),
      offset: h.offset(4),
      opaque: h.int32(5, 'opaque'),
    },
  };
}

function stats(h: Header): ParsedHeader {
  const n = h.expectCount([1, 2, 3], 'stats [item] [opaque]');
  // An empty item token is how MetaQ's client writes "no item" (`stats  <opaque>`).
  const item = n >= 2 && h.tokens[1] !== '' ? h.tokens[1] : undefined;
  const opaque = n === 3 ? h.int32(2, 'opaque') : DEFAULT_OPAQUE;
  return { kind: 'frame', frame: { type: 'stats', item, opaque } };
}

function version(h: Header): ParsedHeader {
  const n = h.expectCount([1, 2], 'version [opaque]');
  return { kind: 'frame', frame: { type: 'version', opaque: n === 2 ? h.int32(1, 'opaque') : DEFAULT_OPAQUE } };
}

function transaction(h: Header): ParsedHeader {
  const n = h.expectCount([5, 6, 7], 'transaction txKey sessionId TYPE [timeout] [uniqueQualifier] opaque');
  const transactionKey = h.transactionKey(1);
  const sessionId = h.string(2, 'sessionId');
  const transactionType = h.tokens[3] ?? '';
  if (!isTransactionType(transactionType)) {
    h.fail(`transaction: unknown transaction type ${JSON.stringify(transactionType)}`);
  }
  let timeout = 0;
  let uniqueQualifier: string | undefined;
  if (n === 7) {
    timeout = h.int32(4, 'timeout');
    uniqueQualifier = h.string(5, 'uniqueQualifier');
  } else if (n === 6) {
    // MetaQ's rule (and quirk): an all-digit 5th token is a timeout, anything else a qualifier.
    if (DIGITS.test(h.tokens[4] ?? '')) timeout = h.int32(4, 'timeout');
    else uniqueQualifier = h.string(4, 'uniqueQualifier');
  }
  const opaque = h.int32(n - 1, 'opaque');
  return { kind: 'frame', frame: { type: 'transaction', transactionKey, sessionId, transactionType, timeout, uniqueQualifier, opaque } };
}

function sync(h: Header, limits: HeaderLimits): ParsedHeader {
  const form = h.expectCount([7, 8], 'sync topic partition length flag msgId [checksum] opaque') as 7 | 8;
  const topic = h.string(1, 'topic');
  const partition = h.int32(2, 'partition');
  const length = h.length(3, limits.maxBodySize, 'maxBodySize');
  const flag = h.int32(4, 'flag');
  const messageId = h.int64(5, 'msgId');
  const checksum = form === 8 ? h.int32(6, 'checksum') : -1;
  const opaque = h.int32(form - 1, 'opaque');
  return withBody(length, (data) => ({ type: 'sync', topic, partition, data, flag, messageId, checksum, opaque, form }));
}

function result(h: Header, limits: HeaderLimits): ParsedHeader {
  h.expectCount([4], 'result code length opaque');
  const code = h.int32(1, 'code');
  const length = h.length(2, limits.maxResultBodySize, 'maxResultBodySize');
  const opaque = h.int32(3, 'opaque');
  return withBody(length, (body) => ({ type: 'result', code, body, opaque }));
}

function value(h: Header, limits: HeaderLimits): ParsedHeader {
  h.expectCount([3], 'value length opaque');
  const length = h.length(1, limits.maxValueBodySize, 'maxValueBodySize');
  const opaque = h.int32(2, 'opaque');
  return withBody(length, (body) => ({ type: 'value', body, opaque }));
}

/**
 * Parses one header line (the text before CRLF).
 *
 * Tokens are split on single spaces like Java's `Pattern.split(" ")`: consecutive spaces give
 * empty tokens and trailing empty tokens are dropped (`stats ` ≡ `stats`). The command word
 * must match exactly, except that any word starting with `q` is `quit` (as in MetaQ; the rest
 * of the line is ignored).
 *
 * @throws {ProtocolError} for an empty line, an unknown command, a frame of the wrong side
 *   (see {@link HeaderLimits.accept}), a wrong token count, a malformed number or key, or a
 *   body length above its limit.
 */
export function parseHeader(text: string, limits: HeaderLimits): ParsedHeader {
  const tokens = text.split(' ');
  while (tokens.length > 0 && tokens[tokens.length - 1] === '') tokens.pop();
  const h = new Header(text, tokens);
  if (tokens.length === 0) h.fail('Empty header line');
  if (CR_OR_LF.test(text)) h.fail('Bare CR or LF inside the header line');
  const command = h.command;
  if (command === '') h.fail('Header line starts with a space');
  const isResponse = RESPONSES.has(command);
  if (isResponse && limits.accept === 'requests') h.fail(`Response frame "${command}" where a request was expected`);
  if (!isResponse && limits.accept === 'responses') {
    h.fail(`Frame "${command.slice(0, 40)}" where a response (result or value) was expected`);
  }
  switch (command) {
    case 'put':
      return put(h, limits);
    case 'get':
      return get(h);
    case 'offset':
      return offset(h);
    case 'stats':
      return stats(h);
    case 'version':
      return version(h);
    case 'transaction':
      return transaction(h);
    case 'sync':
      return sync(h, limits);
    case 'result':
      return result(h, limits);
    case 'value':
      return value(h, limits);
    default:
      if (command.startsWith('q')) return { kind: 'frame', frame: { type: 'quit' } };
      return h.fail(`Unknown command ${JSON.stringify(command.slice(0, 40))}`);
  }
}
