/**
 * Walking the stored records of a `value` body (MetaQ's client-side `MessageIterator`,
 * metaq-reference §1.5–1.6).
 *
 * A `value` body is a byte range of the log, clipped at `maxSize` and at the segment end, so it
 * usually ends inside a record: that incomplete tail is ignored, and the consumer's next offset
 * is `requestOffset + consumed`. A checksum mismatch means corruption or a misaligned offset;
 * it raises {@link InvalidRecordError} (MetaQ's InvalidMessageException), whose `position` is
 * the number of good bytes before the bad record.
 *
 * The record layout and its checksum are the store's (src/store/record.ts), reused here so
 * that the broker and the client cannot disagree about it.
 */
import { decodeRecordAt, RECORD_HEADER_SIZE, type DecodedRecord } from './record.js';
import { DEFAULT_MAX_RECORD_DATA_LENGTH } from './limits.js';
import { InvalidRecordError } from './protocol-error.js';

/** One complete, checksum-verified record of a `value` body. */
export interface MessageRecord extends DecodedRecord {
  /** Byte position of the record inside the body (add the request offset for its log offset). */
  readonly position: number;
}

/** Options of {@link MessageRecordIterator} and {@link readMessageRecords}. */
export interface MessageRecordOptions {
  /**
   * Largest data length accepted in a record header; a larger one is treated as corruption
   * (it guards against a garbage length at a misaligned offset). Default 2 MiB, as MetaQ.
   */
  readonly maxDataLength?: number;
}

/**
 * Iterates the complete records of a `value` body. After (or during) iteration,
 * {@link consumed} is the number of bytes of complete records returned so far.
 */
export class MessageRecordIterator implements IterableIterator<MessageRecord> {
  readonly #body: Buffer;
  readonly #maxDataLength: number;
  #position = 0;

  constructor(body: Buffer, options: MessageRecordOptions = {}) {
    this.#body = body;
    this.#maxDataLength = options.maxDataLength ?? DEFAULT_MAX_RECORD_DATA_LENGTH;
  }

  /** Bytes of complete records returned so far. */
  get consumed(): number {
    return this.#position;
  }

  /**
   * The next record; `done` at the end of the body or at an incomplete tail.
   *
   * @throws {InvalidRecordError} on a checksum mismatch or an impossible length.
   */
  next(): IteratorResult<MessageRecord, undefined> {
    const position = this.#position;
    if (this.#body.length - position < RECORD_HEADER_SIZE) return { done: true, value: undefined };
    const decoded = decodeRecordAt(this.#body, position, this.#maxDataLength);
    if (decoded === 'incomplete') return { done: true, value: undefined };
    if (decoded === 'bad-checksum') {
      throw new InvalidRecordError(`Checksum mismatch in the record at byte ${position} of the value body`, position, 'bad-checksum');
    }
    if (decoded === 'bad-length') {
      const length = this.#body.readInt32BE(position);
      throw new InvalidRecordError(
        `Record at byte ${position} of the value body announces ${length} data bytes (allowed: 0 to ${this.#maxDataLength})`,
        position,
        'bad-length',
      );
    }
    this.#position = position + decoded.size;
    return { done: false, value: { ...decoded, position } };
  }

  /** The iterator itself, so it works in `for…of` and spreads. */
  [Symbol.iterator](): this {
    return this;
  }
}

/** The complete records of a `value` body and how many bytes they span. */
export interface MessageRecords {
  readonly records: MessageRecord[];
  /** Bytes of complete records: the consumer's next offset is `requestOffset + consumed`. */
  readonly consumed: number;
}

/**
 * Reads every complete record of a `value` body, ignoring an incomplete tail.
 *
 * @throws {InvalidRecordError} on a checksum mismatch or an impossible length.
 */
export function readMessageRecords(body: Buffer, options: MessageRecordOptions = {}): MessageRecords {
  const iterator = new MessageRecordIterator(body, options);
  const records = [...iterator];
  return { records, consumed: iterator.consumed };
}
