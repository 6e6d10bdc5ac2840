/**
 * A PostgreSQL database as an XA resource manager (transactions.md §2.5, §5.4, §5.6), over a
 * node-postgres pool: branches (`begin`) for live transactions, and XID-addressed phase two and
 * recovery (`commitPrepared`, `rollbackPrepared`, `recover`) for the transaction manager.
 *
 * Two modes (transactions.md §5.1):
 *
 * ```text
 * mode 'xa' (default)      branch: work … marker row, PREPARE TRANSACTION │ manager: COMMIT PREPARED
 *                          tables: marker table        needs: max_prepared_transactions > 0
 * mode 'decision-row'      branch: work … decision row (gtrid,'C'); COMMIT   (last resource, 1 round trip)
 *                          manager's recovery: decisionsOf / claimRollback (row (gtrid,'A'))
 *                          tables: decision table      needs: nothing special; one such branch with work per transaction
 * ```
 *
 * Server requirements in `xa` mode: `max_prepared_transactions > 0` (checked by
 * {@link PostgresResource.init}); the pool's role must be the one that prepares and finishes the
 * transactions (or a superuser): PostgreSQL lets only the preparing role or a superuser run
 * `COMMIT PREPARED`. In `decision-row` mode: INSERT, SELECT, DELETE on the decision table.
 */
import type { ClientBase, Pool } from 'pg';
import { ConfigError, InvalidArgumentError, XaError } from '../../common/errors.js';
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import type { EnlistableResource, MarkerPage, PhaseTwoOutcome, RecordedDecision, ResourceId } from '../resource.js';
import { NODE_ID_LENGTH, type Xid } from '../xid.js';
import { PostgresBranch, type PostgresBranchContext } from './branch.js';
import { sqlStateOf } from './connection-errors.js';
import { DecisionStore, DEFAULT_CLAIM_WAIT_MS, MAX_CLAIM_WAIT_MS } from './decision-store.js';
import { DEFAULT_DECISION_TABLE, decisionKeyOf, decisionTableSql } from './decision-table.js';
import { phaseTwoFailure, SQLSTATE_UNDEFINED_OBJECT, SQLSTATE_UNDEFINED_TABLE } from './error-mapping.js';
import { OWN_GID_LIKE_PATTERN, pgGidFor, pgGidLiteral } from './gid.js';
import { DEFAULT_MARKER_TABLE, MARKER_DELETE_BATCH, markerGidPatterns, markerTableSql, type MarkerTableSql } from './marker-table.js';
import { PinnedClient, withPinnedClient } from './pinned-client.js';
import { checkPreparedTransactions } from './prepared-transactions-check.js';
import { ownXidsOf } from './recover-filter.js';
import { ensureTable } from './table-setup.js';

/**
 * How a {@link PostgresResource} takes part in a global transaction (transactions.md §5.1):
 * `xa` — two-phase commit with `PREPARE TRANSACTION`; `decision-row` — committed last, one-phase,
 * its commit writing the decision row.
 */
export type PostgresResourceMode = 'xa' | 'decision-row';

/** Options of {@link createPostgresResource}. */
export interface PostgresResourceOptions {
  /**
   * The application's pool. Branches pin one client each from `begin` until prepare/commit/
   * rollback; phase two and recovery borrow one per call. If the pool has no 'error' listener,
   * the resource adds one (see {@link PostgresResource}).
   */
  readonly pool: Pool;
  /** Names the resource: its id is `postgres:<name>`, recorded in the coordinator log. Default `default`. */
  readonly name?: string;
  /** Marker table, `table` or `schema.table`. Default `metaq_xa_marker`. */
  readonly markerTable?: string;
  /**
   * 8-byte node ids (`nodeIdOf(nodeName)`) whose XIDs {@link PostgresResource.recover} lists:
   * this manager's own and any renamed predecessor's. Default: every XID of this manager's
   * formatId, whichever node made it.
   */
  readonly nodeIds?: readonly Buffer[];
  /**
   * `xa` (default): branches are prepared (`max_prepared_transactions > 0` needed).
   * `decision-row`: branches are last resources committed one-phase with a decision row, and the
   * resource keeps the decisions (a `DecisionKeeper`); at most one decision-row resource may do
   * work in a transaction (a second one's prepare refuses).
   */
  readonly mode?: PostgresResourceMode;
  /** Decision table (decision-row mode), `table` or `schema.table`. Default `metaq_xa_decision`. */
  readonly decisionTable?: string;
  /**
   * Decision-row mode: how long (ms, positive integer) a rollback claim waits for a commit of the
   * same transaction still in flight before leaving that transaction unsettled (PostgreSQL's
   * `lock_timeout` of the claim). Default 5000; at most 2147483647.
   */
  readonly claimWaitMs?: number;
}

/** Creates a {@link PostgresResource}; call its `init()` once before use. */
export function createPostgresResource(options: PostgresResourceOptions): PostgresResource {
  return new PostgresResource(options);
}

/**
 * A PostgreSQL database as an XA resource manager; see the module comment.
 *
 * Why the resource may add an 'error' listener to the pool: pg-pool emits 'error' when an idle
 * client's connection dies (a server restart, `pg_terminate_backend`); with no listener, Node
 * turns that into an uncaught exception, which would kill the transaction manager during the
 * very outage it must ride out. The pool has already discarded the client, so ignoring it is
 * safe. A listener the application added itself is left alone.
 */
export class PostgresResource implements EnlistableResource<PostgresBranch> {
  readonly resourceId: ResourceId;
  /** The pool the resource works on. */
  readonly pool: Pool;
  /** How the resource takes part in transactions (see {@link PostgresResourceMode}). */
  readonly mode: PostgresResourceMode;
  /**
   * `true` in `decision-row` mode: the resource is a `DecisionKeeper` (`isDecisionKeeper` checks
   * for `true`); undefined in `xa` mode.
   */
  readonly keepsDecisions: true | undefined;
  /** The marker table as written in SQL, e.g. `"metaq_xa_marker"` (used in `xa` mode). */
  readonly markerTable: string;
  /** The decision table as written in SQL, e.g. `"metaq_xa_decision"` (used in `decision-row` mode). */
  readonly decisionTable: string;
  readonly #markers: MarkerTableSql;
  /** Defined in decision-row mode only. */
  readonly #decisions: DecisionStore | undefined;
  readonly #nodeIds: readonly Buffer[] | undefined;
  readonly #branchContext: PostgresBranchContext;

  /**
   * Prefer {@link createPostgresResource}.
   *
   * @throws InvalidArgumentError for a bad name, mode, marker or decision table, node id or claimWaitMs.
   */
  constructor(options: PostgresResourceOptions) {
    const name = options.name ?? 'default';
    if (name === '' || /\s/.test(name)) throw new InvalidArgumentError(`PostgreSQL resource name ${JSON.stringify(name)} must be non-empty and without whitespace`);
    this.resourceId = `postgres:${name}`;
    this.pool = options.pool;
    const mode: unknown = options.mode ?? 'xa';
    if (mode !== 'xa' && mode !== 'decision-row') throw new InvalidArgumentError(`${this.resourceId}: mode must be 'xa' or 'decision-row', got ${JSON.stringify(mode)}`);
    this.mode = mode;
    this.#markers = markerTableSql(options.markerTable ?? DEFAULT_MARKER_TABLE);
    this.markerTable = this.#markers.qualifiedName;
    const decisionSql = decisionTableSql(options.decisionTable ?? DEFAULT_DECISION_TABLE);
    this.decisionTable = decisionSql.qualifiedName;
    const claimWaitMs = options.claimWaitMs ?? DEFAULT_CLAIM_WAIT_MS;
    // PostgreSQL's lock_timeout is an int4 of milliseconds.
    if (!Number.isSafeInteger(claimWaitMs) || claimWaitMs < 1 || claimWaitMs > MAX_CLAIM_WAIT_MS) {
      throw new InvalidArgumentError(`${this.resourceId}: claimWaitMs must be a positive integer (milliseconds) up to ${MAX_CLAIM_WAIT_MS}, got ${String(claimWaitMs)}`);
    }
    this.#decisions = mode === 'decision-row' ? new DecisionStore(this.pool, this.resourceId, decisionSql, claimWaitMs) : undefined;
    this.keepsDecisions = mode === 'decision-row' ? true : undefined;
    if (options.nodeIds !== undefined) {
      if (options.nodeIds.length === 0) throw new InvalidArgumentError(`${this.resourceId}: nodeIds is empty, so recover() would list nothing; omit it to recover every node's XIDs`);
      for (const nodeId of options.nodeIds) {
        if (nodeId.length !== NODE_ID_LENGTH) throw new InvalidArgumentError(`${this.resourceId}: a node id has ${NODE_ID_LENGTH} bytes (nodeIdOf(name)), got ${nodeId.length}`);
      }
      this.#nodeIds = options.nodeIds.map((nodeId) => Buffer.from(nodeId));
    }
    this.#branchContext = {
      resourceId: this.resourceId,
      markers: this.#markers,
      decisions: mode === 'decision-row' ? decisionSql : undefined,
      rollbackPrepared: (xid) => this.rollbackPrepared(xid),
    };
    if (this.pool.listenerCount('error') === 0) this.pool.on('error', () => undefined);
  }

  /**
   * Start-up check. `xa` mode: prepared transactions must be enabled
   * (`max_prepared_transactions > 0`), and the marker table must exist and be usable (created
   * when missing). `decision-row` mode: the decision table must exist and be usable (created when
   * missing; its columns and its unique key on gtrid checked); prepared transactions are not
   * needed, nor the marker table. Idempotent; safe to run from several processes at once.
   *
   * @throws ConfigError when prepared transactions are disabled (xa mode; the message says how
   * to enable them), or when the table is missing and cannot be created, lacks privileges (the
   * message names the GRANT) or has the wrong shape; XaError XAER_RMFAIL when PostgreSQL cannot
   * be reached; XaError XAER_RMERR otherwise.
   */
  async init(): Promise<void> {
    try {
      await withPinnedClient(this.pool, async ({ client }) => {
        if (this.#decisions !== undefined) {
          await this.#decisions.ensure(client);
          return;
        }
        await checkPreparedTransactions(client, this.resourceId, poolSizeOf(this.pool));
        await ensureTable(client, { resourceId: this.resourceId, what: 'XA marker table', qualifiedName: this.markerTable, create: this.#markers.create });
      });
    } catch (err) {
      if (err instanceof ConfigError || err instanceof XaError) throw err;
      throw phaseTwoFailure(err, `init of ${this.resourceId}`);
    }
  }

  /**
   * XA `start`: validates the XID's gid, pins a client from the pool and runs `BEGIN`.
   *
   * In `decision-row` mode the branch is a `LastResourceBranch` (`lastResource === true`).
   *
   * @throws XaError XAER_INVAL for an XID whose gid PostgreSQL would not take (200 bytes or more,
   * characters outside `[A-Za-z0-9+/=_-]`, another formatId) or, in decision-row mode, whose
   * gtrid is longer than 64 bytes; XAER_RMFAIL when no connection could be had; XAER_RMERR when
   * `BEGIN` failed otherwise.
   *
   * @param _timeoutSeconds - The transaction's timeout. Ignored: PostgreSQL has no branch timeout
   * of its own (the manager times the transaction out and rolls the branch back).
   */
  async begin(xid: Xid, _timeoutSeconds?: number): Promise<PostgresBranch> {
    const gid = pgGidFor(xid, this.resourceId);
    const what = `begin of ${gid} on ${this.resourceId}`;
    let decisionKey: string | undefined;
    if (this.#decisions !== undefined) {
      try {
        decisionKey = decisionKeyOf(xid.globalTransactionId);
      } catch (err) {
        throw xaError(XaCode.XAER_INVAL, `${what}: no decision key can be made of this gtrid: ${err instanceof Error ? err.message : String(err)}`, err);
      }
    }
    let pinned: PinnedClient;
    try {
      pinned = await PinnedClient.pin(this.pool);
    } catch (err) {
      throw phaseTwoFailure(err, what);
    }
    try {
      await pinned.client.query('BEGIN');
    } catch (err) {
      pinned.noteError(err);
      pinned.release(true);
      throw phaseTwoFailure(err, what);
    }
    return new PostgresBranch(this.#branchContext, xid, gid, pinned, decisionKey);
  }

  /**
   * The prepared branches of this manager in the pool's database: gids of formatId
   * `METAQ_TM_FORMAT_ID` (other software's prepared transactions are ignored), of the
   * configured nodes when `nodeIds` was given.
   *
   * @throws XaError XAER_RMFAIL when PostgreSQL cannot be reached; XAER_RMERR otherwise.
   */
  async recover(): Promise<Xid[]> {
    try {
      const result = await withPinnedClient(this.pool, ({ client }) =>
        client.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE $1 ORDER BY prepared, gid', [OWN_GID_LIKE_PATTERN]),
      );
      return ownXidsOf(
        result.rows.map((row) => row.gid),
        this.#nodeIds,
      );
    } catch (err) {
      throw phaseTwoFailure(err, `recover on ${this.resourceId}`);
    }
  }

  /**
   * `COMMIT PREPARED '<gid>'` on any pool client. Idempotent: when PostgreSQL says the prepared
   * transaction does not exist, the marker row decides — present: an earlier commit succeeded
   * (`committed`); absent: somebody rolled it back (`heuristic-rollback`: an administrator's
   * `ROLLBACK PREPARED`, since this manager logged a commit decision).
   *
   * @throws XaError XAER_RMFAIL when PostgreSQL cannot be reached or the connection was lost
   * (the outcome is unknown: call again); XAER_RMERR for permission denied (only the preparing
   * role or a superuser can finish it) and other errors; XA_RETRY while another session holds
   * the prepared transaction; XAER_INVAL for an XID with an unusable gid.
   */
  async commitPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    return this.#finishPrepared(xid, 'COMMIT');
  }

  /**
   * `ROLLBACK PREPARED '<gid>'` on any pool client. Idempotent: "does not exist" with no marker
   * row is `rolled-back` (already rolled back — e.g. PREPARE failed and PostgreSQL rolled back —
   * or never prepared); with the marker row it is `heuristic-commit` (an administrator ran
   * `COMMIT PREPARED`).
   *
   * @throws Like {@link commitPrepared}.
   */
  async rollbackPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    return this.#finishPrepared(xid, 'ROLLBACK');
  }

  /** No-op: PostgreSQL keeps no heuristic state (an administrator's decision simply ends the transaction). */
  async forget(_xid: Xid): Promise<void> {
    // nothing to forget
  }

  /**
   * Decision-row mode (`DecisionKeeper.decisionsOf`): the decisions recorded for `gtrids` (one
   * SELECT), keyed by gtridHex; a gtrid without a row is absent.
   *
   * @throws XaError XAER_RMFAIL when PostgreSQL cannot be reached; XAER_RMERR otherwise (e.g. the
   * decision table is missing); XAER_INVAL for a gtrid of 0 or more than 64 bytes; XAER_PROTO in
   * `xa` mode.
   */
  async decisionsOf(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    return this.#decisionStore('decisionsOf').decisionsOf(gtrids);
  }

  /**
   * Decision-row mode (`DecisionKeeper.claimRollback`): in one READ COMMITTED transaction with
   * `lock_timeout = claimWaitMs`, inserts a rollback row for each gtrid unless one exists
   * (`ON CONFLICT (gtrid) DO NOTHING`: a commit in flight makes it wait, then lose or win), reads
   * the outcomes and commits. A gtrid whose commit was still in flight after `claimWaitMs` is
   * absent from the result and gets no row (the others are claimed one at a time then).
   *
   * @returns gtridHex → `commit` (the commit won: commit the prepared branches) or `rollback`.
   * @throws Like {@link decisionsOf}.
   */
  async claimRollback(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    return this.#decisionStore('claimRollback').claimRollback(gtrids);
  }

  /**
   * Housekeeping after the manager wrote END: deletes the marker rows of `xids`, in batches of
   * {@link MARKER_DELETE_BATCH} (`DELETE … WHERE gid = ANY($1)`). Only call it once no phase-two
   * call for these XIDs can come any more: without its marker, a repeated `commitPrepared`
   * would answer `heuristic-rollback`. XIDs without a marker row, or whose gid PostgreSQL would
   * not take (they cannot have one), are ignored.
   *
   * @throws XaError XAER_RMFAIL when PostgreSQL cannot be reached (nothing lost: call again);
   * XAER_RMERR otherwise. Batches deleted before the failure stay deleted.
   *
   * In `decision-row` mode: deletes the decision rows of the XIDs' gtrids instead (whatever their
   * branch qualifier), in the same batches.
   */
  async deleteMarkers(xids: readonly Xid[]): Promise<void> {
    if (this.#decisions !== undefined) return this.#decisions.deleteRows(xids);
    const gids = new Set<string>();
    for (const xid of xids) {
      try {
        gids.add(pgGidFor(xid, this.resourceId));
      } catch {
        // not a gid this resource could have prepared: no marker row to delete
      }
    }
    if (gids.size === 0) return;
    const all = [...gids];
    try {
      await withPinnedClient(this.pool, async ({ client }) => {
        for (let start = 0; start < all.length; start += MARKER_DELETE_BATCH) {
          await client.query(this.#markers.deleteMany, [all.slice(start, start + MARKER_DELETE_BATCH)]);
        }
      });
    } catch (err) {
      throw phaseTwoFailure(err, `deleting ${all.length} marker row(s) in ${this.markerTable} on ${this.resourceId}`);
    }
  }

  /**
   * Housekeeping: one page (at most `limit` rows, in gid order, after the gid `after`) of the
   * marker rows of branches of `nodeIds`, for the manager's orphan-marker sweep. Rows whose gid
   * is not one of this manager's (another formatId, another node, a foreign shape) are skipped.
   *
   * In `decision-row` mode: a page of the decision rows of `nodeIds` instead, in key order after
   * the key `after`, filtered the same way, as XIDs with an empty branch qualifier (a row keeps
   * only the gtrid).
   *
   * @throws XaError XAER_RMFAIL when PostgreSQL cannot be reached; XAER_RMERR otherwise;
   *   InvalidArgumentError for a limit that is not a positive integer.
   */
  async listMarkers(nodeIds: readonly Buffer[], limit: number, after?: string): Promise<MarkerPage> {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidArgumentError(`${this.resourceId}: listMarkers limit must be a positive integer, got ${String(limit)}`);
    if (this.#decisions !== undefined) return this.#decisions.listPage(nodeIds, limit, after);
    if (nodeIds.length === 0) return { xids: [], next: undefined };
    try {
      const result = await withPinnedClient(this.pool, ({ client }) =>
        client.query<{ gid: string }>(this.#markers.listPage, [markerGidPatterns(nodeIds), after ?? null, limit]),
      );
      const gids = result.rows.map((row) => row.gid);
      return { xids: ownXidsOf(gids, nodeIds), next: gids.length < limit ? undefined : gids.at(-1) };
    } catch (err) {
      throw phaseTwoFailure(err, `listing marker rows in ${this.markerTable} on ${this.resourceId}`);
    }
  }

  async #finishPrepared(xid: Xid, verb: 'COMMIT' | 'ROLLBACK'): Promise<PhaseTwoOutcome> {
    const gid = pgGidFor(xid, this.resourceId);
    const what = `${verb} PREPARED of ${gid} on ${this.resourceId}`;
    try {
      return await withPinnedClient(this.pool, async ({ client }) => {
        try {
          // Outside a transaction block, as PostgreSQL requires: a pool client is idle.
          await client.query(`${verb} PREPARED ${pgGidLiteral(client, gid)}`);
          return verb === 'COMMIT' ? 'committed' : 'rolled-back';
        } catch (err) {
          if (sqlStateOf(err) !== SQLSTATE_UNDEFINED_OBJECT) throw err;
        }
        // "Prepared transaction does not exist": PostgreSQL keeps no trace of how it ended, the
        // marker row does (it was inserted inside the branch, so it exists iff it committed).
        const committed = await this.#markerExists(client, gid);
        if (verb === 'COMMIT') return committed ? 'committed' : 'heuristic-rollback';
        return committed ? 'heuristic-commit' : 'rolled-back';
      });
    } catch (err) {
      if (err instanceof XaError) throw err;
      throw phaseTwoFailure(err, what);
    }
  }

  async #markerExists(client: ClientBase, gid: string): Promise<boolean> {
    try {
      const result = await client.query(this.#markers.exists, [gid]);
      return result.rows.length > 0;
    } catch (err) {
      // Decision-row mode never creates the marker table nor prepares: no table, no marker.
      if (this.#decisions !== undefined && sqlStateOf(err) === SQLSTATE_UNDEFINED_TABLE) return false;
      throw err;
    }
  }

  /** The decision store. @throws XaError XAER_PROTO in `xa` mode. */
  #decisionStore(operation: string): DecisionStore {
    if (this.#decisions === undefined) throw xaError(XaCode.XAER_PROTO, `${operation} on ${this.resourceId}: the resource is in mode 'xa' and keeps no decision rows`);
    return this.#decisions;
  }
}

/** `pool.options.max` when it is a number (for the advice in the start-up error). */
function poolSizeOf(pool: Pool): number | undefined {
  const max: unknown = (pool.options as { max?: unknown } | undefined)?.max;
  return typeof max === 'number' ? max : undefined;
}

