/**
 * The file coordinator log's durability: replay, torn tails, group commit, checkpoints and journal
 * pruning, checkpoint fall-back, fail-stop.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { StoreCorruptError, StoreIoError } from '../../src/common/errors.js';
import { fdatasync } from '../../src/store/file-io.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { checkpointFileName, journalFileName, parseJournalFileName } from '../../src/transaction/log/tx-file-names.js';
import type { LoggedParticipant } from '../../src/xa/coordinator-log.js';
import { openCoordinatorLog, type FileCoordinatorLog, type FileCoordinatorLogOptions } from '../../src/xa/log/index.js';
import { branchQualifier, makeGtrid, nodeIdOf } from '../../src/xa/xid.js';
import { flipByte, waitUntil } from '../helpers/txlog-fixtures.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const gtrid = (sequence: number): Buffer => makeGtrid({ nodeId: nodeIdOf('tm-file'), startedAtMs: 1_700_000_000_000, sequence: BigInt(sequence) });
const pg: LoggedParticipant = { resourceId: 'postgres:orders', branchQualifier: branchQualifier(0) };
const mq: LoggedParticipant = { resourceId: 'metaq:broker-1', branchQualifier: branchQualifier(1) };

let temp: { path: string; remove: () => Promise<void> };
let dir: string;
const opened: FileCoordinatorLog[] = [];

async function open(options: FileCoordinatorLogOptions = {}): Promise<FileCoordinatorLog> {
  const log = await openCoordinatorLog(dir, { checkpointIntervalMs: 0, nodeName: 'tm-file', ...options });
  opened.push(log);
  return log;
}

/** Closes `log` and opens the directory again, as a restart would. */
async function reopen(log: FileCoordinatorLog, options: FileCoordinatorLogOptions = {}): Promise<FileCoordinatorLog> {
  await log.close();
  return open(options);
}

const files = (pattern: RegExp): string[] => fs.readdirSync(dir).filter((n) => pattern.test(n)).sort();
const journalFiles = (): string[] => files(/^txlog-\d{20}\.log$/);
const checkpointFiles = (): string[] => files(/^checkpoint-\d{20}\.ckp$/);

beforeEach(async () => {
  temp = await makeTempDir('metaq-xa-log-file-');
  dir = join(temp.path, 'coordinator');
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
  await temp.remove();
});

describe('FileCoordinatorLog replay', () => {
  it('creates the directory, a journal and the lock; an empty log reopens empty', async () => {
    const log = await open();
    assert.deepEqual(journalFiles(), [journalFileName(1)]);
    assert.ok(fs.existsSync(join(dir, 'coordinator.lock')));
    const again = await reopen(log);
    assert.deepEqual(again.pending(), []);
    assert.equal(again.replay.records, 0);
    assert.equal(again.replay.checkpointSequence, undefined);
  });

  it('rebuilds the pending entries (states, participants, heuristics, times) from the journal', async () => {
    let clock = 1_000;
    const log = await open({ now: () => clock });
    await log.committing(gtrid(1), [pg, mq]);
    clock = 2_000;
    await log.presumedAborting(gtrid(2));
    clock = 3_000;
    await log.committing(gtrid(3), [pg]);
    await log.heuristic(gtrid(1), { resourceId: mq.resourceId, branchQualifier: mq.branchQualifier, outcome: 'heuristic-mixed', detail: 'partly' });
    await log.committing(gtrid(1), [pg, mq, { resourceId: 'metaq:broker-2', branchQualifier: branchQualifier(2) }]);
    await log.end(gtrid(3));
    await log.presumedAborting(gtrid(4));
    await log.end(gtrid(4));
    const before = log.pending();
    const again = await reopen(log);
    assert.deepEqual(again.pending(), before);
    assert.equal(again.replay.records, 8);
    assert.equal(again.get(gtrid(1))?.participants.length, 3);
    assert.equal(again.get(gtrid(1))?.heuristics[0]?.atMs, 3_000);
    assert.equal(again.get(gtrid(3)), undefined);
    assert.equal(again.get(gtrid(4)), undefined);
  });

  it('an END that was written (unforced) before a clean close is replayed', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    void log.end(gtrid(1));
    const again = await reopen(log);
    assert.equal(again.pendingCount, 0);
  });

  it('cuts a torn last record (garbage appended) and keeps every earlier record', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg, mq]);
    await log.presumedAborting(gtrid(2));
    const before = log.pending();
    await log.close();
    fs.appendFileSync(join(dir, journalFileName(1)), Buffer.from([0, 0, 0, 40, 0xde, 0xad, 0xbe, 0xef, 0x21, 1, 2, 3]));
    const again = await open();
    assert.equal(again.truncatedBytesAtOpen, 12);
    assert.deepEqual(again.pending(), before);
    await again.committing(gtrid(3), [pg]);
    const third = await reopen(again);
    assert.equal(third.truncatedBytesAtOpen, 0);
    assert.equal(third.pendingCount, 3);
  });

  it('cuts a record torn in the middle (file cut short): that record is lost, earlier ones are intact', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    await log.committing(gtrid(2), [pg, mq]);
    await log.close();
    const path = join(dir, journalFileName(1));
    const size = fs.statSync(path).size;
    fs.truncateSync(path, size - 5);
    const again = await open();
    assert.ok(again.truncatedBytesAtOpen > 0);
    assert.equal(again.get(gtrid(1))?.state, 'committing');
    assert.equal(again.get(gtrid(2)), undefined);
    assert.equal(fs.statSync(path).size, size - 5 - again.truncatedBytesAtOpen);
  });

  it('a record with a flipped byte in the last position is cut like a torn one', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    await log.committing(gtrid(2), [pg]);
    await log.close();
    const path = join(dir, journalFileName(1));
    flipByte(path, fs.statSync(path).size - 1);
    const again = await open();
    assert.deepEqual(
      again.pending().map((e) => e.gtrid),
      [gtrid(1)],
    );
  });

  it("refuses a directory holding a broker's transaction journal", async () => {
    const journal = await TxJournal.open(dir);
    await journal.append(1, Buffer.alloc(20), 'sync');
    await journal.close();
    await assert.rejects(open(), (e: unknown) => e instanceof StoreCorruptError && /unknown record type 0x01/.test(e.message));
    // The failed open released its lock.
    assert.equal(fs.existsSync(join(dir, 'coordinator.lock')), false);
  });
});

describe('FileCoordinatorLog group commit', () => {
  it('N concurrent COMMITTING calls share fsyncs (syncCount < N) and are all durable', async () => {
    const log = await open();
    const n = 64;
    const syncsBefore = log.syncCount;
    await Promise.all(Array.from({ length: n }, (_, i) => log.committing(gtrid(i), [pg, mq])));
    const syncs = log.syncCount - syncsBefore;
    assert.ok(syncs >= 1 && syncs < n, `expected fewer than ${n} fsyncs, got ${syncs}`);
    assert.equal(log.appendCount, n);
    const again = await reopen(log);
    assert.equal(again.pendingCount, n);
  });

  it('a duplicate call, or a declined claim, resolves only once the first record is durable', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let blocking = false;
    const log = await open({
      journalIo: {
        fdatasync: async (fd: number) => {
          if (blocking) await gate;
          await fdatasync(fd);
        },
      },
    });
    blocking = true;
    const settled: string[] = [];
    const first = log.committing(gtrid(1), [pg]).then(() => settled.push('first'));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const duplicate = log.committing(gtrid(1), [pg]).then(() => settled.push('duplicate'));
    const claim = log.presumedAborting(gtrid(1)).then((claimed) => settled.push(`claimed ${claimed}`));
    assert.equal(log.get(gtrid(1))?.state, 'committing', 'visible while its write is in flight');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(settled, [], 'nothing resolves before the fsync');
    release();
    await Promise.all([first, duplicate, claim]);
    assert.deepEqual(settled, ['first', 'duplicate', 'claimed false']);
    assert.equal(log.appendCount, 1);
  });

  it('any completed forced call, even one that writes nothing, has made the earlier unforced ENDs durable', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    await log.committing(gtrid(2), [pg]);
    assert.equal(log.syncCount, 2);
    await log.end(gtrid(1));
    await log.committing(gtrid(2), [pg]); // duplicate: no record, but an fsync covering the END
    assert.equal(log.syncCount, 3);
    assert.equal(log.appendCount, 3);
    assert.equal(await log.presumedAborting(gtrid(2)), false); // nothing unsynced: no fsync
    assert.equal(log.syncCount, 3);
    await log.end(gtrid(2));
    await log.sync();
    assert.equal(log.syncCount, 4);
    await log.sync();
    assert.equal(log.syncCount, 4);
  });

  it('sequential forced calls cost one fsync each, END none', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    await log.presumedAborting(gtrid(2));
    await log.heuristic(gtrid(1), { resourceId: pg.resourceId, branchQualifier: pg.branchQualifier, outcome: 'heuristic-commit', detail: '' });
    assert.equal(log.syncCount, 3);
    await log.end(gtrid(1));
    await log.end(gtrid(2));
    assert.equal(log.syncCount, 3);
    assert.equal(log.appendCount, 5);
  });
});

describe('FileCoordinatorLog checkpoints', () => {
  it('keeps a long-lived pending entry across checkpoints that delete the journal files it was written in', async () => {
    const log = await open({ maxFileSize: 512, maxCheckpoints: 3 });
    await log.committing(gtrid(0), [pg, mq]);
    await log.heuristic(gtrid(0), { resourceId: pg.resourceId, branchQualifier: pg.branchQualifier, outcome: 'heuristic-hazard', detail: 'pg down' });
    for (let i = 1; i <= 60; i++) {
      await log.committing(gtrid(i), [pg, mq]);
      await log.end(gtrid(i));
    }
    // Why the newest file's sequence and not the file count: the log checkpoints on its own when
    // it rolls, and those checkpoints may already have deleted old files (a timing-dependent count).
    const newest = Math.max(...journalFiles().map((name) => parseJournalFileName(name) ?? 0));
    assert.ok(newest > 5, `the journal should have rolled more than 4 times; its newest file is ${journalFileName(newest)}`);
    for (let k = 0; k < 4; k++) await log.checkpoint();
    assert.equal(checkpointFiles().length, 3);
    assert.ok(!journalFiles().includes(journalFileName(1)), `file 1 should be deleted: ${journalFiles().join(', ')}`);
    assert.ok(journalFiles().length <= 3, `only the files after the oldest checkpoint remain: ${journalFiles().join(', ')}`);
    const long = log.get(gtrid(0));
    const again = await reopen(log, { maxFileSize: 512 });
    assert.ok(again.replay.checkpointSequence !== undefined);
    assert.deepEqual(again.get(gtrid(0)), long);
    assert.deepEqual(
      again.pending().map((e) => e.gtrid),
      [gtrid(0)],
    );
  });

  it('checkpoints on its own when the journal rolls, and the replay after it starts from the checkpoint', async () => {
    const log = await open({ maxFileSize: 400 });
    await log.committing(gtrid(0), [pg]);
    for (let i = 1; i <= 30; i++) {
      await log.committing(gtrid(i), [pg, mq]);
      await log.end(gtrid(i));
    }
    await waitUntil(() => log.checkpointCount > 0, 5_000, 'a checkpoint after a roll');
    await waitUntil(() => !journalFiles().includes(journalFileName(1)), 5_000, 'file 1 deleted');
    const again = await reopen(log, { maxFileSize: 400 });
    assert.ok(again.replay.checkpointSequence !== undefined);
    assert.deepEqual(
      again.pending().map((e) => e.gtrid),
      [gtrid(0)],
    );
  });

  it('checkpoints every checkpointIntervalMs while something was logged, not when idle', async () => {
    const log = await open({ checkpointIntervalMs: 20 });
    await log.committing(gtrid(1), [pg]);
    await waitUntil(() => log.checkpointCount >= 1, 5_000, 'a timed checkpoint');
    await new Promise((resolve) => setTimeout(resolve, 150));
    const settled = log.checkpointCount;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(log.checkpointCount, settled, 'an idle log writes no checkpoints');
    assert.ok(settled <= 2, `got ${settled} checkpoints for one record`);
  });

  it('falls back to the older checkpoint when the newest is corrupt, replaying the records after it', async () => {
    const log = await open();
    await log.committing(gtrid(1), [pg]);
    await log.presumedAborting(gtrid(2));
    await log.checkpoint();
    await log.end(gtrid(1));
    await log.committing(gtrid(3), [mq]);
    await log.checkpoint();
    await log.committing(gtrid(4), [pg]);
    const before = log.pending();
    await log.close();
    assert.deepEqual(checkpointFiles(), [checkpointFileName(1), checkpointFileName(2)]);
    flipByte(join(dir, checkpointFileName(2)), 45);
    const again = await open();
    assert.equal(again.replay.checkpointSequence, 1);
    assert.deepEqual(again.pending(), before);
    assert.deepEqual(
      before.map((e) => e.gtrid),
      [gtrid(2), gtrid(3), gtrid(4)],
    );
  });

  it('after automatic checkpoints and pruning, a corrupt newest checkpoint still falls back to a complete older one', async () => {
    const log = await open({ maxFileSize: 300 });
    await log.committing(gtrid(0), [pg]);
    for (let i = 10; i < 40; i++) {
      await log.committing(gtrid(i), [pg]);
      if (i % 3 !== 0) await log.end(gtrid(i));
    }
    await log.checkpoint();
    await log.committing(gtrid(5), [mq]);
    const before = log.pending();
    await log.close();
    assert.ok(!journalFiles().includes(journalFileName(1)), 'old journal files were pruned');
    const newest = checkpointFiles().at(-1);
    assert.ok(newest !== undefined && checkpointFiles().length === 3, checkpointFiles().join(', '));
    flipByte(join(dir, newest), 45);
    const again = await open({ maxFileSize: 300 });
    assert.equal(again.replay.checkpointSequence, Number(newest.slice(11, 31)) - 1);
    assert.deepEqual(again.pending(), before);
  });

  it('refuses to open when journal files were pruned and every checkpoint is corrupt (never forgets silently)', async () => {
    const log = await open({ maxFileSize: 300 });
    for (let i = 0; i < 20; i++) await log.committing(gtrid(i), [pg]);
    await log.checkpoint();
    await log.close();
    assert.ok(!journalFiles().includes(journalFileName(1)));
    for (const name of checkpointFiles()) flipByte(join(dir, name), 45);
    await assert.rejects(open(), StoreCorruptError);
  });
});

describe('FileCoordinatorLog fail-stop and close', () => {
  it('after a failed fsync every call rejects with a StoreIoError; close still releases the lock', async () => {
    let failSync = false;
    const log = await open({
      journalIo: {
        fdatasync: async (fd: number) => {
          if (failSync) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
          await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e === null ? resolve() : reject(e))));
        },
      },
    });
    await log.committing(gtrid(1), [pg]);
    failSync = true;
    await assert.rejects(log.committing(gtrid(2), [pg]), (e: unknown) => e instanceof StoreIoError && e.message.includes(dir) && /restart the transaction manager/.test(e.message));
    assert.ok(log.failure instanceof StoreIoError);
    await assert.rejects(log.presumedAborting(gtrid(3)), StoreIoError);
    await assert.rejects(log.end(gtrid(1)), StoreIoError);
    await assert.rejects(log.checkpoint(), StoreIoError);
    await assert.rejects(log.sync(), StoreIoError);
    // The outcome of gtrid 2's record is unknown: it stays visible as committing (the conservative answer).
    assert.equal(log.get(gtrid(2))?.state, 'committing');
    await log.close();
    const again = await open();
    assert.equal(again.get(gtrid(1))?.state, 'committing');
  });

  it('close waits for queued records and releases the lock', async () => {
    const log = await open();
    const writes = [log.committing(gtrid(1), [pg]), log.end(gtrid(1)), log.committing(gtrid(2), [mq])];
    await log.close();
    await Promise.all(writes);
    assert.equal(fs.existsSync(join(dir, 'coordinator.lock')), false);
    const again = await open();
    assert.deepEqual(
      again.pending().map((e) => e.gtrid),
      [gtrid(2)],
    );
  });

  it('validates its options', async () => {
    await assert.rejects(open({ checkpointIntervalMs: -1 }), /checkpointIntervalMs/);
    await assert.rejects(open({ maxCheckpoints: 0 }), /maxCheckpoints/);
    await assert.rejects(open({ maxFileSize: 0 }), /maxFileSize/);
    assert.equal(fs.existsSync(join(dir, 'coordinator.lock')), false);
  });
});
