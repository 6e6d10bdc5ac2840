/**
 * A local transaction of one producer (MetaQ's `TransactionContext` local mode,
 * metaq-reference §1.7 "Client wire sequences", §3.2):
 *
 * - `producer.beginTransaction()` sends nothing; it takes the key `TX:<sessionId>:<n>`.
 * - The first `send` picks a partition with the producer's selector, which binds the transaction
 *   to that partition's broker, and sends `transaction <key> <sessionId> BEGIN <timeout>` before
 *   its put. Every later send goes to a partition of the same broker. Puts carry the key; the
 *   broker stages them (answer offset -1) and appends nothing before the commit.
 * - `commit()` → `COMMIT_ONE_PHASE`; `rollback()` → `ROLLBACK`. A transaction in which nothing
 *   was sent commits and rolls back without a word to the broker.
 *
 * Outcomes are never guessed: a commit that gets no answer rejects with a retriable
 * {@link TransactionOutcomeUnknownError} and leaves the transaction FAILED (in doubt); calling
 * `commit()` again asks the broker, which answers a repeated commit of a committed transaction
 * with OK and a commit of a rolled-back one with an error.
 */
import {
  BrokerError,
  IllegalStateError,
  InvalidArgumentError,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
} from '../../common/errors.js';
import { componentLogger } from '../../common/logger.js';
import { formatTransactionKey, type LocalTransactionKey } from '../../protocol/transaction-key.js';
import type { Message, SendResult } from '../message.js';
import type { SendOptions } from '../producer/producer.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import {
  isOpen,
  LOCAL_TRANSITIONS,
  localRefusal,
  LocalTransactionState,
  type LocalTransactionEventName,
  type LocalTransactionStateName,
} from './local-states.js';
import { StateMachine, type TransitionListener } from './state-machine.js';
import { selectTransactionalPartition, type ProducerBound, type TransactionHost } from './transaction-host.js';
import { interpretTransactionOk } from './transaction-responses.js';
import { classifyLocalRefusal, isTransportFailure } from './xa-errors.js';
import { InFlight } from '../../common/in-flight.js';

/** Default broker-side timeout of a local transaction: rolled back if not committed within it. */
export const DEFAULT_TRANSACTION_TIMEOUT_SECONDS = 30;
/** Default timeout of BEGIN / COMMIT / ROLLBACK requests (MetaQ's `transactionRequestTimeout`, 5 s). */
export const DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS = 5_000;

/** Options of `producer.beginTransaction()`. */
export interface TransactionOptions {
  /**
   * Seconds the broker keeps the transaction open; it rolls it back if it is neither committed
   * nor rolled back by then. Capped by the broker's `maxTxTimeoutInSeconds`. Default 30.
   */
  readonly timeoutSeconds?: number;
  /** Timeout of the BEGIN, COMMIT and ROLLBACK requests in ms. Default 5000. */
  readonly requestTimeoutMs?: number;
}

/** A change of state of a local transaction, for `onTransition` listeners. */
export interface LocalTransactionTransition {
  readonly transactionKey: string;
  readonly from: LocalTransactionStateName;
  readonly to: LocalTransactionStateName;
  readonly event: LocalTransactionEventName;
}

/** A local transaction. Create with `producer.beginTransaction()`. */
export interface ProducerTransaction {
  /** The key, `TX:<sessionId>:<counter>`, as the broker and its logs know it. */
  readonly transactionKey: string;
  /** Where the transaction is; see docs/transactions.md "Client API" for the state diagram. */
  readonly state: LocalTransactionStateName;
  /** The broker every message of the transaction goes to; `undefined` until the first send. */
  readonly brokerUrl: string | undefined;
  /**
   * Sends `message` in the transaction: staged by the broker, visible to consumers only after
   * `commit()`. The result's `offset` is -1 (the message has no place in the partition yet).
   * Sends may be concurrent; the first one also sends BEGIN.
   *
   * A transaction commits all its messages or none: after any failed send it is ABORT_ONLY
   * (only `rollback()` is allowed), except when the broker says it is already rolled back.
   *
   * @throws (rejects) {@link IllegalStateError} after commit/rollback, in ABORT_ONLY or FAILED, or
   *   when the topic was not published or has no partition on the transaction's broker;
   *   {@link InvalidArgumentError} for a malformed message;
   *   {@link TransactionRolledBackError} when the broker already rolled the transaction back
   *   (timeout, lost connection, restart); `RequestTimeoutError` / `ConnectionError` when the send
   *   got no answer; `BrokerError` when the broker refused the message.
   */
  send(message: Message, options?: SendOptions): Promise<SendResult>;
  /**
   * Commits every message sent so far: they become visible at once, exactly once. Sends need not
   * be awaited first: COMMIT is queued behind their puts (one round trip for the whole
   * transaction), and if one of them is refused the broker rolls the transaction back and
   * `commit()` rejects with {@link TransactionRolledBackError} naming the refused message. When
   * `commit()` resolves, every send made before it is committed, even one whose own promise
   * rejected with a timeout meanwhile (its put was handled before the COMMIT).
   *
   * @throws (rejects) {@link TransactionOutcomeUnknownError} (retriable: call `commit()` again)
   *   when the commit got no answer; {@link TransactionRolledBackError} when the broker had
   *   rolled the transaction back; {@link IllegalStateError} when the state does not allow a
   *   commit (committed, rolled back, ABORT_ONLY, a commit or rollback in progress).
   */
  commit(): Promise<void>;
  /**
   * Rolls back (waiting first for the sends in flight): no message of the transaction will ever
   * be visible. A rollback that gets no answer still resolves when no commit was ever sent (the
   * broker rolls the transaction back by itself when its connection closes or it times out).
   *
   * @throws (rejects) {@link TransactionOutcomeUnknownError} when an earlier commit was in doubt
   *   and the rollback got no answer either; {@link IllegalStateError} when the transaction is
   *   already committed (also when the broker says so) or a commit/rollback is in progress.
   */
  rollback(): Promise<void>;
  /** Calls `listener` after each change of state; returns the function that removes it. */
  onTransition(listener: (transition: LocalTransactionTransition) => void): () => void;
}

const log = componentLogger('client.transaction');

function checkOptions(options: TransactionOptions): { timeoutSeconds: number; requestTimeoutMs: number } {
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_TRANSACTION_TIMEOUT_SECONDS;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 0x7fffffff) {
    throw new InvalidArgumentError(`beginTransaction: timeoutSeconds must be an integer from 1 to 2147483647, got ${String(options.timeoutSeconds)}`);
  }
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) {
    throw new InvalidArgumentError(`beginTransaction: requestTimeoutMs must be an integer >= 1, got ${String(options.requestTimeoutMs)}`);
  }
  return { timeoutSeconds, requestTimeoutMs };
}

/** Creates a local transaction. Internal: applications call `producer.beginTransaction()`. */
export function createProducerTransaction(host: TransactionHost, options: TransactionOptions = {}): ProducerTransaction {
  return new LocalTransaction(host, checkOptions(options));
}

class LocalTransaction implements ProducerTransaction, ProducerBound {
  readonly transactionKey: string;
  readonly #host: TransactionHost;
  readonly #key: LocalTransactionKey;
  readonly #sessionId: string;
  readonly #timeoutSeconds: number;
  readonly #requestTimeoutMs: number;
  readonly #machine: StateMachine<LocalTransactionStateName, LocalTransactionEventName>;
  readonly #unbind: () => void;
  #brokerUrl: string | undefined;
  /** BEGIN in flight or done; reset when it fails, so that the next send tries again. */
  #begin: Promise<void> | undefined;
  #beginSent = false;
  /** True once a COMMIT was written: from then on "unknown to the broker" is not "rolled back". */
  #commitSent = false;
  readonly #sends = new InFlight();
  /** One per send in progress: settles once its put is queued on the connection, or the send failed before. */
  readonly #dispatches = new InFlight();
  /**
   * Why the transaction must not commit, once a send went wrong: `'no-answer'` (it may or may not
   * be staged; takes precedence) or `'send-failed'` (refused by the broker, or before it was sent).
   */
  #cannotCommit: 'no-answer' | 'send-failed' | undefined;

  constructor(host: TransactionHost, options: { timeoutSeconds: number; requestTimeoutMs: number }) {
    this.#host = host;
    this.#key = host.keys.next();
    this.#sessionId = this.#key.sessionId;
    this.transactionKey = formatTransactionKey(this.#key);
    this.#timeoutSeconds = options.timeoutSeconds;
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#machine = new StateMachine(LOCAL_TRANSITIONS, LocalTransactionState.READY, localRefusal(this.transactionKey));
    this.#unbind = host.bind(this);
    this.#machine.onTransition(({ to }) => {
      if (to === LocalTransactionState.COMMITTED || to === LocalTransactionState.ROLLED_BACK) this.#unbind();
    });
  }

  get state(): LocalTransactionStateName {
    return this.#machine.state;
  }

  get brokerUrl(): string | undefined {
    return this.#brokerUrl;
  }

  onTransition(listener: (transition: LocalTransactionTransition) => void): () => void {
    const key = this.transactionKey;
    const wrapped: TransitionListener<LocalTransactionStateName, LocalTransactionEventName> = (t) => listener({ transactionKey: key, ...t });
    return this.#machine.onTransition(wrapped);
  }

  send(message: Message, options?: SendOptions): Promise<SendResult> {
    try {
      if (message === null || typeof message !== 'object') throw new InvalidArgumentError('send: the message must be an object { topic, data }');
      this.#machine.apply('send');
    } catch (error) {
      return Promise.reject(error);
    }
    let dispatched!: () => void;
    const dispatch = new Promise<void>((resolve) => (dispatched = resolve));
    this.#dispatches.add(dispatch);
    const sending = this.#send(message, options?.timeoutMs ?? this.#host.sendTimeoutMs, dispatched);
    // However the send ends, its dispatch settles (a commit waiting for it must not hang).
    this.#sends.add(sending.finally(dispatched));
    return sending;
  }

  async #send(message: Message, timeoutMs: number, dispatched: () => void): Promise<SendResult> {
    let partitions: readonly PartitionRef[];
    let ref: PartitionRef;
    try {
      partitions = await this.#host.partitionsFor(message.topic);
      ref = selectTransactionalPartition(this.#host.selector, message, partitions, this.#brokerUrl);
    } catch (error) {
      // Nothing reached the broker, but the application asked for this message to be part of the
      // transaction: committing the others without it would break "all or none".
      this.#markSendFailed();
      throw error;
    }
    this.#brokerUrl ??= ref.brokerUrl;
    // BEGIN is pipelined with the first put: both are queued on the broker's one connection in
    // this order, and the broker handles a connection's frames in order, so the put finds the
    // transaction begun. That saves a round trip per transaction. If BEGIN fails, the put is
    // refused as "not started"; the caller gets BEGIN's error, which says why. A BEGIN without
    // an answer leaves the put in doubt too (both may have been handled): abort-only.
    const begun = this.#ensureBegun(this.#brokerUrl);
    const put = this.#host.putInTransaction(ref, message, this.#key, timeoutMs);
    // The put is queued behind BEGIN on the connection: a commit may now be queued behind it.
    dispatched();
    try {
      await begun;
    } catch (error) {
      put.catch(() => undefined);
      throw isTransportFailure(error) ? this.#sendFailed(error) : error;
    }
    try {
      return await put;
    } catch (error) {
      throw this.#sendFailed(error);
    }
  }

  #ensureBegun(brokerUrl: string): Promise<void> {
    if (this.#begin !== undefined) return this.#begin;
    this.#beginSent = true;
    const begin = this.#command(brokerUrl, 'BEGIN').catch((error: unknown) => {
      // Nothing is staged without a BEGIN; the next send tries again (BEGIN is idempotent).
      if (this.#begin === begin) this.#begin = undefined;
      throw error instanceof BrokerError ? this.#refused(error, 'begin') : error;
    });
    this.#begin = begin;
    return begin;
  }

  /** Maps a failed put and moves the state accordingly. */
  #sendFailed(error: unknown): unknown {
    if (isTransportFailure(error)) {
      // The put may or may not be staged: committing could publish a message the caller thinks failed.
      this.#cannotCommit = 'no-answer';
      if (this.#machine.can('sendUncertain')) this.#machine.apply('sendUncertain');
      return error;
    }
    if (error instanceof BrokerError) return this.#refused(error, 'send');
    return error;
  }

  /**
   * A broker refusal of a put or BEGIN: the transaction is gone when the broker says so. A put
   * refused for its message (unknown topic, wrong partition) makes the transaction abort-only,
   * here as on the broker, which rolls back a commit of it.
   */
  #refused(error: BrokerError, what: 'send' | 'begin'): unknown {
    const kind = classifyLocalRefusal(error.detail);
    if (kind === 'rolled-back' || kind === 'timed-out' || kind === 'not-started') {
      if (this.#machine.can('rolledBack')) this.#machine.apply('rolledBack');
      return new TransactionRolledBackError(this.transactionKey, `${what} in transaction ${this.transactionKey} failed: ${rolledBackReason(kind)} (${error.detail})`, { cause: error });
    }
    if (what === 'send') this.#markSendFailed();
    return error;
  }

  /** A send that failed with an answer, or before anything was written: abort-only. */
  #markSendFailed(): void {
    this.#cannotCommit ??= 'send-failed';
    if (this.#machine.can('sendFailed')) this.#machine.apply('sendFailed');
  }

  async commit(): Promise<void> {
    const from = this.#machine.state;
    const to = this.#machine.apply('commit');
    if (to === LocalTransactionState.COMMITTED) return; // nothing was sent: nothing to commit
    if (from !== LocalTransactionState.FAILED) {
      // Why not wait for the sends' answers: COMMIT is queued behind their puts on the same
      // connection and the broker handles a connection's frames in order, so it covers exactly
      // the puts before it; and a put the broker refused makes it roll the commit back. One round
      // trip per transaction instead of two when the application does not await each send.
      await this.#dispatches.settled();
      if (this.#machine.state === LocalTransactionState.ROLLED_BACK) {
        throw new TransactionRolledBackError(this.transactionKey, `commit of ${this.transactionKey}: the broker rolled the transaction back while sends were in flight`);
      }
      if (this.#cannotCommit !== undefined) {
        this.#machine.apply('commitCancelled');
        throw new IllegalStateError(
          this.#cannotCommit === 'no-answer'
            ? `Cannot commit transaction ${this.transactionKey}: a send got no answer, so it may or may not be part of the transaction; nothing was committed, call rollback()`
            : `Cannot commit transaction ${this.transactionKey}: a send in it failed, and a transaction commits all its messages or none; nothing was committed, call rollback()`,
        );
      }
      if (!this.#beginSent) {
        // Every send failed before reaching the broker: there is nothing to commit.
        this.#machine.apply('committed');
        return;
      }
    }
    const brokerUrl = this.#brokerUrl as string;
    const retry = this.#commitSent;
    this.#commitSent = true;
    try {
      await this.#command(brokerUrl, 'COMMIT_ONE_PHASE');
    } catch (error) {
      await this.#sends.settled();
      throw this.#commitFailed(error, retry);
    }
    await this.#sends.settled();
    this.#machine.apply('committed');
  }

  #commitFailed(error: unknown, retry: boolean): unknown {
    if (this.#machine.state === LocalTransactionState.ROLLED_BACK) {
      // A send answered meanwhile that the broker had rolled the transaction back (timed out, …).
      return new TransactionRolledBackError(this.transactionKey, `commit of ${this.transactionKey} failed: the broker had rolled the transaction back (${messageOf(error)})`, { cause: error });
    }
    if (isTransportFailure(error)) {
      this.#machine.apply('outcomeUnknown');
      return new TransactionOutcomeUnknownError(
        this.transactionKey,
        `commit of ${this.transactionKey} got no answer (${messageOf(error)}): the transaction may or may not be committed; call commit() again to find out`,
        { cause: error },
      );
    }
    if (!(error instanceof BrokerError)) {
      this.#machine.apply('outcomeUnknown');
      return new TransactionOutcomeUnknownError(this.transactionKey, `commit of ${this.transactionKey} failed (${messageOf(error)}); the outcome is unknown`, { cause: error });
    }
    const kind = classifyLocalRefusal(error.detail);
    if (kind === 'rolled-back' || kind === 'timed-out' || (kind === 'not-started' && !retry)) {
      this.#machine.apply('rolledBack');
      return new TransactionRolledBackError(this.transactionKey, `commit of ${this.transactionKey} failed: ${rolledBackReason(kind)} (${error.detail})`, { cause: error });
    }
    this.#machine.apply('outcomeUnknown');
    if (kind === 'not-started') {
      // A commit was sent before and got no answer; the broker has since forgotten the key
      // (restarted, or the outcome expired): it may have committed. Asking again will not tell.
      return new TransactionOutcomeUnknownError(
        this.transactionKey,
        `commit of ${this.transactionKey}: an earlier commit got no answer and the broker no longer knows the transaction (${error.detail}); it may or may not have been committed`,
        { cause: error, retriable: false },
      );
    }
    return new TransactionOutcomeUnknownError(this.transactionKey, `commit of ${this.transactionKey} failed: ${error.detail}; the outcome is unknown`, {
      cause: error,
      retriable: error.retriable,
    });
  }

  async rollback(): Promise<void> {
    const from = this.#machine.state;
    const to = this.#machine.apply('rollback');
    if (to === LocalTransactionState.ROLLED_BACK) return; // nothing was sent
    await this.#sends.settled();
    if (this.#machine.state === LocalTransactionState.ROLLED_BACK) return; // the broker had already rolled it back
    if (!this.#beginSent) {
      this.#machine.apply('rolledBack');
      return;
    }
    const inDoubt = from === LocalTransactionState.FAILED || this.#commitSent;
    try {
      await this.#command(this.#brokerUrl as string, 'ROLLBACK');
    } catch (error) {
      const mapped = this.#rollbackFailed(error, inDoubt);
      if (mapped !== undefined) throw mapped;
      return;
    }
    this.#machine.apply('rolledBack');
  }

  /** The error a failed rollback rejects with, or `undefined` when it counts as done. */
  #rollbackFailed(error: unknown, inDoubt: boolean): unknown {
    if (error instanceof BrokerError) {
      const kind = classifyLocalRefusal(error.detail);
      if (kind === 'rolled-back' || kind === 'timed-out' || kind === 'not-started') {
        if (!(kind === 'not-started' && inDoubt)) {
          this.#machine.apply('rolledBack');
          return undefined;
        }
      } else if (kind === 'committed' || kind === 'committing') {
        this.#machine.apply('committed');
        return new IllegalStateError(`Cannot roll back transaction ${this.transactionKey}: the broker says it is already committed`);
      }
    }
    if (!inDoubt) {
      // No commit was ever sent, so none can happen: the broker rolls the transaction back when
      // the producer's connection closes or the transaction times out (after timeoutSeconds).
      log.warn({ err: error, transactionKey: this.transactionKey }, 'rollback not confirmed; the broker rolls the transaction back by itself');
      this.#machine.apply('rolledBack');
      return undefined;
    }
    this.#machine.apply('outcomeUnknown');
    return new TransactionOutcomeUnknownError(
      this.transactionKey,
      `rollback of ${this.transactionKey} after a commit in doubt failed (${messageOf(error)}): the transaction may or may not be committed`,
      { cause: error, retriable: isTransportFailure(error) },
    );
  }

  /** Called by `producer.close()`: an open transaction is rolled back (best effort). */
  async producerClosing(): Promise<void> {
    if (!isOpen(this.#machine.state)) return;
    await this.rollback().catch((error: unknown) => log.warn({ err: error, transactionKey: this.transactionKey }, 'rollback at producer close failed'));
  }

  #command(brokerUrl: string, type: 'BEGIN' | 'COMMIT_ONE_PHASE' | 'ROLLBACK'): Promise<void> {
    return this.#host.request(
      brokerUrl,
      {
        type: 'transaction',
        transactionKey: this.#key,
        sessionId: this.#sessionId,
        transactionType: type,
        timeout: type === 'BEGIN' ? this.#timeoutSeconds : 0,
        uniqueQualifier: undefined,
      },
      this.#requestTimeoutMs,
      interpretTransactionOk,
    );
  }
}

function rolledBackReason(kind: string): string {
  switch (kind) {
    case 'timed-out':
      return 'the broker rolled the transaction back because it timed out';
    case 'not-started':
      return 'the broker does not know the transaction (it restarted, or the transaction ended long ago), so none of its messages is visible';
    default:
      return 'the transaction was rolled back (by a rollback, or because the producer\'s connection to the broker closed)';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
