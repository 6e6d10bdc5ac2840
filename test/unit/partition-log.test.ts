import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog, type PartitionLogOptions } from '../../src/store/partition-log.js';
import { decodeRecordAt, RECORD_HEADER_SIZE } from '../../src/protocol/record.js';
import { segmentFileName } from '../../src/store/segment-name.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
const open: PartitionLog[] = [];

beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((log) => log.close()));
  await dir.remove();
});

async function openLog(overrides: Partial<PartitionLogOptions> = {}): Promise<PartitionLog> {
  const log = await PartitionLog.open({
    topic: 'test',
    partition: 0,
    dir: dir.path,
    maxSegmentSize: 1024 * 1024,
    maxRecordDataLength: 1024 * 1024,
    unflushThreshold: 0,
    unflushInterval: 1000,
    logger: componentLogger('test'),
    ...overrides,
  });
  open.push(log);
  return log;
}

function record(i: number, size = 100): { id: bigint; flag: number; data: Buffer } {
  const data = Buffer.alloc(size, i % 251);
  data.writeUInt32BE(i, 0);
  return { id: BigInt(i + 1), flag: 0, data };
}

/** Decodes every complete record of a slice. */
function decodeAll(slice: Buffer): { id: bigint; data: Buffer }[] {
  const out: { id: bigint; data: Buffer }[] = [];
  let pos = 0;
  for (;;) {
    const r = decodeRecordAt(slice, pos, 1 << 30);
    if (typeof r === 'string') return out;
    out.push({ id: r.id, data: r.data });
    pos += r.size;
  }
}

describe('partition log', () => {
  it('creates the first segment 00000000000000000000.meta in an empty directory', async () => {
    const log = await openLog();
    assert.deepEqual(fs.readdirSync(dir.path), ['00000000000000000000.meta']);
    assert.equal(log.minOffset, 0);
    assert.equal(log.maxOffset, 0);
  });

  it('returns absolute byte offsets and reads the records back', async () => {
    const log = await openLog();
    const first = await log.append(record(0, 10));
    const second = await log.append(record(1, 30));
    assert.equal(first, 0);
    assert.equal(second, RECORD_HEADER_SIZE + 10);
    assert.equal(log.maxOffset, 2 * RECORD_HEADER_SIZE + 40);
    const result = await log.read(0, 1 << 20);
    assert.equal(result.kind, 'data');
    if (result.kind !== 'data') return;
    const records = decodeAll(result.data);
    assert.deepEqual(
      records.map((r) => r.id),
      [1n, 2n],
    );
    assert.deepEqual(records[1]?.data, record(1, 30).data);
  });

  it('writes a batch contiguously and reports each offset', async () => {
    const log = await openLog();
    await log.append(record(0, 7));
    const batch = await log.appendBatch([record(1, 5), record(2, 6), record(3, 7)]);
    assert.equal(batch.offset, RECORD_HEADER_SIZE + 7);
    assert.deepEqual(batch.offsets, [27, 27 + 25, 27 + 25 + 26]);
    assert.equal(batch.length, 25 + 26 + 27);
  });

  it('group commit: concurrent appends share fdatasyncs and are all durable when acked', async () => {
    const log = await openLog({ unflushThreshold: 0 });
    const offsets = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(record(i))));
    assert.equal(new Set(offsets).size, 500);
    assert.ok(log.syncCount < 100, `expected shared syncs, got ${log.syncCount} for 500 appends`);
    assert.equal(log.durableOffset, log.writtenOffset);
  });

  it('group commit: readers never see bytes that are not yet on disk', async () => {
    const log = await openLog({ unflushThreshold: 0 });
    const pending = log.append(record(0));
    // Written maybe, but not acknowledged: not readable.
    assert.equal(log.maxOffset, 0);
    await pending;
    assert.equal(log.maxOffset, 120);
  });

  it('threshold mode: acks after write and syncs in the background every N appends', async () => {
    const log = await openLog({ unflushThreshold: 10, unflushInterval: 60_000 });
    for (let i = 0; i < 9; i++) await log.append(record(i));
    assert.equal(log.syncCount, 0, 'no sync before the threshold');
    assert.equal(log.maxOffset, 9 * 120, 'written records are readable at once');
    await log.append(record(9));
    await waitUntil(() => log.durableOffset === 10 * 120);
    assert.equal(log.syncCount, 1);
  });

  it('threshold mode: the interval flusher syncs a quiet log', async () => {
    const log = await openLog({ unflushThreshold: 1000, unflushInterval: 20 });
    await log.append(record(0));
    await waitUntil(() => log.durableOffset === 120);
  });

  it('rolls to a new segment named by its start offset once maxSegmentSize is reached', async () => {
    const log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 20; i++) await log.append(record(i)); // 120 bytes each
    // 9 records = 1080 bytes >= 1000: roll after the 9th, the 18th.
    assert.deepEqual(fs.readdirSync(dir.path).sort(), [segmentFileName(0), segmentFileName(1080), segmentFileName(2160)]);
    assert.equal(log.segmentCount, 3);
    assert.equal(log.maxOffset, 2400);
  });

  it('clips a read at the end of the segment holding the offset, and never spans two files', async () => {
    const log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 20; i++) await log.append(record(i));
    const slice = await log.read(960, 1 << 20);
    assert.equal(slice.kind, 'data');
    if (slice.kind === 'data') assert.equal(slice.data.length, 120);
    const small = await log.read(1080, 50);
    if (small.kind === 'data') assert.equal(small.data.length, 50, 'maxSize bounds it; may end mid-record');
    const last = await log.read(2160, 1 << 20);
    if (last.kind === 'data') assert.deepEqual(decodeAll(last.data).map((r) => r.id), [19n, 20n]);
  });

  it('answers before-start and past-end as MetaQ get needs', async () => {
    const log = await openLog();
    await log.append(record(0));
    assert.deepEqual(await log.read(120, 100), { kind: 'past-end', maxOffset: 120 });
    assert.deepEqual(await log.read(5000, 100), { kind: 'past-end', maxOffset: 120 });
    await assert.rejects(log.read(0, 0), /invalid read/);
  });

  it('reports the start of the segment holding an offset', async () => {
    const log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 20; i++) await log.append(record(i));
    assert.equal(log.segmentStartFor(0), 0);
    assert.equal(log.segmentStartFor(1079), 0);
    assert.equal(log.segmentStartFor(1080), 1080);
    assert.equal(log.segmentStartFor(2300), 2160);
    assert.equal(log.segmentStartFor(99_999), 2400);
  });

  it('reopens with the same offsets and continues after the last record', async () => {
    let log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 12; i++) await log.append(record(i));
    await log.close();
    open.length = 0;
    log = await openLog({ maxSegmentSize: 1000 });
    assert.equal(log.maxOffset, 1440);
    assert.equal(log.recoveredLastId, 12n);
    assert.equal(await log.append(record(12)), 1440);
  });

  it('refuses to open when segments are not contiguous, naming the files', async () => {
    let log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 20; i++) await log.append(record(i));
    await log.close();
    open.length = 0;
    fs.truncateSync(join(dir.path, segmentFileName(1080)), 500);
    await assert.rejects(openLog({ maxSegmentSize: 1000 }), (error: Error) => {
      assert.match(error.message, /not contiguous/);
      assert.match(error.message, /00000000000000001080\.meta \(500 bytes\) ends at offset 1580/);
      assert.match(error.message, /00000000000000002160\.meta, a gap of 580 bytes/);
      return true;
    });
    log = undefined as unknown as PartitionLog;
  });

  it('rejects appends after close', async () => {
    const log = await openLog();
    await log.close();
    await assert.rejects(log.append(record(0)), /is closed/);
  });

  it('retires only the oldest segment, never the active one', async () => {
    const log = await openLog({ maxSegmentSize: 1000 });
    for (let i = 0; i < 20; i++) await log.append(record(i));
    const disposed: string[] = [];
    const dispose = async (path: string): Promise<void> => {
      disposed.push(path);
      await fs.promises.unlink(path);
    };
    assert.equal(await log.retireOldestSegment(1080, dispose), false, 'not the oldest');
    assert.equal(await log.retireOldestSegment(0, dispose), true);
    assert.equal(await log.retireOldestSegment(1080, dispose), true);
    assert.equal(await log.retireOldestSegment(2160, dispose), false, 'active segment stays');
    assert.equal(log.minOffset, 2160);
    assert.deepEqual(await log.read(0, 100), { kind: 'before-start', minOffset: 2160 });
    assert.equal(disposed.length, 2);
  });
});

async function waitUntil(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
