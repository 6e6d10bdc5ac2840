/**
 * The public shape of a global transaction (what `tm.begin()` returns and `tm.run()` passes to
 * its callback) and what `commit()` resolves with; the implementation and the commit protocol
 * are in global-transaction.ts.
 */
import type { SendOptions } from '../client/producer/producer.js';
import type { Message, SendResult } from '../client/message.js';
import type { TransitionListener } from '../client/transaction/state-machine.js';
import type { XaCapableProducer } from './broker-resource.js';
import type { GlobalTransactionEventName, GlobalTransactionStateName } from './global-transaction-states.js';
import type { HeuristicReport } from './phase-two.js';
import type { PostgresBranch, PostgresResource } from './postgres/index.js';
import type { Branch, EnlistableResource } from './resource.js';
import type { Xid } from './xid.js';

/** Options of `tm.begin()` / `tm.run()`. */
export interface BeginOptions {
  /** Roll the transaction back if it is not committed within this many ms. Default: the manager's `defaultTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** How a finished transaction ended. */
export type TransactionOutcome = 'committed' | 'rolled-back' | 'heuristic' | 'unknown';

/** What `commit()` resolves with. */
export interface CommitResult {
  /** The gtrid, hex. */
  readonly gtrid: string;
  /** `two-phase` (COMMITTING logged), `one-phase` (one branch with work), `read-only` (nothing to commit). */
  readonly mode: 'two-phase' | 'one-phase' | 'read-only';
  /**
   * True when every participant has committed. False only for `two-phase` when phase two
   * outlasted `phaseTwoWaitMs`: the decision is durable and the manager (or, after a crash,
   * recovery) keeps completing it; `tm.pendingTransactions()` shows it.
   */
  readonly completed: boolean;
  /**
   * Heuristic outcomes that agree with the decision (recorded, forgotten at the participant).
   * When `completed` is false, outcomes found later are not reported here: they are logged
   * (contrary ones at error level), counted in `tm.metrics().heuristics` and listed by
   * `tm.pendingTransactions()` until an operator's `tm.forget(gtrid)`.
   */
  readonly heuristics: readonly HeuristicReport[];
}

/** A branch as `tx.branches()` lists it. */
export interface EnlistedBranchInfo {
  readonly resourceId: string;
  /** `formatId:gtridHex:bqualHex`. */
  readonly xid: string;
  /** Undefined while `begin` is in flight (or when it failed). */
  readonly hasWork: boolean | undefined;
}

/** A PostgreSQL pool or resource, for {@link GlobalTransaction.enlistPostgres}. */
export type PostgresTarget = PostgresResource | PostgresResource['pool'];

/**
 * A global transaction: enlist resources, do the work through their branches, then `commit()`
 * or `rollback()`. Create with `tm.begin()`, or let `tm.run()` manage it.
 */
export interface GlobalTransaction {
  /** The global transaction id (24 bytes: node id, start time, sequence). */
  readonly gtrid: Buffer;
  /** {@link gtrid} in hex: its key in the coordinator log, the logs and the CLI. */
  readonly gtridHex: string;
  /** The transaction's XID (`branchQualifier` empty); each branch has `branchXid(gtrid, index)`. */
  readonly xid: Xid;
  /** Where the transaction is (see global-transaction-states.ts). */
  readonly state: GlobalTransactionStateName;
  /** How it ended, once it did. */
  readonly outcome: TransactionOutcome | undefined;
  /** When it began (ms since the epoch; also inside the gtrid). */
  readonly startedAtMs: number;
  /** Its timeout in ms. */
  readonly timeoutMs: number;
  /** True when it was rolled back because it outlived {@link timeoutMs}. */
  readonly timedOut: boolean;
  /**
   * Enlists `resource` (once per resource id; a second call returns the same branch) and starts
   * its branch. An unregistered resource is registered, with a warning: register it with the
   * manager up front, or recovery after a restart cannot finish its branches.
   *
   * @throws (rejects) `TransactionRolledBackError` once the transaction timed out or was rolled
   *   back; `IllegalStateError` once commit began; the resource's `XaError` when `begin` failed.
   */
  enlist<B extends Branch>(resource: EnlistableResource<B>): Promise<B>;
  /**
   * Enlists a PostgreSQL database: a registered `PostgresResource`, or the pool of one. The
   * branch's `query(text, values)` runs SQL in the transaction.
   *
   * @throws (rejects) `IllegalStateError` when no registered PostgresResource has that pool; as {@link enlist}.
   */
  enlistPostgres(target: PostgresTarget): Promise<PostgresBranch>;
  /**
   * Sends `message` through `producer` in this transaction: the producer's broker resource (a
   * registered one, or one created on first use) is enlisted, and the message is visible once
   * the transaction commits.
   *
   * The promise need not be awaited before {@link commit}: the commit is queued behind the put
   * and checks its answer before the decision (a failed send rolls the whole transaction back).
   * It never counts as an unhandled rejection: the manager observes it.
   *
   * @throws (rejects) as {@link enlist}; as `BrokerBranch.send`.
   */
  send(producer: XaCapableProducer, message: Message, options?: SendOptions): Promise<SendResult>;
  /**
   * Commits (see the module comment for when it resolves).
   *
   * @throws (rejects) `TransactionRolledBackError` when it was rolled back instead (a "no" vote,
   *   a prepare error, the decision could not be logged, it had timed out);
   *   `TransactionHeuristicError` when participants reported outcomes contrary to the decision;
   *   `TransactionOutcomeUnknownError` when a one-phase commit got no answer;
   *   `IllegalStateError` when commit or rollback was already called.
   */
  commit(): Promise<CommitResult>;
  /**
   * Rolls back. Idempotent once rolled back (also after a timeout).
   *
   * @throws (rejects) `IllegalStateError` once commit began.
   */
  rollback(): Promise<void>;
  /** The enlisted branches. */
  branches(): EnlistedBranchInfo[];
  /** Calls `listener` after each state change; returns the function that removes it. */
  onTransition(listener: TransitionListener<GlobalTransactionStateName, GlobalTransactionEventName>): () => void;
}
