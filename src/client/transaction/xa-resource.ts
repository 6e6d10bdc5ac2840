/**
 * The producer's XA resource (MetaQ's `XAMessageProducer.getXAResource()`, a
 * `javax.transaction.xa.XAResource`), for a transaction manager that coordinates the broker with
 * other resources (a database) in two-phase commit. Wire sequences (metaq-reference §1.7):
 *
 * | call | wire |
 * |---|---|
 * | `start(xid)` | `transaction XID:… <sessionId> BEGIN <timeout> <uq>` |
 * | `send(xid, message)` | `put … <XID:…> <opaque>` (staged, answer offset -1) |
 * | `end(xid)` | `transaction XID:… <sessionId> END <uq>` |
 * | `prepare(xid)` | `PREPARE <uq>` → body `0` (XA_OK) or `3` (XA_RDONLY) |
 * | `commit(xid, onePhase)` | `COMMIT_ONE_PHASE` / `COMMIT_TWO_PHASE <uq>` |
 * | `rollback(xid)` / `forget(xid)` | `ROLLBACK` / `FORGET <uq>` |
 * | `recover(flags)` | `transaction null <sessionId> RECOVER <uq>` to every candidate broker, merged |
 *
 * The resource is bound to ONE broker, chosen when it is created among the brokers that host every
 * topic the producer published (or `options.brokerUrl`); `isSameRM` is true for resources with the
 * same broker and unique qualifier. Branches listed by `recover` are completed on the broker that
 * listed them.
 *
 * Errors are {@link XaError}s with the X/Open code (see xa-errors.ts); a call that gets no answer
 * is XAER_RMFAIL (retriable, outcome unknown), never XA_RB*.
 */
import { BrokerError, ClientClosedError, IllegalStateError, InvalidArgumentError, XaError } from '../../common/errors.js';
import { formatTransactionKey, type XaTransactionKey } from '../../protocol/transaction-key.js';
import type { TransactionTypeName } from '../../protocol/transaction-type.js';
import { parseBrokerUrl } from '../broker-url.js';
import type { Message, SendResult } from '../message.js';
import type { SendOptions } from '../producer/producer.js';
import { StateMachine } from './state-machine.js';
import { DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS } from './producer-transaction.js';
import { selectTransactionalPartition, type TransactionHost } from './transaction-host.js';
import { interpretPrepareVote, interpretRecoverList, interpretTransactionOk } from './transaction-responses.js';
import { isRollbackCode, XaCode, XaFlags } from './xa-codes.js';
import { isTransportFailure, toXaError, xaError } from './xa-errors.js';
import { XA_BRANCH_TRANSITIONS, XaBranchState, xaRefusal, type XaBranchEventName, type XaBranchStateName } from './xa-states.js';
import { checkXid, defaultUniqueQualifier, describeXid, uniqueQualifierError, xaKeyOf, xidOf, type Xid } from './xid.js';
import { InFlight } from '../../common/in-flight.js';

/**
 * Default timeout of an XA branch in seconds: the broker rolls back a branch that is not prepared
 * within it (a prepared branch never times out). Capped by the broker's `maxTxTimeoutInSeconds`.
 */
export const DEFAULT_XA_TIMEOUT_SECONDS = 60;

/** Options of `producer.getXAResource()`. */
export interface XAResourceOptions {
  /**
   * Identifies this resource manager client on the broker; `recover()` lists only the branches
   * begun with it. Must be stable across restarts of the application (so that recovery finds the
   * branches a crashed run left prepared) and unique among the producers sharing a broker. No
   * whitespace, no `:`, not all digits, at most 128 characters. Default `XAMessageProducer-<hostname>`.
   */
  readonly uniqueQualifier?: string;
  /** Binds the resource to this broker (`meta://host:port`) instead of choosing one. */
  readonly brokerUrl?: string;
  /** Initial branch timeout in seconds (see {@link XAResource.setTransactionTimeout}). Default 60. */
  readonly timeoutSeconds?: number;
  /** Timeout of each XA request in ms; no answer in time → XAER_RMFAIL. Default 5000. */
  readonly requestTimeoutMs?: number;
}

/** A change of state of a branch on this resource, for `onTransition` listeners. */
export interface XaBranchTransition {
  readonly xid: Xid;
  /** The branch's key, `XID:<formatId>:<gtridHex>:<bqualHex>:<uniqueQualifier>`. */
  readonly transactionKey: string;
  readonly from: XaBranchStateName;
  readonly to: XaBranchStateName;
  readonly event: XaBranchEventName;
}

/**
 * A `javax.transaction.xa.XAResource` for the broker, plus `send(xid, message)` to put messages
 * into a branch. Create with `producer.getXAResource()`. Every method rejects with an
 * {@link XaError} unless noted.
 */
export interface XAResource {
  /** The unique qualifier of this resource manager client. */
  readonly uniqueQualifier: string;
  /** The broker this resource is bound to, `meta://host:port`. */
  readonly brokerUrl: string;
  /**
   * Starts (TMNOFLAGS, default: sends BEGIN with the transaction timeout), joins (TMJOIN) or
   * resumes (TMRESUME) the branch `xid`.
   *
   * @throws XAER_DUPID when this resource already started `xid` (or the broker finished it);
   *   XAER_INVAL for a malformed xid or flags; XAER_RMFAIL without an answer.
   */
  start(xid: Xid, flags?: number): Promise<void>;
  /**
   * Ends the association: TMSUCCESS (default), TMFAIL (the branch can then only roll back) or
   * TMSUSPEND. END is queued behind the branch's puts (it waits for sends in flight to be
   * written, not answered), so a prepare or commit called right after it, without awaiting it,
   * goes out behind it in the same round trip. A prepare then checks the answers of the sends
   * that were in flight (a send without an answer rolls the prepared branch back:
   * XA_RBCOMMFAIL); a one-phase commit waits for them before it is sent.
   */
  end(xid: Xid, flags?: number): Promise<void>;
  /**
   * Phase one: resolves XA_OK (0, prepared: the broker forced it to disk) or XA_RDONLY (3,
   * nothing was sent: the branch is finished, do not commit it).
   *
   * @throws XA_RBTIMEOUT (106) when the broker rolled the branch back on timeout, XA_RB* after
   *   `end(TMFAIL)` or a send that got no answer (the branch is rolled back), XAER_PROTO before
   *   `end`, XAER_NOTA for an unknown xid, XAER_RMFAIL without an answer.
   */
  prepare(xid: Xid): Promise<0 | 3>;
  /**
   * Commits: `onePhase` true for a branch that was not prepared (the one-phase optimisation),
   * false for phase two. A repeated commit of a committed branch resolves (the broker keeps
   * outcome tombstones), so a manager may retry after XAER_RMFAIL.
   *
   * @throws XAER_NOTA for an xid the broker does not know; XA_RB* when it was rolled back;
   *   XAER_PROTO for a two-phase commit of an unprepared branch (or one-phase of a prepared one);
   *   XAER_RMFAIL without an answer.
   */
  commit(xid: Xid, onePhase: boolean): Promise<void>;
  /** Rolls the branch back (a repeated rollback resolves). Waits for the branch's sends in flight. */
  rollback(xid: Xid): Promise<void>;
  /**
   * The prepared (and heuristically completed) branches of this unique qualifier. Flags:
   * TMSTARTRSCAN | TMENDRSCAN (default) returns everything at once; TMSTARTRSCAN opens a scan and
   * returns everything, later TMNOFLAGS calls return `[]` and TMENDRSCAN closes it (JTA usage).
   */
  recover(flags?: number): Promise<Xid[]>;
  /** Forgets a heuristically completed branch. */
  forget(xid: Xid): Promise<void>;
  /**
   * Sets the timeout put into later `start` calls; 0 restores the default (60 s). Returns true.
   *
   * @throws (synchronously) XAER_INVAL for a negative or non-integer value.
   */
  setTransactionTimeout(seconds: number): boolean;
  /** The timeout in seconds later `start` calls use. */
  getTransactionTimeout(): number;
  /** True when `other` is a resource of the same broker and unique qualifier. */
  isSameRM(other: XAResource): boolean;
  /**
   * Sends `message` in branch `xid` (started on this resource with `start`, not yet ended): staged
   * by the broker, visible after the commit. The result's `offset` is -1.
   *
   * @throws (rejects) XaError XAER_PROTO when the branch is not active on this resource, or the
   *   broker's XA code (e.g. XA_RBTIMEOUT) when the branch is gone; `RequestTimeoutError` /
   *   `ConnectionError` when the send got no answer (the branch becomes rollback-only);
   *   `BrokerError` when the broker refused the message (it is not part of the branch);
   *   `IllegalStateError` when the topic was not published or has no partition on the broker;
   *   `ClientClosedError` after `producer.close()`.
   */
  send(xid: Xid, message: Message, options?: SendOptions): Promise<SendResult>;
  /** Calls `listener` after each client-side state change of a branch; returns the function that removes it. */
  onTransition(listener: (transition: XaBranchTransition) => void): () => void;
}

/** One branch started on this resource. */
class Branch {
  readonly machine: StateMachine<XaBranchStateName, XaBranchEventName>;
  readonly sends = new InFlight();
  /** One per send whose put is not yet queued on the connection: settles once it is (or failed before). */
  readonly writes = new InFlight();
  /** While `end` waits for puts to be queued: settles once END is queued (prepare and commit go behind it). */
  endQueued: Promise<void> | undefined;
  /** The XA_RB* code a prepare answers once the branch is rollback-only. */
  rollbackCode: number = XaCode.XA_RBROLLBACK;

  readonly xid: Xid;
  readonly key: XaTransactionKey;
  readonly keyText: string;

  constructor(xid: Xid, key: XaTransactionKey, keyText: string, listeners: ReadonlySet<(transition: XaBranchTransition) => void>) {
    this.xid = xid;
    this.key = key;
    this.keyText = keyText;
    this.machine = new StateMachine(XA_BRANCH_TRANSITIONS, XaBranchState.ACTIVE, xaRefusal(keyText));
    this.machine.onTransition((t) => {
      for (const listener of listeners) listener({ xid, transactionKey: keyText, ...t });
    });
  }

  get final(): boolean {
    const state = this.machine.state;
    return state === XaBranchState.COMMITTED || state === XaBranchState.ROLLED_BACK;
  }
}

function checkTimeout(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > 0x7fffffff) {
    throw new InvalidArgumentError(`getXAResource: ${name} must be an integer from ${min} to 2147483647, got ${String(value)}`);
  }
}

/**
 * Creates an XA resource. Internal: applications call `producer.getXAResource()`.
 *
 * @throws {InvalidArgumentError} for a bad unique qualifier or option; {@link IllegalStateError}
 *   when no broker is known yet (publish a topic first) or no broker hosts every published topic.
 */
export function createXaResource(host: TransactionHost, options: XAResourceOptions = {}): XAResource {
  const uniqueQualifier = options.uniqueQualifier ?? defaultUniqueQualifier();
  const problem = uniqueQualifierError(uniqueQualifier);
  if (problem !== undefined) throw new InvalidArgumentError(`getXAResource: invalid uniqueQualifier ${JSON.stringify(uniqueQualifier)}: ${problem}`);
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_XA_TIMEOUT_SECONDS;
  checkTimeout('timeoutSeconds', timeoutSeconds, 1);
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TRANSACTION_REQUEST_TIMEOUT_MS;
  checkTimeout('requestTimeoutMs', requestTimeoutMs, 1);
  let brokerUrl: string;
  if (options.brokerUrl !== undefined) brokerUrl = parseBrokerUrl(options.brokerUrl).url;
  else {
    const candidates = host.publishedBrokerUrls();
    const pool = candidates.length > 0 ? candidates : host.knownBrokerUrls();
    if (pool.length === 0) throw new IllegalStateError('getXAResource: no broker is known yet; await producer.publish(topic) first, or pass options.brokerUrl');
    // MetaQ picks at random among the brokers hosting every published topic, to spread load.
    brokerUrl = pool[Math.floor(Math.random() * pool.length)] as string;
  }
  return new XaResourceImpl(host, uniqueQualifier, brokerUrl, timeoutSeconds, requestTimeoutMs);
}

type XaCommand = Extract<TransactionTypeName, 'BEGIN' | 'END' | 'PREPARE' | 'COMMIT_ONE_PHASE' | 'COMMIT_TWO_PHASE' | 'ROLLBACK' | 'FORGET'>;

class XaResourceImpl implements XAResource {
  readonly uniqueQualifier: string;
  readonly brokerUrl: string;
  readonly #host: TransactionHost;
  readonly #defaultTimeoutSeconds: number;
  readonly #requestTimeoutMs: number;
  readonly #branches = new Map<string, Branch>();
  /** Broker of each branch listed by `recover` (when it is not {@link brokerUrl}). */
  readonly #routes = new Map<string, string>();
  readonly #listeners = new Set<(transition: XaBranchTransition) => void>();
  #timeoutSeconds: number;
  #scanOpen = false;

  constructor(host: TransactionHost, uniqueQualifier: string, brokerUrl: string, timeoutSeconds: number, requestTimeoutMs: number) {
    this.#host = host;
    this.uniqueQualifier = uniqueQualifier;
    this.brokerUrl = brokerUrl;
    this.#defaultTimeoutSeconds = timeoutSeconds;
    this.#timeoutSeconds = timeoutSeconds;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  // -----------------------------------------------------------------------------------------
  // Association

  async start(xid: Xid, flags: number = XaFlags.TMNOFLAGS): Promise<void> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    const existing = this.#live(text);
    switch (flags) {
      case XaFlags.TMNOFLAGS: {
        if (this.#host.closed) throw xaError(XaCode.XAER_RMFAIL, `start of ${text}: the producer is closed`, new ClientClosedError('The producer'));
        if (existing !== undefined) throw xaError(XaCode.XAER_DUPID, `start of ${text}: this resource already started the branch (${existing.machine.state}); use TMJOIN or TMRESUME`);
        const branch = new Branch(xidOf(key), key, text, this.#listeners);
        this.#branches.set(text, branch); // before the await: a concurrent start of the same xid is a DUPID
        try {
          await this.#command(text, key, 'BEGIN', this.#timeoutSeconds);
        } catch (error) {
          if (this.#branches.get(text) === branch) this.#branches.delete(text);
          throw error;
        }
        this.#routes.delete(text);
        return;
      }
      case XaFlags.TMJOIN:
        if (existing === undefined) {
          // Started through another resource of the same RM (isSameRM): the broker has the branch.
          this.#branches.set(text, new Branch(xidOf(key), key, text, this.#listeners));
          return;
        }
        existing.machine.apply('join');
        return;
      case XaFlags.TMRESUME:
        if (existing === undefined) throw xaError(XaCode.XAER_NOTA, `start(TMRESUME) of ${text}: the branch is not suspended on this resource`);
        existing.machine.apply('resume');
        return;
      default:
        throw xaError(XaCode.XAER_INVAL, `start of ${text}: flags must be TMNOFLAGS, TMJOIN or TMRESUME, got 0x${flags.toString(16)}`);
    }
  }

  async end(xid: Xid, flags: number = XaFlags.TMSUCCESS): Promise<void> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    if (flags !== XaFlags.TMSUCCESS && flags !== XaFlags.TMFAIL && flags !== XaFlags.TMSUSPEND) {
      throw xaError(XaCode.XAER_INVAL, `end of ${text}: flags must be TMSUCCESS, TMFAIL or TMSUSPEND, got 0x${flags.toString(16)}`);
    }
    const branch = this.#live(text);
    if (branch === undefined) throw xaError(XaCode.XAER_NOTA, `end of ${text}: the branch was not started on this resource`);
    // Why END waits for the puts to be queued and not for their answers: the broker handles a
    // connection's frames in order, so END (and the prepare or commit written behind it) covers
    // exactly the puts before it, and a put the broker refuses makes the branch roll back (its
    // prepare answers XA_RB*). A send still in flight is checked when its prepare or one-phase
    // commit is answered (see prepare). That saves a round trip per branch whose application does
    // not await each send. Without sends still being queued, END is queued synchronously, in the
    // call, so that a prepare or commit called right after is written behind it.
    let queued: (() => void) | undefined;
    if (branch.writes.size > 0) {
      branch.endQueued = new Promise<void>((resolve) => (queued = resolve));
      await branch.writes.settled();
    }
    let ending: Promise<void>;
    try {
      if (branch.machine.state === XaBranchState.ROLLED_BACK) {
        // A send in flight learned that the broker had rolled the branch back (e.g. it timed out).
        throw xaError(branch.rollbackCode, `end of ${text}: the broker rolled the branch back`);
      }
      if (flags === XaFlags.TMSUSPEND) {
        branch.machine.apply('suspend');
        return;
      }
      branch.machine.apply(flags === XaFlags.TMFAIL ? 'endFail' : 'endSuccess');
      ending = this.#command(text, key, 'END');
    } finally {
      if (queued !== undefined) {
        branch.endQueued = undefined;
        queued();
      }
    }
    await ending;
  }

  // -----------------------------------------------------------------------------------------
  // Completion

  async prepare(xid: Xid): Promise<0 | 3> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    const branch = await this.#liveBehindEnd(text);
    if (branch !== undefined) {
      if (branch.machine.state === XaBranchState.ROLLBACK_ONLY) throw await this.#rollBackRollbackOnly(branch, 'prepare');
      if (!branch.machine.can('prepared')) throw xaRefusalFor(branch, 'prepare');
    }
    const sendsInFlight = branch !== undefined && branch.sends.size > 0;
    let vote: 0 | 3;
    try {
      vote = await this.#host.request(this.#brokerFor(text), this.#frame(key, 'PREPARE'), this.#requestTimeoutMs, interpretPrepareVote);
    } catch (error) {
      if (sendsInFlight) await branch?.sends.settled();
      throw this.#failed(error, `prepare of ${text}`, text);
    }
    if (sendsInFlight && branch !== undefined) {
      // Their answers came before this one (same connection, in order); their promises settle now.
      await branch.sends.settled();
      if (branch.machine.state === XaBranchState.ROLLBACK_ONLY) throw await this.#undoPrepare(branch, vote);
    }
    if (vote === XaCode.XA_OK) branch?.machine.apply('prepared');
    else this.#finish(text, 'committed'); // read-only: finished, there is no phase two
    return vote;
  }

  async commit(xid: Xid, onePhase: boolean): Promise<void> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    let branch = await this.#liveBehindEnd(text);
    // A one-phase commit cannot be undone: unlike prepare, it waits for the sends' answers first,
    // so that a send without an answer makes it roll back instead of committing a message its
    // sender was told had failed.
    if (onePhase && branch !== undefined && branch.sends.size > 0) {
      await branch.sends.settled();
      branch = this.#live(text);
    }
    if (branch !== undefined) {
      const state = branch.machine.state;
      if (state === XaBranchState.ROLLBACK_ONLY) throw await this.#rollBackRollbackOnly(branch, 'commit');
      if (onePhase && state !== XaBranchState.IDLE) throw xaRefusalFor(branch, 'commit (one-phase)');
      if (!onePhase && state !== XaBranchState.PREPARED) throw xaRefusalFor(branch, 'commit (two-phase) of an unprepared branch');
    }
    try {
      await this.#command(text, key, onePhase ? 'COMMIT_ONE_PHASE' : 'COMMIT_TWO_PHASE');
    } catch (error) {
      throw this.#failed(error, `commit of ${text}`, text);
    }
    this.#finish(text, 'committed');
  }

  async rollback(xid: Xid): Promise<void> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    const branch = this.#live(text);
    if (branch !== undefined) await branch.sends.settled();
    try {
      await this.#command(text, key, 'ROLLBACK');
    } catch (error) {
      throw this.#failed(error, `rollback of ${text}`, text);
    }
    this.#finish(text, 'rolledBack');
  }

  async forget(xid: Xid): Promise<void> {
    checkXid(xid);
    const key = xaKeyOf(xid, this.uniqueQualifier);
    const text = formatTransactionKey(key);
    try {
      await this.#command(text, key, 'FORGET');
    } catch (error) {
      throw this.#failed(error, `forget of ${text}`, text);
    }
    this.#routes.delete(text);
  }

  async recover(flags: number = XaFlags.TMSTARTRSCAN | XaFlags.TMENDRSCAN): Promise<Xid[]> {
    const scanFlags = XaFlags.TMSTARTRSCAN | XaFlags.TMENDRSCAN;
    if (!Number.isInteger(flags) || (flags & ~scanFlags) !== 0) {
      throw xaError(XaCode.XAER_INVAL, `recover: flags must be TMSTARTRSCAN, TMENDRSCAN, both, or TMNOFLAGS, got 0x${Number(flags).toString(16)}`);
    }
    const starting = (flags & XaFlags.TMSTARTRSCAN) !== 0;
    const ending = (flags & XaFlags.TMENDRSCAN) !== 0;
    if (!starting) {
      if (!this.#scanOpen) throw xaError(XaCode.XAER_PROTO, 'recover: no recovery scan is open; start one with TMSTARTRSCAN');
      if (ending) this.#scanOpen = false;
      return []; // everything was returned when the scan started
    }
    const urls = this.#recoverUrls();
    const lists = await Promise.all(
      urls.map(async (url) => {
        const frame = {
          type: 'transaction' as const,
          transactionKey: null,
          sessionId: this.#host.keys.sessionId,
          transactionType: 'RECOVER' as const,
          timeout: 0,
          uniqueQualifier: this.uniqueQualifier,
        };
        try {
          return { url, keys: await this.#host.request(url, frame, this.#requestTimeoutMs, interpretRecoverList) };
        } catch (error) {
          // A missing list could make the manager presume abort for a branch it never saw: fail whole.
          throw toXaError(error, `recover on ${url}`);
        }
      }),
    );
    const seen = new Set<string>();
    const xids: Xid[] = [];
    for (const { url, keys } of lists) {
      for (const key of keys) {
        const text = formatTransactionKey(key);
        if (seen.has(text)) continue;
        seen.add(text);
        if (url !== this.brokerUrl) this.#routes.set(text, url);
        else this.#routes.delete(text);
        xids.push(xidOf(key));
      }
    }
    this.#scanOpen = !ending;
    return xids;
  }

  // -----------------------------------------------------------------------------------------
  // Settings

  setTransactionTimeout(seconds: number): boolean {
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > 0x7fffffff) {
      throw xaError(XaCode.XAER_INVAL, `setTransactionTimeout: seconds must be an integer from 0 to 2147483647, got ${String(seconds)}`);
    }
    this.#timeoutSeconds = seconds === 0 ? this.#defaultTimeoutSeconds : seconds;
    return true;
  }

  getTransactionTimeout(): number {
    return this.#timeoutSeconds;
  }

  isSameRM(other: XAResource): boolean {
    return other instanceof XaResourceImpl && other.brokerUrl === this.brokerUrl && other.uniqueQualifier === this.uniqueQualifier;
  }

  onTransition(listener: (transition: XaBranchTransition) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // -----------------------------------------------------------------------------------------
  // Sending

  send(xid: Xid, message: Message, options?: SendOptions): Promise<SendResult> {
    let branch: Branch;
    let text: string;
    try {
      if (this.#host.closed) throw new ClientClosedError('The producer');
      checkXid(xid);
      if (message === null || typeof message !== 'object') throw new InvalidArgumentError('send: the message must be an object { topic, data }');
      text = formatTransactionKey(xaKeyOf(xid, this.uniqueQualifier));
      const live = this.#live(text);
      if (live === undefined) throw xaError(XaCode.XAER_PROTO, `send in ${text}: call start(xid) on this resource first`);
      branch = live;
      branch.machine.apply('send');
    } catch (error) {
      return Promise.reject(error);
    }
    let queued!: () => void;
    const write = new Promise<void>((resolve) => (queued = resolve));
    branch.writes.add(write);
    const sending = this.#send(branch, text, message, options?.timeoutMs ?? this.#host.sendTimeoutMs, queued);
    branch.sends.add(sending);
    return sending;
  }

  /** `queued` is called once the put is queued on the connection, or has failed before that. */
  async #send(branch: Branch, text: string, message: Message, timeoutMs: number, queued: () => void): Promise<SendResult> {
    let put: Promise<SendResult>;
    try {
      const partitions = await this.#host.partitionsFor(message.topic);
      const ref = selectTransactionalPartition(this.#host.selector, message, partitions, this.brokerUrl);
      put = this.#host.putInTransaction(ref, message, branch.key, timeoutMs);
    } catch (error) {
      throw this.#sendNotWritten(branch, error);
    } finally {
      queued();
    }
    try {
      return await put;
    } catch (error) {
      if (isTransportFailure(error)) {
        // The message may or may not be staged: the branch must not commit (prepare → XA_RBCOMMFAIL).
        branch.rollbackCode = XaCode.XA_RBCOMMFAIL;
        if (branch.machine.can('sendUncertain')) branch.machine.apply('sendUncertain');
        throw error;
      }
      // Neither an answer nor a lost request: the put was refused before it was written (the
      // message could not be encoded).
      if (!(error instanceof BrokerError) && !(error instanceof XaError)) throw this.#sendNotWritten(branch, error);
      const mapped = toXaError(error, `send in ${text}`);
      // A plain refusal of this message (bad topic, …): the broker made the branch roll-back-only,
      // so its prepare (or one-phase commit) answers XA_RBROLLBACK and the global transaction
      // rolls back (all or none); the branch stays open until then.
      if (mapped.xaCode === XaCode.XAER_RMERR) throw error;
      this.#failed(mapped, `send in ${text}`, text);
      throw mapped;
    }
  }

  /**
   * A send that failed before its put reached the broker: nothing is staged, but the application
   * asked for this message to be part of the branch, and committing the others without it would
   * break "all or none" (the broker makes a branch roll-back-only for a put it refuses, for the
   * same reason). The branch can only roll back now: prepare and commit answer XA_RBROLLBACK.
   */
  #sendNotWritten(branch: Branch, error: unknown): unknown {
    if (branch.machine.can('sendFailed')) branch.machine.apply('sendFailed');
    return error;
  }

  // -----------------------------------------------------------------------------------------
  // Helpers

  /** {@link #live}, once an END waiting for puts to be queued is queued (so a call made now goes out behind it). */
  async #liveBehindEnd(text: string): Promise<Branch | undefined> {
    const endQueued = this.#live(text)?.endQueued;
    if (endQueued !== undefined) await endQueued;
    return this.#live(text);
  }

  /** The client-side branch, unless unknown here or finished. */
  #live(text: string): Branch | undefined {
    const branch = this.#branches.get(text);
    return branch === undefined || branch.final ? undefined : branch;
  }

  #brokerFor(text: string): string {
    return this.#routes.get(text) ?? this.brokerUrl;
  }

  /** The brokers `recover` asks: this resource's, and every broker hosting all published topics. */
  #recoverUrls(): string[] {
    return [...new Set([this.brokerUrl, ...this.#host.publishedBrokerUrls()])].sort();
  }

  #frame(key: XaTransactionKey, type: XaCommand, timeout = 0) {
    return {
      type: 'transaction' as const,
      transactionKey: key,
      sessionId: this.#host.keys.sessionId,
      transactionType: type,
      timeout,
      uniqueQualifier: this.uniqueQualifier,
    };
  }

  async #command(text: string, key: XaTransactionKey, type: XaCommand, timeout = 0): Promise<void> {
    try {
      await this.#host.request(this.#brokerFor(text), this.#frame(key, type, timeout), this.#requestTimeoutMs, interpretTransactionOk);
    } catch (error) {
      throw toXaError(error, `${type} of ${text}`);
    }
  }

  /** Maps a failed completion call; every answer but XAER_RMFAIL hands the branch to the broker. */
  #failed(error: unknown, what: string, text: string): XaError {
    const mapped = toXaError(error, what);
    if (mapped.xaCode !== XaCode.XAER_RMFAIL) {
      // The broker's word is final from here on: later calls for this xid go straight to it.
      const branch = this.#branches.get(text);
      if (branch !== undefined && branch.machine.can('rolledBack') && isRollbackCode(mapped.xaCode)) {
        branch.rollbackCode = mapped.xaCode;
        branch.machine.apply('rolledBack');
      }
      this.#branches.delete(text);
    }
    return mapped;
  }

  /** Applies the final event and forgets the branch (and its route). */
  #finish(text: string, event: 'committed' | 'rolledBack'): void {
    const branch = this.#branches.get(text);
    if (branch !== undefined && branch.machine.can(event)) branch.machine.apply(event);
    this.#branches.delete(text);
    this.#routes.delete(text);
  }

  /**
   * A send written before END got no answer, but the broker answered the prepare (which it handled
   * after that put): the branch may hold a message its sender was told had failed, so it must not
   * commit. Rolls back a branch the broker prepared and returns the error to throw: the branch's
   * XA_RB* code once the rollback is done, XAER_RMFAIL when the rollback got no answer (the branch
   * stays prepared on the broker, which never rolls back a prepared branch by itself, so the
   * caller must roll it back: the transaction manager does, presuming abort).
   */
  async #undoPrepare(branch: Branch, vote: 0 | 3): Promise<XaError> {
    const why = `prepare of ${branch.keyText} (${describeXid(branch.xid)}): a send in the branch got no answer`;
    if (vote === XaCode.XA_OK) {
      try {
        await this.#command(branch.keyText, branch.key, 'ROLLBACK');
      } catch (error) {
        const mapped = toXaError(error, `rollback of ${branch.keyText}`);
        if (mapped.xaCode === XaCode.XAER_RMFAIL) {
          return xaError(XaCode.XAER_RMFAIL, `${why}, and the rollback of the prepared branch failed (${mapped.message}); roll it back`, error);
        }
      }
    }
    const code = branch.rollbackCode;
    this.#finish(branch.keyText, 'rolledBack');
    return xaError(code, `${why}; the branch was rolled back`);
  }

  /**
   * A rollback-only branch cannot be prepared or committed: roll it back on the broker (best
   * effort: unprepared, it also times out there) and return the XA_RB* error to throw.
   */
  async #rollBackRollbackOnly(branch: Branch, what: string): Promise<XaError> {
    await branch.sends.settled();
    const code = branch.rollbackCode;
    let note = 'rolled back';
    try {
      await this.#command(branch.keyText, branch.key, 'ROLLBACK');
    } catch (error) {
      note = `rolled back on the client; the broker's rollback failed (${error instanceof Error ? error.message : String(error)}) and the broker rolls it back when it times out`;
    }
    this.#finish(branch.keyText, 'rolledBack');
    const why = code === XaCode.XA_RBCOMMFAIL ? 'a send in the branch got no answer' : 'the branch was ended with TMFAIL';
    return xaError(code, `${what} of ${branch.keyText} (${describeXid(branch.xid)}): ${why}; the branch was ${note}`);
  }
}

function xaRefusalFor(branch: Branch, what: string): XaError {
  return xaError(XaCode.XAER_PROTO, `${what} of ${branch.keyText}: not allowed while the branch is ${branch.machine.state} on this resource`);
}
