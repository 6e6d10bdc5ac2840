/**
 * The coordinator's XIDs (transactions.md §5.2).
 *
 * - `formatId` is fixed ({@link METAQ_TM_FORMAT_ID}, ASCII "MQTS"), so recovery ignores XIDs
 *   that other transaction managers left on the same broker or database.
 * - `gtrid` (24 bytes) = node id (8 bytes: a hash of the manager's configured node name) +
 *   start time in ms (8 bytes) + sequence (8 bytes). The node id makes recovery touch only this
 *   manager's branches; the start time gives ages and the orphan safety interval.
 * - `bqual` (4 bytes) = branch index, big endian: one per participant of a transaction.
 * - The PostgreSQL gid is pgjdbc's `formatId_base64(gtrid)_base64(bqual)` (52 characters here,
 *   the server's limit is < 200 bytes), so pgjdbc/psycopg tools read it too.
 */
import { createHash } from 'node:crypto';
import type { Xid } from '../client/transaction/xid.js';

export type { Xid } from '../client/transaction/xid.js';

/** formatId of every XID this transaction manager creates: ASCII "MQTS". */
export const METAQ_TM_FORMAT_ID = 0x4d515453;

/** Length of a node id in a gtrid. */
export const NODE_ID_LENGTH = 8;
/** Length of a gtrid created by this manager. */
export const GTRID_LENGTH = 24;
/** PostgreSQL refuses a gid of 200 bytes or more. */
export const MAX_PG_GID_BYTES = 199;

/** The parts of a gtrid created by this manager. */
export interface GtridParts {
  /** 8 bytes identifying the manager node. */
  readonly nodeId: Buffer;
  /** When the transaction began (ms since the epoch). */
  readonly startedAtMs: number;
  /** Per-node sequence. */
  readonly sequence: bigint;
}

/** The 8-byte node id of a node name: the first 8 bytes of its SHA-256. */
export function nodeIdOf(nodeName: string): Buffer {
  return createHash('sha256').update(nodeName, 'utf8').digest().subarray(0, NODE_ID_LENGTH);
}

/** Builds a 24-byte gtrid. */
export function makeGtrid(parts: GtridParts): Buffer {
  if (parts.nodeId.length !== NODE_ID_LENGTH) throw new RangeError(`a node id has ${NODE_ID_LENGTH} bytes, got ${parts.nodeId.length}`);
  const gtrid = Buffer.alloc(GTRID_LENGTH);
  parts.nodeId.copy(gtrid, 0);
  gtrid.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(parts.startedAtMs))), 8);
  gtrid.writeBigUInt64BE(BigInt.asUintN(64, parts.sequence), 16);
  return gtrid;
}

/** The parts of a gtrid made by {@link makeGtrid}, or undefined for any other shape. */
export function parseGtrid(gtrid: Buffer): GtridParts | undefined {
  if (gtrid.length !== GTRID_LENGTH) return undefined;
  return {
    nodeId: Buffer.from(gtrid.subarray(0, NODE_ID_LENGTH)),
    startedAtMs: Number(gtrid.readBigUInt64BE(8)),
    sequence: gtrid.readBigUInt64BE(16),
  };
}

/** The 4-byte branch qualifier of branch `index`. */
export function branchQualifier(index: number): Buffer {
  const bqual = Buffer.alloc(4);
  bqual.writeUInt32BE(index >>> 0, 0);
  return bqual;
}

/** The XID of branch `index` of the transaction `gtrid`. */
export function branchXid(gtrid: Buffer, index: number): Xid {
  return { formatId: METAQ_TM_FORMAT_ID, globalTransactionId: gtrid, branchQualifier: branchQualifier(index) };
}

/** True when `xid` was made by a manager with this node id (formatId and node id match). */
export function belongsToNode(xid: Xid, nodeId: Buffer): boolean {
  if (xid.formatId !== METAQ_TM_FORMAT_ID) return false;
  const parts = parseGtrid(xid.globalTransactionId);
  return parts !== undefined && parts.nodeId.equals(nodeId);
}

/** Hex of a gtrid: the key of a transaction in the coordinator log, logs and the CLI. */
export function gtridHex(gtrid: Buffer): string {
  return gtrid.toString('hex');
}

/** The PostgreSQL gid of `xid`: `formatId_base64(gtrid)_base64(bqual)` (pgjdbc's format). */
export function pgGidOf(xid: Xid): string {
  const gid = `${xid.formatId}_${xid.globalTransactionId.toString('base64')}_${xid.branchQualifier.toString('base64')}`;
  if (Buffer.byteLength(gid) > MAX_PG_GID_BYTES) throw new RangeError(`PostgreSQL gid ${gid} is ${Buffer.byteLength(gid)} bytes; PostgreSQL needs fewer than 200`);
  return gid;
}

const GID_PATTERN = /^(-?\d+)_([A-Za-z0-9+/=]*)_([A-Za-z0-9+/=]*)$/;

/** The XID of a pgjdbc-format gid, or undefined when `gid` has another shape. */
export function parsePgGid(gid: string): Xid | undefined {
  const match = GID_PATTERN.exec(gid);
  if (match === null) return undefined;
  const formatId = Number(match[1]);
  if (!Number.isSafeInteger(formatId)) return undefined;
  return {
    formatId,
    globalTransactionId: Buffer.from(match[2] ?? '', 'base64'),
    branchQualifier: Buffer.from(match[3] ?? '', 'base64'),
  };
}
