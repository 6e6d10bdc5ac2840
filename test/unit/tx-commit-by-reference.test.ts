/**
 * The COMMIT record of a prepared branch refers to its PREPARE record for the messages instead of
 * repeating them (tx-records.ts, CommitByReference): the codec, the resolution against the
 * PREPARE record, and start-up recovery from a journal that holds such records (the messages come
 * back from the PREPARE record, or from the checkpoint; a reference to nothing refuses the start).
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { InvalidArgumentError, StoreCorruptError } from '../../src/common/errors.js';
import { componentLogger } from '../../src/common/logger.js';
import { decodeRecordAt, messageChecksum } from '../../src/protocol/record.js';
import { MessageStoreManager } from '../../src/store/message-store-manager.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { OutcomeTombstones } from '../../src/transaction/outcome-tombstones.js';
import { groupByPartition, type StagedMessage } from '../../src/transaction/staged-message.js';
import { recoverTransactions } from '../../src/transaction/tx-recovery.js';
import {
  decodeCommit,
  decodeCommitRecord,
  encodeCommit,
  encodeKey,
  encodePrepare,
  resolveCommit,
  TxRecordType,
  type CommitRecord,
  type PrepareRecord,
} from '../../src/transaction/tx-records.js';
import { testBrokerConfig } from '../helpers/broker-config.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let nextId = 5000n;

function message(topic: string, partition: number, size: number): StagedMessage {
  const data = Buffer.alloc(size, Number(nextId % 200n));
  return { topic, partition, id: nextId++, flag: 0, data, checksum: messageChecksum(data) };
}

const identity = { key: 'XID:1:6161:6231:rm-ref', kind: 'xa' as const, sessionId: 'session-ref', uniqueQualifier: 'rm-ref' };

/** A prepared branch with messages to two partitions, interleaved, and its commit as the engine builds it. */
function preparedBranch(size = 64 * 1024): { prepare: PrepareRecord; commit: CommitRecord } {
  const messages = [message('test', 0, size), message('test', 1, size), message('test', 0, size)];
  const prepare: PrepareRecord = { ...identity, preparedAt: 1_700_000_000_000, messages };
  const batches = [...groupByPartition(messages).values()].map((group, i) => ({ topic: 'test', partition: group[0]?.partition ?? -1, lowerBound: 100 * i, messages: group }));
  return { prepare, commit: { ...identity, wasPrepared: true, heuristic: false, batches } };
}

describe('COMMIT records by reference to the PREPARE record', () => {
  it('carry no message bytes, decode as a reference and resolve to the very commit that was encoded', () => {
    const { prepare, commit } = preparedBranch();
    const whole = encodeCommit(commit);
    const reference = encodeCommit(commit, { byReference: true });
    assert.ok(whole.length > 3 * 64 * 1024, `the whole record holds the messages (${whole.length} bytes)`);
    assert.ok(reference.length < 200, `the reference holds none (${reference.length} bytes)`);
    const decoded = decodeCommitRecord(reference);
    assert.ok('byReference' in decoded);
    assert.deepEqual(
      decoded.batches.map((b) => [b.topic, b.partition, b.lowerBound, b.count]),
      [
        ['test', 0, 0, 2],
        ['test', 1, 100, 1],
      ],
    );
    assert.deepEqual(resolveCommit(decoded, prepare), commit);
    assert.deepEqual(decodeCommitRecord(whole), commit, 'the whole form is unchanged');
    const heuristic = decodeCommitRecord(encodeCommit({ ...commit, heuristic: true }, { byReference: true }));
    assert.ok('byReference' in heuristic && heuristic.heuristic);
  });

  it('are refused for a branch that was not prepared, in checkpoints, and against a PREPARE record that does not match', () => {
    const { prepare, commit } = preparedBranch(16);
    assert.throws(() => encodeCommit({ ...commit, wasPrepared: false }, { byReference: true }), InvalidArgumentError);
    assert.throws(() => decodeCommit(encodeCommit(commit, { byReference: true })), StoreCorruptError, 'a checkpoint must carry the messages');
    const decoded = decodeCommitRecord(encodeCommit(commit, { byReference: true }));
    assert.ok('byReference' in decoded);
    assert.throws(() => resolveCommit(decoded, { ...prepare, messages: prepare.messages.slice(0, 2) }), /does not match its PREPARE record/);
    assert.throws(() => resolveCommit(decoded, { ...prepare, messages: prepare.messages.slice(1) }), StoreCorruptError);
  });
});

describe('recovery of COMMIT records by reference', () => {
  let dir: { path: string; remove: () => Promise<void> };
  beforeEach(async () => {
    dir = await makeTempDir('metaq-commit-ref-');
  });
  afterEach(async () => {
    await dir.remove();
  });

  /** Writes `records` to the broker's journal, then runs start-up recovery; returns the ids found in each partition. */
  async function recoverFrom(records: readonly [number, Buffer][]): Promise<Map<number, bigint[]>> {
    const config = testBrokerConfig(dir.path, { topics: '[topic=test]\nnumPartitions=2' });
    const journal = await TxJournal.open(join(config.system.dataLogPath, 'transactions'));
    for (const [type, payload] of records) await journal.append(type, payload, 'sync');
    await journal.close();
    const store = await MessageStoreManager.open(config);
    try {
      const recovered = await recoverTransactions({ config, store, tombstones: new OutcomeTombstones(), log: componentLogger('test') });
      await recovered.journal.close();
      assert.equal(recovered.branches.length, 0, 'the committed branch is not listed as prepared');
      const found = new Map<number, bigint[]>();
      for (const partition of [0, 1]) {
        const log = await store.getOrCreate('test', partition);
        const slice = await log.read(log.minOffset, 1024 * 1024);
        const ids: bigint[] = [];
        if (slice.kind === 'data') {
          for (let pos = 0; ; ) {
            const r = decodeRecordAt(slice.data, pos, 1024 * 1024);
            if (typeof r === 'string') break;
            ids.push(r.id);
            pos += r.size;
          }
        }
        found.set(partition, ids);
      }
      return found;
    } finally {
      await store.close();
    }
  }

  it('re-applies a commit whose messages are in the PREPARE record before it', async () => {
    const { prepare, commit } = preparedBranch(100);
    const found = await recoverFrom([
      [TxRecordType.PREPARE, encodePrepare(prepare)],
      [TxRecordType.COMMIT, encodeCommit({ ...commit, batches: commit.batches.map((b) => ({ ...b, lowerBound: 0 })) }, { byReference: true })],
    ]);
    const ids = prepare.messages.map((m) => m.id);
    assert.deepEqual(found.get(0), [ids[0], ids[2]]);
    assert.deepEqual(found.get(1), [ids[1]]);
  });

  it('leaves an applied commit alone and refuses to start on a reference to a PREPARE record it does not have', async () => {
    const { prepare, commit } = preparedBranch(100);
    const applied = await recoverFrom([
      [TxRecordType.PREPARE, encodePrepare(prepare)],
      [TxRecordType.COMMIT, encodeCommit({ ...commit, batches: commit.batches.map((b) => ({ ...b, lowerBound: 0 })) }, { byReference: true })],
      [TxRecordType.APPLIED, encodeKey(commit.key)],
    ]);
    assert.deepEqual(applied.get(0), [], 'APPLIED: replay skips it (nothing was appended before the crash in this journal)');
    await dir.remove();
    dir = await makeTempDir('metaq-commit-ref-');
    await assert.rejects(recoverFrom([[TxRecordType.COMMIT, encodeCommit(commit, { byReference: true })]]), (error: unknown) => {
      assert.ok(error instanceof StoreCorruptError);
      assert.match(error.message, /COMMIT record of 'XID:1:6161:6231:rm-ref' at 1:\d+ refers to the branch's PREPARE record, which neither the checkpoint nor the journal holds/);
      return true;
    });
  });
});
