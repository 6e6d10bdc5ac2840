/**
 * The transaction journal's record types and their payloads (our own format; MetaQ's protobuf
 * journal is not copied). Only what a restart needs is journaled:
 *
 * | type        | written                              | forced to disk                               |
 * |-------------|--------------------------------------|----------------------------------------------|
 * | PREPARE     | XA prepare, with every staged message | always                                       |
 * | COMMIT      | commit decided, with every batch      | XA: always; local: per `flushTxLogAtCommit`   |
 * | APPLIED     | every batch is in its partition       | no (a lost one only makes replay re-check)    |
 * | ROLLBACK    | rollback of a prepared branch         | no (a lost one re-appears as prepared, and presumed abort rolls it back again) |
 * | HEURISTIC   | operator's heuristic decision         | always                                       |
 * | FORGET      | FORGET of a heuristic branch          | always                                       |
 * | CHECKPOINT  | marks where a checkpoint's replay starts | no                                        |
 *
 * Unprepared transactions are never journaled: after a crash they are rolled back anyway
 * (presumed abort), so writing their puts would only cost disk bandwidth.
 */
import { BinaryReader } from './log/binary-reader.js';
import { BinaryWriter } from './log/binary-writer.js';
import type { CommitBatch, StagedMessage } from './staged-message.js';
import type { Outcome, Tombstone } from './outcome-tombstones.js';
import type { TransactionKind } from './transaction-state.js';

/** Journal record types. */
export const TxRecordType = {
  PREPARE: 1,
  COMMIT: 2,
  APPLIED: 3,
  ROLLBACK: 4,
  HEURISTIC: 5,
  FORGET: 6,
  CHECKPOINT: 7,
} as const;

/** Identity of a branch as journaled. */
export interface BranchIdentity {
  readonly key: string;
  readonly kind: TransactionKind;
  readonly sessionId: string;
  readonly uniqueQualifier: string | undefined;
}

/** PREPARE: the branch and everything it staged. */
export interface PrepareRecord extends BranchIdentity {
  readonly preparedAt: number;
  readonly messages: readonly StagedMessage[];
}

/** COMMIT: the decided batches, with where each partition's batch will start at the earliest. */
export interface CommitRecord extends BranchIdentity {
  readonly wasPrepared: boolean;
  /** Set for an operator's heuristic commit: the branch stays heuristic until FORGET. */
  readonly heuristic: boolean;
  readonly batches: readonly CommitBatch[];
}

/** A heuristic decision on a prepared branch. */
export interface HeuristicRecord extends BranchIdentity {
  readonly outcome: 'commit' | 'rollback';
  readonly at: number;
}

function writeIdentity(w: BinaryWriter, id: BranchIdentity): void {
  w.string(id.key).u8(id.kind === 'xa' ? 1 : 0).string(id.sessionId).string(id.uniqueQualifier ?? '');
}

function readIdentity(r: BinaryReader): BranchIdentity {
  const key = r.string();
  const kind: TransactionKind = r.u8() === 1 ? 'xa' : 'local';
  const sessionId = r.string();
  const uq = r.string();
  return { key, kind, sessionId, uniqueQualifier: uq === '' ? undefined : uq };
}

function writeMessages(w: BinaryWriter, messages: readonly StagedMessage[]): void {
  w.u32(messages.length);
  for (const m of messages) w.string(m.topic).u32(m.partition).i64(m.id).i32(m.flag).i32(m.checksum).bytes(m.data);
}

function readMessages(r: BinaryReader): StagedMessage[] {
  const count = r.u32();
  const messages: StagedMessage[] = [];
  for (let i = 0; i < count; i++) {
    messages.push({ topic: r.string(), partition: r.u32(), id: r.i64(), flag: r.i32(), checksum: r.i32(), data: Buffer.from(r.bytes()) });
  }
  return messages;
}

function writeBatches(w: BinaryWriter, batches: readonly CommitBatch[]): void {
  w.u32(batches.length);
  for (const b of batches) {
    w.string(b.topic).u32(b.partition).u64(BigInt(b.lowerBound));
    writeMessages(w, b.messages);
  }
}

function readBatches(r: BinaryReader): CommitBatch[] {
  const count = r.u32();
  const batches: CommitBatch[] = [];
  for (let i = 0; i < count; i++) batches.push({ topic: r.string(), partition: r.u32(), lowerBound: Number(r.u64()), messages: readMessages(r) });
  return batches;
}

/** Encodes a PREPARE payload. */
export function encodePrepare(record: PrepareRecord): Buffer {
  const w = new BinaryWriter(1024);
  writeIdentity(w, record);
  w.u64(BigInt(record.preparedAt));
  writeMessages(w, record.messages);
  return w.finish();
}

/** Decodes a PREPARE payload. */
export function decodePrepare(payload: Buffer): PrepareRecord {
  const r = new BinaryReader(payload);
  const identity = readIdentity(r);
  const record = { ...identity, preparedAt: Number(r.u64()), messages: readMessages(r) };
  r.assertEnd();
  return record;
}

/** Encodes a COMMIT payload. */
export function encodeCommit(record: CommitRecord): Buffer {
  const w = new BinaryWriter(1024);
  writeIdentity(w, record);
  w.u8((record.wasPrepared ? 1 : 0) | (record.heuristic ? 2 : 0));
  writeBatches(w, record.batches);
  return w.finish();
}

/** Decodes a COMMIT payload. */
export function decodeCommit(payload: Buffer): CommitRecord {
  const r = new BinaryReader(payload);
  const identity = readIdentity(r);
  const flags = r.u8();
  const record = { ...identity, wasPrepared: (flags & 1) !== 0, heuristic: (flags & 2) !== 0, batches: readBatches(r) };
  r.assertEnd();
  return record;
}

/** Encodes the payload of APPLIED, ROLLBACK and FORGET: just the key. */
export function encodeKey(key: string): Buffer {
  return new BinaryWriter(64).string(key).finish();
}

/** Decodes a key-only payload. */
export function decodeKey(payload: Buffer): string {
  const r = new BinaryReader(payload);
  const key = r.string();
  r.assertEnd();
  return key;
}

/** Encodes a HEURISTIC payload. */
export function encodeHeuristic(record: HeuristicRecord): Buffer {
  const w = new BinaryWriter(128);
  writeIdentity(w, record);
  w.u8(record.outcome === 'commit' ? 1 : 0).u64(BigInt(record.at));
  return w.finish();
}

/** Decodes a HEURISTIC payload. */
export function decodeHeuristic(payload: Buffer): HeuristicRecord {
  const r = new BinaryReader(payload);
  const identity = readIdentity(r);
  const record: HeuristicRecord = { ...identity, outcome: r.u8() === 1 ? 'commit' : 'rollback', at: Number(r.u64()) };
  r.assertEnd();
  return record;
}

/** Everything a checkpoint must remember: the branches replay cannot rebuild from later records. */
export interface EngineSnapshot {
  readonly prepared: readonly PrepareRecord[];
  /** Commits decided (COMMIT record older than the checkpoint) whose APPLIED may be missing. */
  readonly committing: readonly CommitRecord[];
  readonly heuristics: readonly HeuristicRecord[];
  readonly tombstones: readonly Tombstone[];
}

const OUTCOMES: readonly Outcome[] = ['committed', 'rolled-back', 'timed-out', 'read-only'];
const SNAPSHOT_VERSION = 1;

/** Encodes a checkpoint payload. */
export function encodeSnapshot(snapshot: EngineSnapshot): Buffer {
  const w = new BinaryWriter(4096);
  w.u8(SNAPSHOT_VERSION);
  w.u32(snapshot.prepared.length);
  for (const p of snapshot.prepared) w.bytes(encodePrepare(p));
  w.u32(snapshot.committing.length);
  for (const c of snapshot.committing) w.bytes(encodeCommit(c));
  w.u32(snapshot.heuristics.length);
  for (const h of snapshot.heuristics) w.bytes(encodeHeuristic(h));
  w.u32(snapshot.tombstones.length);
  for (const t of snapshot.tombstones) w.string(t.key).u8(OUTCOMES.indexOf(t.outcome)).u64(BigInt(t.at));
  return w.finish();
}

/** Decodes a checkpoint payload. */
export function decodeSnapshot(payload: Buffer): EngineSnapshot {
  const r = new BinaryReader(payload);
  const version = r.u8();
  if (version !== SNAPSHOT_VERSION) throw new Error(`unsupported transaction checkpoint version ${version}`);
  const list = <T>(decode: (b: Buffer) => T): T[] => {
    const out: T[] = [];
    for (let i = r.u32(); i > 0; i--) out.push(decode(r.bytes()));
    return out;
  };
  const prepared = list(decodePrepare);
  const committing = list(decodeCommit);
  const heuristics = list(decodeHeuristic);
  const tombstones: Tombstone[] = [];
  for (let i = r.u32(); i > 0; i--) {
    const key = r.string();
    const outcome = OUTCOMES[r.u8()] ?? 'rolled-back';
    tombstones.push({ key, outcome, at: Number(r.u64()) });
  }
  r.assertEnd();
  return { prepared, committing, heuristics, tombstones };
}
