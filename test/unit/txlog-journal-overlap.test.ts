/**
 * Overlapping durable writes (tx-journal.ts, "Why durable writes overlap"): up to
 * MAX_DURABLE_WRITES_IN_FLIGHT O_DSYNC batches are in flight at consecutive offsets, they may
 * finish in any order, and an append is acknowledged only once its write and every earlier one
 * have finished. A failed write fails the journal and takes every unacknowledged append with it,
 * including those whose own write succeeded; a reopened journal cuts them off. Anything that is
 * not a durable write waits until none is in flight.
 *
 * The durable write goes through a gate: the test decides when each one reaches the file and
 * returns, and in which order.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreIoError } from '../../src/common/errors.js';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import type { JournalIo } from '../../src/transaction/log/journal-io.js';
import type { JournalPosition } from '../../src/transaction/log/journal-position.js';
import { MAX_DURABLE_WRITES_IN_FLIGHT, type TxJournal } from '../../src/transaction/log/tx-journal.js';
import { FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { collect, makeJournalFixture, payload, waitUntil, type JournalFixture } from '../helpers/txlog-fixtures.js';

let fx: JournalFixture;
beforeEach(async () => {
  fx = await makeJournalFixture();
});
afterEach(async () => {
  await fx.cleanup();
});

const RECORD = FRAME_HEADER_SIZE + 50;
const CHUNK = 64 * 1024;

interface HeldWrite {
  readonly position: number;
  /** Writes the bytes, then lets the call return. */
  finish(): Promise<void>;
  /** Fails the call without writing anything (a write that never reached the disk). */
  fail(): void;
}

/** Real plain I/O; durable writes held until the test finishes or fails them. */
function gatedIo(): { io: JournalIo; held: HeldWrite[]; calls: string[]; inFlight: () => number } {
  const held: HeldWrite[] = [];
  const calls: string[] = [];
  let inFlight = 0;
  return {
    held,
    calls,
    inFlight: () => inFlight,
    io: {
      writev: (fd, buffers, position) => {
        calls.push(`writev@${position}`);
        return writevAll(fd, buffers, position);
      },
      fdatasync: (fd) => {
        calls.push('fdatasync');
        return fdatasync(fd);
      },
      writevDurable: (fd, buffers, position) =>
        new Promise<void>((resolve, reject) => {
          calls.push(`durable@${position}`);
          inFlight += 1;
          held.push({
            position,
            finish: async () => {
              await writevAll(fd, buffers, position);
              inFlight -= 1;
              resolve();
            },
            fail: () => {
              inFlight -= 1;
              reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
            },
          });
        }),
    },
  };
}

/** Lets the event loop run a few turns (the writer starts a batch on setImmediate). */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Tracks when an append settles. */
function track(p: Promise<JournalPosition>): { settled: () => boolean; result: Promise<JournalPosition | Error> } {
  let settled = false;
  const result = p.then(
    (position) => ((settled = true), position),
    (error: unknown) => ((settled = true), error as Error),
  );
  return { settled: () => settled, result };
}

const ids = async (journal: TxJournal): Promise<number[]> => (await collect(journal.readFrom(undefined))).map((r) => r.payload.readUInt32BE(0));

describe('txlog journal: overlapping durable writes', () => {
  it(`keeps up to ${MAX_DURABLE_WRITES_IN_FLIGHT} durable writes in flight at consecutive offsets; the next batch waits for a free slot`, async () => {
    const gate = gatedIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: gate.io });
    await journal.append(1, payload(0), 'sync'); // preallocates: the serial path
    gate.calls.length = 0;
    const appends = [];
    for (let i = 1; i <= MAX_DURABLE_WRITES_IN_FLIGHT + 2; i++) {
      appends.push(track(journal.append(1, payload(i), 'sync')));
      await turns();
    }
    assert.equal(gate.inFlight(), MAX_DURABLE_WRITES_IN_FLIGHT, 'as many in flight as allowed, no more');
    assert.deepEqual(
      gate.held.map((w) => w.position),
      Array.from({ length: MAX_DURABLE_WRITES_IN_FLIGHT }, (_, k) => (k + 1) * RECORD),
      'each write starts where the previous one ends',
    );
    assert.ok(appends.every((a) => !a.settled()));
    // The first write finishes: its slot takes BOTH waiting appends in one batch.
    await gate.held[0]?.finish();
    await waitUntil(() => gate.held.length === MAX_DURABLE_WRITES_IN_FLIGHT + 1, 2000, 'the next batch');
    assert.equal(gate.held.at(-1)?.position, (MAX_DURABLE_WRITES_IN_FLIGHT + 1) * RECORD);
    for (const w of gate.held.slice(1)) await w.finish();
    const positions = await Promise.all(appends.map((a) => a.result));
    assert.deepEqual(
      positions,
      appends.map((_, k) => ({ file: 1, offset: (k + 1) * RECORD })),
    );
    assert.deepEqual(journal.durablePosition, journal.endPosition);
    assert.deepEqual(await ids(journal), Array.from({ length: MAX_DURABLE_WRITES_IN_FLIGHT + 3 }, (_, i) => i));
    assert.ok(!gate.calls.includes('fdatasync'), `no fdatasync on this path: ${gate.calls.join(',')}`);
  });

  it('a write that finishes before an earlier one is acknowledged only after it, and the durable position waits too', async () => {
    const gate = gatedIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: gate.io });
    await journal.append(1, payload(0), 'sync');
    const first = track(journal.append(1, payload(1), 'sync'));
    await turns();
    const second = track(journal.append(1, payload(2), 'sync'));
    await turns();
    assert.equal(gate.held.length, 2);
    await gate.held[1]?.finish();
    await turns();
    assert.equal(second.settled(), false, 'not acknowledged while an earlier write may still be lost');
    assert.deepEqual(journal.durablePosition, { file: 1, offset: RECORD });
    assert.deepEqual(journal.endPosition, { file: 1, offset: RECORD }, 'replay does not reach into unfinished writes');
    await gate.held[0]?.finish();
    assert.deepEqual(await first.result, { file: 1, offset: RECORD });
    assert.deepEqual(await second.result, { file: 1, offset: 2 * RECORD });
    assert.deepEqual(journal.durablePosition, { file: 1, offset: 3 * RECORD });
    assert.equal(journal.syncCount, 3);
  });

  it('a failed write fails the journal and every unacknowledged append, even one whose write succeeded; a reopened journal cuts that record off', async () => {
    const gate = gatedIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: gate.io });
    await journal.append(1, payload(0), 'sync');
    const lost = track(journal.append(1, payload(1), 'sync'));
    await turns();
    const afterLost = track(journal.append(1, payload(2), 'sync'));
    await turns();
    await gate.held[1]?.finish(); // record 2 reaches the disk...
    gate.held[0]?.fail(); // ...record 1 never does: zeros between record 0 and record 2
    const [a, b] = [await lost.result, await afterLost.result];
    assert.ok(a instanceof StoreIoError, String(a));
    assert.ok(b instanceof StoreIoError, `the later append is not acknowledged either: ${String(b)}`);
    await assert.rejects(journal.append(1, payload(3), 'sync'), StoreIoError, 'fail-stop');
    await journal.close();

    const reopened = await fx.open({ preallocateBytes: CHUNK });
    assert.ok(reopened.truncatedBytesAtOpen > 0, 'the record after the hole is cut off as a torn tail');
    assert.deepEqual(await ids(reopened), [0], 'only what was acknowledged');
    await reopened.append(1, payload(4), 'sync');
    assert.deepEqual(await ids(reopened), [0, 4]);
  });

  it('a plain write waits until no durable write is in flight, and so does close()', async () => {
    const gate = gatedIo();
    const journal = await fx.open({ preallocateBytes: CHUNK, io: gate.io });
    await journal.append(1, payload(0), 'sync');
    gate.calls.length = 0;
    const forced = track(journal.append(1, payload(1), 'sync'));
    await turns();
    const unforced = track(journal.append(1, payload(2), 'none'));
    await turns(10);
    assert.deepEqual(gate.calls, [`durable@${RECORD}`], 'the plain write does not start while the durable write is in flight');
    assert.equal(unforced.settled(), false);
    await gate.held[0]?.finish();
    assert.deepEqual(await forced.result, { file: 1, offset: RECORD });
    assert.deepEqual(await unforced.result, { file: 1, offset: 2 * RECORD });
    assert.deepEqual(gate.calls, [`durable@${RECORD}`, `writev@${2 * RECORD}`]);

    // After that unsynced record, a forced append takes write + fdatasync (not a durable write).
    const last = track(journal.append(1, payload(3), 'sync'));
    await last.result;
    assert.equal(gate.held.length, 1);
    assert.deepEqual(gate.calls.slice(2), [`writev@${3 * RECORD}`, 'fdatasync']);
    // A durable write in flight, then close(): close waits for it.
    const more = track(journal.append(1, payload(4), 'sync'));
    await waitUntil(() => gate.held.length === 2, 2000, 'the durable write');
    let closed = false;
    const closing = journal.close().then(() => (closed = true));
    await turns(10);
    assert.equal(closed, false, 'close() waits for the durable write in flight');
    await gate.held[1]?.finish();
    await closing;
    assert.deepEqual(await last.result, { file: 1, offset: 3 * RECORD });
    assert.deepEqual(await more.result, { file: 1, offset: 4 * RECORD });
    const reopened = await fx.open({ preallocateBytes: CHUNK });
    assert.deepEqual(await ids(reopened), [0, 1, 2, 3, 4]);
  });
});
