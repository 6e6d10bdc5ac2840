/**
 * Checkpoints of the broker's transaction journal (transactions.md §5.5 "Checkpoint", §5.7 case
 * 22), with a real `metaq-server` process and raw wire frames:
 *
 * - with `checkpointInterval=500`, enough transaction traffic to roll the journal (its 64 MiB
 *   file size is not configurable from server.ini, so the traffic carries large messages) makes
 *   the broker delete the old `txlog-*.log` files — including the one holding the PREPARE record
 *   of a branch prepared before all that traffic, which lives on in every checkpoint;
 * - the old branch survives a SIGKILL; with the NEWEST checkpoint corrupted (one byte flipped),
 *   the broker falls back to the previous checkpoint and replays the journal from there: both
 *   the old prepared branch and one prepared after the fallback checkpoint (known only to the
 *   corrupt checkpoint and the journal) are listed by RECOVER and commit; every committed
 *   message is stored exactly once, no aborted one is visible;
 * - a graceful stop writes a final checkpoint, and a restart from it changes nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { parseCheckpointFileName, parseJournalFileName } from '../../src/transaction/log/tx-file-names.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import {
  assertIds,
  assertMessages,
  assertOk,
  beginWithMessages,
  eventually,
  payloadBytes,
  preparedBranch,
  readAll,
  localKey,
  TxBrokerHome,
  xaKey,
  type PutAck,
  type StoredMessage,
  type TxClient,
} from '../helpers/tx-wire.js';

/** Payload size of the traffic's messages: 4 per transaction, ~1 MiB per transaction. */
const BIG = 250 * 1024;
const CONNECTIONS = 4;

function listDir(dir: string): { journals: number[]; checkpoints: number[] } {
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const journals = names.map(parseJournalFileName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
  const checkpoints = names.map(parseCheckpointFileName).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
  return { journals, checkpoints };
}

describe('transaction checkpoints: old journal files deleted, long-lived prepared branches kept, corrupt checkpoint skipped', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let home: TxBrokerHome;
  const committed = new Set<string>();
  const aborted = new Set<string>();
  const acks = new Map<string, PutAck>();
  const oldBranch = xaKey('long-lived', 'rmCkp');
  const lateBranch = xaKey('prepared-late', 'rmCkp');
  let storedBefore: StoredMessage[] = [];

  before(async () => {
    dir = await makeTempDir('metaq-tx-checkpoint-');
    home = await TxBrokerHome.create(join(dir.path, 'broker'), { checkpointInterval: 500, flushTxLogAtCommit: 1 });
  });
  after(async () => {
    await home.kill();
    await dir.remove();
  });

  it('deletes old journal files after checkpoints while a branch prepared before all the traffic stays prepared', async () => {
    const run = await home.start();
    const clients: TxClient[] = [];
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await run.client());
    const [first] = clients;
    assert.ok(first !== undefined);
    const oldTags = ['old-0', 'old-1', 'old-2'];
    const oldAcks = await preparedBranch(first, oldBranch, oldTags.map((tag, i) => ({ topic: i === 2 ? 'orders' : 'test', partition: i % 2, tag })));
    oldTags.forEach((tag, i) => acks.set(tag, oldAcks[i] as PutAck));
    await eventually(() => listDir(home.txDir).checkpoints.length > 0, 'a first checkpoint');
    assert.deepEqual(listDir(home.txDir).journals, [1]);

    // Traffic: per connection, in turn an XA two-phase commit, a local commit and an XA rollback
    // after prepare, each with 4 large messages; until txlog-1 (with the old PREPARE record) is gone.
    let n = 0;
    const one = async (client: TxClient, c: number): Promise<void> => {
      const i = n++;
      const tags = Array.from({ length: 4 }, (_, j) => `traffic-${i}-${j}`);
      const messages = tags.map((tag, j) => ({ topic: j % 2 === 0 ? 'test' : 'orders', partition: (i + j) % 2, tag, size: BIG }));
      const kind = i % 3;
      if (kind === 0) {
        const key = xaKey(`traffic-${i}`, `rmTraffic${c}`);
        const got = await preparedBranch(client, key, messages);
        assertOk(await client.tx(key, 'COMMIT_TWO_PHASE'));
        tags.forEach((tag, j) => {
          committed.add(tag);
          acks.set(tag, got[j] as PutAck);
        });
      } else if (kind === 1) {
        const key = localKey(`traffic-${c}`, i);
        const got = await beginWithMessages(client, key, messages);
        assertOk(await client.tx(key, 'COMMIT_ONE_PHASE'));
        tags.forEach((tag, j) => {
          committed.add(tag);
          acks.set(tag, got[j] as PutAck);
        });
      } else {
        const key = xaKey(`traffic-${i}`, `rmTraffic${c}`);
        await preparedBranch(client, key, messages);
        assertOk(await client.tx(key, 'ROLLBACK'));
        for (const tag of tags) aborted.add(tag);
      }
    };
    const started = Date.now();
    while (listDir(home.txDir).journals.includes(1)) {
      assert.ok(n < 400, `txlog-1 still there after ${n} transactions: ${JSON.stringify(listDir(home.txDir))}`);
      await Promise.all(clients.map(async (client, c) => {
        for (let k = 0; k < 3; k++) await one(client, c);
      }));
      if (listDir(home.txDir).journals.length > 1) {
        // Rolled: the checkpoints after the roll release txlog-1 within a few intervals.
        await eventually(() => !listDir(home.txDir).journals.includes(1), 'txlog-1 to be deleted', 5000).catch(() => undefined);
      }
    }
    const files = listDir(home.txDir);
    assert.ok(files.journals.length >= 1 && (files.journals[0] ?? 0) >= 2, `old journal files deleted: ${JSON.stringify(files)}`);
    assert.ok(files.checkpoints.length <= 3, `at most maxCheckpoints=3 checkpoints kept: ${JSON.stringify(files)}`);
    // The files go first, the log line after them.
    const deletionLogged = (): boolean =>
      run.proc.logs.some((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('deleted ') && (l['msg'] as string).includes('transaction journal files'));
    await eventually(deletionLogged, 'the broker to log the deletion', 5000);
    assert.ok(files.checkpoints.length >= 2, 'several checkpoints kept');
    process.stderr.write(`# ${n} transactions (${committed.size} committed and ${aborted.size} aborted messages) in ${Date.now() - started} ms; ${JSON.stringify(files)}\n`);

    // The old branch is still prepared and listed, although its PREPARE record's file is gone.
    assert.deepEqual(await first.recover('rmCkp'), [oldBranch]);

    for (const client of clients) client.close();
    await run.kill();
  });

  it('after a crash, a corrupt newest checkpoint is skipped for the previous one, and the journal after that one is replayed', async () => {
    await home.kill(); // only if an earlier test failed with the broker running
    // No periodic checkpoints from now on, so that which checkpoint holds what is known: the
    // previous checkpoint is the last periodic one (before the late branch existed), the newest
    // is written by the graceful stop below, with the late branch in its snapshot.
    home.configure({ checkpointInterval: 3_600_000, flushTxLogAtCommit: 1 });
    const previous = listDir(home.txDir).checkpoints.at(-1) ?? 0;
    const run1 = await home.start();
    const client = await run1.client();
    assert.deepEqual(await client.recover('rmCkp'), [oldBranch], 'the old branch survived the SIGKILL');
    const lateTags = ['late-0', 'late-1'];
    const lateAcks = await preparedBranch(client, lateBranch, lateTags.map((tag, i) => ({ topic: 'test', partition: i, tag })));
    lateTags.forEach((tag, i) => acks.set(tag, lateAcks[i] as PutAck));
    client.close();
    await run1.stop();
    const { checkpoints } = listDir(home.txDir);
    assert.equal(checkpoints.at(-1), previous + 1, 'the stop wrote exactly one checkpoint');
    assert.ok(checkpoints.includes(previous), 'the previous checkpoint is still there');

    const newest = join(home.txDir, `checkpoint-${String(previous + 1).padStart(20, '0')}.ckp`);
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 3] = (bytes[bytes.length - 3] ?? 0) ^ 0xff;
    fs.writeFileSync(newest, bytes);

    const run = await home.start();
    const skipped = run.proc.logs.find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith(`skipping corrupt transaction checkpoint ${newest}`));
    assert.ok(skipped !== undefined, `the broker says it skipped ${newest}`);
    const recovered = run.log('transactions recovered');
    assert.equal(recovered?.['fromCheckpoint'], true, 'recovered from the previous checkpoint, not from the start of the journal');
    assert.ok(Number(recovered?.['replayedRecords']) > 0, 'the journal after the previous checkpoint was replayed');

    const tm = await run.client();
    assert.deepEqual((await tm.recover('rmCkp')).sort(), [oldBranch, lateBranch].sort(), 'both prepared branches are listed (the late one from the journal)');
    for (let c = 0; c < CONNECTIONS; c++) assert.deepEqual(await tm.recover(`rmTraffic${c}`), [], 'no traffic branch comes back');
    assertOk(await tm.tx(oldBranch, 'COMMIT_TWO_PHASE'));
    assertOk(await tm.tx(lateBranch, 'COMMIT_TWO_PHASE'));
    for (const tag of ['old-0', 'old-1', 'old-2', 'late-0', 'late-1']) committed.add(tag);
    tm.close();

    storedBefore = await readAll(run.port);
    assertMessages(storedBefore, { committed, aborted, exhaustive: true }, 'after the fallback');
    assertIds(storedBefore, acks, 'after the fallback');
    await run.stop();
  });

  it('a graceful stop writes a final checkpoint; a restart from it lists nothing and stores the same messages', async () => {
    await home.kill(); // only if an earlier test failed with the broker running
    const before = listDir(home.txDir).checkpoints.at(-1) ?? 0;
    const run = await home.start();
    const tm = await run.client();
    assert.deepEqual(await tm.recover(), []);
    tm.close();
    assert.deepEqual(await readAll(run.port), storedBefore);
    await run.stop();
    assert.ok((listDir(home.txDir).checkpoints.at(-1) ?? 0) > before, 'the stop wrote a checkpoint');
    const again = await home.start();
    assert.equal(again.log('transactions recovered')?.['fromCheckpoint'], true);
    const tm2 = await again.client();
    assert.deepEqual(await tm2.recover(), []);
    tm2.close();
    assert.deepEqual(await readAll(again.port), storedBefore);
    await again.stop();
  });
  it('a crash right after a checkpoint file is written (crash point checkpoint.after-write) loses nothing', async () => {
    await home.kill(); // only if an earlier test failed with the broker running
    // The first periodic checkpoint, 2 s after the start, kills the broker: the work below is done by then.
    home.configure({ checkpointInterval: 2000, flushTxLogAtCommit: 1 });
    const run = await home.start({ METAQ_CRASH_POINT: 'checkpoint.after-write' });
    const client = await run.client();
    const key = xaKey('around-checkpoint', 'rmCkpCrash');
    const preparedAcks = await preparedBranch(client, key, [{ topic: 'orders', partition: 1, tag: 'ckp-crash-prepared' }]);
    const local = localKey('ckp-crash', 1);
    const localAcks = await beginWithMessages(client, local, [{ topic: 'test', partition: 0, tag: 'ckp-crash-local' }]);
    assertOk(await client.tx(local, 'COMMIT_ONE_PHASE'), 'answered before the first periodic checkpoint kills the broker');
    await run.crashedAt('checkpoint.after-write');
    client.close();

    home.configure({ checkpointInterval: 3_600_000, flushTxLogAtCommit: 1 });
    const restarted = await home.start();
    const tm = await restarted.client();
    assert.deepEqual(await tm.recover('rmCkpCrash'), [key]);
    assertOk(await tm.tx(key, 'COMMIT_TWO_PHASE'));
    committed.add('ckp-crash-prepared');
    acks.set('ckp-crash-prepared', preparedAcks[0] as PutAck);
    // The local commit was decided before the crash (its record written): committed, once.
    committed.add('ckp-crash-local');
    acks.set('ckp-crash-local', localAcks[0] as PutAck);
    assertOk(await tm.tx(local, 'COMMIT_ONE_PHASE'), 'its retry is answered from the tombstone');
    tm.close();
    const stored = await readAll(restarted.port);
    assertMessages(stored, { committed, aborted, exhaustive: true }, 'after the checkpoint crash');
    assertIds(stored, acks, 'after the checkpoint crash');
    await restarted.stop();
  });
});
