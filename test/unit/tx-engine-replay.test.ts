/**
 * The commit applier's replay (src/transaction/commit-applier.ts), run at start-up for every
 * COMMIT record without its APPLIED record, against real partition logs: a batch that is absent
 * is appended; a batch fully present (at the tail or followed by later commits) is left alone;
 * a batch cut in the middle of its write (the log's own recovery drops the torn record) is cut
 * off and appended again whole. In every case each message ends up stored exactly once, and the
 * records before the batch are untouched.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { decodeRecordAt, messageChecksum, RECORD_HEADER_SIZE } from '../../src/protocol/record.js';
import type { BrokerConfig } from '../../src/common/config/types.js';
import { MessageStoreManager } from '../../src/store/message-store-manager.js';
import type { PartitionLog } from '../../src/store/partition-log.js';
import { applyBatches, replayBatch } from '../../src/transaction/commit-applier.js';
import type { CommitBatch, StagedMessage } from '../../src/transaction/staged-message.js';
import { testBrokerConfig } from '../helpers/broker-config.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
const stores: MessageStoreManager[] = [];
let nextId = 1000n;

beforeEach(async () => {
  dir = await makeTempDir('metaq-tx-replay-');
});
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await dir.remove();
});

function config(system: Record<string, string | number> = {}): BrokerConfig {
  return testBrokerConfig(dir.path, { topics: '[topic=test]\nnumPartitions=1', system: { maxSegmentSize: 16 * 1024 * 1024, ...system } });
}

async function openStore(system: Record<string, string | number> = {}): Promise<MessageStoreManager> {
  const store = await MessageStoreManager.open(config(system));
  stores.push(store);
  return store;
}

async function closeStore(store: MessageStoreManager): Promise<void> {
  stores.splice(stores.indexOf(store), 1);
  await store.close();
}

function message(tag: string, size = 0): StagedMessage {
  const data = Buffer.alloc(Math.max(size, tag.length), 0x2e);
  data.write(tag, 0);
  return { topic: 'test', partition: 0, id: nextId++, flag: 0, data, checksum: messageChecksum(data) };
}

/** A batch of `count` messages for test-0, decided at the log's current end. */
function batch(log: PartitionLog, prefix: string, count: number, size = 0): CommitBatch {
  return { topic: 'test', partition: 0, lowerBound: log.writtenOffset, messages: Array.from({ length: count }, (_, i) => message(`${prefix}-${i}`, size)) };
}

/** Every record of test-0 as `[id, offset]`, read straight from the log. */
async function records(log: PartitionLog): Promise<{ id: bigint; offset: number; tag: string }[]> {
  const out: { id: bigint; offset: number; tag: string }[] = [];
  let offset = log.minOffset;
  while (offset < log.writtenOffset) {
    const slice = await log.read(offset, 64 * 1024 * 1024);
    assert.equal(slice.kind, 'data');
    if (slice.kind !== 'data') break;
    let pos = 0;
    for (;;) {
      const r = decodeRecordAt(slice.data, pos, 256 * 1024 * 1024);
      if (typeof r === 'string') break;
      out.push({ id: r.id, offset: offset + pos, tag: r.data.subarray(0, r.data.indexOf(0x2e) === -1 ? r.data.length : r.data.indexOf(0x2e)).toString() });
      pos += r.size;
    }
    assert.ok(pos > 0);
    offset += pos;
  }
  return out;
}

function ids(b: CommitBatch): bigint[] {
  return b.messages.map((m) => m.id);
}

describe('commit replay (commit-applier.replayBatch) on a real partition log', () => {
  it('appends a batch that is absent, after the records already there', async () => {
    const store = await openStore();
    const log = await store.getOrCreate('test', 0);
    const before = batch(log, 'before', 3);
    await applyBatches(store, [before]);
    const b = batch(log, 'absent', 4);
    assert.equal(await replayBatch(store, b), 'appended');
    assert.deepEqual((await records(log)).map((r) => r.id), [...ids(before), ...ids(b)]);
  });

  it('leaves a batch that is fully present alone: at the tail, and followed by later commits', async () => {
    const store = await openStore();
    const log = await store.getOrCreate('test', 0);
    await applyBatches(store, [batch(log, 'first', 2)]);
    const b = batch(log, 'whole', 5);
    await applyBatches(store, [b]);
    const end = log.writtenOffset;
    assert.equal(await replayBatch(store, b), 'already-applied', 'at the tail');
    assert.equal(log.writtenOffset, end);
    const later = batch(log, 'later', 3);
    await applyBatches(store, [later]);
    const end2 = log.writtenOffset;
    assert.equal(await replayBatch(store, b), 'already-applied', 'followed by a later batch');
    assert.equal(await replayBatch(store, later), 'already-applied');
    assert.equal(log.writtenOffset, end2);
    const all = (await records(log)).map((r) => r.id);
    assert.equal(new Set(all).size, all.length, 'no id twice');
    assert.equal(all.length, 10);
  });

  it('finds a batch decided at an older offset behind another commit that landed first (same partition, concurrent commits)', async () => {
    const store = await openStore();
    const log = await store.getOrCreate('test', 0);
    const a = batch(log, 'a', 2);
    const b = batch(log, 'b', 2); // same lowerBound: both decided before either was appended
    await applyBatches(store, [a]);
    await applyBatches(store, [b]);
    assert.equal(await replayBatch(store, b), 'already-applied');
    assert.equal(await replayBatch(store, a), 'already-applied');
    assert.equal((await records(log)).length, 4);
  });

  it('cuts a batch torn in the middle of its write and appends it again whole', async () => {
    let store = await openStore();
    let log = await store.getOrCreate('test', 0);
    const before = batch(log, 'kept', 2);
    await applyBatches(store, [before]);
    const b = batch(log, 'torn', 4, 300);
    const [landed] = await applyBatches(store, [b]);
    assert.ok(landed !== undefined);
    await closeStore(store);
    // The crash hit the write: the first record and a half of the second reached the file.
    const segment = join(dir.path, 'test-0', '00000000000000000000.meta');
    const recordSize = RECORD_HEADER_SIZE + 300;
    fs.truncateSync(segment, landed.offset + recordSize + recordSize / 2);

    store = await openStore();
    log = await store.getOrCreate('test', 0);
    assert.deepEqual((await records(log)).map((r) => r.id), [...ids(before), b.messages[0]?.id], 'the log kept one whole record of the batch');
    assert.equal(await replayBatch(store, b), 'completed-partial');
    const after = await records(log);
    assert.deepEqual(after.map((r) => r.id), [...ids(before), ...ids(b)], 'the earlier records, then the batch once, in order');
    assert.equal(after[2]?.offset, landed.offset, 'the batch starts where it started before the crash');
    assert.equal(await replayBatch(store, b), 'already-applied', 'a second replay (crash during recovery) changes nothing');
    assert.equal((await records(log)).length, 6);
  });

  it('cuts a batch whose later records are missing entirely (a short write) and appends it whole', async () => {
    const store = await openStore();
    const log = await store.getOrCreate('test', 0);
    const b = batch(log, 'short', 5);
    // Only the first two records of the batch made it (as if the write stopped there).
    await log.appendBatch(b.messages.slice(0, 2).map((m) => ({ id: m.id, flag: m.flag, data: m.data, checksum: m.checksum })));
    assert.equal(await replayBatch(store, b), 'completed-partial');
    assert.deepEqual((await records(log)).map((r) => r.id), ids(b));
  });

  it('recognises a fully present batch whose records are larger than the 4 MiB replay read', async () => {
    const store = await openStore({ maxMessageSize: 8 * 1024 * 1024 });
    const log = await store.getOrCreate('test', 0);
    const b = batch(log, 'huge', 2, 5 * 1024 * 1024);
    await applyBatches(store, [b]);
    const end = log.writtenOffset;
    assert.equal(await replayBatch(store, b), 'already-applied');
    assert.equal(log.writtenOffset, end, 'nothing appended a second time');
    assert.deepEqual((await records(log)).map((r) => r.id), ids(b));
  });
});
