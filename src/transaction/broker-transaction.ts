/**
 * One transaction branch as the broker holds it: its key, kind, owner, state machine, staged
 * messages and, once decided, the batches of its commit.
 */
import type { CommitBatch, StagedMessage } from './staged-message.js';
import { TransactionStateMachine, type TransactionKind, type TransactionStateName } from './transaction-state.js';

/** Options of {@link BrokerTransaction}. */
export interface BrokerTransactionInit {
  /** Canonical key text (`formatTransactionKey`): the identity of the branch. */
  readonly key: string;
  readonly kind: TransactionKind;
  /** The producer session named in the `transaction` command. */
  readonly sessionId: string;
  /** XA resource manager id (RECOVER filters on it); undefined for local transactions. */
  readonly uniqueQualifier: string | undefined;
  /** Connection that began a local transaction (rolled back when it closes). */
  readonly ownerSession: number | undefined;
  readonly beganAt: number;
  readonly initialState?: TransactionStateName;
  readonly messages?: readonly StagedMessage[];
  readonly preparedAt?: number;
}

/** A live (not yet forgotten) transaction branch. */
export class BrokerTransaction {
  readonly key: string;
  readonly kind: TransactionKind;
  readonly sessionId: string;
  readonly uniqueQualifier: string | undefined;
  readonly ownerSession: number | undefined;
  readonly beganAt: number;
  readonly machine: TransactionStateMachine;
  /** Messages put in this transaction, in put order. */
  readonly messages: StagedMessage[];
  /** When the PREPARE record was written (ms since the epoch). */
  preparedAt: number | undefined;
  /**
   * True from the moment the PREPARE record is handed to the journal: a checkpoint taken while
   * that record is being written must count the branch as prepared (the record is older than
   * the checkpoint's replay position and will not be replayed).
   */
  preparing = false;
  /**
   * Set when a put into this transaction was refused (bad partition, unknown topic, bad
   * checksum): the transaction may then only roll back; COMMIT_ONE_PHASE and PREPARE roll it back
   * and say why. Why: a client may pipeline COMMIT behind its puts without waiting for their
   * answers (one round trip per transaction), so a commit must never publish a transaction with a
   * message missing; "all the sends or none", as Kafka and PostgreSQL do after a failed statement.
   */
  abortReason: string | undefined = undefined;
  /** The batches of the commit, once the commit is decided. */
  batches: readonly CommitBatch[] | undefined;
  /** The commit in progress: a repeated COMMIT waits for it and answers the same. */
  committing: Promise<void> | undefined;

  constructor(init: BrokerTransactionInit) {
    this.key = init.key;
    this.kind = init.kind;
    this.sessionId = init.sessionId;
    this.uniqueQualifier = init.uniqueQualifier;
    this.ownerSession = init.ownerSession;
    this.beganAt = init.beganAt;
    this.machine = new TransactionStateMachine({ kind: init.kind, key: init.key, ...(init.initialState === undefined ? {} : { initialState: init.initialState }) });
    this.messages = [...(init.messages ?? [])];
    this.preparedAt = init.preparedAt;
  }

  /** The current state. */
  get state(): TransactionStateName {
    return this.machine.state;
  }
}
