/**
 * The resource side of decision-row mode (transactions.md §5.1, §5.6): reading decision rows,
 * recovery's rollback claims, and their housekeeping, on the decision table (decision-table.ts).
 * `PostgresResource` delegates to it in mode `decision-row`.
 *
 * The rollback claim, and why it is correct (failure-matrix row 23: "recovery tombstone racing a
 * slow commit → exactly one outcome via unique index"): in one READ COMMITTED transaction,
 * `INSERT (key, 'A') … ON CONFLICT (gtrid) DO NOTHING`, then `SELECT` the outcomes, then COMMIT.
 * - No row yet: the claim inserts `A`. A commit that comes later fails on the key (23505) and
 *   rolls its branch back, or — if it inserted first but has not committed — the claim's INSERT
 *   waits for that transaction: then does nothing if it committed (the SELECT, a new statement
 *   with a new snapshot, reads `C`), or inserts `A` if it rolled back.
 * - So whichever transaction commits its row first decides; the other cannot commit a different one.
 * Why INSERT and SELECT are two statements: one statement (a CTE) reads with the snapshot taken
 * before its INSERT waited, and would not see the `C` committed meanwhile.
 * Why READ COMMITTED explicitly: under REPEATABLE READ / SERIALIZABLE (a database default) the
 * conflict with a row committed after the snapshot is a serialization failure, not "do nothing".
 * Why `lock_timeout`: a commit stuck in flight (its client partitioned away mid-transaction)
 * would hold recovery's claim forever; after `claimWaitMs` the claim gives up on that key only.
 */
import type { ClientBase, Pool } from 'pg';
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import { ConfigError, XaError } from '../../common/errors.js';
import type { MarkerPage, RecordedDecision } from '../resource.js';
import { belongsToNode, gtridHex, METAQ_TM_FORMAT_ID, type Xid } from '../xid.js';
import { sqlStateOf } from './connection-errors.js';
import { DURABLE_COMMIT_SETTING } from './decision-commit.js';
import { decisionKeyOf, decisionKeyPatterns, MAX_GTRID_BYTES, parseDecisionKey, recordedDecisionOf, type DecisionTableSql } from './decision-table.js';
import { describePgError, phaseTwoFailure, SQLSTATE_UNDEFINED_TABLE } from './error-mapping.js';
import { MARKER_DELETE_BATCH } from './marker-table.js';
import { PinnedClient, withPinnedClient } from './pinned-client.js';
import { ensureTable } from './table-setup.js';

/** Default of `PostgresResourceOptions.claimWaitMs`: how long a claim waits for a commit in flight. */
export const DEFAULT_CLAIM_WAIT_MS = 5000;
/** Largest `claimWaitMs`: PostgreSQL's `lock_timeout` is an int4 of milliseconds. */
export const MAX_CLAIM_WAIT_MS = 2_147_483_647;

/** SQLSTATE lock_not_available: `lock_timeout` fired. */
const SQLSTATE_LOCK_NOT_AVAILABLE = '55P03';
/** SQLSTATE deadlock_detected. */
const SQLSTATE_DEADLOCK = '40P01';

/** Branch qualifier of the XIDs {@link DecisionStore.listPage} returns (a row keeps only the gtrid). */
export const DECISION_ROW_BQUAL: Buffer = Buffer.alloc(0);

/** A non-partial, non-deferrable unique index on `gtrid` alone, which `ON CONFLICT (gtrid)` needs. */
const UNIQUE_GTRID_INDEX_SQL = `SELECT EXISTS (
  SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate AND i.indnatts = 1
    AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'gtrid') AS ok`;

/** Decision rows of one resource; see the module comment. */
export class DecisionStore {
  readonly #pool: Pool;
  readonly #resourceId: string;
  readonly #sql: DecisionTableSql;
  readonly #claimWaitMs: number;

  /** @param claimWaitMs - An integer from 1 to {@link MAX_CLAIM_WAIT_MS} (validated by the resource). */
  constructor(pool: Pool, resourceId: string, sql: DecisionTableSql, claimWaitMs: number) {
    this.#pool = pool;
    this.#resourceId = resourceId;
    this.#sql = sql;
    this.#claimWaitMs = claimWaitMs;
  }

  /**
   * Start-up: creates the decision table when missing, checks privileges (INSERT, SELECT,
   * DELETE), its columns and its unique key on `gtrid` (immediate, so that a conflict shows at
   * the INSERT, and usable by `ON CONFLICT (gtrid)`).
   *
   * @throws ConfigError naming what to fix; pg's error otherwise.
   */
  async ensure(client: ClientBase): Promise<void> {
    const table = this.#sql.qualifiedName;
    await ensureTable(client, { resourceId: this.#resourceId, what: 'XA decision table', qualifiedName: table, create: this.#sql.create });
    try {
      await client.query(this.#sql.probeColumns);
    } catch (err) {
      if (sqlStateOf(err) !== '42703') throw err;
      throw new ConfigError(`${this.#resourceId}: the XA decision table ${table} lacks a column (${describePgError(err)}); it must be: ${this.#sql.create}`, {}, { cause: err });
    }
    const unique = await client.query<{ ok: boolean }>(UNIQUE_GTRID_INDEX_SQL, [table]);
    if (unique.rows[0]?.ok !== true) {
      throw new ConfigError(
        `${this.#resourceId}: the XA decision table ${table} has no non-deferrable unique key on gtrid alone; without it a commit and a rollback claim of the same transaction could both succeed. It must be: ${this.#sql.create}`,
      );
    }
  }

  /** See `DecisionKeeper.decisionsOf`. */
  async decisionsOf(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    const keys = this.#keysOf(gtrids, 'decisionsOf');
    if (keys.size === 0) return new Map();
    try {
      const result = await withPinnedClient(this.#pool, ({ client }) => client.query<{ gtrid: string; outcome: string }>(this.#sql.outcomes, [[...keys.keys()]]));
      const decisions = new Map<string, RecordedDecision>();
      addDecisions(decisions, result.rows, keys);
      return decisions;
    } catch (err) {
      throw this.#failure(err, `reading ${keys.size} decision row(s)`);
    }
  }

  /**
   * See `DecisionKeeper.claimRollback` and the module comment. All keys in one transaction
   * first; when `lock_timeout` fires (a commit of one of them is in flight), that transaction is
   * rolled back and the keys are claimed one at a time, so only the slow ones stay unsettled.
   */
  async claimRollback(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    const keys = this.#keysOf(gtrids, 'claimRollback');
    const settled = new Map<string, RecordedDecision>();
    if (keys.size === 0) return settled;
    const what = `claiming ${keys.size} transaction(s) for rollback`;
    let pinned: PinnedClient;
    try {
      pinned = await PinnedClient.pin(this.#pool);
    } catch (err) {
      throw this.#failure(err, what);
    }
    let clean = true;
    /** One claim transaction; a lock wait that timed out → false (rolled back, nothing settled). */
    const claim = async (batch: string[]): Promise<boolean> => {
      const client = pinned.client;
      try {
        // Parameterless, so BEGIN and SET LOCAL share a round trip; the number is an integer.
        // The claim is a decision too: its COMMIT must be durable whatever synchronous_commit says.
        await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '${this.#claimWaitMs}ms'; ${DURABLE_COMMIT_SETTING}`);
        await client.query(this.#sql.claim, [batch]);
        const rows = (await client.query<{ gtrid: string; outcome: string }>(this.#sql.outcomes, [batch])).rows;
        const commit = await client.query('COMMIT');
        if (commit.command !== 'COMMIT') throw new Error(`COMMIT of the rollback claim answered ${commit.command}`);
        addDecisions(settled, rows, keys);
        return true;
      } catch (err) {
        pinned.noteError(err);
        if (!pinned.broken) {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackErr) {
            pinned.noteError(rollbackErr);
            clean = false; // closing the session rolls back
          }
        }
        const sqlState = sqlStateOf(err);
        if (sqlState === SQLSTATE_LOCK_NOT_AVAILABLE || sqlState === SQLSTATE_DEADLOCK) return false;
        throw err;
      }
    };
    try {
      const sorted = [...keys.keys()].sort();
      if (!(await claim(sorted)) && sorted.length > 1) {
        for (const key of sorted) {
          if (!clean) break;
          await claim([key]);
        }
      }
      return settled;
    } catch (err) {
      throw this.#failure(err, what);
    } finally {
      pinned.release(!clean);
    }
  }

  /**
   * Deletes the decision rows of the gtrids of `xids`, in batches of {@link MARKER_DELETE_BATCH}.
   * XIDs of another formatId, or with a gtrid no key can be made of, are ignored.
   */
  async deleteRows(xids: readonly Xid[]): Promise<void> {
    const keys = new Set<string>();
    for (const xid of xids) {
      const gtrid = xid.globalTransactionId;
      if (xid.formatId !== METAQ_TM_FORMAT_ID || gtrid.length === 0 || gtrid.length > MAX_GTRID_BYTES) continue;
      keys.add(decisionKeyOf(gtrid));
    }
    if (keys.size === 0) return;
    const all = [...keys];
    try {
      await withPinnedClient(this.#pool, async ({ client }) => {
        for (let start = 0; start < all.length; start += MARKER_DELETE_BATCH) {
          await client.query(this.#sql.deleteMany, [all.slice(start, start + MARKER_DELETE_BATCH)]);
        }
      });
    } catch (err) {
      throw this.#failure(err, `deleting ${all.length} decision row(s)`);
    }
  }

  /**
   * One page of the decision rows of `nodeIds`, in key order after the key `after`, as XIDs
   * (formatId, gtrid, {@link DECISION_ROW_BQUAL}); foreign keys and other nodes' rows skipped.
   */
  async listPage(nodeIds: readonly Buffer[], limit: number, after: string | undefined): Promise<MarkerPage> {
    if (nodeIds.length === 0) return { xids: [], next: undefined };
    try {
      const result = await withPinnedClient(this.#pool, ({ client }) =>
        client.query<{ gtrid: string }>(this.#sql.listPage, [decisionKeyPatterns(nodeIds), after ?? null, limit]),
      );
      const keys = result.rows.map((row) => row.gtrid);
      const xids: Xid[] = [];
      for (const key of keys) {
        const gtrid = parseDecisionKey(key);
        if (gtrid === undefined) continue;
        const xid: Xid = { formatId: METAQ_TM_FORMAT_ID, globalTransactionId: gtrid, branchQualifier: DECISION_ROW_BQUAL };
        if (nodeIds.some((nodeId) => belongsToNode(xid, nodeId))) xids.push(xid);
      }
      return { xids, next: keys.length < limit ? undefined : keys.at(-1) };
    } catch (err) {
      throw this.#failure(err, 'listing decision rows');
    }
  }

  /** Decision key → gtridHex of `gtrids`. @throws XaError XAER_INVAL for a gtrid of no key. */
  #keysOf(gtrids: readonly Buffer[], operation: string): Map<string, string> {
    const keys = new Map<string, string>();
    for (const gtrid of gtrids) {
      if (!Buffer.isBuffer(gtrid) || gtrid.length === 0 || gtrid.length > MAX_GTRID_BYTES) {
        throw xaError(XaCode.XAER_INVAL, `${operation} on ${this.#resourceId}: a gtrid has 1 to ${MAX_GTRID_BYTES} bytes`);
      }
      keys.set(decisionKeyOf(gtrid), gtridHex(gtrid));
    }
    return keys;
  }

  /** The XaError of a failed operation: phase-two mapping, with a hint for a missing table. */
  #failure(err: unknown, doing: string): XaError {
    if (err instanceof XaError) return err;
    const what = `${doing} in ${this.#sql.qualifiedName} on ${this.#resourceId}`;
    if (sqlStateOf(err) === SQLSTATE_UNDEFINED_TABLE) {
      return xaError(XaCode.XAER_RMERR, `${what}: ${describePgError(err)}. The decision table is missing: call init() on the resource (mode 'decision-row') against this database`, err);
    }
    return phaseTwoFailure(err, what);
  }
}

/** Adds the rows' outcomes to `into`, keyed by the gtridHex of each requested key. */
function addDecisions(into: Map<string, RecordedDecision>, rows: readonly { gtrid: string; outcome: string }[], keys: ReadonlyMap<string, string>): void {
  for (const row of rows) {
    const hex = keys.get(row.gtrid);
    const decision = recordedDecisionOf(row.outcome);
    if (hex !== undefined && decision !== undefined) into.set(hex, decision);
  }
}
