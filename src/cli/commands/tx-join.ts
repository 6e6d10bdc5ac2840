/**
 * `metaq tx list` with `--coordinator-log` / `--postgres`: one table joining what the parties
 * know of each global transaction (transactions.md §5.8): the coordinator log's decision, the
 * broker's prepared branches, PostgreSQL's `pg_prepared_xacts` and the decision rows of
 * decision-row mode (xa.md "Decision-row mode"), with the resolution that recovery will apply.
 * Pure: the caller fetches the sources.
 */
import type { PendingEntry } from '../../xa/coordinator-log.js';
import { gtridHex, METAQ_TM_FORMAT_ID, parseGtrid, parsePgGid } from '../../xa/xid.js';

/** A broker branch as `GET /api/transactions` lists it. */
export interface BrokerBranchInfo {
  readonly key: string;
  readonly state: string;
  readonly messages: number;
  readonly preparedAgeSeconds?: number;
}

/** A row of `pg_prepared_xacts`. */
export interface PgPreparedInfo {
  readonly gid: string;
  readonly prepared: Date;
}

/** A row of the decision table, its key already parsed (rows whose key is not ours are left out). */
export interface DecisionRowInfo {
  /** The gtrid: its bytes, or its hex. */
  readonly gtrid: Buffer | string;
  readonly outcome: 'commit' | 'rollback';
}

/** One global transaction as `metaq tx list` shows it. */
export interface JoinedTransaction {
  /** The gtrid in hex (the broker key itself for a branch whose XID is not ours to parse). */
  readonly gtrid: string;
  /** The manager node id (hex) from the gtrid, when the XID is this manager's format. */
  readonly node: string | undefined;
  /** Seconds since the transaction began (from the gtrid), when known. */
  readonly ageSeconds: number | undefined;
  /** The coordinator log's view; `unknown` when no log was given. */
  readonly coordinator: 'committing' | 'presumed-aborting' | 'none' | 'unknown';
  readonly brokerBranches: readonly BrokerBranchInfo[];
  readonly postgresBranches: readonly string[];
  /** The decision row (decision-row mode): its outcome, `none`, or `unknown` when the table was not read. */
  readonly decisionRow: 'commit' | 'rollback' | 'none' | 'unknown';
  /** Heuristic outcomes the coordinator recorded. */
  readonly heuristics: readonly string[];
  /** What recovery will do, or what the operator must do. */
  readonly resolution: string;
}

/** The sources to join; an absent source is `undefined` (not asked). */
export interface JoinSources {
  readonly coordinator: readonly PendingEntry[] | undefined;
  readonly broker: readonly BrokerBranchInfo[];
  readonly postgres: readonly PgPreparedInfo[] | undefined;
  /** The decision table's rows; read together with `postgres` (an absent table: `[]`). */
  readonly decisions?: readonly DecisionRowInfo[] | undefined;
  readonly nowMs: number;
}

interface Accumulator {
  gtrid: string;
  ours: boolean;
  startedAtMs: number | undefined;
  node: string | undefined;
  entry: PendingEntry | undefined;
  broker: BrokerBranchInfo[];
  postgres: string[];
  decision: 'commit' | 'rollback' | undefined;
}

/** `XID:<formatId>:<gtridHex>:<bqualHex>:<uq>` → formatId and gtrid hex, or undefined for a local key. */
function parseBrokerKey(key: string): { formatId: number; gtrid: string } | undefined {
  const parts = key.split(':');
  if (parts[0] !== 'XID' || parts.length < 4) return undefined;
  const formatId = Number(parts[1]);
  return Number.isInteger(formatId) ? { formatId, gtrid: (parts[2] ?? '').toLowerCase() } : undefined;
}

/** Joins the sources by gtrid; rows sorted oldest first (unknown ages last). */
export function joinTransactions(sources: JoinSources): JoinedTransaction[] {
  const rows = new Map<string, Accumulator>();
  const row = (gtrid: string, ours: boolean): Accumulator => {
    let acc = rows.get(gtrid);
    if (acc === undefined) {
      const parts = ours ? parseGtrid(Buffer.from(gtrid, 'hex')) : undefined;
      acc = { gtrid, ours, startedAtMs: parts?.startedAtMs, node: parts?.nodeId.toString('hex'), entry: undefined, broker: [], postgres: [], decision: undefined };
      rows.set(gtrid, acc);
    }
    return acc;
  };
  for (const entry of sources.coordinator ?? []) row(gtridHex(entry.gtrid), true).entry = entry;
  for (const branch of sources.broker) {
    const parsed = parseBrokerKey(branch.key);
    if (parsed === undefined) continue; // local transactions are not global ones
    if (parsed.formatId === METAQ_TM_FORMAT_ID) row(parsed.gtrid, true).broker.push(branch);
    else row(branch.key, false).broker.push(branch);
  }
  for (const prepared of sources.postgres ?? []) {
    const xid = parsePgGid(prepared.gid);
    if (xid !== undefined && xid.formatId === METAQ_TM_FORMAT_ID) row(gtridHex(xid.globalTransactionId), true).postgres.push(prepared.gid);
    else row(`pg:${prepared.gid}`, false).postgres.push(prepared.gid);
  }
  for (const decision of sources.decisions ?? []) {
    const hex = typeof decision.gtrid === 'string' ? decision.gtrid.toLowerCase() : gtridHex(decision.gtrid);
    row(hex, true).decision = decision.outcome;
  }
  const joined = [...rows.values()].map((acc): JoinedTransaction => {
    const coordinator = sources.coordinator === undefined ? 'unknown' : (acc.entry?.state ?? 'none');
    const decisionRow = sources.decisions === undefined ? 'unknown' : (acc.decision ?? 'none');
    const heuristics = (acc.entry?.heuristics ?? []).map((h) => `${h.resourceId} ${h.outcome}`);
    return {
      gtrid: acc.gtrid,
      node: acc.node,
      ageSeconds: acc.startedAtMs === undefined ? undefined : Math.max(0, Math.round((sources.nowMs - acc.startedAtMs) / 1000)),
      coordinator,
      brokerBranches: acc.broker,
      postgresBranches: acc.postgres,
      decisionRow,
      heuristics,
      resolution: resolutionOf(acc, coordinator, decisionRow, heuristics.length > 0),
    };
  });
  return joined.sort((a, b) => (a.ageSeconds === undefined ? 1 : b.ageSeconds === undefined ? -1 : b.ageSeconds - a.ageSeconds));
}

/**
 * What recovery will do. Precedence: a foreign XID, then a heuristic, then a coordinator-log
 * entry (xa mode, or a heuristic record), then the decision row — decision-row mode writes
 * nothing to the coordinator log, so without an entry the row is the decision.
 */
function resolutionOf(
  acc: Accumulator,
  coordinator: JoinedTransaction['coordinator'],
  decisionRow: JoinedTransaction['decisionRow'],
  heuristic: boolean,
): string {
  if (!acc.ours) return 'not this manager\'s XID format: its own manager resolves it (or `metaq tx commit|rollback` by hand)';
  if (heuristic || acc.broker.some((b) => b.state.startsWith('HEURISTIC'))) return 'operator: a heuristic outcome was recorded; check the data on every party, then forget';
  if (coordinator === 'none' || coordinator === 'unknown') {
    const prepared = acc.broker.length > 0 || acc.postgres.length > 0;
    if (decisionRow === 'commit' || decisionRow === 'rollback') {
      if (!prepared) return 'finished: housekeeping deletes the row';
      return decisionRow === 'commit'
        ? 'commit: the decision row says commit (decision-row mode); recovery commits the prepared branches at its next scan'
        : 'rollback: recovery claimed it (rollback row); it rolls back every branch';
    }
    if (coordinator === 'none' && decisionRow === 'none') {
      return 'rollback (presumed abort): no commit decision; recovery rolls it back once older than the orphan safety interval, at its second sighting (in decision-row mode it first claims it with a rollback row: the unique key arbitrates against a commit in progress)';
    }
  }
  switch (coordinator) {
    case 'committing':
      return 'commit: the decision is logged; recovery re-drives phase two on every branch';
    case 'presumed-aborting':
      return 'rollback: recovery claimed it as an orphan and rolls back every branch';
    case 'none':
      return 'rollback (presumed abort): no commit decision; recovery rolls it back once older than the orphan safety interval, at its second sighting';
    case 'unknown':
      return 'unknown: pass --coordinator-log <dir> to see the decision';
  }
}
