/**
 * The coordinator log's journal records (transactions.md §5.3) and their payload codecs. The
 * journal (src/transaction/log/tx-journal.ts) frames each payload with length, CRC and the type
 * byte; the payloads are:
 *
 * | type | record | payload | forced |
 * |---|---|---|---|
 * | 0x21 | COMMITTING | gtrid, time, participants (resource id + branch qualifier each) | yes |
 * | 0x22 | PRESUMED_ABORTING | gtrid, time | yes |
 * | 0x23 | HEURISTIC | gtrid, resource id, branch qualifier, outcome, time, detail | yes |
 * | 0x24 | END | gtrid, time | no |
 * | 0x25 | CHECKPOINT | time (marks where a checkpoint's replay starts) | yes, see the checkpointer |
 *
 * Every payload starts with its time in ms (after the gtrid where there is one), so a dump of the
 * journal tells an operator when each decision was taken.
 *
 * Why types 0x21–0x25 and not 1–5: the broker's transaction journal uses the same framing with
 * types 1–7. A coordinator pointed by mistake at a broker's journal directory then fails at once
 * on "unknown record type" instead of misreading the broker's records as decisions.
 */
import { StoreCorruptError } from '../../common/errors.js';
import { BinaryReader } from '../../transaction/log/binary-reader.js';
import { BinaryWriter } from '../../transaction/log/binary-writer.js';
import type { LoggedHeuristic, LoggedParticipant } from '../coordinator-log.js';
import {
  readGtrid,
  readHeuristic,
  readParticipants,
  readTimeMs,
  writeGtrid,
  writeHeuristic,
  writeParticipants,
  writeTimeMs,
} from './coordinator-fields.js';

/** Journal record types of the coordinator log. */
export const CoordinatorRecordType = {
  COMMITTING: 0x21,
  PRESUMED_ABORTING: 0x22,
  HEURISTIC: 0x23,
  END: 0x24,
  CHECKPOINT: 0x25,
} as const;

/** One of the values of {@link CoordinatorRecordType}. */
export type CoordinatorRecordTypeValue = (typeof CoordinatorRecordType)[keyof typeof CoordinatorRecordType];

/** COMMITTING: the decision to commit, with what phase two must reach. */
export interface CommittingRecord {
  readonly kind: 'committing';
  readonly gtrid: Buffer;
  readonly atMs: number;
  readonly participants: readonly LoggedParticipant[];
}

/** PRESUMED_ABORTING: recovery's claim on an orphan. */
export interface PresumedAbortingRecord {
  readonly kind: 'presumed-aborting';
  readonly gtrid: Buffer;
  readonly atMs: number;
}

/** HEURISTIC: one participant's heuristic outcome (its time is `heuristic.atMs`). */
export interface HeuristicRecord {
  readonly kind: 'heuristic';
  readonly gtrid: Buffer;
  readonly heuristic: LoggedHeuristic;
}

/** END: every participant acknowledged; the transaction leaves the log. */
export interface EndRecord {
  readonly kind: 'end';
  readonly gtrid: Buffer;
  readonly atMs: number;
}

/** CHECKPOINT: the position a checkpoint's replay starts at. */
export interface CheckpointMarkerRecord {
  readonly kind: 'checkpoint';
  readonly atMs: number;
}

/** Any coordinator log record. */
export type CoordinatorRecord = CommittingRecord | PresumedAbortingRecord | HeuristicRecord | EndRecord | CheckpointMarkerRecord;

/** A record ready for `TxJournal.append`. */
export interface EncodedCoordinatorRecord {
  readonly type: CoordinatorRecordTypeValue;
  readonly payload: Buffer;
}

/**
 * Encodes a record.
 * @throws InvalidArgumentError for a malformed field (bad gtrid, resource id, time, outcome, ...).
 */
export function encodeCoordinatorRecord(record: CoordinatorRecord): EncodedCoordinatorRecord {
  const w = new BinaryWriter();
  switch (record.kind) {
    case 'committing':
      writeGtrid(w, record.gtrid);
      writeTimeMs(w, record.atMs, 'COMMITTING time');
      writeParticipants(w, record.participants);
      return { type: CoordinatorRecordType.COMMITTING, payload: w.finish() };
    case 'presumed-aborting':
      writeGtrid(w, record.gtrid);
      writeTimeMs(w, record.atMs, 'PRESUMED_ABORTING time');
      return { type: CoordinatorRecordType.PRESUMED_ABORTING, payload: w.finish() };
    case 'heuristic':
      writeGtrid(w, record.gtrid);
      writeHeuristic(w, record.heuristic);
      return { type: CoordinatorRecordType.HEURISTIC, payload: w.finish() };
    case 'end':
      writeGtrid(w, record.gtrid);
      writeTimeMs(w, record.atMs, 'END time');
      return { type: CoordinatorRecordType.END, payload: w.finish() };
    case 'checkpoint':
      writeTimeMs(w, record.atMs, 'CHECKPOINT time');
      return { type: CoordinatorRecordType.CHECKPOINT, payload: w.finish() };
  }
}

/**
 * Decodes a record read from the journal. Buffers in the result are private copies.
 * @throws StoreCorruptError for an unknown type or a payload that does not match its type (the
 *   record passed its CRC, so this is a format disagreement, not a torn write).
 */
export function decodeCoordinatorRecord(type: number, payload: Buffer): CoordinatorRecord {
  const r = new BinaryReader(payload);
  let record: CoordinatorRecord;
  switch (type) {
    case CoordinatorRecordType.COMMITTING: {
      const gtrid = readGtrid(r);
      const atMs = readTimeMs(r, 'COMMITTING time');
      record = { kind: 'committing', gtrid, atMs, participants: readParticipants(r) };
      break;
    }
    case CoordinatorRecordType.PRESUMED_ABORTING: {
      const gtrid = readGtrid(r);
      record = { kind: 'presumed-aborting', gtrid, atMs: readTimeMs(r, 'PRESUMED_ABORTING time') };
      break;
    }
    case CoordinatorRecordType.HEURISTIC: {
      const gtrid = readGtrid(r);
      record = { kind: 'heuristic', gtrid, heuristic: readHeuristic(r) };
      break;
    }
    case CoordinatorRecordType.END: {
      const gtrid = readGtrid(r);
      record = { kind: 'end', gtrid, atMs: readTimeMs(r, 'END time') };
      break;
    }
    case CoordinatorRecordType.CHECKPOINT:
      record = { kind: 'checkpoint', atMs: readTimeMs(r, 'CHECKPOINT time') };
      break;
    default:
      throw new StoreCorruptError(
        `coordinator log: unknown record type 0x${type.toString(16).padStart(2, '0')}: this directory holds a journal written by ` +
          `something else (a broker's transaction journal uses types 0x01–0x07) or by a newer version of metaq`,
      );
  }
  r.assertEnd();
  return record;
}

/** The record's name as the design document spells it (`COMMITTING`, `END`, ...), for logs and errors. */
export function coordinatorRecordName(record: CoordinatorRecord): string {
  return record.kind.toUpperCase().replace('-', '_');
}
