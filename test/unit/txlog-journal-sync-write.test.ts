/**
 * A record that asks for no fsync is written at once, on the calling thread, when the journal's
 * writer is idle (tx-journal.ts, "Why a synchronous write"); otherwise it goes through the writer
 * so that records stay in call order. These tests watch the calls through the I/O seam (with the
 * real calls behind it), the bytes in the file right after `append()` returns, and a failing
 * synchronous write (the METAQ_FAULT seam included).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { StoreIoError } from '../../src/common/errors.js';
import { fdatasync, writevAll, writevAllSync } from '../../src/store/file-io.js';
import { faultyJournalIo } from '../../src/transaction/log/journal-faults.js';
import { defaultJournalIo, journalIoWith, type JournalIo } from '../../src/transaction/log/journal-io.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, type JournalFixture, journalFixturePerTest, payload } from '../helpers/txlog-fixtures.js';

const fx = journalFixturePerTest();

const RECORD = FRAME_HEADER_SIZE + 50;
const CHUNK = 64 * 1024;

/** The real I/O with the synchronous write, recording the name of every call. */
function recordingIo(): { io: JournalIo; take: () => string[] } {
  const calls: string[] = [];
  return {
    take: () => calls.splice(0),
    io: {
      writev: (fd, buffers, position) => {
        calls.push('writev');
        return writevAll(fd, buffers, position);
      },
      fdatasync: (fd) => {
        calls.push('fdatasync');
        return fdatasync(fd);
      },
      writevDurable: (fd, buffers, position) => {
        calls.push('writevDurable');
        return writevAll(fd, buffers, position);
      },
      writevSync: (fd, buffers, position) => {
        calls.push('writevSync');
        writevAllSync(fd, buffers, position);
      },
    },
  };
}

/** Lets the writer finish its loop (it resolves an append before it goes idle). */
const idle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const ids = async (journal: TxJournal): Promise<number[]> => (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0));

/** The record at `offset` of journal file 1, as `payload()` made it (its first u32), read from the file. */
function idInFile(path: string, offset: number): number {
  return fs.readFileSync(path).readUInt32BE(offset + FRAME_HEADER_SIZE);
}

describe('txlog journal: synchronous writes of unforced records', () => {
  it('the real I/O has the synchronous write; an override without one never uses it', () => {
    assert.equal(defaultJournalIo.writevSync, writevAllSync);
    assert.equal(journalIoWith({ writev: writevAll }).writevSync, undefined, 'a test replacing writev sees every write go through it');
  });

  it("an idle journal writes a 'deferred' record, or a 'none' one behind unsynced bytes, before append() returns; 'sync' records still go through the writer", async () => {
    const rec = recordingIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync'); // preallocates: the writer's job
    assert.deepEqual(rec.take(), ['writev', 'writev', 'fdatasync']);
    await idle();
    const deferred = journal.append(1, payload(1), 'deferred');
    assert.equal(journal.appendCount, 2, 'counted before append() returned');
    assert.equal(idInFile(fx.file(1), RECORD), 1, 'the record is in the file before append() returned');
    assert.deepEqual(await deferred, { file: 1, offset: RECORD });
    const none = journal.append(1, payload(2), 'none');
    assert.equal(idInFile(fx.file(1), 2 * RECORD), 2);
    assert.deepEqual(await none, { file: 1, offset: 2 * RECORD });
    assert.deepEqual(rec.take(), ['writevSync', 'writevSync'], 'no thread-pool write, no sync');
    assert.deepEqual(journal.durablePosition, { file: 1, offset: RECORD }, 'unforced records are not durable yet');
    // A forced record after them: the plain write + fdatasync (the O_DSYNC write would not cover the earlier bytes).
    await journal.append(1, payload(3), 'sync');
    assert.deepEqual(rec.take(), ['writev', 'fdatasync']);
    assert.deepEqual(journal.durablePosition, { file: 1, offset: 4 * RECORD });
    assert.deepEqual(await ids(journal), [0, 1, 2, 3]);
  });

  it("a 'none' record on a journal entirely on disk goes through the writer, so that it shares the next forced batch's O_DSYNC write", async () => {
    const rec = recordingIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync');
    rec.take();
    await idle();
    // An APPLIED record and the next COMMIT in one turn of the event loop: one durable write.
    await Promise.all([journal.append(1, payload(1), 'none'), journal.append(1, payload(2), 'sync')]);
    assert.deepEqual(rec.take(), ['writevDurable']);
    await idle();
    // Alone, it is written by the writer (not synchronously) and leaves the journal unsynced.
    await journal.append(1, payload(3), 'none');
    assert.deepEqual(rec.take(), ['writev']);
    assert.deepEqual(await ids(journal), [0, 1, 2, 3]);
  });

  it('a deferred record written synchronously is still fsynced by the timer', async () => {
    const rec = recordingIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io, deferredSyncIntervalMs: 20 });
    await journal.append(1, payload(0), 'sync');
    rec.take();
    await idle();
    await journal.append(1, payload(1), 'deferred');
    assert.deepEqual(rec.take(), ['writevSync']);
    const deadline = Date.now() + 5000;
    while (journal.durablePosition.offset < 2 * RECORD && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(rec.take(), ['fdatasync'], 'the deferred fsync came from the timer');
    assert.deepEqual(journal.durablePosition, { file: 1, offset: 2 * RECORD });
  });

  it('while the writer is busy, unforced records queue behind it: the file keeps call order', async () => {
    const rec = recordingIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync');
    rec.take();
    const appends = [journal.append(1, payload(1), 'sync'), journal.append(1, payload(2), 'none'), journal.append(1, payload(3), 'deferred')];
    await Promise.all(appends);
    assert.ok(!rec.take().includes('writevSync'), 'nothing jumps the queued forced record');
    assert.deepEqual((await Promise.all(appends)).map((p) => p.offset), [RECORD, 2 * RECORD, 3 * RECORD]);
    assert.deepEqual(await ids(journal), [0, 1, 2, 3]);
  });

  it('a record that needs more preallocated space, or a new file, goes through the writer', async () => {
    const rec = recordingIo();
    const journal = await fx.open({ preallocateBytes: 2 * RECORD, maxFileSize: 6 * RECORD, io: rec.io });
    await journal.append(1, payload(0), 'none'); // nothing preallocated yet: zeros up to 3 records
    assert.deepEqual(rec.take(), ['writev', 'writev'], 'zeros, then the record');
    await idle();
    await journal.append(1, payload(1), 'none'); // fits the zeros
    await journal.append(1, payload(2), 'none'); // fills them exactly
    assert.deepEqual(rec.take(), ['writevSync', 'writevSync']);
    await journal.append(1, payload(3), 'none'); // past the zeros: zeros up to the file's end
    assert.deepEqual(rec.take(), ['writev', 'writev']);
    await idle();
    await journal.append(1, payload(4), 'none');
    assert.deepEqual(rec.take(), ['writevSync']);
    await journal.append(1, payload(5), 'none'); // fills the file: the writer writes it and rolls
    assert.equal(rec.take()[0], 'writev');
    assert.deepEqual(await journal.append(1, payload(6), 'none'), { file: 2, offset: 0 });
    assert.equal(journal.fileCount, 2);
    assert.deepEqual(await ids(journal), [0, 1, 2, 3, 4, 5, 6]);
  });

  it('a failing synchronous write fails the journal for good; reopening cuts the torn record and keeps the earlier ones', async () => {
    // Armed calls: the zeros and the first record (2 writes), then the synchronous write is cut short.
    const faulty = faultyJournalIo(defaultJournalIo, { point: 'txlog.write', after: 2, errno: 'ENOSPC', once: true }, { report: () => undefined });
    const faultySync = faulty.writevSync;
    assert.ok(faultySync !== undefined && faultySync !== defaultJournalIo.writevSync, 'the fault wraps the synchronous write too');
    let syncWrites = 0;
    const journal = await fx.open({
      preallocateBytes: CHUNK,
      io: {
        ...faulty,
        writevSync: (fd, buffers, position) => {
          syncWrites += 1;
          faultySync(fd, buffers, position);
        },
      },
    });
    await journal.append(1, payload(0), 'sync');
    await idle();
    const failed = await journal.append(1, payload(1, 400), 'deferred').then(
      () => assert.fail('the append must reject'),
      (error: unknown) => error,
    );
    assert.ok(failed instanceof StoreIoError);
    assert.match(failed.message, /writing to transaction journal file .* failed; .*restarted.*: ENOSPC: no space left on device, write$/);
    assert.equal(journal.failure, failed);
    assert.equal(syncWrites, 1, 'the failing write was the synchronous one');
    await assert.rejects(journal.append(1, payload(2), 'none'), (error: unknown) => error === failed, 'although the disk works again');
    await assert.rejects(journal.append(1, payload(3), 'sync'), (error: unknown) => error === failed);
    await journal.close();
    const reopened = await TxJournal.open(fx.dir);
    try {
      assert.ok(reopened.truncatedBytesAtOpen > 0, 'the half-written record is cut at open');
      assert.deepEqual(await ids(reopened), [0]);
    } finally {
      await reopened.close();
    }
  });
});
