/**
 * The XA transaction manager (coordinator): makes message sends and PostgreSQL work commit
 * atomically (transactions.md §5). Presumed abort: one forced COMMITTING record per two-phase
 * commit, nothing for aborts, read-only or one-phase transactions (§5.3); recovery at start and
 * every `recoveryIntervalMs` (recovery.ts); phase two retried until it succeeds (phase-two.ts).
 *
 * ```ts
 * const tm = await createTransactionManager({
 *   nodeName: 'billing-1',                       // stable, unique per coordinator
 *   logDir: '/var/lib/billing/xa-log',
 *   resources: [createBrokerResource(producer, { brokerUrl, uniqueQualifier: 'billing-1' }),
 *               createPostgresResource({ pool, name: 'billing' })],
 * });
 * const id = await tm.run(async (tx) => {
 *   const db = await tx.enlistPostgres(pool);
 *   const { rows } = await db.query('INSERT INTO orders(item) VALUES ($1) RETURNING id', ['book']);
 *   await tx.send(producer, { topic: 'orders', data: JSON.stringify(rows[0]) });
 *   return rows[0].id;
 * });
 * ```
 *
 * No thread-locals: the transaction is the `tx` argument (Node has no thread to bind it to, and
 * AsyncLocalStorage would hide which calls are transactional).
 */
import { randomBytes } from 'node:crypto';
import { IllegalStateError, InvalidArgumentError } from '../common/errors.js';
import { componentLogger, type Logger } from '../common/logger.js';
import { sanitizeToken, MAX_UNIQUE_QUALIFIER_LENGTH } from '../client/transaction/xid.js';
import { createBrokerResource, type BrokerResource, type XaCapableProducer } from './broker-resource.js';
import type { CoordinatorLog } from './coordinator-log.js';
import { DEFAULT_PHASE_TWO_RETRY, type CoordinatorContext, type PhaseTwoRetryOptions } from './coordinator-context.js';
import type { BeginOptions, GlobalTransaction, PostgresTarget } from './global-transaction-api.js';
import { GlobalTransactionImpl, type GlobalTransactionHost, type PhaseTwoMode } from './global-transaction.js';
import { GlobalTransactionState } from './global-transaction-states.js';
import { openCoordinatorLog } from './log/index.js';
import { MarkerSweeper } from './marker-sweeper.js';
import { MetricsCounters, type TransactionManagerMetrics } from './metrics.js';
import { OrphanMarkerSweeper } from './orphan-marker-sweeper.js';
import { describePending, type ManagerDescription, type PendingTransactionInfo } from './pending-view.js';
import { PostgresResource } from './postgres/index.js';
import { Recoverer, type RecoveryReport } from './recovery.js';
import type { EnlistableResource, RecoverableResource } from './resource.js';
import { TrackedLog } from './tracked-log.js';
import { waitAtMost } from './wait-at-most.js';
import { gtridHex, makeGtrid, nodeIdOf } from './xid.js';

/** Re-exported: where the manager's options are, users look for it. */
export type { PhaseTwoMode } from './global-transaction.js';

/** Default transaction timeout (Bitronix, Seata). */
export const DEFAULT_XA_TRANSACTION_TIMEOUT_MS = 60_000;
/** Default largest timeout `begin` accepts (Atomikos' `max_timeout`). */
export const DEFAULT_XA_MAX_TIMEOUT_MS = 300_000;
/** Added to the largest timeout for the default orphan safety interval (prepare latency, clock skew). */
export const ORPHAN_SAFETY_MARGIN_MS = 60_000;
/** Default period of background recovery (Bitronix: 60 s). */
export const DEFAULT_RECOVERY_INTERVAL_MS = 60_000;
/** Default of `decisionRowRetentionMs`: one day. */
export const DEFAULT_DECISION_ROW_RETENTION_MS = 24 * 3_600_000;
/** Default wait of `commit()` for phase two before it resolves with `completed: false`. */
export const DEFAULT_PHASE_TWO_WAIT_MS = 30_000;

/** Options of {@link createTransactionManager}. */
export interface TransactionManagerOptions {
  /**
   * This coordinator's name; its 8-byte node id (`nodeIdOf(nodeName)`) is in every gtrid, and
   * recovery only touches XIDs of its node ids. Must be stable across restarts and unique among
   * coordinators sharing a broker or database.
   */
  readonly nodeName: string;
  /** Directory of the durable coordinator log (opened with a lock: one live manager per directory). */
  readonly logDir?: string;
  /** A coordinator log instance instead of `logDir` (tests: `MemoryCoordinatorLog`). Not closed by `close()`. */
  readonly log?: CoordinatorLog;
  /**
   * The resources, registered by `resourceId`. Register every resource that may hold branches
   * (the same ids as before a restart): recovery can only commit or roll back what it can reach.
   */
  readonly resources?: readonly RecoverableResource[];
  /**
   * Other node names whose XIDs this manager also recovers (Narayana's `xaRecoveryNodes`): a
   * renamed predecessor of this node, or a decommissioned node whose log this one took over.
   */
  readonly recoveryNodeNames?: readonly string[];
  /** Default transaction timeout in ms. Default {@link DEFAULT_XA_TRANSACTION_TIMEOUT_MS}. */
  readonly defaultTimeoutMs?: number;
  /** Largest timeout `begin({ timeoutMs })` accepts. Default {@link DEFAULT_XA_MAX_TIMEOUT_MS} (or `defaultTimeoutMs` if larger). */
  readonly maxTimeoutMs?: number;
  /**
   * Recovery leaves alone prepared branches whose transaction began less than this long ago
   * (by the start time in the gtrid). Default: `maxTimeoutMs` + {@link ORPHAN_SAFETY_MARGIN_MS}.
   */
  readonly orphanSafetyIntervalMs?: number;
  /**
   * Decision-row mode: a decision row left behind by a process that died (found by the sweep
   * after a recovery scan) is deleted only once its transaction began at least this long ago, and
   * no registered resource lists a branch of it. Why wait at all: a broker that is not registered
   * (yet) cannot be asked, and its branch would need the row. Rows of transactions that completed
   * normally are deleted right away. Default {@link DEFAULT_DECISION_ROW_RETENTION_MS}.
   */
  readonly decisionRowRetentionMs?: number;
  /** Period of background recovery in ms; 0 disables the timer (`recover()` still works). Default {@link DEFAULT_RECOVERY_INTERVAL_MS}. */
  readonly recoveryIntervalMs?: number;
  /** Run a recovery scan before `createTransactionManager` resolves. Default true. */
  readonly recoverOnStart?: boolean;
  /** Back-off of retried phase-two calls. Default {@link DEFAULT_PHASE_TWO_RETRY}. */
  readonly phaseTwoRetry?: Partial<PhaseTwoRetryOptions>;
  /**
   * How long `commit()` (and a recovery scan) waits for phase two before going on while phase
   * two continues in the background; `Infinity` waits until it finished. Default {@link DEFAULT_PHASE_TWO_WAIT_MS}.
   */
  readonly phaseTwoWaitMs?: number;
  /**
   * When `commit()` of a two-phase transaction resolves. `await` (default): once phase two
   * finished (or after `phaseTwoWaitMs`). `background`: as soon as the decision is durable,
   * with `completed: false`, while phase two runs on (retried, tracked, finished by recovery
   * after a crash). The outcome is settled either way; with `background` a consumer may see the
   * message (and a reader the row, in `xa` mode) shortly after `commit()` resolved rather than
   * before. Kafka's coordinator answers a commit the same way, before its transaction markers
   * are written. Heuristic outcomes found later are logged and counted, not thrown.
   */
  readonly phaseTwo?: PhaseTwoMode;
  /**
   * Unique qualifier of broker resources the manager creates itself (on `tx.send(producer, …)`
   * with a producer that has no registered resource). Default `metaq-tm-<nodeName>` (sanitised).
   */
  readonly brokerUniqueQualifier?: string;
  /** Logger. Default: the `xa-tm` component logger. */
  readonly logger?: Logger;
  /** Clock (ms since the epoch), for tests. Default `Date.now`. */
  readonly now?: () => number;
}

/** The transaction manager. Create with {@link createTransactionManager}. */
export interface TransactionManager {
  /** The configured node name. */
  readonly nodeName: string;
  /** Its 8-byte node id. */
  readonly nodeId: Buffer;
  /**
   * Runs `work` in a new transaction and commits it; returns `work`'s value. When `work`
   * throws (or rejects), rolls back and rethrows its error.
   *
   * @throws (rejects) what `work` threw; otherwise what `tx.commit()` rejects with.
   */
  run<T>(work: (tx: GlobalTransaction) => Promise<T>, options?: BeginOptions): Promise<T>;
  /**
   * Begins a transaction (nothing is sent until a resource is enlisted).
   *
   * @throws {InvalidArgumentError} for a bad timeout; `ClientClosedError` after `close()`.
   */
  begin(options?: BeginOptions): GlobalTransaction;
  /** Registers a resource. @throws {InvalidArgumentError} when another resource has its id. */
  register(resource: RecoverableResource): void;
  /** The registered resources. */
  resources(): RecoverableResource[];
  /**
   * Runs a recovery scan now (see recovery.ts), then the marker housekeeping (marker-sweeper.ts,
   * orphan-marker-sweeper.ts); a scan already running is joined. Never rejects for a resource
   * failure (reported in the result).
   */
  recover(): Promise<RecoveryReport>;
  /**
   * Operator acknowledgement of a transaction held by a heuristic outcome contrary to its
   * decision (after checking and repairing the data): writes END, so it is no longer listed.
   *
   * @throws {IllegalStateError} when the transaction is pending but not held by such a heuristic
   *   (recovery completes it; ending it by hand would lose the decision).
   */
  forget(gtrid: Buffer | string): Promise<void>;
  /** Counters and gauges (see {@link TransactionManagerMetrics}). */
  metrics(): TransactionManagerMetrics;
  /** Every transaction in flight here or pending in the log, with state, age and participants (for the CLI). */
  pendingTransactions(): PendingTransactionInfo[];
  /** Settings, resources, metrics and pending transactions in one object (for the CLI). */
  describe(): ManagerDescription;
  /**
   * Stops background recovery, rolls back ACTIVE transactions, waits (at most `phaseTwoWaitMs`,
   * and never more than {@link DEFAULT_PHASE_TWO_WAIT_MS}) for commits in progress, then stops phase-two retries (recovery finishes them after a
   * restart) and closes the log it opened. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Opens the coordinator log, registers the resources, runs a first recovery scan (unless
 * `recoverOnStart` is false) and starts background recovery.
 *
 * Call `init()` on PostgreSQL resources yourself before (it checks `max_prepared_transactions`
 * and creates the marker table).
 *
 * @throws {InvalidArgumentError} for bad options (no node name, neither `logDir` nor `log`,
 *   duplicate resource ids, bad durations); what `openCoordinatorLog` throws (another live
 *   manager holds the directory: `IllegalStateError`; a damaged log: `StoreCorruptError`).
 */
export async function createTransactionManager(options: TransactionManagerOptions): Promise<TransactionManager> {
  const settings = resolveSettings(options);
  let log: CoordinatorLog;
  let ownsLog: boolean;
  if (options.log !== undefined) {
    log = options.log;
    ownsLog = false;
  } else if (options.logDir !== undefined) {
    log = await openCoordinatorLog(options.logDir, { nodeName: options.nodeName });
    ownsLog = true;
  } else {
    throw new InvalidArgumentError('createTransactionManager: pass logDir (a directory for the coordinator log) or log');
  }
  const manager = new TransactionManagerImpl(options, settings, log, ownsLog);
  if (options.recoverOnStart !== false) {
    try {
      await manager.recover();
    } catch (error) {
      settings.logger.error({ err: error }, 'recovery at start failed; background recovery will retry');
    }
  }
  manager.startRecoveryTimer();
  return manager;
}

interface Settings {
  readonly nodeId: Buffer;
  readonly nodeIds: readonly Buffer[];
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly orphanSafetyIntervalMs: number;
  readonly decisionRowRetentionMs: number;
  readonly recoveryIntervalMs: number;
  readonly phaseTwoWaitMs: number;
  readonly phaseTwo: PhaseTwoMode;
  readonly retry: Required<PhaseTwoRetryOptions>;
  readonly logger: Logger;
  readonly brokerUniqueQualifier: string;
  readonly now: () => number;
}

function checkDuration(name: string, value: number, min: number, allowInfinity = false): number {
  if (allowInfinity && value === Number.POSITIVE_INFINITY) return value;
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidArgumentError(`createTransactionManager: ${name} must be an integer ≥ ${min} (ms), got ${String(value)}`);
  return value;
}

function checkPhaseTwoMode(mode: PhaseTwoMode | undefined): PhaseTwoMode {
  if (mode === undefined) return 'await';
  if (mode !== 'await' && mode !== 'background') throw new InvalidArgumentError(`createTransactionManager: phaseTwo must be 'await' or 'background', got ${JSON.stringify(mode)}`);
  return mode;
}

function resolveSettings(options: TransactionManagerOptions): Settings {
  if (typeof options.nodeName !== 'string' || options.nodeName.trim() === '') {
    throw new InvalidArgumentError('createTransactionManager: nodeName is required (a stable name, unique per coordinator)');
  }
  const nodeId = nodeIdOf(options.nodeName);
  const extra = (options.recoveryNodeNames ?? []).map((name) => {
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidArgumentError('createTransactionManager: recoveryNodeNames must be non-empty strings');
    return nodeIdOf(name);
  });
  const nodeIds = [nodeId, ...extra.filter((id, i) => !id.equals(nodeId) && extra.findIndex((other) => other.equals(id)) === i)];
  const defaultTimeoutMs = checkDuration('defaultTimeoutMs', options.defaultTimeoutMs ?? DEFAULT_XA_TRANSACTION_TIMEOUT_MS, 1);
  const maxTimeoutMs = checkDuration('maxTimeoutMs', options.maxTimeoutMs ?? Math.max(DEFAULT_XA_MAX_TIMEOUT_MS, defaultTimeoutMs), 1);
  if (defaultTimeoutMs > maxTimeoutMs) throw new InvalidArgumentError(`createTransactionManager: defaultTimeoutMs (${defaultTimeoutMs}) exceeds maxTimeoutMs (${maxTimeoutMs})`);
  const orphanSafetyIntervalMs = checkDuration('orphanSafetyIntervalMs', options.orphanSafetyIntervalMs ?? maxTimeoutMs + ORPHAN_SAFETY_MARGIN_MS, 0);
  const logger = options.logger ?? componentLogger('xa-tm', { node: options.nodeName });
  if (orphanSafetyIntervalMs < maxTimeoutMs) {
    logger.warn({ orphanSafetyIntervalMs, maxTimeoutMs }, 'orphanSafetyIntervalMs is shorter than maxTimeoutMs: recovery relies on the in-flight guard alone for long transactions');
  }
  const retry = { ...DEFAULT_PHASE_TWO_RETRY, ...(options.phaseTwoRetry ?? {}) };
  checkDuration('phaseTwoRetry.initialDelayMs', retry.initialDelayMs, 0);
  checkDuration('phaseTwoRetry.maxDelayMs', retry.maxDelayMs, retry.initialDelayMs);
  const brokerUniqueQualifier = options.brokerUniqueQualifier ?? `metaq-tm-${sanitizeToken(options.nodeName)}`.slice(0, MAX_UNIQUE_QUALIFIER_LENGTH);
  return {
    nodeId,
    nodeIds,
    defaultTimeoutMs,
    maxTimeoutMs,
    orphanSafetyIntervalMs,
    decisionRowRetentionMs: checkDuration('decisionRowRetentionMs', options.decisionRowRetentionMs ?? DEFAULT_DECISION_ROW_RETENTION_MS, 0),
    recoveryIntervalMs: checkDuration('recoveryIntervalMs', options.recoveryIntervalMs ?? DEFAULT_RECOVERY_INTERVAL_MS, 0),
    phaseTwoWaitMs: checkDuration('phaseTwoWaitMs', options.phaseTwoWaitMs ?? DEFAULT_PHASE_TWO_WAIT_MS, 0, true),
    phaseTwo: checkPhaseTwoMode(options.phaseTwo),
    retry,
    logger,
    brokerUniqueQualifier,
    now: options.now ?? Date.now,
  };
}

interface InFlight {
  readonly tx: GlobalTransactionImpl;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

/** The last wait of `close()` for commits interrupted by the abort (their resource calls have timeouts). */
const CLOSE_DRAIN_MS = 10_000;

class TransactionManagerImpl implements TransactionManager, GlobalTransactionHost {
  readonly nodeName: string;
  readonly nodeId: Buffer;
  readonly ctx: CoordinatorContext;
  readonly phaseTwoWaitMs: number;
  readonly phaseTwo: PhaseTwoMode;
  readonly #settings: Settings;
  readonly #options: TransactionManagerOptions;
  readonly #log: TrackedLog;
  readonly #ownsLog: boolean;
  readonly #abort = new AbortController();
  readonly #counters = new MetricsCounters();
  readonly #resources = new Map<string, RecoverableResource>();
  readonly #active = new Map<string, InFlight>();
  readonly #phaseTwo = new Map<string, Promise<void>>();
  readonly #recoverer: Recoverer;
  readonly #orphanMarkers: OrphanMarkerSweeper;
  #sequence: bigint;
  #recovering: Promise<RecoveryReport> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: TransactionManagerOptions, settings: Settings, log: CoordinatorLog, ownsLog: boolean) {
    this.nodeName = options.nodeName;
    this.nodeId = settings.nodeId;
    this.#options = options;
    this.#settings = settings;
    this.#log = new TrackedLog(log);
    this.#ownsLog = ownsLog;
    this.phaseTwoWaitMs = settings.phaseTwoWaitMs;
    this.phaseTwo = settings.phaseTwo;
    // A random start makes a gtrid unique even if two runs of this node begin in the same ms.
    this.#sequence = randomBytes(8).readBigUInt64BE() >> 2n;
    this.ctx = {
      log: this.#log,
      logger: settings.logger,
      counters: this.#counters,
      retry: settings.retry,
      signal: this.#abort.signal,
      markers: new MarkerSweeper(this.#log, settings.logger),
      resource: (id) => this.#resources.get(id),
    };
    for (const resource of options.resources ?? []) this.register(resource);
    this.#recoverer = new Recoverer({
      ctx: this.ctx,
      nodeIds: settings.nodeIds,
      orphanSafetyIntervalMs: settings.orphanSafetyIntervalMs,
      phaseTwoWaitMs: settings.phaseTwoWaitMs,
      resources: () => [...this.#resources.values()],
      inFlight: (hex) => this.#isInFlight(hex),
      track: (hex, work) => this.track(hex, work),
      now: settings.now,
    });
    this.#orphanMarkers = new OrphanMarkerSweeper({
      ctx: this.ctx,
      nodeIds: settings.nodeIds,
      resources: () => [...this.#resources.values()],
      inFlight: (hex) => this.#isInFlight(hex),
      decisionRowRetentionMs: settings.decisionRowRetentionMs,
      now: settings.now,
    });
  }

  /** True while `hex` is begun and not ended here, or its phase two is being driven (commit or recovery). */
  #isInFlight(hex: string): boolean {
    return this.#active.has(hex) || this.#phaseTwo.has(hex);
  }

  /** Starts background recovery (after the first scan). */
  startRecoveryTimer(): void {
    const interval = this.#settings.recoveryIntervalMs;
    if (interval === 0 || this.#closing !== undefined) return;
    this.#timer = setInterval(() => {
      this.recover().catch((error: unknown) => this.ctx.logger.error({ err: error }, 'background recovery failed'));
    }, interval);
    this.#timer.unref();
  }

  // -------------------------------------------------------------------------------------------
  // Resources

  register(resource: RecoverableResource): void {
    const existing = this.#resources.get(resource.resourceId);
    if (existing === resource) return;
    if (existing !== undefined) throw new InvalidArgumentError(`transaction manager: another resource is already registered as ${resource.resourceId}`);
    this.#resources.set(resource.resourceId, resource);
  }

  resources(): RecoverableResource[] {
    return [...this.#resources.values()];
  }

  adopt(resource: RecoverableResource): void {
    if (this.#resources.get(resource.resourceId) !== undefined) return;
    this.ctx.logger.warn(
      { resourceId: resource.resourceId },
      'enlisted a resource that was not registered; it is registered now, but register it in createTransactionManager({ resources }) so that recovery after a restart finds it',
    );
    this.#resources.set(resource.resourceId, resource);
  }

  brokerResourceFor(producer: XaCapableProducer): BrokerResource {
    for (const resource of this.#resources.values()) {
      if (isBrokerResource(resource) && resource.producer === producer) return resource;
    }
    const created = createBrokerResource(producer, { uniqueQualifier: this.#settings.brokerUniqueQualifier });
    this.adopt(created);
    return created;
  }

  postgresResourceFor(target: PostgresTarget): PostgresResource {
    if (target instanceof PostgresResource) return target;
    for (const resource of this.#resources.values()) {
      if (resource instanceof PostgresResource && resource.pool === target) return resource;
    }
    throw new IllegalStateError(
      'enlistPostgres: no registered PostgresResource uses this pool; create one with createPostgresResource({ pool, name }), call its init(), and pass it in createTransactionManager({ resources })',
    );
  }

  // -------------------------------------------------------------------------------------------
  // Transactions

  begin(options: BeginOptions = {}): GlobalTransaction {
    if (this.#closing !== undefined) throw new IllegalStateError('transaction manager: begin after close()');
    const timeoutMs = options.timeoutMs ?? this.#settings.defaultTimeoutMs;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > this.#settings.maxTimeoutMs) {
      throw new InvalidArgumentError(`begin: timeoutMs must be an integer from 1 to maxTimeoutMs (${this.#settings.maxTimeoutMs}), got ${String(timeoutMs)}`);
    }
    const startedAtMs = this.#settings.now();
    this.#sequence = BigInt.asUintN(64, this.#sequence + 1n);
    const gtrid = makeGtrid({ nodeId: this.nodeId, startedAtMs, sequence: this.#sequence });
    const tx = new GlobalTransactionImpl(this, gtrid, startedAtMs, timeoutMs);
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    this.#active.set(tx.gtridHex, { tx, done, resolve });
    return tx;
  }

  async run<T>(work: (tx: GlobalTransaction) => Promise<T>, options?: BeginOptions): Promise<T> {
    const tx = this.begin(options);
    let value: T;
    try {
      value = await work(tx);
    } catch (error) {
      if (tx.state === GlobalTransactionState.ACTIVE || tx.state === GlobalTransactionState.ABORTING) {
        try {
          await tx.rollback();
        } catch (rollbackError) {
          this.ctx.logger.warn({ err: rollbackError, gtrid: tx.gtridHex }, 'rollback after a failed transaction callback failed');
        }
      }
      throw error;
    }
    await tx.commit();
    return value;
  }

  track(hex: string, work: Promise<unknown>): void {
    const settled: Promise<void> = work.then(
      () => undefined,
      () => undefined,
    );
    this.#phaseTwo.set(hex, settled);
    void settled.then(() => {
      if (this.#phaseTwo.get(hex) === settled) this.#phaseTwo.delete(hex);
    });
  }

  ended(tx: GlobalTransactionImpl): void {
    const entry = this.#active.get(tx.gtridHex);
    if (entry === undefined || entry.tx !== tx) return;
    this.#active.delete(tx.gtridHex);
    // Its participants' outcomes are recorded: recovery must not re-drive it for the operator.
    if (tx.outcome === 'heuristic' && this.#log.get(tx.gtrid) !== undefined) this.#recoverer.hold(tx.gtridHex);
    entry.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Recovery and operations

  recover(): Promise<RecoveryReport> {
    if (this.#recovering !== undefined) return this.#recovering;
    if (this.#closing !== undefined) return Promise.reject(new IllegalStateError('transaction manager: recover after close()'));
    this.#recovering = (async () => {
      try {
        return await this.#recoverer.scan();
      } finally {
        await this.ctx.markers.sweep();
        // Markers a killed predecessor (or this process before a crash) never swept. After the
        // scan, inside the serialised recover(): recovery's own phase-two calls, which may read
        // markers, are never running unseen (they are in flight or pending).
        await this.#orphanMarkers.sweep();
      }
    })().finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async forget(gtrid: Buffer | string): Promise<void> {
    if (typeof gtrid === 'string' && !/^(?:[0-9a-fA-F]{2})+$/.test(gtrid)) throw new InvalidArgumentError(`forget: ${JSON.stringify(gtrid)} is not a gtrid in hex`);
    const buffer = typeof gtrid === 'string' ? Buffer.from(gtrid, 'hex') : gtrid;
    const hex = gtridHex(buffer);
    const entry = this.#log.get(buffer);
    if (entry === undefined) return;
    const wanted = entry.state === 'committing' ? 'heuristic-commit' : 'heuristic-rollback';
    if (!entry.heuristics.some((h) => h.outcome !== wanted)) {
      throw new IllegalStateError(`forget ${hex}: the transaction is ${entry.state} without a contrary heuristic outcome; recovery completes it (ending it by hand would lose its decision)`);
    }
    await this.#log.end(buffer);
    this.#recoverer.release(hex);
    this.ctx.logger.warn({ gtrid: hex, heuristics: entry.heuristics.length }, 'operator forgot a transaction held by a heuristic outcome');
  }

  metrics(): TransactionManagerMetrics {
    const now = this.#settings.now();
    const pending = this.#log.pending();
    const committing = pending.filter((e) => e.state === 'committing');
    const oldest = committing.reduce((min, e) => Math.min(min, e.decidedAtMs), Number.POSITIVE_INFINITY);
    const heuristicPending = pending.filter((e) => e.heuristics.some((h) => h.outcome !== (e.state === 'committing' ? 'heuristic-commit' : 'heuristic-rollback'))).length;
    let tombstonesExpired = 0;
    for (const resource of this.#resources.values()) {
      if (isBrokerResource(resource)) tombstonesExpired += resource.stats.tombstonesExpired;
    }
    const c = this.#counters;
    return {
      inFlight: this.#active.size,
      committingWithoutEnd: committing.length,
      oldestCommittingAgeMs: committing.length === 0 ? 0 : Math.max(0, now - oldest),
      presumedAbortingWithoutEnd: pending.length - committing.length,
      heuristicPending,
      heuristics: c.heuristics,
      recoveryScans: c.recoveryScans,
      lastRecoveryScanMs: c.lastRecoveryScanMs,
      orphanRollbacks: c.orphanRollbacks,
      recoveredCommits: c.recoveredCommits,
      phaseTwoRetries: c.phaseTwoRetries(),
      commits: c.commits,
      lastResourceCommits: c.lastResourceCommits,
      decisionRowRecoveries: c.decisionRowRecoveries,
      onePhaseCommits: c.onePhaseCommits,
      readOnlyCommits: c.readOnlyCommits,
      rollbacks: c.rollbacks,
      timeouts: c.timeouts,
      tombstonesExpired,
      orphanMarkersDeleted: c.orphanMarkersDeleted,
    };
  }

  pendingTransactions(): PendingTransactionInfo[] {
    return describePending({
      now: this.#settings.now(),
      inFlight: [...this.#active.values()].map((a) => a.tx),
      logged: this.#log.pending(),
      isRegistered: (id) => this.#resources.has(id),
      isDriving: (hex) => this.#phaseTwo.has(hex),
    });
  }

  describe(): ManagerDescription {
    const s = this.#settings;
    return {
      nodeName: this.nodeName,
      nodeId: this.nodeId.toString('hex'),
      recoveryNodeNames: [...(this.#options.recoveryNodeNames ?? [])],
      resources: [...this.#resources.keys()],
      settings: {
        defaultTimeoutMs: s.defaultTimeoutMs,
        maxTimeoutMs: s.maxTimeoutMs,
        orphanSafetyIntervalMs: s.orphanSafetyIntervalMs,
        decisionRowRetentionMs: s.decisionRowRetentionMs,
        recoveryIntervalMs: s.recoveryIntervalMs,
        phaseTwoWaitMs: s.phaseTwoWaitMs,
        phaseTwo: s.phaseTwo,
      },
      metrics: this.metrics(),
      pending: this.pendingTransactions(),
      orphanSightings: [...this.#recoverer.sightings.keys()],
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const active = [...this.#active.values()];
    await Promise.all(
      active
        .filter((a) => a.tx.state === GlobalTransactionState.ACTIVE)
        .map((a) =>
          a.tx.rollback().catch((error: unknown) => {
            this.ctx.logger.warn({ err: error, gtrid: a.tx.gtridHex }, 'rollback at close failed');
          }),
        ),
    );
    // Let commits in progress finish (bounded), then stop the retry loops: decisions are durable.
    const busy = (): Promise<unknown> => Promise.all([...[...this.#active.values()].map((a) => a.done), ...this.#phaseTwo.values()]);
    await waitAtMost(busy(), Math.min(this.phaseTwoWaitMs, DEFAULT_PHASE_TWO_WAIT_MS));
    this.#abort.abort();
    await waitAtMost(busy(), CLOSE_DRAIN_MS);
    if (this.#recovering !== undefined) await this.#recovering.catch(() => undefined);
    await this.ctx.markers.sweep();
    const stuck = this.#log.pending().filter((e) => e.state === 'committing');
    if (stuck.length > 0) {
      this.ctx.logger.warn({ committing: stuck.map((e) => gtridHex(e.gtrid)) }, 'closing with COMMITTING transactions not completed: recovery completes them at the next start (do NOT delete the coordinator log)');
    }
    if (this.#ownsLog) await this.#log.close();
  }
}

function isBrokerResource(resource: RecoverableResource): resource is BrokerResource {
  return 'producer' in resource && 'xaResource' in resource && typeof (resource as Partial<EnlistableResource>).begin === 'function';
}
