/**
 * The transaction journal's record types and their payloads (our own format; MetaQ's protobuf
 * journal is not copied). Only what a restart needs is journaled:
 *
 * | type        | written                              | forced to disk                               |
 * |-------------|--------------------------------------|----------------------------------------------|
 * | PREPARE     | XA prepare, with every staged message | always                                       |
 * | COMMIT      | commit decided, with every batch (of a prepared branch: by reference to its PREPARE record) | XA: always; local: per `flushTxLogAtCommit`   |
 * | APPLIED     | every batch is in its partition       | no (a lost one only makes replay re-check)    |
 * | ROLLBACK    | rollback of a prepared branch         | no (a lost one re-appears as prepared, and presumed abort rolls it back again) |
 * | HEURISTIC   | operator's heuristic decision         | always                                       |
 * | FORGET      | FORGET of a heuristic branch          | always                                       |
 * | CHECKPOINT  | marks where a checkpoint's replay starts | no                                        |
 *
 * Unprepared transactions are never journaled: after a crash they are rolled back anyway
 * (presumed abort), so writing their puts would only cost disk bandwidth.
 */
import { InvalidArgumentError, StoreCorruptError } from '../common/errors.js';
import { BinaryReader } from './log/binary-reader.js';
import { BinaryWriter } from './log/binary-writer.js';
import { groupByPartition, type CommitBatch, type StagedMessage } from './staged-message.js';
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

/**
 * COMMIT of a prepared branch as journaled: each batch names its partition, lower bound and
 * message count, and the messages are those of the branch's PREPARE record, grouped by partition
 * in order (as the engine groups them for the commit). See {@link resolveCommit}.
 *
 * Why by reference: an XA commit is forced to disk before it is answered, and repeating every
 * message made that write as large as the prepare's (a branch of 100 MiB wrote 200 MiB with
 * O_DSYNC). Replay always has the PREPARE record when it meets such a COMMIT: either after the
 * checkpoint's marker, before the COMMIT, or in the checkpoint itself, which carries a branch as
 * prepared until the engine has queued its COMMIT record (and from then on carries the whole
 * commit, with its messages, in `committing`).
 */
export interface CommitByReference extends BranchIdentity {
  readonly byReference: true;
  readonly heuristic: boolean;
  readonly batches: readonly BatchReference[];
}

/** One partition's batch of a {@link CommitByReference}. */
export interface BatchReference {
  readonly topic: string;
  readonly partition: number;
  readonly lowerBound: number;
  readonly count: number;
}

const COMMIT_WAS_PREPARED = 1;
const COMMIT_HEURISTIC = 2;
const COMMIT_BY_REFERENCE = 4;

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

/**
 * Encodes a COMMIT payload; with `byReference` (a prepared branch only) the batches' messages are
 * left out (see {@link CommitByReference}). Checkpoints never use it: the PREPARE record may be
 * deleted with its journal file once the checkpoint is written.
 * @throws InvalidArgumentError for `byReference` on a commit that was not prepared.
 */
export function encodeCommit(record: CommitRecord, options: { readonly byReference?: boolean } = {}): Buffer {
  const byReference = options.byReference === true;
  if (byReference && !record.wasPrepared) throw new InvalidArgumentError(`the COMMIT record of '${record.key}' can refer to a PREPARE record only if the branch was prepared`);
  const w = new BinaryWriter(byReference ? 256 : 1024);
  writeIdentity(w, record);
  w.u8((record.wasPrepared ? COMMIT_WAS_PREPARED : 0) | (record.heuristic ? COMMIT_HEURISTIC : 0) | (byReference ? COMMIT_BY_REFERENCE : 0));
  if (!byReference) writeBatches(w, record.batches);
  else {
    w.u32(record.batches.length);
    for (const b of record.batches) w.string(b.topic).u32(b.partition).u64(BigInt(b.lowerBound)).u32(b.messages.length);
  }
  return w.finish();
}

/** Decodes a COMMIT payload: the whole commit, or (a prepared branch) a reference to its PREPARE record. */
export function decodeCommitRecord(payload: Buffer): CommitRecord | CommitByReference {
  const r = new BinaryReader(payload);
  const identity = readIdentity(r);
  const flags = r.u8();
  const heuristic = (flags & COMMIT_HEURISTIC) !== 0;
  if ((flags & COMMIT_BY_REFERENCE) !== 0) {
    const batches: BatchReference[] = [];
    for (let i = r.u32(); i > 0; i--) batches.push({ topic: r.string(), partition: r.u32(), lowerBound: Number(r.u64()), count: r.u32() });
    r.assertEnd();
    return { ...identity, byReference: true, heuristic, batches };
  }
  const record = { ...identity, wasPrepared: (flags & COMMIT_WAS_PREPARED) !== 0, heuristic, batches: readBatches(r) };
  r.assertEnd();
  return record;
}

/**
 * Decodes a COMMIT payload that carries its messages (checkpoints).
 * @throws StoreCorruptError for a reference to a PREPARE record.
 */
export function decodeCommit(payload: Buffer): CommitRecord {
  const decoded = decodeCommitRecord(payload);
  if ('byReference' in decoded) throw new StoreCorruptError(`the checkpointed commit of '${decoded.key}' lacks its messages (it refers to a PREPARE record)`);
  return decoded;
}

/**
 * The whole commit of `reference`, with the messages of the branch's PREPARE record `prepare`.
 * @throws StoreCorruptError when the PREPARE record's messages do not match the batches.
 */
export function resolveCommit(reference: CommitByReference, prepare: PrepareRecord): CommitRecord {
  const groups = [...groupByPartition(prepare.messages).values()];
  const mismatch = (why: string): StoreCorruptError =>
    new StoreCorruptError(`the COMMIT record of '${reference.key}' does not match its PREPARE record (${why}); the transaction journal is damaged`);
  if (groups.length !== reference.batches.length) throw mismatch(`${reference.batches.length} batches, ${groups.length} partitions prepared`);
  const batches = reference.batches.map((b, i): CommitBatch => {
    const messages = groups[i] ?? [];
    const first = messages[0];
    if (first === undefined || first.topic !== b.topic || first.partition !== b.partition || messages.length !== b.count) {
      throw mismatch(`batch ${i}: ${b.topic}-${b.partition} × ${b.count}, prepared ${first === undefined ? 'nothing' : `${first.topic}-${first.partition} × ${messages.length}`}`);
    }
    return { topic: b.topic, partition: b.partition, lowerBound: b.lowerBound, messages };
  });
  return { key: reference.key, kind: reference.kind, sessionId: reference.sessionId, uniqueQualifier: reference.uniqueQualifier, wasPrepared: true, heuristic: reference.heuristic, batches };
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
