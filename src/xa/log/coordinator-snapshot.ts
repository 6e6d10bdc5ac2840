/**
 * The payload of a coordinator log checkpoint: every pending entry (COMMITTING or
 * PRESUMED_ABORTING without END), with its participants and heuristics. The checkpoint file's own
 * header (magic, version, CRC, journal position) is written by src/transaction/log/tx-checkpoint.ts.
 *
 * | field | |
 * |---|---|
 * | u8 | snapshot format version (1) |
 * | u32 | entry count |
 * | per entry | gtrid, u8 state (1 committing, 2 presumed-aborting), u64 decidedAtMs, participants, heuristics |
 *
 * Why the whole pending set and not only a journal position: a transaction stuck in phase two for
 * days (a participant down) would otherwise pin every journal file since its COMMITTING; with the
 * snapshot, old files can be deleted and the entry lives on in each new checkpoint (§5.5).
 */
import { StoreCorruptError } from '../../common/errors.js';
import { BinaryReader } from '../../transaction/log/binary-reader.js';
import { BinaryWriter } from '../../transaction/log/binary-writer.js';
import type { PendingEntry } from '../coordinator-log.js';
import { readGtrid, readHeuristics, readParticipants, readTimeMs, writeGtrid, writeHeuristics, writeParticipants, writeTimeMs } from './coordinator-fields.js';

/** The snapshot format version this code writes and reads. */
export const COORDINATOR_SNAPSHOT_VERSION = 1;

const STATE_CODES = { committing: 1, 'presumed-aborting': 2 } as const satisfies Record<PendingEntry['state'], number>;

/** Encodes the pending entries, in the given order. */
export function encodeCoordinatorSnapshot(entries: readonly PendingEntry[]): Buffer {
  const w = new BinaryWriter(64 + entries.length * 64);
  w.u8(COORDINATOR_SNAPSHOT_VERSION).u32(entries.length);
  for (const entry of entries) {
    writeGtrid(w, entry.gtrid);
    w.u8(STATE_CODES[entry.state]);
    writeTimeMs(w, entry.decidedAtMs, 'decision time');
    writeParticipants(w, entry.participants);
    writeHeuristics(w, entry.heuristics);
  }
  return w.finish();
}

/**
 * Decodes a snapshot written by {@link encodeCoordinatorSnapshot}.
 * @throws StoreCorruptError for another version or a payload that does not match the format.
 */
export function decodeCoordinatorSnapshot(payload: Buffer): PendingEntry[] {
  const r = new BinaryReader(payload);
  const version = r.u8();
  if (version !== COORDINATOR_SNAPSHOT_VERSION) {
    throw new StoreCorruptError(
      `coordinator log checkpoint has snapshot format version ${version}; this metaq reads version ${COORDINATOR_SNAPSHOT_VERSION} (written by a newer metaq?)`,
    );
  }
  const count = r.u32();
  const entries: PendingEntry[] = [];
  for (let i = 0; i < count; i++) {
    const gtrid = readGtrid(r);
    const code = r.u8();
    const state = code === STATE_CODES.committing ? 'committing' : code === STATE_CODES['presumed-aborting'] ? 'presumed-aborting' : undefined;
    if (state === undefined) throw new StoreCorruptError(`coordinator log checkpoint: unknown entry state code ${code}`);
    const decidedAtMs = readTimeMs(r, 'decision time');
    const participants = readParticipants(r);
    entries.push({ gtrid, state, decidedAtMs, participants, heuristics: readHeuristics(r) });
  }
  r.assertEnd();
  return entries;
}
