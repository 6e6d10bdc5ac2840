/**
 * The journal's forced batches go out as ONE write on an O_DSYNC descriptor of the file when
 * everything before them is already durable (tx-journal.ts, "Why O_DSYNC"), and as write +
 * fdatasync otherwise. These tests watch which calls the journal makes (through the I/O seam,
 * with the real calls behind it), that unforced appends never pay a sync, and that a failed
 * durable write fails the journal like a failed fdatasync (the METAQ_FAULT seam included).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { StoreIoError } from '../../src/common/errors.js';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import { faultyJournalIo } from '../../src/transaction/log/journal-faults.js';
import { defaultJournalIo, journalIoWith, type JournalIo } from '../../src/transaction/log/journal-io.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, type JournalFixture, journalFixturePerTest, payload } from '../helpers/txlog-fixtures.js';
import { waitFor } from '../helpers/wait-for.js';

const fx = journalFixturePerTest();

const RECORD = FRAME_HEADER_SIZE + 50;
const CHUNK = 64 * 1024;

/** Whether `fd` was opened with O_DSYNC (Linux: the octal `flags` of /proc/self/fdinfo). */
function isDsync(fd: number): boolean {
  const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
  const flags = /^flags:\s+([0-7]+)$/m.exec(info)?.[1];
  assert.ok(flags !== undefined, info);
  return (parseInt(flags, 8) & fs.constants.O_DSYNC) === fs.constants.O_DSYNC;
}

/** The real I/O (with the durable write), recording the name of every call. */
function recordingRealIo(): { io: JournalIo; calls: string[]; take: () => string[] } {
  const calls: string[] = [];
  return {
    calls,
    take: () => calls.splice(0),
    io: {
      writev: (fd, buffers, position) => {
        calls.push('writev');
        assert.ok(!isDsync(fd), 'plain writes use the plain descriptor');
        return writevAll(fd, buffers, position);
      },
      fdatasync: (fd) => {
        calls.push('fdatasync');
        return fdatasync(fd);
      },
      writevDurable: (fd, buffers, position) => {
        calls.push('writevDurable');
        assert.ok(isDsync(fd), `descriptor ${fd} is opened with O_DSYNC`);
        return writevAll(fd, buffers, position);
      },
    },
  };
}

const ids = async (journal: TxJournal): Promise<number[]> => (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0));

describe('txlog journal: forced batches written with O_DSYNC', () => {
  it('the real I/O has the durable write; an override without one never uses it', () => {
    assert.equal(defaultJournalIo.writevDurable, writevAll, 'without METAQ_FAULT: the real write, on the O_DSYNC descriptor');
    assert.equal(journalIoWith(undefined), defaultJournalIo);
    const onlySync = journalIoWith({ fdatasync: () => Promise.resolve() });
    assert.equal(onlySync.writevDurable, undefined, 'a test replacing fdatasync sees every sync go through it');
    assert.equal(onlySync.writev, defaultJournalIo.writev);
  });

  it('after the first (preallocating) batch, a forced append is one durable write: no fdatasync', async () => {
    const rec = recordingRealIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync');
    assert.deepEqual(rec.take(), ['writev', 'writev', 'fdatasync'], 'zeros, record, then one fdatasync covering the zeros and the new size');
    assert.equal(journal.syncCount, 1);
    for (let i = 1; i < 5; i++) await journal.append(1, payload(i), 'sync');
    assert.deepEqual(rec.take(), ['writevDurable', 'writevDurable', 'writevDurable', 'writevDurable']);
    assert.equal(journal.syncCount, 5, 'a durable write counts as a sync');
    assert.deepEqual(journal.durablePosition, journal.endPosition);
    assert.ok(journal.lastSyncLatencyMs !== undefined && journal.lastSyncLatencyMs >= 0);
    assert.deepEqual(await ids(journal), [0, 1, 2, 3, 4]);
  });

  it('a forced append after unsynced ones uses write + fdatasync (the durable write syncs only its own bytes)', async () => {
    const rec = recordingRealIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync');
    rec.take();
    await journal.append(1, payload(1), 'none');
    assert.deepEqual(rec.take(), ['writev'], "a 'none' append pays no sync");
    await journal.append(1, payload(2), 'sync');
    assert.deepEqual(rec.take(), ['writev', 'fdatasync'], 'the earlier record is not durable yet: the fdatasync covers it');
    await journal.append(1, payload(3), 'sync');
    assert.deepEqual(rec.take(), ['writevDurable']);
    // An unforced and a forced append in one batch: one durable write for both.
    await Promise.all([journal.append(1, payload(4), 'none'), journal.append(1, payload(5), 'sync')]);
    assert.deepEqual(rec.take(), ['writevDurable']);
    assert.deepEqual(journal.durablePosition, { file: 1, offset: 6 * RECORD });
    assert.deepEqual(await ids(journal), [0, 1, 2, 3, 4, 5]);
  });

  it("'none' and 'deferred' appends never use the durable write; the deferred fdatasync comes from the timer", async () => {
    const rec = recordingRealIo();
    // Why 300 ms: the five appends must all be written before the timer armed by the second one
    // fires, also on a loaded machine; then the test waits for that fdatasync, however slow the disk.
    const journal = await fx.open({ preallocateBytes: CHUNK, deferredSyncIntervalMs: 300, io: rec.io });
    for (let i = 0; i < 5; i++) await journal.append(1, payload(i), i % 2 === 0 ? 'none' : 'deferred');
    assert.deepEqual(rec.take(), ['writev', 'writev', 'writev', 'writev', 'writev', 'writev'], 'the zeros, then one plain write per append');
    await waitFor(() => journal.durablePosition.offset === journal.endPosition.offset, { timeoutMs: 10_000, intervalMs: 10, what: 'the deferred fdatasync' });
    assert.deepEqual(rec.take(), ['fdatasync']);
    assert.deepEqual(journal.durablePosition, journal.endPosition);
  });

  it('a barrier (sync()) with nothing unsynced writes nothing; after unsynced appends it fdatasyncs', async () => {
    const rec = recordingRealIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: rec.io });
    await journal.append(1, payload(0), 'sync');
    rec.take();
    await journal.sync();
    assert.deepEqual(rec.take(), []);
    await journal.append(1, payload(1), 'none');
    await journal.sync();
    assert.deepEqual(rec.take(), ['writev', 'fdatasync']);
  });

  it('keeps using the durable write across a roll (a new O_DSYNC descriptor for the new file), and a reopened journal too', async () => {
    const rec = recordingRealIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, maxFileSize: 5 * RECORD, io: rec.io });
    for (let i = 0; i < 12; i++) await journal.append(1, payload(i), 'sync');
    assert.equal(journal.fileCount, 3);
    assert.ok(rec.calls.filter((c) => c === 'writevDurable').length >= 6, `durable writes in every file: ${rec.calls.join(',')}`);
    assert.deepEqual(await ids(journal), Array.from({ length: 12 }, (_, i) => i));
    await journal.close();
    assert.equal(fs.statSync(fx.file(3)).size, 2 * RECORD, 'a clean close still cuts the zeros off');

    const again = recordingRealIo();
    const reopened = await fx.open({ preallocateBytes: CHUNK, maxFileSize: 5 * RECORD, io: again.io });
    await reopened.append(1, payload(12), 'sync');
    await reopened.append(1, payload(13), 'sync');
    assert.deepEqual(again.take(), ['writev', 'writev', 'fdatasync', 'writevDurable']);
    assert.deepEqual(await ids(reopened), Array.from({ length: 14 }, (_, i) => i));
  });

  it('without preallocation the durable write is used too (it makes the new size durable, as fdatasync does)', async () => {
    const rec = recordingRealIo();
    const journal = await fx.open({ preallocateBytes: 0, io: rec.io });
    for (let i = 0; i < 3; i++) await journal.append(1, payload(i), 'sync');
    assert.deepEqual(rec.take(), ['writevDurable', 'writevDurable', 'writevDurable']);
    assert.equal(fs.statSync(fx.file(1)).size, 3 * RECORD);
  });

  it('an injected fdatasync fault on a durable write fails the journal for good (fail-stop); the record is in the file', async () => {
    const faulty = faultyJournalIo(defaultJournalIo, { point: 'txlog.fdatasync', after: 1, errno: 'EIO', once: true }, { report: () => undefined });
    const journal = await fx.open({ preallocateBytes: CHUNK, io: faulty });
    await journal.append(1, payload(0), 'sync'); // preallocating: write + fdatasync (armed call 1)
    const failed = await journal.append(1, payload(1), 'sync').then(
      () => assert.fail('the append must reject'),
      (error: unknown) => error,
    );
    assert.ok(failed instanceof StoreIoError);
    assert.match(failed.message, /writing to transaction journal file .* with O_DSYNC \(write and fdatasync in one call\) failed; .*restarted.*: EIO: i\/o error, write$/);
    assert.equal(journal.failure, failed);
    await assert.rejects(journal.append(1, payload(2), 'none'), (error: unknown) => error === failed);
    await assert.rejects(journal.append(1, payload(3), 'sync'), (error: unknown) => error === failed, 'although the disk works again (fsyncgate)');
    await journal.close();
    const reopened = await TxJournal.open(fx.dir);
    try {
      assert.deepEqual(await ids(reopened), [0, 1], 'the bytes reached the file before the sync "failed"');
    } finally {
      await reopened.close();
    }
  });

  it('an injected short write on a durable write fails the journal; reopening cuts the torn record', async () => {
    // Armed calls: the zeros and the first record (2 writes), then the durable write fails.
    const faulty = faultyJournalIo(defaultJournalIo, { point: 'txlog.write', after: 2, errno: 'ENOSPC', once: true }, { report: () => undefined });
    const journal = await fx.open({ preallocateBytes: CHUNK, io: faulty });
    await journal.append(1, payload(0), 'sync');
    await assert.rejects(journal.append(1, payload(1, 400), 'sync'), (error: unknown) => {
      assert.ok(error instanceof StoreIoError);
      assert.match(error.message, /writing to transaction journal file .* with O_DSYNC .* failed.*: ENOSPC: no space left on device, write$/);
      return true;
    });
    await assert.rejects(journal.append(1, payload(2), 'sync'), StoreIoError);
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
