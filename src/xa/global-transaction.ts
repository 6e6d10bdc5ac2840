/**
 * One global transaction of the transaction manager (transactions.md §5.4): its branches, its
 * state machine (global-transaction-states.ts), its timeout, and the commit protocol.
 *
 * Commit, step by step:
 * 1. wait for the enlistments and sends still in flight; `end` every branch;
 * 2. branches without work are rolled back (releases a PostgreSQL connection, an empty broker
 *    branch) and take no further part;
 * 3. none left: done. Exactly one: commit it in one phase, no log record (Bitronix);
 * 4. otherwise prepare all (in parallel); any "no" vote, XA_RB* or error rolls every branch back
 *    (prepared ones through their resource's `rollbackPrepared`) and rejects with
 *    `TransactionRolledBackError`. Read-only votes drop out; if none voted "ok", done, no record;
 * 5. force COMMITTING (the decision). If the log refuses (recovery claimed the gtrid) or fails,
 *    roll back (presumed abort) and reject;
 * 6. phase two in parallel, retried with back-off until every participant answered
 *    (phase-two.ts); then END, unforced.
 *
 * Decision-row mode (transactions.md §5.1): when a branch with work is a last resource (a
 * PostgreSQL resource in mode `decision-row`), steps 4–5 become: prepare the others, then commit
 * the last resource one-phase with the decision row in its transaction — that commit is the
 * decision, nothing is forced into the coordinator log — then phase two on the others
 * (decision-row.ts). Recovery reads the row (recovery.ts).
 *
 * When `commit()` resolves: once the decision is durable AND phase two finished — or, when phase
 * two takes longer than the manager's `phaseTwoWaitMs` (a participant is down), after that wait,
 * with `completed: false` while phase two goes on in the background (the decision is durable, so
 * the outcome is settled; a crash only hands the rest to recovery). With the manager's
 * `phaseTwo: 'background'`, at once after the decision, with `completed: false`. Heuristic outcomes contrary
 * to the decision reject with `TransactionHeuristicError`; heuristic outcomes that agree with it
 * are listed in the result.
 */
import { IllegalStateError, TransactionHeuristicError, TransactionOutcomeUnknownError, TransactionRolledBackError, XaError } from '../common/errors.js';
import type { SendOptions } from '../client/producer/producer.js';
import type { Message, SendResult } from '../client/message.js';
import { StateMachine, type TransitionListener } from '../client/transaction/state-machine.js';
import { isHeuristicCode, isRollbackCode, XaCode } from '../client/transaction/xa-codes.js';
import { describeXid } from '../client/transaction/xid.js';
import { isBrokerResourceId, type BrokerBranch, type BrokerResource, type XaCapableProducer } from './broker-resource.js';
import type { CoordinatorContext } from './coordinator-context.js';
import { crashOrder, xaCrashPoint, xaDelayPoint } from './crash-points.js';
import { completeByDecisionRow } from './decision-row.js';
import {
  GLOBAL_TRANSITIONS,
  GlobalTransactionState,
  globalTransactionRefusal,
  type GlobalTransactionEventName,
  type GlobalTransactionStateName,
} from './global-transaction-states.js';
import type { BeginOptions, CommitResult, EnlistedBranchInfo, GlobalTransaction, PostgresTarget, TransactionOutcome } from './global-transaction-api.js';
import { runPhaseTwo, type HeuristicOutcome, type PhaseTwoResult, type PhaseTwoTarget } from './phase-two.js';
import type { PostgresBranch, PostgresResource } from './postgres/index.js';
import { isDecisionKeeper, isLastResourceBranch, type Branch, type EnlistableResource, type LastResourceBranch, type RecordedDecision, type RecoverableResource } from './resource.js';
import { branchXid, gtridHex, METAQ_TM_FORMAT_ID, type Xid } from './xid.js';
import { waitAtMost } from './wait-at-most.js';
import { InFlight } from '../common/in-flight.js';

/**
 * Seconds added to the transaction timeout for the broker's branch timeout: the broker must not
 * roll back an unprepared branch while a commit that started just before the manager's own
 * timeout is still ending and preparing it.
 */
export const BROKER_TIMEOUT_MARGIN_SECONDS = 10;

/** When `commit()` resolves: after phase two (`await`) or once the decision is durable (`background`). */
export type PhaseTwoMode = 'await' | 'background';

/** What a transaction needs from its manager. */
export interface GlobalTransactionHost {
  readonly ctx: CoordinatorContext;
  /** How long `commit()` waits for phase two before resolving with `completed: false`. */
  readonly phaseTwoWaitMs: number;
  /** `background`: `commit()` does not wait for phase two at all (TransactionManagerOptions.phaseTwo). */
  readonly phaseTwo: PhaseTwoMode;
  /** The broker resource of `producer` (registered, or created and registered now). */
  brokerResourceFor(producer: XaCapableProducer): BrokerResource;
  /** The registered PostgreSQL resource of `target`. @throws IllegalStateError when there is none. */
  postgresResourceFor(target: PostgresTarget): PostgresResource;
  /** Registers a resource enlisted without being registered (warns). */
  adopt(resource: RecoverableResource): void;
  /** Registers the phase two of a decided transaction, so recovery leaves it alone and `close()` can wait. */
  track(gtridHex: string, work: Promise<unknown>): void;
  /** The transaction ended (or was handed to an operator): it is no longer in flight. */
  ended(tx: GlobalTransactionImpl): void;
}

interface Enlistment {
  readonly resource: EnlistableResource;
  readonly xid: Xid;
  readonly begun: Promise<Branch>;
  branch: Branch | undefined;
}

type PrepareStatus = 'ok' | 'read-only' | 'rolled-back' | 'uncertain' | 'not-asked';

interface Prepared {
  readonly enlistment: Enlistment & { readonly branch: Branch };
  status: PrepareStatus;
  error?: unknown;
}

/** The implementation of {@link GlobalTransaction}; created by the manager. */
export class GlobalTransactionImpl implements GlobalTransaction {
  readonly gtrid: Buffer;
  readonly gtridHex: string;
  readonly xid: Xid;
  readonly startedAtMs: number;
  readonly timeoutMs: number;
  readonly #host: GlobalTransactionHost;
  readonly #machine: StateMachine<GlobalTransactionStateName, GlobalTransactionEventName>;
  readonly #enlistments = new Map<string, Enlistment>();
  /** Enlistments and sends until they settle (a send: until its answer). */
  readonly #operations = new InFlight();
  /** Enlistments until they settle, and sends until they are handed to their branch (see #commit). */
  readonly #issuing = new InFlight();
  #nextBranch = 0;
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;
  #outcome: TransactionOutcome | undefined;
  #rollingBack: Promise<void> | undefined;
  /** Sends that rejected, and the first one's error: the commit rolls back instead (see #commit). */
  #failedSends = 0;
  #firstFailedSend: unknown;

  constructor(host: GlobalTransactionHost, gtrid: Buffer, startedAtMs: number, timeoutMs: number) {
    this.#host = host;
    this.gtrid = gtrid;
    this.gtridHex = gtridHex(gtrid);
    this.xid = Object.freeze({ formatId: METAQ_TM_FORMAT_ID, globalTransactionId: gtrid, branchQualifier: Buffer.alloc(0) });
    this.startedAtMs = startedAtMs;
    this.timeoutMs = timeoutMs;
    this.#machine = new StateMachine(GLOBAL_TRANSITIONS, GlobalTransactionState.ACTIVE, globalTransactionRefusal(this.gtridHex));
    this.#timer = setTimeout(() => this.#onTimeout(), timeoutMs);
    this.#timer.unref();
  }

  get state(): GlobalTransactionStateName {
    return this.#machine.state;
  }

  get outcome(): TransactionOutcome | undefined {
    return this.#outcome;
  }

  get timedOut(): boolean {
    return this.#timedOut;
  }

  onTransition(listener: TransitionListener<GlobalTransactionStateName, GlobalTransactionEventName>): () => void {
    return this.#machine.onTransition(listener);
  }

  branches(): EnlistedBranchInfo[] {
    return [...this.#enlistments.values()].map((e) => ({ resourceId: e.resource.resourceId, xid: describeXid(e.xid), hasWork: e.branch?.hasWork }));
  }

  // -------------------------------------------------------------------------------------------
  // Work phase

  enlist<B extends Branch>(resource: EnlistableResource<B>): Promise<B> {
    try {
      this.#requireActive('enlist a resource');
    } catch (error) {
      return Promise.reject(error);
    }
    const existing = this.#enlistments.get(resource.resourceId);
    if (existing !== undefined) return existing.begun as Promise<B>;
    this.#host.adopt(resource);
    const xid = branchXid(this.gtrid, this.#nextBranch++);
    const timeoutSeconds = Math.ceil(this.timeoutMs / 1000) + BROKER_TIMEOUT_MARGIN_SECONDS;
    let beginning: Promise<B>;
    try {
      beginning = resource.begin(xid, timeoutSeconds);
    } catch (error) {
      return Promise.reject(error);
    }
    const begun = beginning.then(
      (branch) => {
        enlistment.branch = branch;
        // A rollback (or timeout) that began meanwhile waits for this begin and then rolls it back.
        // A commit that began meanwhile waits for it too, and includes the branch (see #commit).
        this.#requireNotAborted('enlist a resource');
        return branch;
      },
      (error: unknown) => {
        // No branch was started: a later enlist of the same resource may try again (new XID).
        if (this.#enlistments.get(resource.resourceId) === enlistment) this.#enlistments.delete(resource.resourceId);
        throw error;
      },
    );
    const enlistment: Enlistment = { resource, xid, begun, branch: undefined };
    this.#enlistments.set(resource.resourceId, enlistment);
    this.#operations.add(begun);
    this.#issuing.add(begun);
    return begun;
  }

  enlistPostgres(target: PostgresTarget): Promise<PostgresBranch> {
    let resource: PostgresResource;
    try {
      resource = this.#host.postgresResourceFor(target);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.enlist(resource);
  }

  send(producer: XaCapableProducer, message: Message, options?: SendOptions): Promise<SendResult> {
    let resource: BrokerResource;
    try {
      this.#requireActive('send');
      resource = this.#host.brokerResourceFor(producer);
    } catch (error) {
      return Promise.reject(error);
    }
    const enlisted = this.enlist<BrokerBranch>(resource);
    const sending = enlisted.then((branch) => {
      // Not #requireActive: a commit called right after this send (not awaited) has begun, and it
      // waits for this send to reach its branch (see #commit). Only a rollback refuses it.
      this.#requireNotAborted('send');
      return branch.send(message, options);
    });
    // Registered before the reaction of #operations, so it has run when the commit's wait for
    // the operations ends.
    sending.catch((error: unknown) => {
      this.#failedSends += 1;
      if (this.#failedSends === 1) this.#firstFailedSend = error;
    });
    this.#operations.add(sending);
    // Added after `sending`'s reaction on `enlisted`, so it settles once branch.send was called.
    this.#issuing.add(enlisted);
    return sending;
  }

  /**
   * After the votes, before the decision: waits for the sends' answers (they came before the
   * prepare's, on the same connection) and tells whether one failed.
   */
  async #aSendFailed(): Promise<boolean> {
    await this.#operations.settled();
    return this.#failedSends > 0;
  }

  /** Rolls back because a send failed (all the sends or none); the cause is the first failed send's error. */
  #abortForFailedSends(prepared: readonly Prepared[]): Promise<never> {
    return this.#abort(prepared, this.#firstFailedSend, `${this.#failedSends} send(s) of the transaction failed, and a transaction commits all its sends or none`);
  }

  #requireActive(what: string): void {
    const state = this.#machine.state;
    if (state === GlobalTransactionState.ACTIVE) return;
    this.#requireNotAborted(what);
    throw new IllegalStateError(`cannot ${what}: global transaction ${this.gtridHex} is ${state}; only an ACTIVE transaction accepts work`);
  }

  /** Throws when a rollback (or timeout) began. */
  #requireNotAborted(what: string): void {
    const state = this.#machine.state;
    if (this.#timedOut) {
      throw new TransactionRolledBackError(this.gtridHex, `cannot ${what}: global transaction ${this.gtridHex} timed out after ${this.timeoutMs} ms and was rolled back`);
    }
    if (state === GlobalTransactionState.ABORTING || this.#outcome === 'rolled-back') {
      throw new TransactionRolledBackError(this.gtridHex, `cannot ${what}: global transaction ${this.gtridHex} was rolled back`);
    }
  }

  /** The branches whose `begin` succeeded. */
  #begunBranches(): (Enlistment & { readonly branch: Branch })[] {
    return [...this.#enlistments.values()].filter((e): e is Enlistment & { branch: Branch } => e.branch !== undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Rollback and timeout

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#machine.state !== GlobalTransactionState.ACTIVE) return;
    this.#timedOut = true;
    this.#host.ctx.counters.timeouts += 1;
    this.#host.ctx.logger.warn({ gtrid: this.gtridHex, timeoutMs: this.timeoutMs }, 'global transaction timed out; rolling back');
    this.#rollbackActive().catch((error: unknown) => {
      this.#host.ctx.logger.error({ err: error, gtrid: this.gtridHex }, 'rollback after timeout failed');
    });
  }

  async rollback(): Promise<void> {
    if (this.#rollingBack !== undefined) return this.#rollingBack;
    if (this.#outcome === 'rolled-back') return;
    if (this.#machine.state !== GlobalTransactionState.ACTIVE) {
      throw new IllegalStateError(`rollback of global transaction ${this.gtridHex}: not allowed in state ${this.#machine.state} (commit already began)`);
    }
    return this.#rollbackActive();
  }

  /** Rolls back an ACTIVE transaction: every branch, best effort (the resources' own timeouts clean up after a failure). */
  #rollbackActive(): Promise<void> {
    this.#clearTimer();
    this.#machine.apply('abort');
    this.#rollingBack = (async () => {
      await this.#operations.settled();
      await Promise.all(this.#begunBranches().map((e) => this.#rollbackUnprepared(e.branch)));
      this.#finish('rolledBack', 'rolled-back');
    })();
    return this.#rollingBack;
  }

  /** `end(false)` then `rollback()` of an unprepared branch; failures are logged, not thrown. */
  async #rollbackUnprepared(branch: Branch, end = true): Promise<void> {
    if (end) {
      try {
        await branch.end(false);
      } catch {
        // The rollback below is what matters; end(false) only releases resources early.
      }
    }
    try {
      await branch.rollback();
    } catch (error) {
      this.#host.ctx.logger.warn(
        { err: error, gtrid: this.gtridHex, resourceId: branch.resourceId },
        'rollback of an unprepared branch failed; the resource rolls it back itself (broker timeout, PostgreSQL session end)',
      );
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #finish(event: GlobalTransactionEventName, outcome: TransactionOutcome): void {
    this.#machine.apply(event);
    this.#outcome = outcome;
    const counters = this.#host.ctx.counters;
    if (outcome === 'rolled-back') counters.rollbacks += 1;
    this.#host.ended(this);
  }

  // -------------------------------------------------------------------------------------------
  // Commit

  commit(): Promise<CommitResult> {
    try {
      this.#requireActive('commit');
    } catch (error) {
      return Promise.reject(error);
    }
    this.#clearTimer();
    this.#machine.apply('commit');
    return this.#commit();
  }

  async #commit(): Promise<CommitResult> {
    // Why not wait for the sends' answers: END, and the prepare or one-phase commit behind it, are
    // queued on the broker connection behind the puts, which the broker handles in order; a put it
    // refuses makes the branch roll back. The answers are checked after the votes, before the
    // decision (#aSendFailed). One round trip fewer when the application does not await its sends.
    await this.#issuing.settled();
    const branches = this.#begunBranches();
    if (this.#failedSends > 0) {
      // The application asked for every message it sent to be part of the transaction; one send
      // failed (refused by the broker, never written, or unanswered), so committing the rest
      // would break "all or none" — even when the application caught that send's error and went
      // on. PostgreSQL does the same after a failed statement, Kafka after a failed
      // transactional send, a local transaction here (ABORT_ONLY).
      return this.#abortForFailedSends(branches.map((enlistment) => ({ enlistment, status: 'not-asked' as const })));
    }
    const ends = await Promise.allSettled(branches.map((e) => e.branch.end(true)));
    const endFailure = ends.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (endFailure !== undefined) {
      return this.#abort(
        branches.map((enlistment) => ({ enlistment, status: 'not-asked' as const })),
        endFailure.reason,
        'a branch could not be ended',
      );
    }
    const withWork = branches.filter((e) => e.branch.hasWork);
    const idle = branches.filter((e) => !e.branch.hasWork);
    // Nothing to commit there; rolling back releases what the branch holds.
    await Promise.all(idle.map((e) => this.#rollbackUnprepared(e.branch, false)));
    const only = withWork[0];
    if (only === undefined) {
      this.#host.ctx.counters.readOnlyCommits += 1;
      this.#finish('readOnly', 'committed');
      return { gtrid: this.gtridHex, mode: 'read-only', completed: true, heuristics: [] };
    }
    if (withWork.length === 1) {
      // A one-phase commit is the decision: every send must have its answer first.
      if (await this.#aSendFailed()) return this.#abortForFailedSends([{ enlistment: only, status: 'not-asked' }]);
      return this.#commitOnePhase(only.branch);
    }
    // Decision-row mode: a branch that can decide is committed last, and its commit is the
    // decision. A second such branch is prepared like any other (and refuses, with its reason).
    const last = withWork.find((e) => isLastResourceBranch(e.branch));
    if (last !== undefined) return this.#commitWithLastResource(last, withWork.filter((e) => e !== last));
    return this.#commitTwoPhase(withWork);
  }

  async #commitOnePhase(branch: Branch): Promise<CommitResult> {
    this.#machine.apply('onePhase');
    const counters = this.#host.ctx.counters;
    try {
      await branch.commitOnePhase();
    } catch (error) {
      const code = error instanceof XaError ? error.xaCode : undefined;
      if (code !== undefined && isRollbackCode(code)) {
        this.#finish('rolledBack', 'rolled-back');
        throw new TransactionRolledBackError(this.gtridHex, `global transaction ${this.gtridHex}: ${branch.resourceId} rolled back instead of committing (one-phase): ${messageOf(error)}`, { cause: error });
      }
      if (code !== undefined && isHeuristicCode(code)) {
        // One-phase commit has no log record to hold a heuristic: alert, and tell the application.
        counters.heuristics += 1;
        const outcome = HEURISTIC_NAMES.get(code) ?? 'heuristic-hazard';
        if (outcome === 'heuristic-commit') {
          this.#host.ctx.logger.warn({ err: error, gtrid: this.gtridHex, resourceId: branch.resourceId }, 'one-phase commit answered a heuristic commit; committed');
          counters.onePhaseCommits += 1;
          this.#finish('committed', 'committed');
          const report = { resourceId: branch.resourceId, xid: describeXid(branch.xid), outcome, consistent: true, detail: messageOf(error) };
          return { gtrid: this.gtridHex, mode: 'one-phase', completed: true, heuristics: [report] };
        }
        this.#host.ctx.logger.error({ err: error, gtrid: this.gtridHex, resourceId: branch.resourceId, outcome }, 'HEURISTIC OUTCOME of a one-phase commit');
        this.#finish('heuristic', 'heuristic');
        throw new TransactionHeuristicError(
          this.gtridHex,
          'commit',
          [{ resourceId: branch.resourceId, xid: describeXid(branch.xid), outcome, detail: messageOf(error) }],
          `global transaction ${this.gtridHex}: the one-phase commit on ${branch.resourceId} reported ${outcome}: ${messageOf(error)}`,
        );
      }
      this.#finish('outcomeUnknown', 'unknown');
      throw new TransactionOutcomeUnknownError(
        this.gtridHex,
        `global transaction ${this.gtridHex}: the one-phase commit on ${branch.resourceId} failed without a known outcome (it may or may not have committed; check the data): ${messageOf(error)}`,
        { cause: error, retriable: false },
      );
    }
    counters.onePhaseCommits += 1;
    this.#finish('committed', 'committed');
    return { gtrid: this.gtridHex, mode: 'one-phase', completed: true, heuristics: [] };
  }

  async #commitTwoPhase(withWork: readonly (Enlistment & { readonly branch: Branch })[]): Promise<CommitResult> {
    const ctx = this.#host.ctx;
    const prepared = await this.#prepareAll(withWork);
    const failed = prepared.find((p) => p.status !== 'ok' && p.status !== 'read-only');
    if (failed !== undefined) return this.#abort(prepared, failed.error, `${failed.enlistment.resource.resourceId} did not prepare`);
    if (await this.#aSendFailed()) return this.#abortForFailedSends(prepared);
    const yes = prepared.filter((p) => p.status === 'ok');
    if (yes.length === 0) {
      ctx.counters.readOnlyCommits += 1;
      this.#finish('readOnly', 'committed');
      return { gtrid: this.gtridHex, mode: 'read-only', completed: true, heuristics: [] };
    }
    xaCrashPoint('xa.after-prepare');
    // Test seam (race tests): undefined, so nothing awaited, unless METAQ_XA_DELAYS arms it.
    const undecided = xaDelayPoint('xa.after-prepare');
    if (undecided !== undefined) await undecided;
    const participants = yes.map((p) => ({ resourceId: p.enlistment.resource.resourceId, branchQualifier: p.enlistment.xid.branchQualifier }));
    try {
      await ctx.log.committing(this.gtrid, participants);
    } catch (error) {
      // Presumed abort: without a durable COMMITTING the transaction is aborted, whoever asks.
      return this.#abort(prepared, error, 'the commit decision could not be logged');
    }
    this.#machine.apply('decide');
    ctx.counters.commits += 1;
    xaCrashPoint('xa.after-committing');
    const decided = xaDelayPoint('xa.after-committing');
    if (decided !== undefined) await decided;
    const targets = yes.map((p) => ({ resource: p.enlistment.resource, xid: p.enlistment.xid }));
    return this.#awaitPhaseTwo(targets, undefined);
  }

  /**
   * Starts phase two and waits for it at most `phaseTwoWaitMs`, or not at all in `background`
   * mode (see the module comment).
   */
  async #awaitPhaseTwo(targets: readonly PhaseTwoTarget[], decisionRow: PhaseTwoTarget | undefined): Promise<CommitResult> {
    const ctx = this.#host.ctx;
    const phaseTwo = this.#phaseTwo(targets, decisionRow);
    this.#host.track(this.gtridHex, phaseTwo);
    if (this.#host.phaseTwo === 'background') {
      // Decided and durable: the outcome is settled; phase two is tracked (close() waits for it).
      void phaseTwo.catch(() => undefined);
      return { gtrid: this.gtridHex, mode: 'two-phase', completed: false, heuristics: [] };
    }
    // close() interrupting phase two is no failure of the commit: the decision is durable.
    const result = await waitAtMost(
      phaseTwo.catch(() => undefined),
      this.#host.phaseTwoWaitMs,
    );
    if (result === undefined) {
      ctx.logger.warn({ gtrid: this.gtridHex, waitedMs: this.#host.phaseTwoWaitMs }, 'commit decided; phase two still running in the background');
      return { gtrid: this.gtridHex, mode: 'two-phase', completed: false, heuristics: [] };
    }
    if (result.damaged) throw heuristicError(this.gtridHex, 'commit', result);
    return { gtrid: this.gtridHex, mode: 'two-phase', completed: true, heuristics: result.heuristics };
  }

  /**
   * Decision-row mode (transactions.md §5.1, Narayana's CMR): prepare the others, then commit the
   * last resource one-phase with the decision row in its transaction. No COMMITTING record: the
   * row is the decision, and recovery reads it (recovery.ts). A "no" vote rolls everything back;
   * a last resource that rolls back instead of committing (a deferred constraint, or recovery's
   * rollback claim holding the key) rolls the prepared others back; one that does not answer is
   * settled by a rollback claim on its decision keeper, or left to recovery.
   */
  async #commitWithLastResource(last: Enlistment & { readonly branch: Branch }, others: readonly (Enlistment & { readonly branch: Branch })[]): Promise<CommitResult> {
    const prepared = await this.#prepareAll(others);
    const lastVote: Prepared = { enlistment: last, status: 'not-asked' };
    const failed = prepared.find((p) => p.status !== 'ok' && p.status !== 'read-only');
    if (failed !== undefined) return this.#abort([...prepared, lastVote], failed.error, `${failed.enlistment.resource.resourceId} did not prepare`);
    if (await this.#aSendFailed()) return this.#abortForFailedSends([...prepared, lastVote]);
    const yes = prepared.filter((p) => p.status === 'ok');
    // Every other branch voted read-only: only the last resource has something to commit.
    if (yes.length === 0) return this.#commitOnePhase(last.branch);
    xaCrashPoint('xa.after-prepare');
    const undecided = xaDelayPoint('xa.after-prepare');
    if (undecided !== undefined) await undecided;
    this.#machine.apply('lastResource');
    const branch = last.branch as LastResourceBranch;
    try {
      await branch.commitAsDecision();
    } catch (error) {
      const code = error instanceof XaError ? error.xaCode : undefined;
      if (code !== undefined && isRollbackCode(code)) {
        lastVote.status = 'rolled-back';
        return this.#abort([...prepared, lastVote], error, `${last.resource.resourceId}, the last resource, rolled back instead of committing`);
      }
      return this.#settleUnknownDecision(last, prepared, lastVote, error);
    }
    return this.#decided(yes, last);
  }

  /**
   * The last resource's commit got no answer: it may have committed (with its decision row) or
   * not. A rollback claim on the decision keeper settles it — the unique key lets exactly one of
   * the commit and the claim win — unless the keeper cannot be reached or the commit is still
   * pending there; then the outcome stays unknown here and recovery settles it (the decision
   * row, or its own claim after the orphan safety interval).
   */
  async #settleUnknownDecision(last: Enlistment & { readonly branch: Branch }, prepared: Prepared[], lastVote: Prepared, cause: unknown): Promise<CommitResult> {
    const ctx = this.#host.ctx;
    const yes = prepared.filter((p) => p.status === 'ok');
    let outcome: RecordedDecision | undefined;
    if (isDecisionKeeper(last.resource)) {
      try {
        outcome = (await last.resource.claimRollback([this.gtrid])).get(this.gtridHex);
      } catch (error) {
        ctx.logger.warn({ err: error, gtrid: this.gtridHex, resourceId: last.resource.resourceId }, 'the rollback claim after an unanswered decision commit failed; recovery settles the transaction');
      }
    }
    if (outcome === 'commit') return this.#decided(yes, last);
    if (outcome === 'rollback') {
      lastVote.status = 'rolled-back';
      return this.#abort([...prepared, lastVote], cause, `${last.resource.resourceId}, the last resource, did not answer its commit, and the rollback claim won`);
    }
    this.#finish('outcomeUnknown', 'unknown');
    throw new TransactionOutcomeUnknownError(
      this.gtridHex,
      `global transaction ${this.gtridHex}: the commit of ${last.resource.resourceId} (the last resource, whose commit is the decision) got no answer and could not be settled yet: ${messageOf(cause)}. ` +
        'Recovery settles it: the prepared branches commit if the decision row committed, and roll back otherwise',
      { cause, retriable: false },
    );
  }

  /**
   * The last resource committed: the transaction is decided. Phase two on the prepared others,
   * then the decision row can go (after the END, when a heuristic outcome made a log entry).
   */
  async #decided(yes: readonly Prepared[], last: Enlistment & { readonly branch: Branch }): Promise<CommitResult> {
    const ctx = this.#host.ctx;
    this.#machine.apply('decide');
    ctx.counters.commits += 1;
    ctx.counters.lastResourceCommits += 1;
    xaCrashPoint('xa.after-committing');
    const decided = xaDelayPoint('xa.after-committing');
    if (decided !== undefined) await decided;
    const targets = yes.map((p) => ({ resource: p.enlistment.resource, xid: p.enlistment.xid }));
    return this.#awaitPhaseTwo(targets, { resource: last.resource, xid: last.xid });
  }

  /** Prepares every branch: in parallel, or one at a time in crash-point order when a crash point is armed. */
  async #prepareAll(withWork: readonly (Enlistment & { readonly branch: Branch })[]): Promise<Prepared[]> {
    const prepared: Prepared[] = withWork.map((enlistment) => ({ enlistment, status: 'not-asked' }));
    const prepareOne = async (p: Prepared): Promise<void> => {
      try {
        p.status = (await p.enlistment.branch.prepare()) === 'ok' ? 'ok' : 'read-only';
      } catch (error) {
        p.error = error;
        // An XA_RB* answer means the resource rolled the branch back; anything else may have prepared it.
        p.status = error instanceof XaError && isRollbackCode(error.xaCode) ? 'rolled-back' : 'uncertain';
      }
    };
    const ordered = crashOrder(prepared, (p) => p.enlistment.resource.resourceId);
    if (ordered === undefined) {
      await Promise.all(prepared.map(prepareOne));
      return prepared;
    }
    let first = true;
    for (const p of ordered) {
      await prepareOne(p);
      if (p.status !== 'ok' && p.status !== 'read-only') break;
      if (first && p.status === 'ok') {
        first = false;
        xaCrashPoint('xa.after-first-prepare');
      }
    }
    return prepared;
  }

  /**
   * Phase two of a decided transaction, then END (runs on after `commit()` returned, if need be).
   * `decisionRow`: decision-row mode, the last resource whose row holds the decision; there is no
   * log entry to END then (decision-row.ts).
   */
  async #phaseTwo(targets: readonly PhaseTwoTarget[], decisionRow: PhaseTwoTarget | undefined): Promise<PhaseTwoResult> {
    const ctx = this.#host.ctx;
    const ordered = crashOrder(targets, (t) => t.resource.resourceId);
    let committedSoFar = 0;
    const options = {
      sequential: ordered !== undefined,
      afterEach: (target: PhaseTwoTarget) => {
        committedSoFar += 1;
        if (!isBrokerResourceId(target.resource.resourceId)) xaCrashPoint('xa.after-postgres-commit');
        if (committedSoFar === 1) xaCrashPoint('xa.after-first-commit');
      },
    };
    let result: PhaseTwoResult;
    try {
      const delayed = xaDelayPoint('xa.phase-two');
      if (delayed !== undefined) await delayed;
      if (decisionRow !== undefined) {
        const done = await completeByDecisionRow(ctx, this.gtrid, ordered ?? targets, decisionRow, { ...options, beforeEnd: () => xaCrashPoint('xa.before-end') });
        if (done.completion === 'held') this.#finish('heuristic', 'heuristic');
        else this.#finish('committed', 'committed');
        return done.result;
      }
      result = await runPhaseTwo(ctx, this.gtrid, ordered ?? targets, 'commit', options);
    } catch (error) {
      // Only close() stops phase two: the decision is durable, recovery completes it after a restart.
      ctx.logger.warn({ err: error, gtrid: this.gtridHex }, 'phase two interrupted; recovery will complete the commit');
      this.#host.ended(this);
      throw error;
    }
    if (result.damaged) {
      // END is withheld: the entry (with its HEURISTIC records) stays for the operator's forget(gtrid).
      this.#finish('heuristic', 'heuristic');
      return result;
    }
    xaCrashPoint('xa.before-end');
    try {
      const endSeq = await ctx.log.endTracked(this.gtrid);
      ctx.markers.add(result.completed, endSeq);
    } catch (error) {
      ctx.logger.warn({ err: error, gtrid: this.gtridHex }, 'END could not be written; recovery will re-drive the (idempotent) commit');
    }
    this.#finish('committed', 'committed');
    return result;
  }

  /**
   * Rolls back after a failed commit attempt (no decision logged: presumed abort) and rejects.
   * Prepared (or maybe prepared) branches are rolled back through their resource, once; what
   * fails is left to the orphan scan of recovery.
   */
  async #abort(prepared: readonly Prepared[], cause: unknown, why: string): Promise<never> {
    const ctx = this.#host.ctx;
    this.#machine.apply('abort');
    const targets: PhaseTwoTarget[] = [];
    const unprepared: Branch[] = [];
    for (const p of prepared) {
      if (p.status === 'ok' || p.status === 'uncertain') targets.push({ resource: p.enlistment.resource, xid: p.enlistment.xid });
      else if (p.status === 'not-asked') unprepared.push(p.enlistment.branch);
    }
    const [result] = await Promise.all([
      runPhaseTwo(ctx, this.gtrid, targets, 'rollback', {
        singleAttempt: true,
        ensureEntry: async () => {
          if (ctx.log.get(this.gtrid) === undefined) await ctx.log.presumedAborting(this.gtrid);
        },
      }).catch((error: unknown) => {
        ctx.logger.warn({ err: error, gtrid: this.gtridHex }, 'rollback of prepared branches interrupted; the orphan scan of recovery will finish it');
        return undefined;
      }),
      Promise.all(unprepared.map((branch) => this.#rollbackUnprepared(branch))),
    ]);
    if (result !== undefined && result.heuristics.length > 0) {
      if (result.damaged) {
        this.#finish('heuristic', 'heuristic');
        throw heuristicError(this.gtridHex, 'rollback', result);
      }
      // A heuristic entry was created for the record; it agrees with the rollback, so it can end.
      if (result.failed.length === 0) await ctx.log.end(this.gtrid).catch(() => undefined);
    }
    this.#finish('rolledBack', 'rolled-back');
    ctx.logger.info({ gtrid: this.gtridHex, err: cause }, `global transaction rolled back: ${why}`);
    throw new TransactionRolledBackError(this.gtridHex, `global transaction ${this.gtridHex} was rolled back: ${why}: ${messageOf(cause)}`, { cause });
  }
}

/** XA heuristic codes by name. */
const HEURISTIC_NAMES: ReadonlyMap<number, HeuristicOutcome> = new Map<number, HeuristicOutcome>([
  [XaCode.XA_HEURCOM, 'heuristic-commit'],
  [XaCode.XA_HEURRB, 'heuristic-rollback'],
  [XaCode.XA_HEURMIX, 'heuristic-mixed'],
  [XaCode.XA_HEURHAZ, 'heuristic-hazard'],
]);

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function heuristicError(gtrid: string, decision: 'commit' | 'rollback', result: PhaseTwoResult): TransactionHeuristicError {
  const contrary = result.heuristics.filter((h) => !h.consistent);
  const list = contrary.map((h) => `${h.resourceId}: ${h.outcome}`).join(', ');
  return new TransactionHeuristicError(
    gtrid,
    decision,
    contrary.map(({ resourceId, xid, outcome, detail }) => ({ resourceId, xid, outcome, detail })),
    `global transaction ${gtrid}: the manager decided to ${decision}, but ${list}; the data may differ between participants. Check it, then call tm.forget('${gtrid}')`,
  );
}
