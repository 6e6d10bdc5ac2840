/**
 * Applies a server-side consumer filter to the slice a `get` read (metaq-reference §1.4 step 5).
 *
 * Why the answer is "a contiguous accepted prefix, or a 301 skip", not MetaQ's "every accepted
 * record concatenated":
 *
 * Every client — MetaQ's Java `MessageIterator` and ours (fetch-runner.ts) — gives a record of a
 * `value` body the offset `requestOffset + position in the body`, and continues at
 * `requestOffset + bytes of complete records`. MetaQ's broker (BrokerCommandProcessor
 * .processGetCommand) copies the accepted records of the slice one after another, dropping the
 * rejected ones in between. With a rejected record before or between accepted ones the body
 * positions no longer are log positions: the client reports wrong offsets, commits an offset
 * that is too small — usually in the middle of a record, which later reads as a CRC error and
 * sends the consumer back to the segment start — and re-reads what it already had. MetaQ's
 * client hides part of that behind its message-id LRU cache; ours has none.
 *
 * So this broker answers only in forms in which body positions stay log positions, using the
 * two answers MetaQ itself uses for filtered gets:
 *
 * - the slice starts with rejected records → `301` with the offset of the first record not
 *   rejected (the next accepted one, the incomplete tail, or a corrupt record): exactly MetaQ's
 *   "all rejected → 301 requestOffset + bytes examined" when the whole slice is rejected, and the
 *   same skip when an accepted record follows;
 * - the slice starts with an accepted record → a `value` body holding the run of accepted
 *   records from the start up to (not including) the first rejected record. These are the
 *   slice's own bytes, unchanged: every position in it is the record's log position, so any
 *   MetaQ-compatible client keeps correct offsets. The rejected record that ended the run
 *   starts the next get, which skips it with a 301;
 * - no complete record at the start (a record larger than the slice, or a corrupt/misaligned
 *   one) → the slice as is, exactly as without a filter, so that the client's own handling
 *   (growing `maxSize`, realigning through `offset`) works unchanged. MetaQ answered a slice
 *   without a whole record with `301 requestOffset`, a loop the client could never leave.
 *
 * The cost: an alternation of accepted and rejected messages takes two round trips per accepted
 * run instead of one per slice. Correct offsets (no loss, no duplicates, resumable commits) are
 * worth it; a group that rejects most messages still skips long rejected runs in one 301.
 */
import { ATTRIBUTE_FLAG, decodeMessageData } from '../../protocol/message-data.js';
import { decodeRecordAt, type DecodedRecord } from '../../protocol/record.js';
import type { ConsumerFilter, ServerFilterMessage } from './consumer-filter.js';

/** Where the slice was read. */
export interface SliceOrigin {
  readonly topic: string;
  readonly partition: number;
  /** Log offset of the slice's first byte (the get's offset). */
  readonly offset: number;
}

/** What the get answers for a filtered slice. */
export type FilteredSlice =
  /** `value` with `data`: accepted records from the get's offset on (a prefix of the slice). */
  | { readonly kind: 'value'; readonly data: Buffer; readonly records: number }
  /** `301 nextOffset`: the slice starts with `rejected` rejected records; continue after them. */
  | { readonly kind: 'skip'; readonly nextOffset: number; readonly rejected: number }
  /** No complete, valid record at the start: answer with the slice unchanged. */
  | { readonly kind: 'unfiltered' };

/** Options of {@link applyConsumerFilter}. */
export interface ApplyFilterOptions {
  /**
   * Largest record data length accepted (a larger one is treated as corruption). Default: any
   * int32; a length beyond the slice just makes the record incomplete.
   */
  readonly maxDataLength?: number;
}

function messageOf(record: DecodedRecord, origin: SliceOrigin, position: number): ServerFilterMessage {
  const base = { id: record.id, topic: origin.topic, partition: origin.partition, offset: origin.offset + position, flag: record.flag };
  // A copy: the filter may keep it, and must not be able to change the bytes sent to the client.
  if ((record.flag & ATTRIBUTE_FLAG) === 0) return { ...base, data: Buffer.from(record.data) };
  try {
    const { payload, attribute } = decodeMessageData(record.data, record.flag);
    return attribute === undefined ? { ...base, data: Buffer.from(payload) } : { ...base, data: Buffer.from(payload), attribute };
  } catch {
    // The CRC matched, so the producer wrote a bad attribute block: show the raw data (as the client does).
    return { ...base, data: Buffer.from(record.data) };
  }
}

/**
 * Filters `slice` (raw records read at `origin.offset`, possibly ending inside a record) for
 * `filter`'s group. See the file comment for the three answers and why.
 */
export function applyConsumerFilter(filter: ConsumerFilter, slice: Buffer, origin: SliceOrigin, options: ApplyFilterOptions = {}): FilteredSlice {
  const maxDataLength = options.maxDataLength ?? 0x7fffffff;
  let position = 0;
  let rejected = 0;
  let records = 0;
  for (;;) {
    const record = decodeRecordAt(slice, position, maxDataLength);
    // Incomplete tail, bad length or bad checksum: stop examining here.
    if (typeof record === 'string') break;
    const accepted = filter.accepts(messageOf(record, origin, position));
    if (accepted) {
      if (rejected > 0) break; // skip up to this accepted record; it starts the next get
      records += 1;
    } else {
      if (records > 0) break; // end of the accepted run; this rejected record starts the next get
      rejected += 1;
    }
    position += record.size;
  }
  if (records > 0) {
    filter.counters.delivered += records;
    return { kind: 'value', data: slice.subarray(0, position), records };
  }
  if (rejected > 0) {
    filter.counters.filtered += rejected;
    return { kind: 'skip', nextOffset: origin.offset + position, rejected };
  }
  return { kind: 'unfiltered' };
}
