/**
 * The engine's checkpoint rule (transaction-engine.ts, design notes): a snapshot taken at ANY
 * moment, together with the journal records after its marker, must describe every durable
 * branch. The window tested here: a prepared branch whose commit is decided (two-phase commit
 * from the coordinator, or an operator's heuristic commit) but whose COMMIT record is not written
 * yet. Its PREPARE record lies before the marker, so if the snapshot omitted the branch, a crash
 * right after the checkpoint would lose it: the coordinator's retry would get XAER_NOTA (read as
 * "already committed") and the messages would never appear.
 *
 * The window is held open deterministically by blocking the store's getOrCreate (the first await
 * of the commit); the "crash" is a copy of the data directory taken right after the checkpoint,
 * opened by a second in-process broker.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { MetaqBroker } from '../../src/broker/broker.js';
import { LOCK_FILE_NAME } from '../../src/broker/data-dir-lock.js';
import type { PartitionLog } from '../../src/store/partition-log.js';
import { testBrokerConfig } from '../helpers/broker-config.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { assertMessages, assertOk, preparedBranch, readAll, TX_TOPICS, TxClient, xaKey, type Answer } from '../helpers/tx-wire.js';

let dir: { path: string; remove: () => Promise<void> };
const brokers: MetaqBroker[] = [];

beforeEach(async () => {
  dir = await makeTempDir('metaq-tx-snapshot-');
});
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.stop();
  await dir.remove();
});

async function startBroker(dataPath: string): Promise<MetaqBroker> {
  const broker = await MetaqBroker.start(testBrokerConfig(dataPath, { topics: TX_TOPICS }));
  brokers.push(broker);
  return broker;
}

/** Blocks `broker.store.getOrCreate` until `release()`; `reached` resolves at the first blocked call. */
function blockGetOrCreate(broker: MetaqBroker): { reached: Promise<void>; release: () => void } {
  const store = broker.store;
  const original = store.getOrCreate.bind(store);
  let release = (): void => undefined;
  let entered = (): void => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const reached = new Promise<void>((resolve) => (entered = resolve));
  store.getOrCreate = async (topic: string, partition: number): Promise<PartitionLog> => {
    entered();
    await gate;
    return original(topic, partition);
  };
  return {
    reached,
    release: () => {
      store.getOrCreate = original;
      release();
    },
  };
}

/** Copies a live data directory (what a crash at this instant leaves on disk: SIGKILL keeps the page cache). */
function crashCopy(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith(LOCK_FILE_NAME) });
}

describe('transaction engine snapshots while a commit is decided but not yet journaled', () => {
  it('two-phase commit: the checkpoint still carries the prepared branch; after a crash RECOVER lists it and the retry commits it once', async () => {
    const live = await startBroker(join(dir.path, 'live'));
    const client = await TxClient.connect(live.port);
    const key = xaKey('decided', 'rmSnap');
    await preparedBranch(client, key, [
      { topic: 'test', partition: 0, tag: 'decided-0' },
      { topic: 'orders', partition: 2, tag: 'decided-1' },
    ]);
    const block = blockGetOrCreate(live);
    const commit: Promise<Answer> = client.tx(key, 'COMMIT_TWO_PHASE');
    await block.reached;

    const snapshot = live.transactions.snapshot();
    const carried = snapshot.prepared.some((p) => p.key === key) || snapshot.committing.some((c) => c.key === key);
    await live.transactions.checkpoint();
    crashCopy(join(dir.path, 'live'), join(dir.path, 'crashed'));
    block.release();
    assertOk(await commit, 'the live commit completes');
    client.close();

    const restarted = await startBroker(join(dir.path, 'crashed'));
    const tm = await TxClient.connect(restarted.port);
    const listed = await tm.recover('rmSnap');
    assert.deepEqual(listed, [key], 'the branch is still prepared after the crash');
    assertOk(await tm.tx(key, 'COMMIT_TWO_PHASE'), "the coordinator's retry commits it");
    tm.close();
    assertMessages(await readAll(restarted.port), { committed: ['decided-0', 'decided-1'], aborted: [], exhaustive: true }, 'after the crash');
    assert.ok(carried, 'the snapshot holds the branch (as prepared, or as a decided commit)');
  });

  it('heuristic commit: the checkpoint still carries the messages; after a crash they are applied exactly once', async () => {
    const live = await startBroker(join(dir.path, 'live'));
    const client = await TxClient.connect(live.port);
    const key = xaKey('heuristic', 'rmSnap');
    await preparedBranch(client, key, [
      { topic: 'test', partition: 1, tag: 'heur-0' },
      { topic: 'orders', partition: 0, tag: 'heur-1' },
    ]);
    client.close();
    const block = blockGetOrCreate(live);
    // The HEURISTIC record is forced before the commit reaches getOrCreate.
    const decision = live.transactions.heuristicCommit(key, 'test');
    await block.reached;

    const snapshot = live.transactions.snapshot();
    const carried = snapshot.prepared.some((p) => p.key === key) || snapshot.committing.some((c) => c.key === key);
    await live.transactions.checkpoint();
    crashCopy(join(dir.path, 'live'), join(dir.path, 'crashed'));
    block.release();
    const answer = await decision;
    assert.ok(answer.kind === 'result' && answer.code === 200, 'the live heuristic commit completes');

    const restarted = await startBroker(join(dir.path, 'crashed'));
    assert.deepEqual(
      restarted.transactions.listBranches().map((b) => [b.key, b.state]),
      [[key, 'HEURISTIC_COMMITTED']],
    );
    assertMessages(await readAll(restarted.port), { committed: ['heur-0', 'heur-1'], aborted: [], exhaustive: true }, 'heuristic commit after the crash');
    assert.ok(carried, 'the snapshot holds the messages of the heuristic commit');
  });
});
