/**
 * The broker as a participant of the transaction manager: a {@link RecoverableResource} (what
 * recovery and phase two need: XIDs only) wrapping a producer's XA resource
 * (`producer.getXAResource()`, src/client/transaction/xa-resource.ts), plus `begin` to start a
 * live {@link BrokerBranch} in which the application sends messages.
 *
 * Phase-two answers are mapped to {@link PhaseTwoOutcome}s (transactions.md §5.6 step 1):
 *
 * | broker answer | `commitPrepared` | `rollbackPrepared` |
 * |---|---|---|
 * | OK (also a repeated call: outcome tombstone) | `committed` | `rolled-back` |
 * | XAER_NOTA (-4) | `committed`, counted and logged as "outcome tombstone expired" | `rolled-back` |
 * | XA_HEURCOM / HEURRB / HEURMIX / HEURHAZ | `heuristic-commit` / `-rollback` / `-mixed` / `-hazard` | same |
 * | XA_RB* (100–107): the broker rolled it back | `rolled-back` (the manager sees it contradicts the decision) | `rolled-back` |
 * | XAER_PROTO (-6) on rollback: the branch is committed or committing | — | `committed` |
 * | XAER_RMFAIL / XA_RETRY / anything else | rethrown: the manager retries | rethrown |
 *
 * Why XAER_NOTA on a commit counts as committed: a prepared branch leaves the broker only by a
 * commit, a logged heuristic decision (which answers XA_HEUR* until forgotten), or a rollback by
 * this manager's own presumed abort, which the coordinator log forbids while COMMITTING exists.
 * So a branch the broker no longer knows was committed and its 24-hour tombstone has expired.
 */
import { XaError } from '../common/errors.js';
import { componentLogger, type Logger } from '../common/logger.js';
import type { MessageProducer, SendOptions } from '../client/producer/producer.js';
import type { Message, SendResult } from '../client/message.js';
import type { XAResource, XAResourceOptions } from '../client/transaction/xa-resource.js';
import { isRollbackCode, XaCode, XaFlags } from '../client/transaction/xa-codes.js';
import { describeXid } from '../client/transaction/xid.js';
import { isTransportFailure, xaError } from '../client/transaction/xa-errors.js';
import { InFlight } from '../common/in-flight.js';
import type { Branch, PhaseTwoOutcome, PrepareVote, RecoverableResource } from './resource.js';
import { METAQ_TM_FORMAT_ID, type Xid } from './xid.js';

/** Prefix of every broker resource id. */
export const BROKER_RESOURCE_PREFIX = 'metaq:';

/** The part of a producer the broker resource needs (a real `MessageProducer` fits). */
export type XaCapableProducer = Pick<MessageProducer, 'getXAResource'>;

/** Options of {@link createBrokerResource}. */
export interface BrokerResourceOptions {
  /**
   * The XA resource's unique qualifier (its identity on the broker: `recover()` lists only its
   * branches). Must be stable across restarts and unique per coordinator node. Default: the XA
   * resource's default (`XAMessageProducer-<hostname>`).
   */
  readonly uniqueQualifier?: string;
  /**
   * Binds the resource to this broker (`meta://host:port`). Recommended: without it the XA
   * resource picks one of the brokers hosting every published topic at random, and the
   * resource id (which recovery uses to find the resource again after a restart) names that one.
   */
  readonly brokerUrl?: string;
  /** Stable name used in the resource id instead of the broker URL (e.g. a cluster name). */
  readonly name?: string;
  /** Timeout of each XA request in ms (see `XAResourceOptions.requestTimeoutMs`). */
  readonly requestTimeoutMs?: number;
  /** Logger (default: the `xa-broker` component logger). */
  readonly logger?: Logger;
}

/** A live broker branch: the XA branch plus `send`. */
export interface BrokerBranch extends Branch {
  /**
   * Sends `message` in the branch: staged by the broker, visible once the transaction commits.
   * Rejects like `XAResource.send` (an `XaError` when the branch is gone, a transport error
   * when the send got no answer: the branch then can only roll back, and it counts as work, so
   * the commit of the global transaction rolls everything back even if the application goes on).
   */
  send(message: Message, options?: SendOptions): Promise<SendResult>;
  /** How many sends of this branch succeeded. */
  readonly sentCount: number;
}

/** Counters of a broker resource. */
export interface BrokerResourceStats {
  /** Commits answered XAER_NOTA and taken as committed (the outcome tombstone had expired). */
  readonly tombstonesExpired: number;
}

/** The broker as a resource of the transaction manager. Create with {@link createBrokerResource}. */
export interface BrokerResource extends RecoverableResource {
  /** The producer whose XA resource this wraps (`tx.send(producer, …)` finds the resource by it). */
  readonly producer: XaCapableProducer;
  /** The wrapped XA resource. */
  readonly xaResource: XAResource;
  /** Starts a branch on the broker (XA `start`, sending BEGIN with `timeoutSeconds`). */
  begin(xid: Xid, timeoutSeconds?: number): Promise<BrokerBranch>;
  /** Counters (see {@link BrokerResourceStats}). */
  readonly stats: BrokerResourceStats;
}

/**
 * Wraps `producer.getXAResource(...)` as a resource of the transaction manager. Call after
 * `producer.publish(topic)` of the topics you will send (or pass `brokerUrl`).
 *
 * The resource id is `metaq:<name or broker URL>#<unique qualifier>`: register the same one
 * (same name/broker and qualifier) after a restart, or recovery cannot finish the transactions
 * the coordinator log names it in.
 *
 * @throws whatever `getXAResource` throws (bad qualifier, no broker known yet, producer closed).
 */
export function createBrokerResource(producer: XaCapableProducer, options: BrokerResourceOptions = {}): BrokerResource {
  const xaOptions: XAResourceOptions = {
    ...(options.uniqueQualifier === undefined ? {} : { uniqueQualifier: options.uniqueQualifier }),
    ...(options.brokerUrl === undefined ? {} : { brokerUrl: options.brokerUrl }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
  };
  const xaResource = producer.getXAResource(xaOptions);
  const resourceId = `${BROKER_RESOURCE_PREFIX}${options.name ?? xaResource.brokerUrl}#${xaResource.uniqueQualifier}`;
  const logger = options.logger ?? componentLogger('xa-broker', { resourceId });
  return new BrokerResourceImpl(producer, xaResource, resourceId, logger);
}

/** True when `resourceId` names a broker resource (by its `metaq:` prefix). */
export function isBrokerResourceId(resourceId: string): boolean {
  return resourceId.startsWith(BROKER_RESOURCE_PREFIX);
}

const HEURISTIC_OUTCOMES: ReadonlyMap<number, PhaseTwoOutcome> = new Map<number, PhaseTwoOutcome>([
  [XaCode.XA_HEURCOM, 'heuristic-commit'],
  [XaCode.XA_HEURRB, 'heuristic-rollback'],
  [XaCode.XA_HEURMIX, 'heuristic-mixed'],
  [XaCode.XA_HEURHAZ, 'heuristic-hazard'],
]);

class BrokerResourceImpl implements BrokerResource {
  readonly producer: XaCapableProducer;
  readonly xaResource: XAResource;
  readonly resourceId: string;
  readonly #logger: Logger;
  #tombstonesExpired = 0;

  constructor(producer: XaCapableProducer, xaResource: XAResource, resourceId: string, logger: Logger) {
    this.producer = producer;
    this.xaResource = xaResource;
    this.resourceId = resourceId;
    this.#logger = logger;
  }

  get stats(): BrokerResourceStats {
    return { tombstonesExpired: this.#tombstonesExpired };
  }

  /**
   * Starts the branch without waiting for the broker's answer to BEGIN: the branch is returned at
   * once, so the first put is written right behind BEGIN on the connection (one round trip for
   * both, as local transactions do). The BEGIN answer is checked by every later call of the
   * branch: a send reports BEGIN's own error (clearer than the put's "not started"), and END,
   * prepare and commit fail with it, so the transaction rolls back.
   */
  begin(xid: Xid, timeoutSeconds?: number): Promise<BrokerBranch> {
    const xa = this.xaResource;
    let starting: Promise<void>;
    if (timeoutSeconds === undefined) {
      starting = xa.start(xid);
    } else {
      // start() reads the timeout synchronously, before its first await: setting it, starting and
      // restoring it in the same tick cannot leak into a concurrent begin.
      const previous = xa.getTransactionTimeout();
      xa.setTransactionTimeout(timeoutSeconds);
      starting = xa.start(xid);
      xa.setTransactionTimeout(previous);
    }
    return Promise.resolve(new BrokerBranchImpl(this.resourceId, xa, xid, starting));
  }

  async recover(): Promise<Xid[]> {
    const xids = await this.xaResource.recover();
    // The qualifier may be shared with another transaction manager (e.g. a Java one): keep ours.
    return xids.filter((xid) => xid.formatId === METAQ_TM_FORMAT_ID);
  }

  async commitPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    try {
      await this.xaResource.commit(xid, false);
      return 'committed';
    } catch (error) {
      if (!(error instanceof XaError)) throw error;
      const heuristic = HEURISTIC_OUTCOMES.get(error.xaCode);
      if (heuristic !== undefined) return heuristic;
      if (error.xaCode === XaCode.XAER_NOTA) {
        this.#tombstonesExpired += 1;
        this.#logger.warn(
          { xid: describeXid(xid), resourceId: this.resourceId },
          'commit answered XAER_NOTA: the branch is unknown to the broker; its outcome tombstone expired, taking it as committed (transactions.md §5.6)',
        );
        return 'committed';
      }
      if (isRollbackCode(error.xaCode)) return 'rolled-back';
      throw error;
    }
  }

  async rollbackPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    try {
      await this.xaResource.rollback(xid);
      return 'rolled-back';
    } catch (error) {
      if (!(error instanceof XaError)) throw error;
      const heuristic = HEURISTIC_OUTCOMES.get(error.xaCode);
      if (heuristic !== undefined) return heuristic;
      if (error.xaCode === XaCode.XAER_NOTA || isRollbackCode(error.xaCode)) return 'rolled-back';
      // The broker refuses a rollback with XAER_PROTO only when the branch is committed or committing.
      if (error.xaCode === XaCode.XAER_PROTO) return 'committed';
      throw error;
    }
  }

  async forget(xid: Xid): Promise<void> {
    try {
      await this.xaResource.forget(xid);
    } catch (error) {
      // Already forgotten (or never heuristic): nothing left to forget.
      if (error instanceof XaError && error.xaCode === XaCode.XAER_NOTA) return;
      throw error;
    }
  }
}

class BrokerBranchImpl implements BrokerBranch {
  readonly resourceId: string;
  readonly xid: Xid;
  readonly #xa: XAResource;
  #sent = 0;
  /** Sends without an answer yet (END does not wait for them: see XAResource.end). */
  readonly #inFlight = new InFlight();
  /** A send got no answer: its message may be staged on the broker (transactions.md §5.7 row 25). */
  #uncertain = false;
  /** BEGIN's answer (see BrokerResource.begin). */
  readonly #started: Promise<void>;
  /** END's answer, when END was sent: prepare and commit are written behind it without waiting. */
  #ending: Promise<void> | undefined;

  constructor(resourceId: string, xa: XAResource, xid: Xid, started: Promise<void>) {
    this.resourceId = resourceId;
    this.#xa = xa;
    this.xid = xid;
    this.#started = started;
    // Observed by whichever call comes next; never an unhandled rejection.
    started.catch(() => undefined);
  }

  get hasWork(): boolean {
    // Why an unanswered send counts: its message may be staged, and the XA resource made the
    // branch rollback-only, so its prepare (or one-phase commit) answers XA_RBCOMMFAIL and the
    // whole transaction rolls back. Counting answered sends only made such a branch "idle": it
    // was rolled back on the side, the other participants committed, and the transaction
    // reported success with part of its work dropped (a local transaction refuses that too:
    // ABORT_ONLY).
    return this.#sent > 0 || this.#uncertain || this.#inFlight.size > 0;
  }

  get sentCount(): number {
    return this.#sent;
  }

  send(message: Message, options?: SendOptions): Promise<SendResult> {
    const sending = this.#send(message, options);
    this.#inFlight.add(sending);
    return sending;
  }

  async #send(message: Message, options: SendOptions | undefined): Promise<SendResult> {
    const sending = this.#xa.send(this.xid, message, options);
    let result: SendResult;
    try {
      await this.#started;
    } catch (error) {
      sending.catch(() => undefined);
      // BEGIN without an answer: the branch, and this put behind it, may exist on the broker.
      if (beginInDoubt(error)) this.#uncertain = true;
      throw error;
    }
    try {
      result = await sending;
    } catch (error) {
      if (isTransportFailure(error)) this.#uncertain = true;
      throw error;
    }
    this.#sent += 1;
    return result;
  }

  /**
   * Sends END without waiting for any answer (BEGIN's, the sends', END's own): END is queued
   * behind the branch's puts, and the prepare or commit that follows right behind END; that call
   * reports BEGIN's or END's failure. When the application does not await its sends, BEGIN, the
   * puts, END and PREPARE thus make one round trip (MetaQ's own client sent END one-way).
   */
  end(success: boolean): Promise<void> {
    const ending = this.#xa.end(this.xid, success ? XaFlags.TMSUCCESS : XaFlags.TMFAIL);
    ending.catch(() => undefined);
    this.#ending = ending;
    return Promise.resolve();
  }

  /** Waits for BEGIN's and END's answers (if END was sent) after the call queued behind them. */
  async #afterEnd<T>(call: Promise<T>): Promise<T> {
    try {
      await this.#started;
    } catch (error) {
      call.catch(() => undefined);
      throw error;
    }
    const ending = this.#ending;
    if (ending !== undefined) {
      try {
        await ending;
      } catch (error) {
        call.catch(() => undefined);
        throw error;
      }
    }
    return call;
  }

  async prepare(): Promise<PrepareVote> {
    const vote = await this.#afterEnd(this.#xa.prepare(this.xid));
    if (vote !== XaCode.XA_RDONLY) return 'ok';
    // The sends' answers came before the vote (one connection, in order); let them settle.
    await this.#inFlight.settled();
    if (this.#sent > 0) {
      // A wrong read-only vote silently loses the messages (ARTEMIS-1985): refuse to believe it,
      // so the manager rolls the whole transaction back instead of committing without them.
      throw xaError(XaCode.XAER_RMERR, `prepare of ${describeXid(this.xid)}: the broker voted read-only although ${this.#sent} message(s) were sent in the branch`);
    }
    return 'read-only';
  }

  commitOnePhase(): Promise<void> {
    return this.#afterEnd(this.#xa.commit(this.xid, true));
  }

  async rollback(): Promise<void> {
    // A BEGIN that was refused left nothing to roll back; one without an answer may have begun it.
    let begun = true;
    await this.#started.catch((error: unknown) => {
      if (!beginInDoubt(error)) begun = false;
    });
    if (!begun) return;
    await this.#ending?.catch(() => undefined);
    return this.#xa.rollback(this.xid);
  }
}

/**
 * True when a failed BEGIN may still have begun the branch: no answer (the XA resource reports it
 * as XAER_RMFAIL), as opposed to the broker's refusal.
 */
function beginInDoubt(error: unknown): boolean {
  return isTransportFailure(error) || (error instanceof XaError && error.xaCode === XaCode.XAER_RMFAIL);
}
