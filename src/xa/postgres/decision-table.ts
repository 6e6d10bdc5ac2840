/**
 * The decision table of decision-row mode (transactions.md §5.1, §5.6): one row per global
 * transaction, keyed by its gtrid, holding the outcome — `C` written by the last-resource branch
 * inside its own transaction just before its one-phase COMMIT (that commit *is* the decision),
 * `A` written by recovery when it claims an orphan for rollback.
 *
 * Why a primary key on the gtrid is the whole trick: a commit and a rollback claim of the same
 * gtrid insert the same key, so PostgreSQL's unique index lets exactly one of them succeed. The
 * second insert waits for the first one's transaction, then fails (the commit: 23505, it rolls
 * back) or does nothing (the claim: `ON CONFLICT DO NOTHING`, then it reads the `C`) — or goes
 * ahead when the first one rolled back. This is Atomikos' `presumedAborting` played by the
 * database (transactions.md failure-matrix row 23).
 *
 * Key of a gtrid: `<formatId>_<base64(gtrid)>` ({@link decisionKeyOf}), the first two parts of
 * the pgjdbc gid of its branches, so {@link markerGidPatterns} (the marker table's per-node
 * `LIKE` patterns) select the decision rows of those nodes too.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import { METAQ_TM_FORMAT_ID } from '../xid.js';
import type { LiteralEscaper } from './gid.js';
import { markerGidPatterns, tableNameParts } from './marker-table.js';

/** Default decision table name. */
export const DEFAULT_DECISION_TABLE = 'metaq_xa_decision';

/** Outcome column values: `C` commit, `A` abort (rollback). */
export type DecisionOutcomeCode = 'C' | 'A';

/** The SQL statements on one decision table. */
export interface DecisionTableSql {
  /** The table as written in SQL: `"name"` or `"schema"."name"`. */
  readonly qualifiedName: string;
  /** The unquoted table name (to recognise the table in an error's `table` field). */
  readonly tableName: string;
  /** The unquoted schema name, when the table was given as `schema.table`. */
  readonly schemaName: string | undefined;
  /**
   * `CREATE TABLE IF NOT EXISTS … (gtrid text PRIMARY KEY, outcome char(1) NOT NULL CHECK
   * (outcome IN ('C','A')), created_at timestamptz NOT NULL DEFAULT now())`.
   */
  readonly create: string;
  /**
   * The commit row of one key, with the key as an SQL literal (see {@link decisionKeyLiteral}):
   * `INSERT … (gtrid, outcome) VALUES (<literal>, 'C')`. A literal, not `$1`, because the
   * branch sends it in one simple-protocol query together with `COMMIT`, and a multi-statement
   * query cannot take bind parameters.
   */
  commitRow(keyLiteral: string): string;
  /**
   * The rollback claim: `INSERT … (gtrid, outcome) SELECT k, 'A' FROM unnest($1::text[]) AS k
   * ORDER BY k ON CONFLICT (gtrid) DO NOTHING`. Sorted, so that two claims of overlapping key
   * sets lock the keys in the same order and cannot deadlock.
   */
  readonly claim: string;
  /** `SELECT gtrid, outcome … WHERE gtrid = ANY($1::text[])`. */
  readonly outcomes: string;
  /** `DELETE … WHERE gtrid = ANY($1::text[])`. */
  readonly deleteMany: string;
  /**
   * `SELECT gtrid … WHERE gtrid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gtrid > $2) ORDER
   * BY gtrid LIMIT $3`: a page of the rows matching the patterns ({@link decisionKeyPatterns}),
   * with the marker table's paging contract.
   */
  readonly listPage: string;
  /**
   * `SELECT gtrid, outcome … WHERE false`: fails with 42703 when the table lacks a column the
   * resource uses (a table of the same name made for something else).
   */
  readonly probeColumns: string;
}

/**
 * The statements for the decision table `name` (`table` or `schema.table`), validated like
 * `markerTableSql` (the name goes into SQL text: DDL cannot take bind parameters).
 *
 * @throws InvalidArgumentError for a name that is not one or two plain SQL identifiers.
 */
export function decisionTableSql(name: string): DecisionTableSql {
  const parts = tableNameParts(name, 'decisionTable');
  const qualifiedName = parts.map((part) => `"${part}"`).join('.');
  const tableName = parts.at(-1) ?? name;
  return {
    qualifiedName,
    tableName,
    schemaName: parts.length === 2 ? parts[0] : undefined,
    create: `CREATE TABLE IF NOT EXISTS ${qualifiedName} (gtrid text PRIMARY KEY, outcome char(1) NOT NULL CHECK (outcome IN ('C','A')), created_at timestamptz NOT NULL DEFAULT now())`,
    commitRow: (keyLiteral) => `INSERT INTO ${qualifiedName} (gtrid, outcome) VALUES (${keyLiteral}, 'C')`,
    claim: `INSERT INTO ${qualifiedName} (gtrid, outcome) SELECT k, 'A' FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (gtrid) DO NOTHING`,
    outcomes: `SELECT gtrid, outcome FROM ${qualifiedName} WHERE gtrid = ANY($1::text[])`,
    deleteMany: `DELETE FROM ${qualifiedName} WHERE gtrid = ANY($1::text[])`,
    listPage: `SELECT gtrid FROM ${qualifiedName} WHERE gtrid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gtrid > $2) ORDER BY gtrid LIMIT $3`,
    probeColumns: `SELECT gtrid, outcome FROM ${qualifiedName} WHERE false`,
  };
}

/** Longest gtrid of an XID (XA: at most 64 bytes). */
export const MAX_GTRID_BYTES = 64;

/** Characters of a decision key: digits, base64 and `_`. */
const KEY_CHARSET = /^[A-Za-z0-9+/=_]+$/;
const KEY_PATTERN = /^(\d+)_([A-Za-z0-9+/=]+)$/;

/**
 * The decision key of `gtrid`: `<METAQ_TM_FORMAT_ID>_<base64(gtrid)>`, e.g.
 * `1297175635_<32 characters>` for this manager's 24-byte gtrids. Only `[A-Za-z0-9+/=_]`.
 *
 * @throws RangeError for an empty gtrid or one longer than {@link MAX_GTRID_BYTES} bytes.
 */
export function decisionKeyOf(gtrid: Buffer): string {
  if (gtrid.length === 0 || gtrid.length > MAX_GTRID_BYTES) throw new RangeError(`a gtrid has 1 to ${MAX_GTRID_BYTES} bytes, got ${gtrid.length}`);
  return `${METAQ_TM_FORMAT_ID}_${gtrid.toString('base64')}`;
}

/**
 * The gtrid of a decision key, or undefined for any key {@link decisionKeyOf} would not have
 * made: another formatId, another shape, non-canonical base64 (rows some other software, or a
 * human, put in the table are left alone).
 */
export function parseDecisionKey(key: string): Buffer | undefined {
  const match = KEY_PATTERN.exec(key);
  if (match === null || Number(match[1]) !== METAQ_TM_FORMAT_ID) return undefined;
  const gtrid = Buffer.from(match[2] ?? '', 'base64');
  if (gtrid.length === 0 || gtrid.length > MAX_GTRID_BYTES) return undefined;
  // Round trip: Buffer.from(…, 'base64') is lenient, so only the canonical spelling is ours.
  return decisionKeyOf(gtrid) === key ? gtrid : undefined;
}

/**
 * The SQL string literal of a decision key, for the commit row of the one-round-trip commit
 * (`INSERT …; COMMIT` cannot take bind parameters).
 *
 * Why validate and escape although {@link decisionKeyOf} only makes `[A-Za-z0-9+/=_]`: the key
 * ends up in SQL text, so it is safe by construction, and `escapeLiteral` is a second line of
 * defence (as for the gid of `PREPARE TRANSACTION`).
 *
 * @throws InvalidArgumentError for a key with other characters (never builds SQL from it).
 */
export function decisionKeyLiteral(escaper: LiteralEscaper, key: string): string {
  if (!KEY_CHARSET.test(key)) throw new InvalidArgumentError(`decision key ${JSON.stringify(key)} contains characters other than [A-Za-z0-9+/=_]`);
  return escaper.escapeLiteral(key);
}

/**
 * `LIKE` patterns selecting the decision rows of transactions of `nodeIds`: the marker table's
 * {@link markerGidPatterns}, which match the `formatId_base64(first 6 bytes of the node id)`
 * prefix that a decision key shares with the gids of the same transaction. As for markers, a
 * node sharing those 6 bytes matches too: filter exactly afterwards.
 */
export function decisionKeyPatterns(nodeIds: readonly Buffer[]): string[] {
  return markerGidPatterns(nodeIds);
}

/** The outcome code of a row → what the transaction manager is told. */
export function recordedDecisionOf(outcome: string): 'commit' | 'rollback' | undefined {
  // char(1) comes back as a one-character string; trim defensively (a bpchar compares padded).
  const code = outcome.trim();
  if (code === 'C') return 'commit';
  if (code === 'A') return 'rollback';
  return undefined;
}
