/**
 * The journal writes zeros ahead of its records so that fdatasync rarely has file metadata to
 * write (tx-journal.ts, "Why preallocate"). These tests check that the zeros never change what
 * the journal holds: across appends, a crash (a copy of the directory taken while open), rolls,
 * a clean close, and a failing preallocation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { StoreIoError } from '../../src/common/errors.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { journalFileName } from '../../src/transaction/log/tx-file-names.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, type JournalFixture, journalFixturePerTest, payload } from '../helpers/txlog-fixtures.js';

const fx = journalFixturePerTest();

const RECORD = FRAME_HEADER_SIZE + 50;
const CHUNK = 64 * 1024;

const ids = async (journal: TxJournal): Promise<number[]> => (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('txlog journal preallocation', () => {
  it('grows the file a chunk at a time; the records overwrite the zeros', async () => {
    const journal = await fx.open({ preallocateBytes: CHUNK });
    await journal.append(1, payload(0), 'sync');
    assert.equal(fs.statSync(fx.file(1)).size, RECORD + CHUNK, 'one record and one chunk of zeros ahead of it');
    for (let i = 1; i < 100; i++) await journal.append(1, payload(i), 'sync');
    assert.equal(fs.statSync(fx.file(1)).size, RECORD + CHUNK, '100 records fit in the preallocated chunk');
    assert.deepEqual(journal.endPosition, { file: 1, offset: 100 * RECORD });
    assert.deepEqual(await ids(journal), range(100));
    const tail = fs.readFileSync(fx.file(1)).subarray(100 * RECORD);
    assert.ok(tail.every((b) => b === 0), 'the space after the records is zeros');
  });

  it('after a crash (the directory copied while the journal is open) the zero tail is not damage: nothing cut, appends continue after the last record', async () => {
    const journal = await fx.open({ preallocateBytes: CHUNK });
    for (let i = 0; i < 10; i++) await journal.append(1, payload(i), 'sync');
    const copy = join(fx.dir, '..', 'crashed');
    fs.cpSync(fx.dir, copy, { recursive: true });
    assert.ok(fs.statSync(join(copy, journalFileName(1))).size > 10 * RECORD, 'the copy holds the zero tail');

    const reopened = await TxJournal.open(copy, { preallocateBytes: CHUNK });
    try {
      assert.equal(reopened.truncatedBytesAtOpen, 0);
      assert.deepEqual(await ids(reopened), range(10));
      assert.deepEqual(await reopened.append(1, payload(10), 'sync'), { file: 1, offset: 10 * RECORD });
      assert.deepEqual(await ids(reopened), range(11));
    } finally {
      await reopened.close();
    }
    assert.equal(fs.statSync(join(copy, journalFileName(1))).size, 11 * RECORD, 'a clean close cuts the zeros off');
  });

  it('never preallocates past maxFileSize, and a sealed file holds exactly its records', async () => {
    const maxFileSize = 10 * RECORD;
    const journal = await fx.open({ preallocateBytes: CHUNK, maxFileSize });
    await journal.append(1, payload(0), 'sync');
    assert.equal(fs.statSync(fx.file(1)).size, maxFileSize, 'capped at maxFileSize');
    for (let i = 1; i < 25; i++) await journal.append(1, payload(i), 'sync');
    assert.equal(journal.fileCount, 3);
    assert.equal(fs.statSync(fx.file(1)).size, 10 * RECORD);
    assert.equal(fs.statSync(fx.file(2)).size, 10 * RECORD);
    assert.deepEqual(await ids(journal), range(25));
    await journal.close();

    const reopened = await fx.open({ preallocateBytes: CHUNK, maxFileSize });
    assert.equal(reopened.truncatedBytesAtOpen, 0);
    assert.deepEqual(await ids(reopened), range(25));
  });

  it('a failing preallocation fails the journal with a clear error; a restart finds the earlier records', async () => {
    let failNext = false;
    const journal = await fx.open({
      preallocateBytes: RECORD, // every second append needs more space
      io: {
        writev: async (fd, buffers, position) => {
          if (failNext && buffers.every((b) => b.every((byte) => byte === 0))) {
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          }
          const { writevAll } = await import('../../src/store/file-io.js');
          await writevAll(fd, buffers, position);
        },
      },
    });
    await journal.append(1, payload(0), 'sync');
    await journal.append(1, payload(1), 'sync');
    failNext = true;
    const error = await journal.append(1, payload(2), 'sync').then(
      () => assert.fail('the append needing new space must fail'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof StoreIoError && /preallocating transaction journal file .*restart/.test(error.message), String(error));
    await assert.rejects(journal.append(1, payload(3), 'none'), StoreIoError);
    await journal.close();
    const reopened = await fx.open();
    assert.deepEqual(await ids(reopened), range(2));
  });

  it('preallocateBytes 0 turns it off: the file is exactly its records', async () => {
    const journal = await fx.open({ preallocateBytes: 0 });
    for (let i = 0; i < 5; i++) await journal.append(1, payload(i), 'sync');
    assert.equal(fs.statSync(fx.file(1)).size, 5 * RECORD);
  });

  it('refuses a bad preallocateBytes', async () => {
    await assert.rejects(fx.open({ preallocateBytes: -1 }), /preallocateBytes must be a non-negative integer/);
  });
});
