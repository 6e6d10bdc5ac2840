/**
 * Start-up recovery of the transaction engine (transactions.md §5.6), before the broker opens
 * its port: (1) load the newest valid checkpoint; (2) replay the journal after its marker (the
 * journal itself has already cut a torn tail); (3) unprepared branches were never journaled, so
 * they are simply gone (presumed abort); (4) prepared branches come back PREPARED, without a
 * timeout, listed by RECOVER and committable; (5) commits whose APPLIED record is missing are
 * re-applied idempotently; (6) heuristic outcomes and XA tombstones are restored.
 */
import { join } from 'node:path';
import type { BrokerConfig } from '../common/config/types.js';
import type { Logger } from '../common/logger.js';
import type { MessageStoreManager } from '../store/message-store-manager.js';
import { BrokerTransaction } from './broker-transaction.js';
import { replayBatch } from './commit-applier.js';
import { groupByPartition } from './staged-message.js';
import { TxJournal } from './log/tx-journal.js';
import { loadNewestCheckpoint } from './log/tx-checkpoint.js';
import type { OutcomeTombstones } from './outcome-tombstones.js';
import { TransactionState } from './transaction-state.js';
import { StoreCorruptError } from '../common/errors.js';
import {
  decodeCommitRecord,
  decodeHeuristic,
  decodeKey,
  decodePrepare,
  decodeSnapshot,
  encodeKey,
  resolveCommit,
  TxRecordType,
  type CommitRecord,
  type HeuristicRecord,
  type PrepareRecord,
} from './tx-records.js';

/** What recovery hands to the engine. */
export interface RecoveredTransactions {
  readonly dir: string;
  readonly journal: TxJournal;
  /** Prepared and heuristic branches, ready to serve. */
  readonly branches: BrokerTransaction[];
  /** The largest message id staged in a recovered branch (the id generator must start above it). */
  readonly maxMessageId: bigint;
  readonly counts: { readonly replayedRecords: number; readonly reappliedCommits: number; readonly fromCheckpoint: boolean };
}

/** Options of {@link recoverTransactions}. */
export interface RecoverTransactionsOptions {
  readonly config: BrokerConfig;
  readonly store: MessageStoreManager;
  readonly tombstones: OutcomeTombstones;
  readonly log: Logger;
}

/** Opens the journal and rebuilds the engine's durable state. */
export async function recoverTransactions(options: RecoverTransactionsOptions): Promise<RecoveredTransactions> {
  const { config, store, tombstones, log } = options;
  const dir = join(config.system.dataLogPath, 'transactions');
  const journal = await TxJournal.open(dir, { logger: log.child({ component: 'txlog' }) });
  try {
    const prepared = new Map<string, PrepareRecord>();
    const committing = new Map<string, CommitRecord>();
    const heuristics = new Map<string, HeuristicRecord>();

    const checkpoint = await loadNewestCheckpoint(dir, { logger: log });
    if (checkpoint !== undefined) {
      const snapshot = decodeSnapshot(checkpoint.payload);
      for (const p of snapshot.prepared) prepared.set(p.key, p);
      for (const c of snapshot.committing) committing.set(c.key, c);
      for (const h of snapshot.heuristics) heuristics.set(h.key, h);
      for (const t of snapshot.tombstones) tombstones.record(t.key, t.outcome, t.at);
    }

    let replayed = 0;
    for await (const record of journal.readFrom(checkpoint?.position)) {
      replayed += 1;
      switch (record.type) {
        case TxRecordType.PREPARE: {
          const p = decodePrepare(record.payload);
          prepared.set(p.key, p);
          break;
        }
        case TxRecordType.COMMIT: {
          const decoded = decodeCommitRecord(record.payload);
          let c: CommitRecord;
          if (!('byReference' in decoded)) c = decoded;
          else {
            // The messages are in the branch's PREPARE record (tx-records.ts, CommitByReference);
            // a commit the checkpoint already carries whole needs nothing more.
            const prepare = prepared.get(decoded.key);
            const known = committing.get(decoded.key);
            if (prepare !== undefined) c = resolveCommit(decoded, prepare);
            else if (known !== undefined) c = known;
            else {
              throw new StoreCorruptError(
                `the COMMIT record of '${decoded.key}' at ${record.position.file}:${record.position.offset} refers to the branch's PREPARE record, which neither the checkpoint nor the journal holds; the transaction journal is damaged`,
              );
            }
          }
          prepared.delete(c.key);
          committing.set(c.key, c);
          break;
        }
        case TxRecordType.APPLIED: {
          const key = decodeKey(record.payload);
          const c = committing.get(key);
          committing.delete(key);
          if (c !== undefined && !c.heuristic) tombstones.record(key, 'committed');
          break;
        }
        case TxRecordType.ROLLBACK: {
          const key = decodeKey(record.payload);
          if (prepared.delete(key)) tombstones.record(key, 'rolled-back');
          break;
        }
        case TxRecordType.HEURISTIC: {
          const h = decodeHeuristic(record.payload);
          heuristics.set(h.key, h);
          if (h.outcome === 'rollback') prepared.delete(h.key);
          break;
        }
        case TxRecordType.FORGET:
          heuristics.delete(decodeKey(record.payload));
          break;
        case TxRecordType.CHECKPOINT:
          break;
        default:
          throw new Error(`unknown transaction journal record type ${record.type} at ${record.position.file}:${record.position.offset}`);
      }
    }

    // A heuristic commit whose COMMIT record never made it: its messages are only in the
    // PREPARE record. The batch cannot be in the partition yet (COMMIT precedes every append).
    for (const h of heuristics.values()) {
      const p = prepared.get(h.key);
      if (h.outcome !== 'commit' || p === undefined || committing.has(h.key)) continue;
      const batches = [];
      for (const messages of groupByPartition(p.messages).values()) {
        const first = messages[0];
        if (first === undefined) continue;
        const log = await store.getOrCreate(first.topic, first.partition);
        batches.push({ topic: first.topic, partition: first.partition, lowerBound: log.writtenOffset, messages });
      }
      committing.set(h.key, { ...p, wasPrepared: true, heuristic: true, batches });
    }

    let maxMessageId = 0n;
    let reapplied = 0;
    for (const c of committing.values()) {
      for (const batch of c.batches) for (const m of batch.messages) if (m.id > maxMessageId) maxMessageId = m.id;
      for (const batch of c.batches) {
        const outcome = await replayBatch(store, batch);
        log.info({ key: c.key, topic: batch.topic, partition: batch.partition, outcome }, 'recovery: commit batch checked');
      }
      await journal.append(TxRecordType.APPLIED, encodeKey(c.key), 'none');
      if (!c.heuristic) tombstones.record(c.key, 'committed');
      prepared.delete(c.key);
      reapplied += 1;
    }
    await journal.sync();

    const branches: BrokerTransaction[] = [];
    for (const p of prepared.values()) {
      if (heuristics.has(p.key)) continue;
      for (const m of p.messages) if (m.id > maxMessageId) maxMessageId = m.id;
      branches.push(
        new BrokerTransaction({ ...p, ownerSession: undefined, beganAt: p.preparedAt, initialState: TransactionState.PREPARED, messages: p.messages, preparedAt: p.preparedAt }),
      );
    }
    for (const h of heuristics.values()) {
      const tx = new BrokerTransaction({
        ...h,
        ownerSession: undefined,
        beganAt: h.at,
        initialState: h.outcome === 'commit' ? TransactionState.HEURISTIC_COMMITTED : TransactionState.HEURISTIC_ROLLED_BACK,
        preparedAt: h.at,
      });
      branches.push(tx);
    }
    return { dir, journal, branches, maxMessageId, counts: { replayedRecords: replayed, reappliedCommits: reapplied, fromCheckpoint: checkpoint !== undefined } };
  } catch (error) {
    await journal.close().catch(() => undefined);
    throw error;
  }
}
