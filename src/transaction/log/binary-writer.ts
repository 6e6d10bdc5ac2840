/**
 * A tiny growable big-endian writer for transaction log payloads. The engine builds each record's
 * payload with it; {@link BinaryReader} reads it back in the same order.
 *
 * Why hand-rolled rather than protobuf (which MetaQ used): the payloads are a handful of fixed
 * fields per record type, and a dependency-free writer keeps the byte layout obvious and testable.
 * Every value is range-checked, so a bug writes an error instead of silently wrapped bytes that
 * would only be noticed at the next recovery.
 */
import { InvalidArgumentError } from '../../common/errors.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Writes fixed-size numbers and length-prefixed strings/bytes into a buffer that grows as needed. */
export class BinaryWriter {
  #buffer: Buffer;
  #length = 0;
  #finished = false;

  /** @param initialCapacity bytes allocated up front; the buffer doubles when it runs out. */
  constructor(initialCapacity = 256) {
    if (!Number.isSafeInteger(initialCapacity) || initialCapacity < 1) {
      throw new InvalidArgumentError(`BinaryWriter initialCapacity must be a positive integer, got ${initialCapacity}`);
    }
    this.#buffer = Buffer.allocUnsafe(initialCapacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  /** Unsigned 8-bit integer (0 … 255). */
  u8(value: number): this {
    checkInteger('u8', value, 0, 0xff);
    this.#reserve(1).writeUInt8(value, this.#length);
    this.#length += 1;
    return this;
  }

  /** Unsigned 16-bit integer (0 … 65 535). */
  u16(value: number): this {
    checkInteger('u16', value, 0, 0xffff);
    this.#reserve(2).writeUInt16BE(value, this.#length);
    this.#length += 2;
    return this;
  }

  /** Unsigned 32-bit integer (0 … 4 294 967 295). */
  u32(value: number): this {
    checkInteger('u32', value, 0, 0xffff_ffff);
    this.#reserve(4).writeUInt32BE(value, this.#length);
    this.#length += 4;
    return this;
  }

  /** Signed 32-bit integer. */
  i32(value: number): this {
    checkInteger('i32', value, -0x8000_0000, 0x7fff_ffff);
    this.#reserve(4).writeInt32BE(value, this.#length);
    this.#length += 4;
    return this;
  }

  /** Unsigned 64-bit integer, as a bigint (0 … 2^64 - 1). */
  u64(value: bigint): this {
    checkBigint('u64', value, 0n, U64_MAX);
    this.#reserve(8).writeBigUInt64BE(value, this.#length);
    this.#length += 8;
    return this;
  }

  /** Signed 64-bit integer, as a bigint (message ids, timestamps). */
  i64(value: bigint): this {
    checkBigint('i64', value, I64_MIN, I64_MAX);
    this.#reserve(8).writeBigInt64BE(value, this.#length);
    this.#length += 8;
    return this;
  }

  /** IEEE-754 double. */
  f64(value: number): this {
    if (typeof value !== 'number') throw new InvalidArgumentError(`BinaryWriter.f64: expected a number, got ${typeof value}`);
    this.#reserve(8).writeDoubleBE(value, this.#length);
    this.#length += 8;
    return this;
  }

  /** UTF-8 string with a u32 byte-length prefix. */
  string(value: string): this {
    if (typeof value !== 'string') throw new InvalidArgumentError(`BinaryWriter.string: expected a string, got ${typeof value}`);
    const bytes = Buffer.byteLength(value, 'utf8');
    this.u32(bytes);
    this.#reserve(bytes).write(value, this.#length, bytes, 'utf8');
    this.#length += bytes;
    return this;
  }

  /** Raw bytes with a u32 length prefix. */
  bytes(value: Uint8Array): this {
    if (!(value instanceof Uint8Array)) throw new InvalidArgumentError('BinaryWriter.bytes: expected a Buffer or Uint8Array');
    this.u32(value.length);
    this.#reserve(value.length).set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  /**
   * The bytes written, as a view of the writer's buffer (no copy). The writer cannot be used
   * afterwards: a later write could otherwise change bytes the caller already handed to the log.
   */
  finish(): Buffer {
    this.#assertOpen();
    this.#finished = true;
    return this.#buffer.subarray(0, this.#length);
  }

  /** Makes room for `more` bytes and returns the (possibly new) buffer. */
  #reserve(more: number): Buffer {
    this.#assertOpen();
    const needed = this.#length + more;
    if (needed > this.#buffer.length) {
      let capacity = this.#buffer.length * 2;
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(capacity);
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    return this.#buffer;
  }

  #assertOpen(): void {
    if (this.#finished) throw new InvalidArgumentError('BinaryWriter was already finished; create a new writer for the next payload');
  }
}

function checkInteger(kind: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`BinaryWriter.${kind}: ${String(value)} is not an integer in [${min}, ${max}]`);
  }
}

function checkBigint(kind: string, value: bigint, min: bigint, max: bigint): void {
  if (typeof value !== 'bigint' || value < min || value > max) {
    throw new InvalidArgumentError(`BinaryWriter.${kind}: ${String(value)} is not a bigint in [${min}, ${max}]`);
  }
}
