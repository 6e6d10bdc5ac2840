/**
 * Field codecs shared by the coordinator log's journal records (coordinator-records.ts) and its
 * checkpoint snapshot (coordinator-snapshot.ts): times, gtrids, participants and heuristics,
 * big-endian through the transaction log's {@link BinaryWriter}/{@link BinaryReader}.
 *
 * Every value is validated before anything is written, so that a bad argument from the manager
 * becomes an `InvalidArgumentError` at the call, never a record that a later recovery cannot read.
 */
import { InvalidArgumentError, StoreCorruptError } from '../../common/errors.js';
import { MAXBQUALSIZE, MAXGTRIDSIZE } from '../../client/transaction/xid.js';
import type { BinaryReader } from '../../transaction/log/binary-reader.js';
import type { BinaryWriter } from '../../transaction/log/binary-writer.js';
import type { LoggedHeuristic, LoggedParticipant } from '../coordinator-log.js';

/** The outcome of a {@link LoggedHeuristic}. */
export type HeuristicOutcome = LoggedHeuristic['outcome'];

/**
 * On-disk codes of the heuristic outcomes. Why explicit numbers rather than strings: one byte per
 * heuristic, and a renamed TypeScript literal cannot silently change what old files mean.
 */
export const HEURISTIC_OUTCOME_CODES = {
  'heuristic-commit': 1,
  'heuristic-rollback': 2,
  'heuristic-mixed': 3,
  'heuristic-hazard': 4,
} as const satisfies Record<HeuristicOutcome, number>;

/** Longest resource id accepted (it is repeated in every COMMITTING record). */
export const MAX_RESOURCE_ID_LENGTH = 1024;

/** Longest heuristic detail kept, in UTF-16 code units; longer text is cut (it is operator prose, not data). */
export const MAX_HEURISTIC_DETAIL_LENGTH = 4096;

const OUTCOME_BY_CODE = new Map<number, HeuristicOutcome>(
  Object.entries(HEURISTIC_OUTCOME_CODES).map(([outcome, code]) => [code, outcome as HeuristicOutcome]),
);

/** True when `value` is one of the four heuristic outcomes. */
export function isHeuristicOutcome(value: unknown): value is HeuristicOutcome {
  return typeof value === 'string' && Object.hasOwn(HEURISTIC_OUTCOME_CODES, value);
}

/** Throws InvalidArgumentError unless `ms` is a non-negative safe integer (a time in ms since the epoch). */
export function assertTimeMs(ms: number, what: string): void {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError(`${what} must be a non-negative integer number of ms, got ${String(ms)}`);
  }
}

/** Throws InvalidArgumentError unless `gtrid` is a Buffer of 1–64 bytes (the X/Open limit). */
export function assertGtrid(gtrid: Buffer): void {
  if (!Buffer.isBuffer(gtrid) || gtrid.length < 1 || gtrid.length > MAXGTRIDSIZE) {
    throw new InvalidArgumentError(`a gtrid must be a Buffer of 1 to ${MAXGTRIDSIZE} bytes, got ${describe(gtrid)}`);
  }
}

/** Throws InvalidArgumentError unless `resourceId` and `branchQualifier` are well formed. */
export function assertBranch(resourceId: string, branchQualifier: Buffer): void {
  if (typeof resourceId !== 'string' || resourceId === '' || resourceId.length > MAX_RESOURCE_ID_LENGTH) {
    throw new InvalidArgumentError(`a resource id must be a non-empty string of at most ${MAX_RESOURCE_ID_LENGTH} characters, got ${describe(resourceId)}`);
  }
  if (!Buffer.isBuffer(branchQualifier) || branchQualifier.length > MAXBQUALSIZE) {
    throw new InvalidArgumentError(`a branch qualifier must be a Buffer of at most ${MAXBQUALSIZE} bytes, got ${describe(branchQualifier)}`);
  }
}

/** Writes a time in ms as u64. */
export function writeTimeMs(w: BinaryWriter, ms: number, what: string): void {
  assertTimeMs(ms, what);
  w.u64(BigInt(ms));
}

/** Reads a time written by {@link writeTimeMs}. */
export function readTimeMs(r: BinaryReader, what: string): number {
  const value = r.u64();
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new StoreCorruptError(`coordinator log: ${what} ${value} is out of range`);
  return Number(value);
}

/** Writes a gtrid (length-prefixed bytes). */
export function writeGtrid(w: BinaryWriter, gtrid: Buffer): void {
  assertGtrid(gtrid);
  w.bytes(gtrid);
}

/** Reads a gtrid as a private copy. */
export function readGtrid(r: BinaryReader): Buffer {
  const gtrid = Buffer.from(r.bytes());
  if (gtrid.length < 1 || gtrid.length > MAXGTRIDSIZE) throw new StoreCorruptError(`coordinator log: a gtrid of ${gtrid.length} bytes is impossible`);
  return gtrid;
}

/** Writes a participant list (u32 count, then resource id and branch qualifier of each). */
export function writeParticipants(w: BinaryWriter, participants: readonly LoggedParticipant[]): void {
  if (!Array.isArray(participants)) throw new InvalidArgumentError('participants must be an array');
  w.u32(participants.length);
  for (const p of participants) {
    assertBranch(p.resourceId, p.branchQualifier);
    w.string(p.resourceId).bytes(p.branchQualifier);
  }
}

/** Reads a participant list written by {@link writeParticipants} (buffers are private copies). */
export function readParticipants(r: BinaryReader): LoggedParticipant[] {
  const count = r.u32();
  const participants: LoggedParticipant[] = [];
  for (let i = 0; i < count; i++) participants.push({ resourceId: r.string(), branchQualifier: Buffer.from(r.bytes()) });
  return participants;
}

/** Throws InvalidArgumentError unless `heuristic` (without its time) is well formed. */
export function assertHeuristic(heuristic: Omit<LoggedHeuristic, 'atMs'>): void {
  if (typeof heuristic !== 'object' || heuristic === null) throw new InvalidArgumentError('a heuristic must be an object');
  assertBranch(heuristic.resourceId, heuristic.branchQualifier);
  if (!isHeuristicOutcome(heuristic.outcome)) {
    throw new InvalidArgumentError(`a heuristic outcome must be one of ${Object.keys(HEURISTIC_OUTCOME_CODES).join(', ')}, got ${describe(heuristic.outcome)}`);
  }
  if (typeof heuristic.detail !== 'string') throw new InvalidArgumentError(`a heuristic detail must be a string, got ${describe(heuristic.detail)}`);
}

/** Writes one heuristic: resource id, branch qualifier, outcome code, time, detail. */
export function writeHeuristic(w: BinaryWriter, heuristic: LoggedHeuristic): void {
  assertHeuristic(heuristic);
  w.string(heuristic.resourceId).bytes(heuristic.branchQualifier).u8(HEURISTIC_OUTCOME_CODES[heuristic.outcome]);
  writeTimeMs(w, heuristic.atMs, 'heuristic time');
  w.string(heuristic.detail);
}

/** Reads a heuristic written by {@link writeHeuristic}. */
export function readHeuristic(r: BinaryReader): LoggedHeuristic {
  const resourceId = r.string();
  const branchQualifier = Buffer.from(r.bytes());
  const code = r.u8();
  const outcome = OUTCOME_BY_CODE.get(code);
  if (outcome === undefined) throw new StoreCorruptError(`coordinator log: unknown heuristic outcome code ${code}`);
  const atMs = readTimeMs(r, 'heuristic time');
  return { resourceId, branchQualifier, outcome, atMs, detail: r.string() };
}

/** Writes a heuristic list (u32 count, then each). */
export function writeHeuristics(w: BinaryWriter, heuristics: readonly LoggedHeuristic[]): void {
  w.u32(heuristics.length);
  for (const h of heuristics) writeHeuristic(w, h);
}

/** Reads a heuristic list written by {@link writeHeuristics}. */
export function readHeuristics(r: BinaryReader): LoggedHeuristic[] {
  const count = r.u32();
  const heuristics: LoggedHeuristic[] = [];
  for (let i = 0; i < count; i++) heuristics.push(readHeuristic(r));
  return heuristics;
}

function describe(value: unknown): string {
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (typeof value === 'string') return value.length > 80 ? `a string of ${value.length} characters` : JSON.stringify(value);
  return value === null ? 'null' : typeof value;
}
