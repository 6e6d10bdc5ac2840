import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, StoreCorruptError } from '../../src/common/errors.js';
import { BinaryWriter } from '../../src/transaction/log/binary-writer.js';
import type { PendingEntry } from '../../src/xa/coordinator-log.js';
import {
  CoordinatorRecordType,
  decodeCoordinatorRecord,
  decodeCoordinatorSnapshot,
  encodeCoordinatorRecord,
  encodeCoordinatorSnapshot,
  type CoordinatorRecord,
} from '../../src/xa/log/index.js';
import { branchQualifier, makeGtrid, nodeIdOf } from '../../src/xa/xid.js';

const gtrid = (sequence: number): Buffer => makeGtrid({ nodeId: nodeIdOf('tm-test'), startedAtMs: 1_700_000_000_000 + sequence, sequence: BigInt(sequence) });
const T = 1_700_000_123_456;

const samples: CoordinatorRecord[] = [
  {
    kind: 'committing',
    gtrid: gtrid(1),
    atMs: T,
    participants: [
      { resourceId: 'postgres:orders-db', branchQualifier: branchQualifier(0) },
      { resourceId: 'metaq:meta://10.0.0.5:8123#orders-tm', branchQualifier: branchQualifier(1) },
      { resourceId: 'métaq:ünïcode', branchQualifier: Buffer.alloc(0) },
    ],
  },
  { kind: 'committing', gtrid: gtrid(2), atMs: 0, participants: [] },
  { kind: 'presumed-aborting', gtrid: gtrid(3), atMs: T + 1 },
  {
    kind: 'heuristic',
    gtrid: gtrid(4),
    heuristic: { resourceId: 'postgres:orders-db', branchQualifier: branchQualifier(0), outcome: 'heuristic-mixed', atMs: T + 2, detail: 'marker row absent after "does not exist"' },
  },
  { kind: 'end', gtrid: gtrid(5), atMs: T + 3 },
  { kind: 'end', gtrid: Buffer.alloc(64, 7), atMs: Number.MAX_SAFE_INTEGER },
  { kind: 'checkpoint', atMs: T + 4 },
];

describe('coordinator log record codecs', () => {
  for (const record of samples) {
    it(`round-trips ${record.kind} (${'gtrid' in record ? record.gtrid.length : 0}-byte gtrid)`, () => {
      const { type, payload } = encodeCoordinatorRecord(record);
      assert.deepEqual(decodeCoordinatorRecord(type, Buffer.from(payload)), record);
    });
  }

  it('uses the documented type bytes, away from the broker journal types 1–7', () => {
    const types = samples.map((r) => encodeCoordinatorRecord(r).type);
    assert.deepEqual([...new Set(types)].sort(), [0x21, 0x22, 0x23, 0x24, 0x25]);
    assert.deepEqual(CoordinatorRecordType, { COMMITTING: 0x21, PRESUMED_ABORTING: 0x22, HEURISTIC: 0x23, END: 0x24, CHECKPOINT: 0x25 });
  });

  it('puts the time right after the gtrid (u64 ms), so a dump shows when each decision was taken', () => {
    const { payload } = encodeCoordinatorRecord({ kind: 'presumed-aborting', gtrid: gtrid(9), atMs: T });
    assert.equal(payload.readUInt32BE(0), 24);
    assert.equal(payload.readBigUInt64BE(4 + 24), BigInt(T));
    assert.equal(payload.length, 4 + 24 + 8);
  });

  it('refuses malformed fields at encoding, before anything could reach the disk', () => {
    const bad: CoordinatorRecord[] = [
      { kind: 'end', gtrid: Buffer.alloc(0), atMs: T },
      { kind: 'end', gtrid: Buffer.alloc(65), atMs: T },
      { kind: 'end', gtrid: gtrid(1), atMs: -1 },
      { kind: 'end', gtrid: gtrid(1), atMs: 1.5 },
      { kind: 'committing', gtrid: gtrid(1), atMs: T, participants: [{ resourceId: '', branchQualifier: branchQualifier(0) }] },
      { kind: 'committing', gtrid: gtrid(1), atMs: T, participants: [{ resourceId: 'r', branchQualifier: Buffer.alloc(65) }] },
      {
        kind: 'heuristic',
        gtrid: gtrid(1),
        heuristic: { resourceId: 'r', branchQualifier: branchQualifier(0), outcome: 'committed' as never, atMs: T, detail: '' },
      },
    ];
    for (const record of bad) assert.throws(() => encodeCoordinatorRecord(record), InvalidArgumentError, JSON.stringify(record));
  });

  it('reports an unknown type (e.g. a broker journal) and a payload of the wrong shape as corruption', () => {
    assert.throws(() => decodeCoordinatorRecord(1, Buffer.alloc(10)), (e: unknown) => e instanceof StoreCorruptError && /unknown record type 0x01/.test(e.message));
    const { type, payload } = encodeCoordinatorRecord({ kind: 'end', gtrid: gtrid(1), atMs: T });
    assert.throws(() => decodeCoordinatorRecord(type, Buffer.concat([payload, Buffer.of(0)])), StoreCorruptError);
    assert.throws(() => decodeCoordinatorRecord(type, payload.subarray(0, payload.length - 1)), StoreCorruptError);
    const badOutcome = new BinaryWriter().bytes(gtrid(1)).string('r').bytes(Buffer.alloc(4)).u8(9).u64(1n).string('').finish();
    assert.throws(() => decodeCoordinatorRecord(CoordinatorRecordType.HEURISTIC, badOutcome), /unknown heuristic outcome code 9/);
  });

  it('decodes private copies, not views of the journal buffer', () => {
    const { type, payload } = encodeCoordinatorRecord(samples[0] as CoordinatorRecord);
    const decoded = decodeCoordinatorRecord(type, payload);
    payload.fill(0);
    assert.deepEqual(decoded, samples[0]);
  });
});

describe('coordinator log checkpoint snapshot codec', () => {
  const entries: PendingEntry[] = [
    {
      gtrid: gtrid(1),
      state: 'committing',
      decidedAtMs: T,
      participants: [
        { resourceId: 'postgres:a', branchQualifier: branchQualifier(0) },
        { resourceId: 'metaq:b', branchQualifier: branchQualifier(1) },
      ],
      heuristics: [
        { resourceId: 'postgres:a', branchQualifier: branchQualifier(0), outcome: 'heuristic-rollback', atMs: T + 5, detail: 'DBA rolled back' },
        { resourceId: 'metaq:b', branchQualifier: branchQualifier(1), outcome: 'heuristic-hazard', atMs: T + 6, detail: '' },
      ],
    },
    { gtrid: gtrid(2), state: 'presumed-aborting', decidedAtMs: T + 1, participants: [], heuristics: [] },
  ];

  it('round-trips every entry with its participants and heuristics, in order', () => {
    assert.deepEqual(decodeCoordinatorSnapshot(encodeCoordinatorSnapshot(entries)), entries);
    assert.deepEqual(decodeCoordinatorSnapshot(encodeCoordinatorSnapshot([])), []);
  });

  it('refuses another format version and trailing bytes', () => {
    const bytes = Buffer.from(encodeCoordinatorSnapshot(entries));
    bytes[0] = 2;
    assert.throws(() => decodeCoordinatorSnapshot(bytes), /snapshot format version 2/);
    assert.throws(() => decodeCoordinatorSnapshot(Buffer.concat([encodeCoordinatorSnapshot(entries), Buffer.of(1)])), StoreCorruptError);
  });
});
