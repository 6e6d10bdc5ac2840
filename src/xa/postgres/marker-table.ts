/**
 * The marker table (transactions.md §5.6): one row `(gid)` inserted inside every PostgreSQL
 * branch just before `PREPARE TRANSACTION`, so it commits or rolls back with the branch.
 *
 * Why: PostgreSQL keeps no heuristic state. After `COMMIT PREPARED` or `ROLLBACK PREPARED`
 * answers "prepared transaction does not exist", the marker is the only way to tell "an earlier
 * commit succeeded" (marker visible) from "an administrator ran ROLLBACK PREPARED" or "it was
 * rolled back" (marker absent).
 */
import { InvalidArgumentError } from '../../common/errors.js';
import { METAQ_TM_FORMAT_ID } from '../xid.js';

/** Default marker table name. */
export const DEFAULT_MARKER_TABLE = 'metaq_xa_marker';

/** Rows per `DELETE … WHERE gid = ANY($1)` in housekeeping. */
export const MARKER_DELETE_BATCH = 1000;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The SQL statements on one marker table. */
export interface MarkerTableSql {
  /** The table as written in SQL: `"name"` or `"schema"."name"`. */
  readonly qualifiedName: string;
  /** `CREATE TABLE IF NOT EXISTS … (gid text primary key, created_at timestamptz default now())`. */
  readonly create: string;
  /**
   * `INSERT … (gid) VALUES (<literal>)` for an already escaped gid literal. A literal, not `$1`:
   * the branch sends it in one simple-protocol query with `PREPARE TRANSACTION`, which cannot take
   * bind parameters (see `markerAndPrepareBlockEnd` in branch.ts).
   */
  readonly insertRow: (gidLiteral: string) => string;
  /** `SELECT 1 … WHERE gid = $1`. */
  readonly exists: string;
  /** `DELETE … WHERE gid = ANY($1::text[])`. */
  readonly deleteMany: string;
  /**
   * `SELECT gid … WHERE gid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gid > $2) ORDER BY gid
   * LIMIT $3`: a page of the markers matching the patterns (see {@link markerGidPatterns}).
   */
  readonly listPage: string;
}

/**
 * The statements for the marker table `name` (`table` or `schema.table`).
 *
 * Why so strict: the name goes into SQL text (DDL cannot take bind parameters). Each part is an
 * SQL identifier of letters, digits and `_`, quoted, so its case is kept exactly as given.
 *
 * @throws InvalidArgumentError for any other name.
 */
export function markerTableSql(name: string): MarkerTableSql {
  const parts = tableNameParts(name, 'markerTable');
  const qualifiedName = parts.map((part) => `"${part}"`).join('.');
  return {
    qualifiedName,
    create: `CREATE TABLE IF NOT EXISTS ${qualifiedName} (gid text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())`,
    insertRow: (gidLiteral) => `INSERT INTO ${qualifiedName} (gid) VALUES (${gidLiteral})`,
    exists: `SELECT 1 AS present FROM ${qualifiedName} WHERE gid = $1`,
    deleteMany: `DELETE FROM ${qualifiedName} WHERE gid = ANY($1::text[])`,
    listPage: `SELECT gid FROM ${qualifiedName} WHERE gid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gid > $2) ORDER BY gid LIMIT $3`,
  };
}

/**
 * The parts (`[table]` or `[schema, table]`) of a table name given in the option `option`,
 * each an SQL identifier of letters, digits and `_` (at most 63, not starting with a digit).
 *
 * @throws InvalidArgumentError naming the option for any other name.
 */
export function tableNameParts(name: string, option: string): string[] {
  const parts = name.split('.');
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new InvalidArgumentError(`${option} ${JSON.stringify(name)} is not a plain table name: use "table" or "schema.table", each part of letters, digits and _ (at most 63), not starting with a digit`);
  }
  return parts;
}

/**
 * `LIKE` patterns matching the marker gids of branches of `nodeIds`: `<formatId>\_<base64 of
 * the node id's first 6 bytes>%`. The gid is `formatId_base64(gtrid)_…` and the gtrid starts
 * with the 8-byte node id; base64 encodes 3 bytes in 4 characters, so its first 8 characters
 * depend on the first 6 bytes only. Rows of a node sharing those 6 bytes must still be filtered
 * exactly (`ownXidsOf`). The `_` is escaped (a one-character wildcard in `LIKE`); base64 has no
 * other wildcard characters. The decision keys of decision-row mode (`formatId_base64(gtrid)`)
 * share that prefix, so the same patterns select them (decision-table.ts).
 */
export function markerGidPatterns(nodeIds: readonly Buffer[]): string[] {
  return [...new Set(nodeIds.map((nodeId) => `${METAQ_TM_FORMAT_ID}\\_${nodeId.subarray(0, 6).toString('base64')}%`))];
}
