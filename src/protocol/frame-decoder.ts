/**
 * The incremental decoder: bytes in, frames out, for any chunking of the input (one byte at a
 * time, a CRLF split across chunks, many frames in one chunk).
 *
 * Like MetaQ's decoder it waits for a whole body before producing a frame and never treats a
 * partial body as an error. Unlike it, it refuses a header longer than `maxHeaderLength` and a
 * body longer than its limit as soon as the header is read, so a peer cannot make it buffer
 * without bound.
 *
 * After the first {@link ProtocolError} the decoder is failed for good: every later call throws
 * the same error. The stream cannot be resynchronised (a body length may have been wrong), so
 * the owner closes the connection; a broker first answers `result 400` (see docs/protocol.md).
 *
 * Usage on a connection:
 *
 * ```ts
 * socket.on('data', (chunk) => {
 *   try {
 *     for (const frame of decoder.push(chunk)) handle(frame); // frames before a bad one are handled
 *   } catch (error) {
 *     // error is a ProtocolError: reply if you want, then close
 *   }
 * });
 * ```
 */
import type { Frame } from './frames.js';
import { DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEADER_LENGTH, DEFAULT_MAX_RESULT_BODY_SIZE, DEFAULT_MAX_VALUE_BODY_SIZE } from './limits.js';
import { parseHeader, type AcceptedFrames, type HeaderLimits } from './parse-header.js';
import { ERROR_HEADER_EXCERPT_LENGTH, ProtocolError, quoteHeader } from './protocol-error.js';

/** Options of {@link FrameDecoder}; every limit is in bytes. */
export interface FrameDecoderOptions {
  /** `'requests'` for a broker, `'responses'` for a client, `'all'` (default) for tools and tests. */
  readonly accept?: AcceptedFrames;
  /** Largest header line, CRLF excluded. Default {@link DEFAULT_MAX_HEADER_LENGTH} (4096). */
  readonly maxHeaderLength?: number;
  /** Largest `put`/`sync` body. Default {@link DEFAULT_MAX_BODY_SIZE} (1 MiB + 64 KiB). */
  readonly maxBodySize?: number;
  /** Largest `value` body. Default {@link DEFAULT_MAX_VALUE_BODY_SIZE} (16 MiB). */
  readonly maxValueBodySize?: number;
  /** Largest `result` body. Default {@link DEFAULT_MAX_RESULT_BODY_SIZE} (4 MiB). */
  readonly maxResultBodySize?: number;
}

const CR = 0x0d;
const CRLF = Buffer.from('\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** A header has been read; its body is still arriving. */
interface PendingBody {
  readonly length: number;
  readonly complete: (body: Buffer) => Frame;
  readonly parts: Buffer[];
  received: number;
}

function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`FrameDecoder option ${name} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/**
 * Incremental decoder of MetaQ frames. Push chunks, iterate frames.
 *
 * Bodies are views into the pushed chunks whenever a body lies inside one chunk, so the caller
 * must not modify a chunk after pushing it (Node's socket chunks are never reused, so this
 * holds for `socket.on('data')`).
 */
export class FrameDecoder implements Iterable<Frame> {
  readonly #limits: HeaderLimits;
  readonly #maxHeaderLength: number;
  /** Unconsumed input starts at #buf[#pos] (only while no body is pending). */
  #buf: Buffer = EMPTY;
  #pos = 0;
  /** No CRLF starts before this index of #buf. */
  #scanFrom = 0;
  #body: PendingBody | undefined;
  #error: ProtocolError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.#maxHeaderLength = nonNegativeInteger('maxHeaderLength', options.maxHeaderLength, DEFAULT_MAX_HEADER_LENGTH);
    this.#limits = {
      accept: options.accept ?? 'all',
      maxBodySize: nonNegativeInteger('maxBodySize', options.maxBodySize, DEFAULT_MAX_BODY_SIZE),
      maxValueBodySize: nonNegativeInteger('maxValueBodySize', options.maxValueBodySize, DEFAULT_MAX_VALUE_BODY_SIZE),
      maxResultBodySize: nonNegativeInteger('maxResultBodySize', options.maxResultBodySize, DEFAULT_MAX_RESULT_BODY_SIZE),
    };
  }

  /** The error that failed this decoder, if any. */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /** Bytes received but not yet returned as frames (a partial header or body). */
  get bufferedBytes(): number {
    return this.#body === undefined ? this.#buf.length - this.#pos : this.#body.received;
  }

  /**
   * Adds a chunk. Returns the decoder itself, so `for (const frame of decoder.push(chunk))`
   * reads every frame the chunk completed.
   *
   * @throws {ProtocolError} if the decoder already failed.
   */
  push(chunk: Buffer): this {
    if (this.#error !== undefined) throw this.#error;
    if (chunk.length === 0) return this;
    if (this.#body !== undefined) {
      // Collect body chunks without copying; they are joined once the body is complete.
      this.#body.parts.push(chunk);
      this.#body.received += chunk.length;
    } else if (this.#pos >= this.#buf.length) {
      this.#buf = chunk;
      this.#pos = 0;
      this.#scanFrom = 0;
    } else {
      // A partial header (at most maxHeaderLength + 1 bytes) is carried over.
      this.#scanFrom -= this.#pos;
      this.#buf = Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
      this.#pos = 0;
    }
    return this;
  }

  /**
   * The next complete frame, or `undefined` when more bytes are needed.
   *
   * @throws {ProtocolError} on malformed input; the decoder then stays failed.
   */
  next(): Frame | undefined {
    if (this.#error !== undefined) throw this.#error;
    try {
      return this.#body === undefined ? this.#nextHeader() : this.#finishBody(this.#body);
    } catch (error) {
      this.#error = error instanceof ProtocolError ? error : new ProtocolError('Decoder failure', {}, { cause: error });
      this.#buf = EMPTY;
      this.#pos = 0;
      this.#body = undefined;
      throw this.#error;
    }
  }

  /** Iterates the frames completed so far; throws (mid-iteration) at the first malformed one. */
  *[Symbol.iterator](): Iterator<Frame> {
    for (let frame = this.next(); frame !== undefined; frame = this.next()) yield frame;
  }

  /**
   * Convenience for tests and tools: pushes `chunk` and returns every frame it completed.
   * On a malformed frame it throws, and frames decoded earlier in the same call are lost;
   * a broker that must process them iterates {@link push}'s result instead.
   */
  decode(chunk: Buffer): Frame[] {
    return [...this.push(chunk)];
  }

  #nextHeader(): Frame | undefined {
    const buf = this.#buf;
    const start = this.#pos;
    if (start >= buf.length) return undefined;
    const end = buf.indexOf(CRLF, Math.max(start, this.#scanFrom));
    if (end === -1) {
      const waiting = buf.length - start;
      // A line of exactly maxHeaderLength bytes may be followed by a CR whose LF is still coming.
      const canStillEnd = waiting <= this.#maxHeaderLength || (waiting === this.#maxHeaderLength + 1 && buf.readUInt8(buf.length - 1) === CR);
      if (!canStillEnd) this.#tooLong(buf.subarray(start, start + ERROR_HEADER_EXCERPT_LENGTH * 4), false);
      this.#scanFrom = buf.length - 1;
      return undefined;
    }
    if (end - start > this.#maxHeaderLength) this.#tooLong(buf.subarray(start, Math.min(end, start + ERROR_HEADER_EXCERPT_LENGTH * 4)), true);
    const parsed = parseHeader(buf.toString('utf8', start, end), this.#limits);
    const bodyStart = end + 2;
    this.#pos = bodyStart;
    this.#scanFrom = bodyStart;
    if (parsed.kind === 'frame') return parsed.frame;
    if (buf.length - bodyStart >= parsed.length) {
      this.#pos = bodyStart + parsed.length;
      this.#scanFrom = this.#pos;
      return parsed.complete(buf.subarray(bodyStart, this.#pos));
    }
    const rest = buf.subarray(bodyStart);
    this.#body = { length: parsed.length, complete: parsed.complete, parts: rest.length > 0 ? [rest] : [], received: rest.length };
    this.#buf = EMPTY;
    this.#pos = 0;
    this.#scanFrom = 0;
    return undefined;
  }

  #finishBody(pending: PendingBody): Frame | undefined {
    if (pending.received < pending.length) return undefined;
    const all = pending.parts.length === 1 ? (pending.parts[0] ?? EMPTY) : Buffer.concat(pending.parts, pending.received);
    this.#body = undefined;
    this.#buf = all;
    this.#pos = pending.length;
    this.#scanFrom = pending.length;
    return pending.complete(all.subarray(0, pending.length));
  }

  #tooLong(excerpt: Buffer, terminated: boolean): never {
    const text = excerpt.toString('utf8');
    const what = terminated ? 'Header line longer than' : 'No CRLF within';
    throw new ProtocolError(`${what} ${this.#maxHeaderLength} bytes (maxHeaderLength) in header ${quoteHeader(text)}`, {
      header: text.slice(0, ERROR_HEADER_EXCERPT_LENGTH),
    });
  }
}
