/**
 * Reads what {@link BinaryWriter} wrote, in the same order, with bounds checks: reading past the
 * end of the payload throws a {@link BinaryReadError} that says what was read, where, and how many
 * bytes were missing, instead of Node's generic `ERR_OUT_OF_RANGE`.
 */
import { StoreCorruptError } from '../../common/errors.js';

/**
 * A payload is shorter than its fields say. The record passed its CRC, so this means the reader
 * and the writer disagree about the layout (a bug or a format change), hence the corrupt-store code:
 * the broker must not guess at transaction state.
 */
export class BinaryReadError extends StoreCorruptError {
  /** Offset in the payload where the read started. */
  readonly offset: number;
  /** Bytes the read needed. */
  readonly wanted: number;
  /** Bytes that were left. */
  readonly available: number;

  constructor(what: string, offset: number, wanted: number, available: number) {
    super(`transaction log payload: cannot read ${what} at offset ${offset}: it needs ${wanted} bytes but only ${available} remain`);
    this.offset = offset;
    this.wanted = wanted;
    this.available = available;
  }
}

/** Sequential big-endian reader over one payload. */
export class BinaryReader {
  readonly #buffer: Buffer;
  #offset = 0;

  /** @param buffer the payload; strings are decoded from it and `bytes()` returns views of it. */
  constructor(buffer: Buffer) {
    this.#buffer = buffer;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes not yet consumed. */
  get remaining(): number {
    return this.#buffer.length - this.#offset;
  }

  /** Unsigned 8-bit integer. */
  u8(): number {
    const at = this.#take('u8', 1);
    return this.#buffer.readUInt8(at);
  }

  /** Unsigned 16-bit integer. */
  u16(): number {
    const at = this.#take('u16', 2);
    return this.#buffer.readUInt16BE(at);
  }

  /** Unsigned 32-bit integer. */
  u32(): number {
    const at = this.#take('u32', 4);
    return this.#buffer.readUInt32BE(at);
  }

  /** Signed 32-bit integer. */
  i32(): number {
    const at = this.#take('i32', 4);
    return this.#buffer.readInt32BE(at);
  }

  /** Unsigned 64-bit integer. */
  u64(): bigint {
    const at = this.#take('u64', 8);
    return this.#buffer.readBigUInt64BE(at);
  }

  /** Signed 64-bit integer. */
  i64(): bigint {
    const at = this.#take('i64', 8);
    return this.#buffer.readBigInt64BE(at);
  }

  /** IEEE-754 double. */
  f64(): number {
    const at = this.#take('f64', 8);
    return this.#buffer.readDoubleBE(at);
  }

  /** UTF-8 string with a u32 byte-length prefix. */
  string(): string {
    const start = this.#offset;
    const length = this.u32();
    const at = this.#take('string body', length, start);
    return this.#buffer.toString('utf8', at, at + length);
  }

  /**
   * Bytes with a u32 length prefix, as a view of the payload (no copy). Copy it
   * (`Buffer.from(view)`) only if it must outlive the payload and the payload is large.
   */
  bytes(): Buffer {
    const start = this.#offset;
    const length = this.u32();
    const at = this.#take('bytes body', length, start);
    return this.#buffer.subarray(at, at + length);
  }

  /**
   * Throws unless every byte was consumed. Call it after the last field so that a payload with
   * trailing bytes (written by a newer layout) is noticed rather than half-understood.
   */
  assertEnd(): void {
    if (this.remaining !== 0) {
      throw new StoreCorruptError(`transaction log payload: ${this.remaining} unexpected bytes after offset ${this.#offset}`);
    }
  }

  /**
   * Advances past `length` bytes and returns where they start.
   * @param reportAt the offset to name in an error (the length prefix, for strings and bytes).
   */
  #take(what: string, length: number, reportAt = this.#offset): number {
    const available = this.#buffer.length - this.#offset;
    if (length > available) throw new BinaryReadError(what, reportAt, length, available);
    const at = this.#offset;
    this.#offset += length;
    return at;
  }
}
