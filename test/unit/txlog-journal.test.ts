import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { InvalidArgumentError, StoreClosedError, StoreCorruptError } from '../../src/common/errors.js';
import { compareJournalPositions, type JournalPosition } from '../../src/transaction/log/journal-position.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, type JournalFixture, journalFixturePerTest, payload } from '../helpers/txlog-fixtures.js';

const fx = journalFixturePerTest();

/** 50-byte payloads make 59-byte records: 4 fit in a 256-byte file, the 5th rolls. */
const RECORD = FRAME_HEADER_SIZE + 50;
const SMALL_FILE = 256;

function journalFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('txlog-'))
    .sort();
}

describe('txlog journal: appends, replay, files', () => {
  it('creates the missing directory and the first file txlog-00000000000000000001.log', async () => {
    const journal = await fx.open();
    assert.deepEqual(journalFiles(fx.dir), ['txlog-00000000000000000001.log']);
    assert.deepEqual(journal.endPosition, { file: 1, offset: 0 });
    assert.equal(journal.fileCount, 1);
  });

  it('returns ordered positions and replays types and payloads exactly', async () => {
    const journal = await fx.open();
    const p0 = await journal.append(1, payload(0, 10), 'none');
    const p1 = await journal.append(2, payload(1, 0), 'sync');
    const p2 = await journal.append(255, payload(2, 30), 'deferred');
    assert.deepEqual([p0, p1, p2], [
      { file: 1, offset: 0 },
      { file: 1, offset: FRAME_HEADER_SIZE + 10 },
      { file: 1, offset: 2 * FRAME_HEADER_SIZE + 10 },
    ]);
    assert.equal(journal.bytesWritten, 3 * FRAME_HEADER_SIZE + 40);
    assert.equal(journal.appendCount, 3);
    const records = await collect(journal.readFrom(undefined));
    assert.deepEqual(
      records.map((r) => [r.position, r.type, r.payload]),
      [
        [p0, 1, payload(0, 10)],
        [p1, 2, payload(1, 0)],
        [p2, 255, payload(2, 30)],
      ],
    );
  });

  it('keeps concurrent appends in call order, with strictly increasing positions, across rolls', async () => {
    const journal = await fx.open({ maxFileSize: SMALL_FILE });
    const durabilities = ['none', 'sync', 'deferred'] as const;
    const positions = await Promise.all(
      Array.from({ length: 60 }, (_, i) => journal.append(i % 7, payload(i), durabilities[i % 3] ?? 'none')),
    );
    for (let i = 1; i < positions.length; i++) {
      const [a, b] = [positions[i - 1], positions[i]] as [JournalPosition, JournalPosition];
      assert.ok(compareJournalPositions(a, b) < 0, `position ${i - 1} before ${i}`);
    }
    const records = await collect(journal.readFrom(undefined));
    assert.deepEqual(
      records.map((r) => r.payload.readUInt32BE(0)),
      Array.from({ length: 60 }, (_, i) => i),
    );
    assert.deepEqual(
      records.map((r) => r.position),
      positions,
    );
  });

  it('rolls to a new file before a record that does not fit, and readFrom spans the files', async () => {
    const journal = await fx.open({ maxFileSize: SMALL_FILE });
    const positions: JournalPosition[] = [];
    for (let i = 0; i < 18; i++) positions.push(await journal.append(1, payload(i), 'none'));
    // 4 records per file: files 1..4 full, file 5 holds 2.
    assert.deepEqual(journalFiles(fx.dir).length, 5);
    assert.equal(journal.fileCount, 5);
    for (const name of journalFiles(fx.dir).slice(0, -1)) assert.equal(fs.statSync(`${fx.dir}/${name}`).size, 4 * RECORD);
    assert.deepEqual(positions[4], { file: 2, offset: 0 });
    assert.deepEqual(positions[17], { file: 5, offset: RECORD });

    const fromSixth = await collect(journal.readFrom(positions[6]));
    assert.deepEqual(
      fromSixth.map((r) => r.payload.readUInt32BE(0)),
      Array.from({ length: 12 }, (_, i) => i + 6),
    );
    // The end of a full file is a valid start: replay continues with the next file.
    const fromEndOfFile2 = await collect(journal.readFrom({ file: 2, offset: 4 * RECORD }));
    assert.equal(fromEndOfFile2[0]?.payload.readUInt32BE(0), 8);
    // The journal end replays nothing.
    assert.deepEqual(await collect(journal.readFrom(journal.endPosition)), []);
  });

  it('gives a record larger than maxFileSize a file of its own', async () => {
    const journal = await fx.open({ maxFileSize: SMALL_FILE });
    await journal.append(1, payload(0), 'none');
    const big = await journal.append(2, payload(1, 1000), 'none');
    const after = await journal.append(3, payload(2), 'none');
    assert.deepEqual(big, { file: 2, offset: 0 });
    assert.deepEqual(after, { file: 3, offset: 0 });
    const records = await collect(journal.readFrom(undefined));
    assert.deepEqual(
      records.map((r) => r.payload.length),
      [50, 1000, 50],
    );
  });

  it('replays records appended while the iteration runs', async () => {
    const journal = await fx.open({ maxFileSize: SMALL_FILE });
    for (let i = 0; i < 3; i++) await journal.append(1, payload(i), 'none');
    const seen: number[] = [];
    for await (const record of journal.readFrom(undefined)) {
      const i = record.payload.readUInt32BE(0);
      seen.push(i);
      if (i < 8) await journal.append(1, payload(i + 3), 'none');
    }
    assert.deepEqual(seen, Array.from({ length: 11 }, (_, i) => i));
  });

  it('close() then open() keeps every record and appends continue after them', async () => {
    let journal = await fx.open({ maxFileSize: SMALL_FILE });
    for (let i = 0; i < 10; i++) await journal.append(i, payload(i), i % 2 === 0 ? 'none' : 'deferred');
    const end = journal.endPosition;
    await journal.close();

    journal = await fx.open({ maxFileSize: SMALL_FILE });
    assert.equal(journal.truncatedBytesAtOpen, 0);
    assert.deepEqual(journal.endPosition, end);
    const next = await journal.append(99, payload(10), 'sync');
    assert.deepEqual(next, end);
    const records = await collect(journal.readFrom(undefined));
    assert.deepEqual(
      records.map((r) => [r.type, r.payload.readUInt32BE(0)]),
      [...Array.from({ length: 10 }, (_, i) => [i, i]), [99, 10]],
    );
  });

  it('deleteFilesBefore removes whole earlier files only, keeping the position file and the current one', async () => {
    const journal = await fx.open({ maxFileSize: SMALL_FILE });
    const positions: JournalPosition[] = [];
    for (let i = 0; i < 18; i++) positions.push(await journal.append(1, payload(i), 'none'));
    const checkpoint = positions[9] as JournalPosition; // file 3, offset 59
    assert.deepEqual(checkpoint, { file: 3, offset: RECORD });

    assert.equal(await journal.deleteFilesBefore(checkpoint), 2);
    assert.deepEqual(journalFiles(fx.dir), [3, 4, 5].map((s) => `txlog-${String(s).padStart(20, '0')}.log`));
    assert.equal(journal.fileCount, 3);
    const replay = await collect(journal.readFrom(checkpoint));
    assert.equal(replay[0]?.payload.readUInt32BE(0), 9);
    assert.equal(replay.length, 9);

    // Replaying from before the retained files, or from the beginning, would silently lose records.
    await assert.rejects(collect(journal.readFrom({ file: 2, offset: 0 })), (e: unknown) => e instanceof StoreCorruptError && /already deleted/.test(e.message));
    await assert.rejects(collect(journal.readFrom(undefined)), (e: unknown) => e instanceof StoreCorruptError && /starts at txlog-0+3\.log/.test(e.message));

    // A position past everything deletes all but the current file.
    assert.equal(await journal.deleteFilesBefore({ file: 1000, offset: 0 }), 2);
    assert.deepEqual(journalFiles(fx.dir), ['txlog-00000000000000000005.log']);
    assert.equal(await journal.deleteFilesBefore({ file: 1000, offset: 0 }), 0);
    await journal.append(1, payload(18), 'sync');

    // What remains reopens fine: the deletions left no gap.
    await journal.close();
    const reopened = await fx.open({ maxFileSize: SMALL_FILE });
    const rest = await collect(reopened.readFrom({ file: 5, offset: 0 }));
    assert.deepEqual(
      rest.map((r) => r.payload.readUInt32BE(0)),
      [16, 17, 18],
    );
  });

  it('rejects bad arguments, positions past the end and use after close', async () => {
    const journal = await fx.open();
    await journal.append(1, payload(0), 'none');
    await assert.rejects(journal.append(256, payload(0), 'none'), InvalidArgumentError);
    await assert.rejects(journal.append(-1, payload(0), 'none'), InvalidArgumentError);
    await assert.rejects(journal.append(1, payload(0), 'fast' as 'none'), InvalidArgumentError);
    await assert.rejects(collect(journal.readFrom({ file: 1, offset: RECORD + 1 })), InvalidArgumentError);
    await assert.rejects(collect(journal.readFrom({ file: 2, offset: 0 })), InvalidArgumentError);
    await assert.rejects(collect(journal.readFrom({ file: -1, offset: 0 })), InvalidArgumentError);
    await assert.rejects(collect(journal.readFrom({ file: 1, offset: 3 })), (e: unknown) => e instanceof StoreCorruptError && /start of a record/.test(e.message));
    await assert.rejects(fx.open({ maxFileSize: 0 }), InvalidArgumentError);
    await assert.rejects(fx.open({ deferredSyncIntervalMs: 0 }), InvalidArgumentError);
    await journal.close();
    await assert.rejects(journal.append(1, payload(1), 'none'), StoreClosedError);
    await assert.rejects(journal.sync(), StoreClosedError);
    await journal.close(); // idempotent
  });
});
