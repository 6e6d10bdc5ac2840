import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog } from '../../src/store/partition-log.js';
import { decodeRecordAt } from '../../src/protocol/record.js';
import { segmentFileName } from '../../src/store/segment-name.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await dir.remove();
});

const RECORD = 20 + 100;
const COUNT = 50;

async function openLog(maxSegmentSize = 1 << 20): Promise<PartitionLog> {
  return PartitionLog.open({
    topic: 't',
    partition: 0,
    dir: dir.path,
    maxSegmentSize,
    maxRecordDataLength: 1 << 20,
    unflushThreshold: 0,
    unflushInterval: 1000,
    logger: componentLogger('test'),
  });
}

async function writeRecords(maxSegmentSize?: number): Promise<void> {
  const log = await openLog(maxSegmentSize);
  for (let i = 0; i < COUNT; i++) await log.append({ id: BigInt(i + 1), flag: 0, data: Buffer.alloc(100, i) });
  await log.close();
}

async function readIds(log: PartitionLog): Promise<bigint[]> {
  const ids: bigint[] = [];
  let offset = log.minOffset;
  while (offset < log.maxOffset) {
    const r = await log.read(offset, 1 << 20);
    assert.equal(r.kind, 'data');
    if (r.kind !== 'data') break;
    let pos = 0;
    for (;;) {
      const rec = decodeRecordAt(r.data, pos, 1 << 20);
      if (typeof rec === 'string') break;
      ids.push(rec.id);
      pos += rec.size;
    }
    offset += pos;
  }
  return ids;
}

const segmentPath = (start = 0): string => join(dir.path, segmentFileName(start));

describe('start-up recovery of the last segment', () => {
  for (const [name, byteInRecord] of [
    ['a data byte', 20 + 50],
    ['the checksum', 5],
    ['the length field', 1],
  ] as const) {
    it(`truncates exactly at the record whose ${name} was flipped`, async () => {
      await writeRecords();
      const damaged = 37;
      const fd = fs.openSync(segmentPath(), 'r+');
      const at = damaged * RECORD + byteInRecord;
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] = (b[0] ?? 0) ^ 0xff;
      fs.writeSync(fd, b, 0, 1, at);
      fs.closeSync(fd);

      const log = await openLog();
      try {
        assert.equal(fs.statSync(segmentPath()).size, damaged * RECORD, 'file cut right before the damaged record');
        assert.equal(log.maxOffset, damaged * RECORD);
        assert.deepEqual(await readIds(log), Array.from({ length: damaged }, (_, i) => BigInt(i + 1)));
        assert.equal(log.recoveredLastId, BigInt(damaged));
        assert.equal(await log.append({ id: 999n, flag: 0, data: Buffer.from('after') }), damaged * RECORD, 'appends continue at the cut');
      } finally {
        await log.close();
      }
    });
  }

  it('cuts a torn (partially written) last record', async () => {
    await writeRecords();
    fs.truncateSync(segmentPath(), COUNT * RECORD - 33);
    const log = await openLog();
    try {
      assert.equal(log.maxOffset, (COUNT - 1) * RECORD);
      assert.equal(fs.statSync(segmentPath()).size, (COUNT - 1) * RECORD);
    } finally {
      await log.close();
    }
  });

  it('cuts garbage appended after the last record (a header fragment)', async () => {
    await writeRecords();
    fs.appendFileSync(segmentPath(), Buffer.from([0, 0, 0, 7, 1, 2]));
    const log = await openLog();
    try {
      assert.equal(log.maxOffset, COUNT * RECORD);
      assert.equal((await readIds(log)).length, COUNT);
    } finally {
      await log.close();
    }
  });

  it('leaves a clean log untouched', async () => {
    await writeRecords();
    const before = fs.readFileSync(segmentPath());
    const log = await openLog();
    await log.close();
    assert.deepEqual(fs.readFileSync(segmentPath()), before);
  });

  it('only scans the last segment; older ones are left as they are', async () => {
    await writeRecords(1000);
    const files = fs.readdirSync(dir.path).sort();
    assert.ok(files.length > 2);
    const lastStart = Number(files.at(-1)?.slice(0, 20));
    fs.appendFileSync(segmentPath(lastStart), Buffer.from('junk-junk-junk-junk-junk'));
    const log = await openLog(1000);
    try {
      assert.equal((await readIds(log)).length, COUNT);
      assert.equal(fs.statSync(segmentPath(lastStart)).size, log.maxOffset - lastStart);
    } finally {
      await log.close();
    }
  });
});
