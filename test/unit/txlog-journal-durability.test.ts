import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { StoreIoError } from '../../src/common/errors.js';
import { fdatasync } from '../../src/store/file-io.js';
import { compareJournalPositions } from '../../src/transaction/log/journal-position.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, type JournalFixture, journalFixturePerTest, payload, waitUntil } from '../helpers/txlog-fixtures.js';

const fx = journalFixturePerTest();

const RECORD = FRAME_HEADER_SIZE + 50;

/**
 * An fdatasync that records, independently of the journal's own bookkeeping, how many bytes of
 * the file a completed fdatasync covers (the file size when it started).
 */
function observedSync(): { io: { fdatasync: (fd: number) => Promise<void> }; durableBytes: () => number; calls: () => number } {
  let durable = 0;
  let calls = 0;
  return {
    io: {
      fdatasync: async (fd) => {
        calls += 1;
        const size = fs.fstatSync(fd).size;
        await fdatasync(fd);
        durable = Math.max(durable, size);
      },
    },
    durableBytes: () => durable,
    calls: () => calls,
  };
}

describe('txlog journal durability', () => {
  it("group commit: 200 concurrent 'sync' appends share a few fdatasyncs, each resolving only once durable", async () => {
    const observed = observedSync();
    // No preallocation: observedSync reads the covered bytes off the file's size.
    const journal = await fx.open({ io: observed.io, preallocateBytes: 0 });
    const resolvedEarly: number[] = [];
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        journal.append(1, payload(i), 'sync').then((position) => {
          // At resolution the record's last byte is covered by a completed fdatasync.
          if (position.offset + RECORD > observed.durableBytes()) resolvedEarly.push(i);
          assert.ok(journal.syncCount >= 1);
          assert.ok(compareJournalPositions({ file: position.file, offset: position.offset + RECORD }, journal.durablePosition) <= 0);
        }),
      ),
    );
    assert.deepEqual(resolvedEarly, []);
    assert.ok(journal.syncCount >= 1 && journal.syncCount <= 10, `200 sync appends used ${journal.syncCount} fdatasyncs`);
    assert.equal(observed.calls(), journal.syncCount);
    assert.equal(observed.durableBytes(), 200 * RECORD);
    assert.ok(journal.lastSyncLatencyMs !== undefined && journal.lastSyncLatencyMs >= 0);
    assert.equal(journal.forcedAppendCount, 200, 'every record asked to be forced');
    // Unforced records and empty barriers are not counted as forced.
    await journal.append(1, payload(200), 'none');
    await journal.sync();
    assert.equal(journal.appendCount, 201);
    assert.equal(journal.forcedAppendCount, 200);
  });

  it("group commit pipelines: appends arriving during an fdatasync share the next one", async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    const journal = await fx.open({
      io: {
        fdatasync: async (fd) => {
          calls += 1;
          // Hold the first fdatasync until the second wave is queued.
          if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
          await fdatasync(fd);
        },
      },
    });
    const first = journal.append(1, payload(0), 'sync');
    await waitUntil(() => release !== undefined, 2000, 'the first fdatasync to start');
    const wave = Array.from({ length: 50 }, (_, i) => journal.append(1, payload(i + 1), 'sync'));
    await new Promise((resolve) => setImmediate(resolve));
    release?.();
    await Promise.all([first, ...wave]);
    assert.equal(journal.syncCount, 2, 'one fdatasync for the first append, one for the 50 that waited behind it');
  });

  it("a lone 'sync' append gets its own fdatasync each time", async () => {
    const journal = await fx.open();
    for (let i = 0; i < 5; i++) await journal.append(1, payload(i), 'sync');
    assert.equal(journal.syncCount, 5);
    assert.deepEqual(journal.durablePosition, journal.endPosition);
  });

  it("'none' never fsyncs, not even later in the background", async () => {
    const journal = await fx.open({ deferredSyncIntervalMs: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => journal.append(1, payload(i), 'none')));
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(journal.syncCount, 0);
    assert.deepEqual(journal.durablePosition, { file: 1, offset: 0 });
    assert.deepEqual(journal.endPosition, { file: 1, offset: 100 * RECORD });
  });

  it("'deferred' resolves before any fsync and is fdatasynced within the interval", async () => {
    const interval = 50;
    const journal = await fx.open({ deferredSyncIntervalMs: interval });
    const positions = await Promise.all(Array.from({ length: 20 }, (_, i) => journal.append(1, payload(i), 'deferred')));
    const written = Date.now();
    assert.equal(journal.syncCount, 0, 'resolved after the write, before any fsync');
    await waitUntil(() => journal.syncCount === 1, 2000, 'the deferred fdatasync');
    // The bound is on when the timer started the fdatasync, not on the disk: the elapsed time
    // also holds the 4 MiB of preallocated zeros and the fdatasync itself, each of which can take
    // hundreds of milliseconds on a busy disk.
    const elapsed = Date.now() - written;
    const syncMs = journal.lastSyncLatencyMs ?? 0;
    assert.ok(elapsed - syncMs < interval + 500, `synced after ${elapsed} ms, of which the fdatasync took ${syncMs} ms`);
    const last = positions.at(-1);
    assert.ok(last !== undefined && compareJournalPositions({ file: last.file, offset: last.offset + RECORD }, journal.durablePosition) <= 0);
    // Idle afterwards: the timer is one-shot, armed only by unsynced deferred records.
    await new Promise((resolve) => setTimeout(resolve, 3 * interval));
    assert.equal(journal.syncCount, 1);
  });

  it("a 'sync' append covers pending 'deferred' records, so the timer has nothing left to do", async () => {
    const journal = await fx.open({ deferredSyncIntervalMs: 40 });
    await journal.append(1, payload(0), 'deferred');
    await journal.append(1, payload(1), 'sync');
    assert.equal(journal.syncCount, 1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(journal.syncCount, 1);
  });

  it('close() syncs deferred records at once instead of waiting for the timer', async () => {
    const journal = await fx.open({ deferredSyncIntervalMs: 60_000 });
    await journal.append(1, payload(0), 'deferred');
    const started = Date.now();
    await journal.close();
    assert.equal(journal.syncCount, 1);
    assert.ok(Date.now() - started < 5000);
  });

  it('sync() makes everything written durable with one fdatasync, and costs nothing when clean', async () => {
    const journal = await fx.open();
    await Promise.all(Array.from({ length: 10 }, (_, i) => journal.append(1, payload(i), 'none')));
    await journal.sync();
    assert.equal(journal.syncCount, 1);
    assert.deepEqual(journal.durablePosition, journal.endPosition);
    await journal.sync();
    assert.equal(journal.syncCount, 1);
  });

  it('fdatasyncs every file before rolling, whatever the durability of its records', async () => {
    const journal = await fx.open({ maxFileSize: 256 });
    for (let i = 0; i < 12; i++) await journal.append(1, payload(i), 'none');
    assert.equal(journal.fileCount, 3);
    assert.equal(journal.syncCount, 2, 'one fdatasync per sealed file');
  });

  it('fails for good after an fdatasync error, telling the operator to restart', async () => {
    let failNext = true;
    const journal = await fx.open({
      io: {
        fdatasync: async (fd) => {
          if (failNext) {
            failNext = false;
            throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
          }
          await fdatasync(fd);
        },
      },
    });
    await journal.append(1, payload(0), 'sync').then(
      () => assert.fail('the append must fail'),
      (e: unknown) => {
        assert.ok(e instanceof StoreIoError);
        assert.match(e.message, /fdatasync of transaction journal file .*txlog-0+1\.log failed/);
        assert.match(e.message, /restart/);
        assert.match(e.message, /EIO/);
      },
    );
    // Even though the next fdatasync would succeed, nothing is accepted any more.
    assert.ok(journal.failure instanceof StoreIoError);
    await assert.rejects(journal.append(1, payload(1), 'none'), (e: unknown) => e === journal.failure);
    await assert.rejects(journal.sync(), (e: unknown) => e === journal.failure);
    await journal.close();
  });

  it('fails for good after a write error, rejecting the batch and everything queued behind it', async () => {
    let writes = 0;
    const journal = await fx.open({
      io: {
        writev: async () => {
          writes += 1;
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      },
      preallocateBytes: 0, // the records' own write fails (a failing preallocation: see txlog-journal-preallocation)
    });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => journal.append(1, payload(i), i % 2 === 0 ? 'sync' : 'none')));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.status === 'rejected' && r.reason instanceof StoreIoError && /writing to transaction journal file .*restart/.test(r.reason.message));
    }
    assert.equal(writes, 1);
    await assert.rejects(journal.append(1, payload(9), 'none'), StoreIoError);
    await journal.close();
    // A restart recovers from disk: the failed batch never reached the file.
    const reopened = await fx.open();
    assert.deepEqual(await collect(reopened.readFrom(undefined)), []);
  });
});
