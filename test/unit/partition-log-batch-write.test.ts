/**
 * PartitionLog.appendBatch writes a small batch synchronously when the writer is idle and the
 * log has no group commit ("Why a synchronous write" in partition-log.ts), and queues it
 * otherwise. These tests check that both paths give the same bytes, offsets and order, and that
 * the flush policy and rolls are unchanged.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog, type PartitionLogOptions } from '../../src/store/partition-log.js';
import { decodeRecordAt, RECORD_HEADER_SIZE } from '../../src/protocol/record.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
const opened: PartitionLog[] = [];

beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((log) => log.close()));
  await dir.remove();
});

async function openLog(overrides: Partial<PartitionLogOptions> = {}): Promise<PartitionLog> {
  const log = await PartitionLog.open({
    topic: 'test',
    partition: 0,
    dir: dir.path,
    maxSegmentSize: 1024 * 1024,
    maxRecordDataLength: 1024 * 1024,
    unflushThreshold: 1000,
    unflushInterval: 60_000,
    logger: componentLogger('test'),
    ...overrides,
  });
  opened.push(log);
  return log;
}

function record(i: number, size = 100): { id: bigint; flag: number; data: Buffer } {
  const data = Buffer.alloc(size, i % 251);
  data.writeUInt32BE(i, 0);
  return { id: BigInt(i + 1), flag: 0, data };
}

/** Ids of every record of the log, in order, across segments. */
async function idsOf(log: PartitionLog): Promise<number[]> {
  const ids: number[] = [];
  let offset = log.minOffset;
  while (offset < log.maxOffset) {
    const slice = await log.read(offset, 1 << 22);
    if (slice.kind !== 'data') break;
    let pos = 0;
    for (;;) {
      const r = decodeRecordAt(slice.data, pos, 1 << 30);
      if (typeof r === 'string') break;
      ids.push(Number(r.id) - 1);
      pos += r.size;
    }
    if (pos === 0) break;
    offset += pos;
  }
  return ids;
}

describe('partition log: appendBatch', () => {
  it('without group commit, a small batch on an idle log is written before appendBatch returns', async () => {
    const log = await openLog();
    const pending = log.appendBatch([record(0, 10), record(1, 20)]);
    assert.equal(log.writtenOffset, 2 * RECORD_HEADER_SIZE + 30, 'in the file (page cache) already');
    const batch = await pending;
    assert.deepEqual(batch, { offset: 0, length: 2 * RECORD_HEADER_SIZE + 30, offsets: [0, RECORD_HEADER_SIZE + 10] });
    assert.equal(log.appendedRecords, 2);
    assert.deepEqual(await idsOf(log), [0, 1]);
  });

  it('goes behind appends already queued: order and offsets as if it had been queued too', async () => {
    const log = await openLog();
    const first = log.append(record(0, 10));
    const batch = log.appendBatch([record(1, 10), record(2, 10)]);
    assert.equal(log.writtenOffset, 0, 'the writer has an append queued: the batch waits for its turn');
    const third = log.appendBatch([record(3, 10)]);
    assert.equal(await first, 0);
    assert.deepEqual((await batch).offsets, [RECORD_HEADER_SIZE + 10, 2 * (RECORD_HEADER_SIZE + 10)]);
    assert.equal((await third).offset, 3 * (RECORD_HEADER_SIZE + 10));
    assert.deepEqual(await idsOf(log), [0, 1, 2, 3]);
    // The writer is idle again: the next batch is written at once.
    await new Promise((resolve) => setImmediate(resolve));
    void log.appendBatch([record(4, 10)]);
    assert.equal(log.writtenOffset, 5 * (RECORD_HEADER_SIZE + 10));
  });

  it('a large batch, and one that fills the segment, go through the writer (which rolls)', async () => {
    const log = await openLog({ maxSegmentSize: 256 * 1024 });
    const big = log.appendBatch([record(0, 70 * 1024)]);
    assert.equal(log.writtenOffset, 0, 'over 64 KiB: queued');
    await big;
    for (let i = 1; i <= 5; i++) await log.appendBatch([record(i, 40 * 1024)]);
    // The fifth filled the segment: the writer acked it and is rolling; a batch now waits for the roll.
    const during = log.appendBatch([record(6, 10)]);
    const before = log.writtenOffset;
    await during;
    assert.equal(log.segmentCount, 2, 'the write that filled the segment was the writer’s, and it rolled');
    assert.ok(log.writtenOffset > before, 'the batch queued behind the roll');
    await new Promise((resolve) => setImmediate(resolve)); // the writer loop ends after its last ack
    const after = log.appendBatch([record(7, 10)]);
    assert.equal(log.writtenOffset, before + 2 * (RECORD_HEADER_SIZE + 10), 'after the roll small batches are written at once again');
    await after;
    assert.deepEqual(await idsOf(log), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('keeps the flush policy: unflushThreshold counts records written at once, and whenDurable resolves after the flush', async () => {
    const log = await openLog({ unflushThreshold: 3 });
    await log.appendBatch([record(0), record(1)]);
    assert.equal(log.syncCount, 0);
    const batch = await log.appendBatch([record(2)]);
    await log.whenDurable(batch.offset + batch.length);
    assert.equal(log.syncCount, 1, 'the third record started a background flush');
    assert.equal(log.durableOffset, log.writtenOffset);
  });

  it('with group commit it is queued and acknowledged once on disk, as before', async () => {
    const log = await openLog({ unflushThreshold: 0 });
    const pending = log.appendBatch([record(0, 10)]);
    assert.equal(log.writtenOffset, 0);
    const batch = await pending;
    assert.equal(log.durableOffset, batch.offset + batch.length);
    assert.equal(log.syncCount, 1);
  });
});
