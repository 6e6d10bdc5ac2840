/**
 * The broker's transaction engine: local transactions and the XA resource manager behind the
 * `transaction` command and transactional puts (metaq-reference §1.7, §3.1; transactions.md §5.5).
 *
 * - A transactional put gets its id at once and is staged in memory; nothing reaches a
 *   partition before commit, so consumers never see uncommitted or aborted messages.
 * - PREPARE journals the branch with its messages and forces the record to disk before voting,
 *   whatever `flushTxLogAtCommit` says (an XA "yes" must survive any crash).
 * - COMMIT journals the decided batches (forced for XA; per `flushTxLogAtCommit` for local
 *   transactions), appends each partition's messages as one contiguous batch, then journals
 *   APPLIED. Replay after a crash between the two re-applies exactly what is missing.
 * - Unprepared transactions are never journaled and vanish in a crash (presumed abort); a
 *   timer rolls back those that outlive their timeout; prepared branches are never rolled back
 *   by the broker, only by the coordinator or an operator's logged heuristic decision.
 * - Finished branches leave tombstones, so repeated commits and rollbacks answer consistently.
 *
 * Rule that keeps checkpoints exact: in-memory state changes happen before the journal record
 * of the same event is handed to the journal, so a snapshot taken at any moment, together with
 * the records after its marker, describes everything.
 */
import type { BrokerConfig } from '../common/config/types.js';
import { componentLogger, type Logger } from '../common/logger.js';
import type { TransactionFrame } from '../protocol/frames.js';
import { putResultBody } from '../protocol/response-bodies.js';
import { ResultCode } from '../protocol/result-codes.js';
import { formatTransactionKey, type TransactionKey } from '../protocol/transaction-key.js';
import { prepareResultBody, recoverResultBody, timerCapacityExceededBody, XaCode } from '../protocol/transaction-bodies.js';
import type { MessageIdGenerator } from '../store/message-id.js';
import type { MessageStoreManager } from '../store/message-store-manager.js';
import type { ConnectionSession } from '../broker/commands/connection-session.js';
import { checkPut, type PutRequest } from '../broker/commands/put-command.js';
import { result, type Reply } from '../broker/commands/reply.js';
import type { TransactionHandler } from '../broker/commands/transaction-handler.js';
import type { BrokerStats } from '../broker/stats/broker-stats.js';
import { BrokerTransaction } from './broker-transaction.js';
import { applyBatches, type AppliedBatch } from './commit-applier.js';
import { crashPoint } from './crash-points.js';
import { durabilityForFlushTxLogAtCommit } from './log/journal-durability.js';
import type { TxJournal } from './log/tx-journal.js';
import { OutcomeTombstones, type Outcome } from './outcome-tombstones.js';
import { groupByPartition, type CommitBatch } from './staged-message.js';
import { TransactionCheckpointer } from './tx-checkpointer.js';
import { encodeCommit, encodeHeuristic, encodeKey, encodePrepare, TxRecordType, type CommitRecord, type EngineSnapshot } from './tx-records.js';
import { recoverTransactions, type RecoveredTransactions } from './tx-recovery.js';
import { TimeoutWheel } from './timeout-wheel.js';
import { canTimeOut, isHeuristic, isPrepared, isRecoverable, nextState, TransactionState, XA_RBROLLBACK, type TransactionEventName, type TransactionKind, type TransactionStateName } from './transaction-state.js';
import type { TransactionEngineStats } from './engine-stats.js';
import { notStarted, OK, txError, xaError } from './xa-replies.js';
import type { BrokerContext } from '../broker/commands/broker-context.js';

/** What the engine needs from the broker. */
export interface TransactionEngineOptions {
  readonly config: BrokerConfig;
  readonly store: MessageStoreManager;
  readonly ids: MessageIdGenerator;
  readonly stats: BrokerStats;
  /** The broker's command context, for the put checks shared with plain puts. */
  readonly context: () => BrokerContext;
  readonly now?: () => number;
}

/** The result of {@link TransactionEngine.recover}, handed to {@link TransactionEngine.start}. */
export interface RecoveredEngine {
  readonly recovered: RecoveredTransactions;
  readonly tombstones: OutcomeTombstones;
  readonly log: Logger;
  /** The largest message id staged in a recovered branch. */
  readonly maxMessageId: bigint;
}

/** A prepared or heuristic branch, as operators see it. */
export interface BranchSummary {
  readonly key: string;
  readonly uniqueQualifier: string | undefined;
  readonly state: TransactionStateName;
  readonly messages: number;
  /** Seconds since the branch was prepared. */
  readonly preparedAgeSeconds: number | undefined;
}

const OUTCOME_STATE: Record<Outcome, TransactionStateName> = {
  committed: TransactionState.COMMITTED,
  'read-only': TransactionState.COMMITTED,
  'rolled-back': TransactionState.ROLLED_BACK,
  'timed-out': TransactionState.TIMED_OUT,
};

/** The transaction engine of one broker. Create with {@link TransactionEngine.open}. */
export class TransactionEngine implements TransactionHandler {
  readonly #options: TransactionEngineOptions;
  readonly #journal: TxJournal;
  readonly #checkpointer: TransactionCheckpointer;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #txs = new Map<string, BrokerTransaction>();
  readonly #tombstones: OutcomeTombstones;
  readonly #wheel: TimeoutWheel;
  /** Commits whose APPLIED record is not journaled yet, by key. */
  readonly #unapplied = new Map<string, CommitRecord>();
  /** APPLIED records waiting for their batches to reach the disk. */
  readonly #recording = new Set<Promise<void>>();
  /**
   * Prepared branches whose commit (coordinator's or heuristic) is decided but not yet in
   * #unapplied: checkpoints keep carrying them as prepared, since their PREPARE record may lie
   * before the checkpoint's marker and their COMMIT record is not written yet.
   */
  readonly #decided = new Set<string>();
  readonly #localDurability;

  private constructor(options: TransactionEngineOptions, journal: TxJournal, checkpointer: TransactionCheckpointer, tombstones: OutcomeTombstones, log: Logger) {
    this.#options = options;
    this.#journal = journal;
    this.#checkpointer = checkpointer;
    this.#log = log;
    this.#now = options.now ?? Date.now;
    this.#tombstones = tombstones;
    const { system } = options.config;
    this.#localDurability = durabilityForFlushTxLogAtCommit(system.flushTxLogAtCommit);
    // MetaQ's wheel: 500 ms ticks, 512 buckets, capacity maxTxTimeoutTimerCapacity.
    this.#wheel = new TimeoutWheel({ tickMs: 500, wheelSize: 512, capacity: system.maxTxTimeoutTimerCapacity, now: this.#now });
  }

  /**
   * Recovers the engine's durable state (see tx-recovery.ts): newest valid checkpoint, replay of
   * the journal after it, re-application of commits whose batches may be missing. Returns what
   * the broker needs before it creates its id generator (staged ids must stay below new ones).
   * Must finish before the broker accepts clients.
   */
  static async recover(config: BrokerConfig, store: MessageStoreManager): Promise<RecoveredEngine> {
    const log = componentLogger('transactions', { brokerId: config.system.brokerId });
    const tombstones = new OutcomeTombstones();
    const recovered = await recoverTransactions({ config, store, tombstones, log });
    log.info({ branches: recovered.branches.length, ...recovered.counts }, 'transactions recovered');
    return { recovered, tombstones, log, maxMessageId: recovered.maxMessageId };
  }

  /** Starts serving from recovered state (timers and checkpoints included). */
  static start(options: TransactionEngineOptions, state: RecoveredEngine): TransactionEngine {
    const { recovered, tombstones, log } = state;
    const checkpointer = new TransactionCheckpointer(recovered.dir, recovered.journal, options.config.system, log, options.now);
    const engine = new TransactionEngine(options, recovered.journal, checkpointer, tombstones, log);
    for (const tx of recovered.branches) engine.#txs.set(tx.key, tx);
    engine.#wheel.start();
    checkpointer.start(() => engine.snapshot());
    return engine;
  }

  // ---------------------------------------------------------------------------------------
  // Transactional puts

  async put(request: PutRequest, key: TransactionKey, session: ConnectionSession): Promise<Reply> {
    const text = formatTransactionKey(key);
    const tx = this.#txs.get(text);
    if (tx === undefined) return this.#answerFromTombstone(key.kind, text, 'put');
    const stats = this.#options.stats;
    stats.put(request.topic, request.data.length);
    const foreign = this.#foreignSession(tx, session, 'put into');
    if (foreign !== undefined) return foreign;
    const refused = this.#refusal(tx, 'put');
    if (refused !== undefined) return refused;
    // Still IN_USE while its PREPARE record is being forced, but that record is already encoded:
    // a message staged now would be acknowledged yet missing from the branch after a crash.
    if (tx.preparing) return txError(tx.kind, XaCode.XAER_PROTO, `cannot put into '${tx.key}' while it is being prepared`);
    if (request.partition === -1) {
      stats.putFailed(request.topic);
      tx.abortReason ??= `a put to ${request.topic} named partition -1`;
      return result(ResultCode.InternalServerError, 'a transactional put must name its partition; -1 is not allowed in a transaction (the transaction can now only roll back)');
    }
    const checked = checkPut(this.#options.context(), request);
    if (!checked.ok) {
      tx.abortReason ??= `a put to ${request.topic} was refused (${replyText(checked.reply)})`;
      return checked.reply;
    }
    tx.machine.apply('put');
    const id = this.#options.ids.next();
    tx.messages.push({ topic: request.topic, partition: checked.partition, id, flag: request.flag, data: request.data, checksum: checked.checksum });
    return result(ResultCode.Success, putResultBody(id, checked.partition, -1));
  }

  // ---------------------------------------------------------------------------------------
  // The transaction command

  async command(frame: TransactionFrame, session: ConnectionSession): Promise<Reply> {
    try {
      return await this.#command(frame, session);
    } catch (error) {
      this.#log.error({ err: error, type: frame.transactionType }, 'transaction command failed');
      const message = error instanceof Error ? error.message : String(error);
      return frame.transactionKey?.kind === 'xa' ? xaError(XaCode.XAER_RMERR, message) : result(ResultCode.InternalServerError, message);
    }
  }

  async #command(frame: TransactionFrame, session: ConnectionSession): Promise<Reply> {
    if (frame.transactionType === 'RECOVER') return this.#recover(frame.uniqueQualifier);
    const key = frame.transactionKey;
    if (key === null) return result(ResultCode.InternalServerError, `transaction ${frame.transactionType} needs a transaction key`);
    const text = formatTransactionKey(key);
    if (frame.transactionType === 'BEGIN') return this.#begin(key, text, frame, session);
    const tx = this.#txs.get(text);
    switch (frame.transactionType) {
      case 'END': {
        // MetaQ's client sends END one-way and MetaQ ignores it; answering lets clients wait,
        // and for an XA branch the answer says whether it is still alive (XA_RBTIMEOUT, ...).
        if (key.kind === 'local') return OK;
        if (tx === undefined) return this.#answerFromTombstone('xa', text, 'end');
        return this.#refusal(tx, 'end') ?? OK;
      }
      case 'PREPARE':
        return tx === undefined ? this.#answerFromTombstone(key.kind, text, 'prepare') : this.#prepare(tx);
      case 'COMMIT_ONE_PHASE':
        if (tx === undefined) return this.#answerFromTombstone(key.kind, text, 'commitOnePhase');
        return this.#foreignSession(tx, session, 'commit') ?? this.#commit(tx, 'commitOnePhase');
      case 'COMMIT_TWO_PHASE':
        return tx === undefined ? this.#answerFromTombstone(key.kind, text, 'commitTwoPhase') : this.#commit(tx, 'commitTwoPhase');
      case 'ROLLBACK':
        return tx === undefined ? this.#answerFromTombstone(key.kind, text, 'rollback') : this.#rollback(tx, 'client');
      case 'FORGET':
        return tx === undefined ? this.#answerFromTombstone(key.kind, text, 'forget') : this.forget(text);
    }
  }

  #begin(key: TransactionKey, text: string, frame: TransactionFrame, session: ConnectionSession): Reply {
    if (this.#txs.has(text)) return OK; // BEGIN is idempotent (MetaQ)
    if (key.kind === 'xa' && this.#tombstones.get(text) !== undefined) {
      return xaError(XaCode.XAER_DUPID, `XA transaction '${text}' already ended; a new branch needs a new XID`);
    }
    const { system } = this.#options.config;
    // 0 = "no timeout" in MetaQ; here the broker's maximum, so an abandoned branch cannot live forever.
    const timeoutSeconds = frame.timeout > 0 ? Math.min(frame.timeout, system.maxTxTimeoutInSeconds) : system.maxTxTimeoutInSeconds;
    if (!this.#wheel.schedule(text, timeoutSeconds * 1000, (expired) => this.#timeout(expired))) {
      return txError(key.kind, XaCode.XAER_RMERR, timerCapacityExceededBody(this.#wheel.size, system.maxTxTimeoutTimerCapacity));
    }
    const tx = new BrokerTransaction({
      key: text,
      kind: key.kind,
      sessionId: frame.sessionId,
      uniqueQualifier: key.kind === 'xa' ? key.uniqueQualifier : frame.uniqueQualifier,
      ownerSession: key.kind === 'local' ? session.id : undefined,
      beganAt: this.#now(),
    });
    this.#txs.set(text, tx);
    if (key.kind === 'xa') this.#options.stats.totals.txXaBegin += 1;
    else this.#options.stats.totals.txBegin += 1;
    return OK;
  }

  /**
   * Refuses a put or commit of a LOCAL transaction that comes from another connection than the
   * one that began it (ROLLBACK is accepted from anywhere: it is what the owner's close does).
   * Why: a client that lost its connection after writing some puts may find its COMMIT sent on
   * the new connection; if the broker has not yet noticed the old one is dead, committing would
   * publish the puts that happened to arrive while the client saw them fail. The owner's close
   * rolls the transaction back; until then, the answer says so. (XA branches are broker-wide.)
   */
  #foreignSession(tx: BrokerTransaction, session: ConnectionSession, what: string): Reply | undefined {
    if (tx.kind !== 'local' || tx.ownerSession === undefined || tx.ownerSession === session.id) return undefined;
    return result(
      ResultCode.InternalServerError,
      `cannot ${what} local transaction '${tx.key}' from this connection: it was begun on another connection, and a local transaction ` +
        `belongs to its connection (it is rolled back when that connection closes); begin a new transaction on this one`,
    );
  }

  /** The error a refused event gets, or undefined when the state machine accepts it. */
  #refusal(tx: BrokerTransaction, event: TransactionEventName): Reply | undefined {
    const next = tx.machine.peek(event);
    return next.ok ? undefined : txError(tx.kind, next.xaCode, next.message);
  }

  /** Answers an event on a key that has no live branch: from its tombstone, or "not started". */
  #answerFromTombstone(kind: TransactionKind, key: string, event: TransactionEventName): Reply {
    const tombstone = this.#tombstones.get(key);
    if (tombstone === undefined) return notStarted(kind, key);
    const next = nextState(kind, OUTCOME_STATE[tombstone.outcome], event);
    if (!next.ok) return txError(kind, next.xaCode, next.message);
    if (event === 'prepare' && tombstone.outcome === 'read-only') return result(ResultCode.Success, prepareResultBody(XaCode.XA_RDONLY));
    return OK;
  }

  async #prepare(tx: BrokerTransaction): Promise<Reply> {
    const refused = this.#refusal(tx, 'prepare');
    if (refused !== undefined) return refused;
    if (tx.abortReason !== undefined) return this.#rollBackAbortOnly(tx, 'prepare', tx.abortReason);
    if (tx.machine.peek('prepare').ok && tx.state === TransactionState.ACTIVE) {
      // Nothing was sent: vote read-only, the branch is finished (XA: "has been committed").
      tx.machine.apply('prepare');
      this.#finish(tx, 'read-only');
      return result(ResultCode.Success, prepareResultBody(XaCode.XA_RDONLY));
    }
    crashPoint('prepare.before-log');
    const preparedAt = this.#now();
    tx.preparing = true;
    tx.preparedAt = preparedAt;
    this.#wheel.cancel(tx.key); // a prepared branch never times out
    await this.#journal.append(TxRecordType.PREPARE, encodePrepare({ ...identity(tx), preparedAt, messages: tx.messages }), 'sync');
    crashPoint('prepare.after-log');
    tx.machine.apply('prepare');
    tx.preparing = false;
    crashPoint('prepare.before-answer');
    return result(ResultCode.Success, prepareResultBody(XaCode.XA_OK));
  }

  async #commit(tx: BrokerTransaction, event: 'commitOnePhase' | 'commitTwoPhase'): Promise<Reply> {
    const next = tx.machine.peek(event);
    if (!next.ok) return txError(tx.kind, next.xaCode, next.message);
    if (next.outcome === 'DUPLICATE') {
      await tx.committing;
      return OK;
    }
    const wasPrepared = tx.state === TransactionState.PREPARED;
    if (!wasPrepared && tx.abortReason !== undefined) return this.#rollBackAbortOnly(tx, 'commit', tx.abortReason);
    tx.machine.apply(event);
    this.#wheel.cancel(tx.key);
    if (tx.state === TransactionState.COMMITTED) {
      // Nothing was staged.
      this.#finish(tx, 'committed');
      this.#options.stats.totals.txCommit += 1;
      return OK;
    }
    if (wasPrepared) this.#decided.add(tx.key);
    tx.committing = this.#applyCommit(tx, wasPrepared, false);
    try {
      await tx.committing;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (this.#journal.failure !== undefined) {
        // The COMMIT record itself may or may not have reached the disk: only the restart knows.
        this.#log.error({ err: error, key: tx.key }, 'commit could not be made durable; the restart decides its outcome');
        return txError(
          tx.kind,
          XaCode.XAER_RMERR,
          `commit of '${tx.key}' could not be made durable (${reason}): the transaction journal failed and the broker refuses transaction work until it is restarted; ` +
            `the restart decides: committed if the commit record reached the disk, rolled back otherwise`,
        );
      }
      this.#log.error({ err: error, key: tx.key }, 'commit decided but not applied; a restart completes it');
      return txError(tx.kind, XaCode.XAER_RMERR, `commit of '${tx.key}' is recorded but applying it failed (${reason}); restart the broker to complete it`);
    }
    this.#options.stats.totals.txCommit += 1;
    crashPoint('commit.before-answer');
    return OK;
  }

  /**
   * Journals the decided batches and appends them, then finishes the branch; the APPLIED record
   * follows once the batches are on disk (see #recordApplied).
   *
   * Order: the COMMIT record is written (for XA: forced) BEFORE any append. Otherwise a crash
   * between two partitions' appends could leave part of a transaction visible with no record
   * from which to complete it, and for XA the appended batches would come back as a prepared
   * branch and be appended again at the coordinator's retry. (Overlapping the record with the
   * appends for local transactions was tried and broke atomicity exactly that way.)
   */
  async #applyCommit(tx: BrokerTransaction, wasPrepared: boolean, heuristic: boolean): Promise<void> {
    const batches: CommitBatch[] = [];
    for (const messages of groupByPartition(tx.messages).values()) {
      const first = messages[0];
      if (first === undefined) continue;
      const log = await this.#options.store.getOrCreate(first.topic, first.partition);
      batches.push({ topic: first.topic, partition: first.partition, lowerBound: log.writtenOffset, messages });
    }
    tx.batches = batches;
    const record: CommitRecord = { ...identity(tx), wasPrepared, heuristic, batches };
    // From here until APPLIED is journaled, checkpoints must carry this commit.
    this.#unapplied.set(tx.key, record);
    this.#decided.delete(tx.key);
    crashPoint('commit.before-log');
    const journaled = this.#journal
      .append(TxRecordType.COMMIT, encodeCommit(record, { byReference: wasPrepared }), tx.kind === 'xa' || heuristic ? 'sync' : this.#localDurability)
      .then(() => crashPoint('commit.after-log'));
    await journaled;
    const applied: AppliedBatch[] = await applyBatches(this.#options.store, batches);
    crashPoint('commit.after-append');
    const recording = this.#recordApplied(tx.key, applied);
    this.#recording.add(recording);
    void recording.finally(() => this.#recording.delete(recording));
    if (!heuristic) {
      tx.machine.apply('commitApplied');
      this.#finish(tx, 'committed');
    }
  }

  /**
   * Journals APPLIED once every batch of the commit is on disk. The record lets a replay skip
   * the batches, so it must never reach the disk before they do (with unflushThreshold > 0 the
   * batches are only in the page cache when the commit is answered).
   */
  async #recordApplied(key: string, applied: readonly AppliedBatch[]): Promise<void> {
    try {
      await Promise.all(applied.map((a) => this.#options.store.get(a.topic, a.partition)?.whenDurable(a.offset + a.length)));
      await this.#journal.append(TxRecordType.APPLIED, encodeKey(key), 'none');
      crashPoint('commit.after-applied');
      this.#unapplied.delete(key);
    } catch (error) {
      // The commit stays in checkpoints; a restart re-checks its batches.
      this.#log.warn({ err: error, key }, 'could not record a commit as applied; replay will re-check it');
    }
  }

  async #rollback(tx: BrokerTransaction, reason: 'client' | 'connection-closed' | 'abort-only'): Promise<Reply> {
    const next = tx.machine.peek('rollback');
    if (!next.ok) return txError(tx.kind, next.xaCode, next.message);
    if (next.outcome === 'DUPLICATE') return OK;
    const wasPrepared = tx.state === TransactionState.PREPARED || tx.preparing;
    tx.machine.apply('rollback');
    this.#wheel.cancel(tx.key);
    this.#finish(tx, 'rolled-back');
    this.#options.stats.totals.txRollback += 1;
    // Only a prepared branch is on disk; an unprepared one vanishes with its memory.
    if (wasPrepared) await this.#journal.append(TxRecordType.ROLLBACK, encodeKey(tx.key), 'none');
    crashPoint('rollback.after-log');
    if (reason !== 'client') this.#log.info({ key: tx.key, reason }, 'transaction rolled back');
    return OK;
  }

  /**
   * Rolls back a transaction in which a put was refused, answering its COMMIT_ONE_PHASE or
   * PREPARE with why: XA_RBROLLBACK for a branch; for a local transaction the broker's usual
   * "in state ROLLED_BACK" refusal, which clients (ours and MetaQ's) read as "rolled back".
   */
  async #rollBackAbortOnly(tx: BrokerTransaction, what: 'commit' | 'prepare', reason: string): Promise<Reply> {
    await this.#rollback(tx, 'abort-only');
    const message = `cannot ${what} ${tx.kind === 'xa' ? 'an XA' : 'a local'} transaction in state ${TransactionState.ROLLED_BACK}: ${reason}, so the whole transaction was rolled back (a transaction commits all its messages or none)`;
    return txError(tx.kind, XA_RBROLLBACK, message);
  }

  #timeout(key: string): void {
    const tx = this.#txs.get(key);
    if (tx === undefined || !tx.machine.peek('timeout').ok) return;
    tx.machine.apply('timeout');
    if (tx.state !== TransactionState.TIMED_OUT) return;
    this.#finish(tx, 'timed-out');
    this.#options.stats.totals.txRollback += 1;
    this.#log.warn({ key, ageMs: this.#now() - tx.beganAt }, 'transaction timed out before prepare; rolled back');
  }

  #recover(uniqueQualifier: string | undefined): Reply {
    const keys: string[] = [];
    for (const tx of this.#txs.values()) {
      if (tx.kind !== 'xa' || !isRecoverable(tx.state)) continue;
      if (uniqueQualifier !== undefined && uniqueQualifier !== '' && tx.uniqueQualifier !== uniqueQualifier) continue;
      keys.push(tx.key);
    }
    return result(ResultCode.Success, recoverResultBody(keys));
  }

  /** Removes a finished branch, disarms its timeout (a read-only vote skips the other cancels) and remembers its outcome. */
  #finish(tx: BrokerTransaction, outcome: Outcome): void {
    this.#txs.delete(tx.key);
    this.#wheel.cancel(tx.key);
    this.#tombstones.record(tx.key, outcome);
  }

  sessionClosed(session: ConnectionSession): void {
    for (const tx of [...this.#txs.values()]) {
      if (tx.kind === 'local' && tx.ownerSession === session.id && (tx.state === TransactionState.ACTIVE || tx.state === TransactionState.IN_USE)) {
        void this.#rollback(tx, 'connection-closed');
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Operator actions (HTTP admin routes, `metaq tx ...`)

  /** Branches, timeouts, journal and checkpoints at this moment (see engine-stats.ts). */
  stats(): TransactionEngineStats {
    const now = this.#now();
    const active = { local: 0, xa: 0 };
    let prepared = 0;
    let heuristic = 0;
    let oldestPreparedAt: number | undefined;
    for (const tx of this.#txs.values()) {
      if (canTimeOut(tx.state)) active[tx.kind] += 1;
      else if (isPrepared(tx.state)) {
        prepared += 1;
        if (tx.preparedAt !== undefined && (oldestPreparedAt === undefined || tx.preparedAt < oldestPreparedAt)) oldestPreparedAt = tx.preparedAt;
      } else if (isHeuristic(tx.state)) heuristic += 1;
    }
    const journal = this.#journal;
    const lastSync = journal.lastSyncLatencyMs;
    return {
      flushTxLogAtCommit: this.#options.config.system.flushTxLogAtCommit,
      active,
      prepared,
      oldestPreparedAgeSeconds: oldestPreparedAt === undefined ? null : Math.max(0, Math.floor((now - oldestPreparedAt) / 1000)),
      heuristic,
      commitsNotApplied: this.#unapplied.size,
      timeouts: { armed: this.#wheel.size, capacity: this.#options.config.system.maxTxTimeoutTimerCapacity },
      journal: {
        records: journal.appendCount,
        forcedRecords: journal.forcedAppendCount,
        syncs: journal.syncCount,
        forcedRecordsPerSync: journal.syncCount === 0 ? null : Math.round((journal.forcedAppendCount / journal.syncCount) * 100) / 100,
        bytesWritten: journal.bytesWritten,
        lastSyncMs: lastSync === undefined ? null : Math.round(lastSync * 1000) / 1000,
        files: journal.fileCount,
        failure: journal.failure?.message ?? null,
      },
      checkpoints: this.#checkpointer.stats(),
    };
  }

  /** Prepared and heuristic branches, oldest first. */
  listBranches(): BranchSummary[] {
    const now = this.#now();
    return [...this.#txs.values()]
      .filter((tx) => isRecoverable(tx.state))
      .sort((a, b) => (a.preparedAt ?? 0) - (b.preparedAt ?? 0))
      .map((tx) => ({
        key: tx.key,
        uniqueQualifier: tx.uniqueQualifier,
        state: tx.state,
        messages: tx.messages.length,
        preparedAgeSeconds: tx.preparedAt === undefined ? undefined : Math.floor((now - tx.preparedAt) / 1000),
      }));
  }

  /** Heuristically commits a prepared branch: its messages are applied; the TM later gets XA_HEURCOM until FORGET. */
  async heuristicCommit(key: string, reason: string): Promise<Reply> {
    return this.#heuristic(key, 'commit', reason);
  }

  /** Heuristically rolls back a prepared branch; the TM later gets XA_HEURRB until FORGET. */
  async heuristicRollback(key: string, reason: string): Promise<Reply> {
    return this.#heuristic(key, 'rollback', reason);
  }

  async #heuristic(key: string, outcome: 'commit' | 'rollback', reason: string): Promise<Reply> {
    const tx = this.#txs.get(key);
    if (tx === undefined) return xaError(XaCode.XAER_NOTA, `no prepared branch '${key}'`);
    const event = outcome === 'commit' ? 'heuristicCommit' : 'heuristicRollback';
    const refused = this.#refusal(tx, event);
    if (refused !== undefined) return refused;
    tx.machine.apply(event);
    if (outcome === 'commit') this.#decided.add(tx.key);
    await this.#journal.append(TxRecordType.HEURISTIC, encodeHeuristic({ ...identity(tx), outcome, at: this.#now() }), 'sync');
    if (outcome === 'commit') await this.#applyCommit(tx, true, true);
    this.#log.warn({ key, outcome, reason }, 'heuristic decision recorded by an operator');
    return OK;
  }

  /** FORGET of a heuristic branch (by the TM or an operator). */
  async forget(key: string): Promise<Reply> {
    const tx = this.#txs.get(key);
    if (tx === undefined) return xaError(XaCode.XAER_NOTA, `no heuristic branch '${key}'`);
    const refused = this.#refusal(tx, 'forget');
    if (refused !== undefined) return refused;
    tx.machine.apply('forget');
    this.#txs.delete(key);
    await this.#journal.append(TxRecordType.FORGET, encodeKey(key), 'sync');
    return OK;
  }

  /** Live transactions by state, for stats and metrics. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const tx of this.#txs.values()) counts[tx.state] = (counts[tx.state] ?? 0) + 1;
    return counts;
  }

  // ---------------------------------------------------------------------------------------
  // Checkpoints and shutdown

  /** What a checkpoint must remember; taken synchronously (see the rule at the top). */
  snapshot(): EngineSnapshot {
    const prepared = [];
    const heuristics = [];
    for (const tx of this.#txs.values()) {
      const id = identity(tx);
      if (tx.state === TransactionState.PREPARED || tx.preparing || this.#decided.has(tx.key)) {
        prepared.push({ ...id, preparedAt: tx.preparedAt ?? this.#now(), messages: tx.messages });
      }
      if (tx.state === TransactionState.HEURISTIC_COMMITTED || tx.state === TransactionState.HEURISTIC_ROLLED_BACK) {
        const outcome = tx.state === TransactionState.HEURISTIC_COMMITTED ? ('commit' as const) : ('rollback' as const);
        heuristics.push({ ...id, outcome, at: tx.preparedAt ?? 0 });
      }
    }
    const committing = [...this.#unapplied.values()];
    return { prepared, committing, heuristics, tombstones: this.#tombstones.all() };
  }

  /** Writes a checkpoint now (tests and shutdown). */
  checkpoint(): Promise<void> {
    return this.#checkpointer.checkpoint(this.snapshot());
  }

  /**
   * Stops timers, lets pending APPLIED records go out (flushing the partitions they wait for),
   * writes a final checkpoint and closes the journal. The caller closes the store afterwards.
   */
  async close(): Promise<void> {
    this.#wheel.stop();
    this.#checkpointer.stop();
    if (this.#recording.size > 0) {
      await this.#options.store.flushAll().catch((error: unknown) => this.#log.warn({ err: error }, 'flushing partitions at shutdown failed'));
      await Promise.allSettled([...this.#recording]);
    }
    await this.checkpoint().catch((error: unknown) => this.#log.warn({ err: error }, 'final checkpoint failed; the journal will be replayed at start-up'));
    await this.#journal.close();
  }
}

function identity(tx: BrokerTransaction): { key: string; kind: TransactionKind; sessionId: string; uniqueQualifier: string | undefined } {
  return { key: tx.key, kind: tx.kind, sessionId: tx.sessionId, uniqueQualifier: tx.uniqueQualifier };
}

/** The text of an error reply, for a log line or another reply. */
function replyText(reply: Reply): string {
  if (reply.kind === 'result' && typeof reply.body === 'string' && reply.body !== '') return reply.body;
  return `code ${reply.kind === 'result' ? reply.code : 200}`;
}
