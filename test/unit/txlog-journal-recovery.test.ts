import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { StoreCorruptError } from '../../src/common/errors.js';
import type { JournalPosition } from '../../src/transaction/log/journal-position.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { captureLogger, collect, flipByte, makeJournalFixture, payload, type JournalFixture } from '../helpers/txlog-fixtures.js';

let fx: JournalFixture;
beforeEach(async () => {
  fx = await makeJournalFixture();
});
afterEach(async () => {
  await fx.cleanup();
});

const RECORD = FRAME_HEADER_SIZE + 50;
const SMALL_FILE = 256; // 4 records per file

/** Writes `count` records (payload i = record i), closes, and returns their positions. */
async function writeRecords(count: number, maxFileSize = 1 << 20): Promise<JournalPosition[]> {
  const journal = await fx.open({ maxFileSize });
  const positions: JournalPosition[] = [];
  for (let i = 0; i < count; i++) positions.push(await journal.append(1, payload(i), 'sync'));
  await journal.close();
  return positions;
}

async function reopenAndReplay(maxFileSize = 1 << 20): Promise<{ ids: number[]; truncated: number; lines: Record<string, unknown>[]; end: JournalPosition }> {
  const { logger, lines } = captureLogger();
  const journal = await fx.open({ maxFileSize, logger });
  const ids = (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0));
  return { ids, truncated: journal.truncatedBytesAtOpen, lines, end: journal.endPosition };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('txlog journal recovery', () => {
  it('cuts a file torn in the middle of a record back to the record before it', async () => {
    await writeRecords(10);
    const path = fx.file(1);
    fs.truncateSync(path, 7 * RECORD + 20);
    const { ids, truncated, lines, end } = await reopenAndReplay();
    assert.deepEqual(ids, range(7));
    assert.equal(truncated, 20);
    assert.equal(fs.statSync(path).size, 7 * RECORD);
    assert.deepEqual(end, { file: 1, offset: 7 * RECORD });
    const warning = lines.find((l) => l['level'] === 40);
    assert.ok(warning !== undefined, 'a warning is logged');
    assert.equal(warning['truncatedBytes'], 20);
    assert.match(String(warning['msg']), /truncating 20 bytes/);
  });

  it('cuts a file torn inside a record header', async () => {
    await writeRecords(5);
    // 7 bytes: the length and part of the CRC (a tail of zeros alone would be preallocated space).
    fs.truncateSync(fx.file(1), 4 * RECORD + 7);
    const { ids, truncated } = await reopenAndReplay();
    assert.deepEqual(ids, range(4));
    assert.equal(truncated, 7);
  });

  it('cuts at exactly the record whose bytes were flipped, dropping everything after it', async () => {
    for (const where of ['payload', 'crc', 'length'] as const) {
      await fx.cleanup();
      fx = await makeJournalFixture();
      const positions = await writeRecords(10);
      const damaged = positions[5] as JournalPosition;
      const at = damaged.offset + (where === 'payload' ? FRAME_HEADER_SIZE + 17 : where === 'crc' ? 5 : 1);
      flipByte(fx.file(1), at);
      const { ids, truncated, end } = await reopenAndReplay();
      assert.deepEqual(ids, range(5), `flipped ${where}`);
      assert.equal(truncated, 5 * RECORD, `flipped ${where}`);
      assert.deepEqual(end, damaged);
    }
  });

  it('keeps a zero-filled tail as preallocated space: nothing reported cut, and appends overwrite it', async () => {
    const positions = await writeRecords(3);
    fs.appendFileSync(fx.file(1), Buffer.alloc(4096));
    const journal = await fx.open({ preallocateBytes: 0 });
    assert.equal(journal.truncatedBytesAtOpen, 0);
    assert.deepEqual(
      (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0)),
      range(3),
    );
    const next = await journal.append(2, payload(100), 'sync');
    assert.deepEqual(next, { file: 1, offset: (positions[2]?.offset ?? 0) + RECORD });
    assert.equal(fs.statSync(fx.file(1)).size, 3 * RECORD + 4096, 'the record overwrote the zeros instead of growing the file');
    assert.deepEqual(
      (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0)),
      [0, 1, 2, 100],
    );
  });

  it('cuts a zero-filled tail that follows a torn record (zeros are space only right after the last whole record)', async () => {
    await writeRecords(3);
    fs.truncateSync(fx.file(1), 2 * RECORD + 7);
    fs.appendFileSync(fx.file(1), Buffer.alloc(100));
    const { ids, truncated } = await reopenAndReplay();
    assert.deepEqual(ids, range(2));
    assert.equal(truncated, 107);
  });

  it('appends after a truncated tail land where the torn record was', async () => {
    const positions = await writeRecords(4);
    fs.truncateSync(fx.file(1), 3 * RECORD + 10);
    const journal = await fx.open();
    assert.deepEqual(await journal.append(2, payload(100), 'sync'), positions[3]);
    assert.deepEqual(
      (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0)),
      [0, 1, 2, 100],
    );
  });

  it('only touches the newest file: a torn tail there is cut even with older files present', async () => {
    await writeRecords(10, SMALL_FILE); // files 1, 2 full, file 3 holds 2 records
    fs.truncateSync(fx.file(3), RECORD + 7);
    const { ids, truncated } = await reopenAndReplay(SMALL_FILE);
    assert.deepEqual(ids, range(9));
    assert.equal(truncated, 7);
    assert.equal(fs.statSync(fx.file(1)).size, 4 * RECORD);
  });

  it('refuses to open when an older file is corrupt in the middle, naming the file and changing nothing', async () => {
    await writeRecords(10, SMALL_FILE);
    const sizes = [1, 2, 3].map((s) => fs.statSync(fx.file(s)).size);
    flipByte(fx.file(1), RECORD + FRAME_HEADER_SIZE + 3);
    await assert.rejects(fx.open({ maxFileSize: SMALL_FILE }), (e: unknown) => {
      assert.ok(e instanceof StoreCorruptError);
      assert.ok(e.message.includes(fx.file(1)), e.message);
      assert.match(e.message, new RegExp(`corrupt at byte ${RECORD} of ${4 * RECORD} \\(bad-checksum\\) after 1 valid records`));
      return true;
    });
    assert.deepEqual(
      [1, 2, 3].map((s) => fs.statSync(fx.file(s)).size),
      sizes,
    );
  });

  it('refuses to open when an older file lost its tail (older files are synced before the roll)', async () => {
    await writeRecords(10, SMALL_FILE);
    fs.truncateSync(fx.file(2), 3 * RECORD + 5);
    await assert.rejects(fx.open({ maxFileSize: SMALL_FILE }), (e: unknown) => e instanceof StoreCorruptError && e.message.includes(fx.file(2)));
  });

  it('refuses to open when a journal file in the middle is missing', async () => {
    await writeRecords(10, SMALL_FILE);
    fs.rmSync(fx.file(2));
    await assert.rejects(
      fx.open({ maxFileSize: SMALL_FILE }),
      (e: unknown) => e instanceof StoreCorruptError && /missing txlog-00000000000000000002\.log/.test(e.message),
    );
  });

  it('ignores files that are not journal files', async () => {
    await writeRecords(2);
    fs.writeFileSync(`${fx.dir}/notes.txt`, 'hello');
    fs.writeFileSync(`${fx.dir}/txlog-7.log`, 'not a 20-digit name');
    const { ids } = await reopenAndReplay();
    assert.deepEqual(ids, range(2));
  });
});
