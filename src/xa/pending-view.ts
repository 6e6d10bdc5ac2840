/**
 * What `tm.pendingTransactions()` and `tm.describe()` show an operator (the CLI's `tx list`,
 * transactions.md §5.8): every transaction in flight in this process or pending in the
 * coordinator log, joined by gtrid, with ages, participants and a suggested action.
 */
import { describeXid } from '../client/transaction/xid.js';
import type { PendingEntry } from './coordinator-log.js';
import type { GlobalTransactionImpl, PhaseTwoMode } from './global-transaction.js';
import type { TransactionManagerMetrics } from './metrics.js';
import { gtridHex, METAQ_TM_FORMAT_ID, parseGtrid } from './xid.js';

/** One participant of a pending transaction. */
export interface PendingParticipantInfo {
  readonly resourceId: string;
  /** `formatId:gtridHex:bqualHex`. */
  readonly xid: string;
  /** False when no registered resource has this id (recovery cannot reach it). */
  readonly registered: boolean;
  /** The heuristic outcome it reported, if any. */
  readonly heuristic?: string;
}

/** One transaction in flight or pending. */
export interface PendingTransactionInfo {
  /** The gtrid, hex. */
  readonly gtrid: string;
  /** The node id in the gtrid, hex (this node's, or one of `recoveryNodeNames`). */
  readonly nodeId: string;
  /**
   * In flight: the in-memory state (`ACTIVE`, `PREPARING`, `COMMITTING`, …). Otherwise the log's:
   * `COMMITTING` (decided; phase two to complete), `PRESUMED_ABORTING` (orphan being rolled
   * back), `HEURISTIC` (a participant contradicted the decision; needs an operator).
   */
  readonly state: string;
  /** True while this process works on it (a live transaction, or phase two being driven). */
  readonly inFlight: boolean;
  /** When it began (from the gtrid), ms since the epoch. */
  readonly startedAtMs: number | undefined;
  readonly ageMs: number | undefined;
  /** When the decision (or recovery's claim) was logged. */
  readonly decidedAtMs: number | undefined;
  readonly decisionAgeMs: number | undefined;
  readonly participants: readonly PendingParticipantInfo[];
  /** Heuristic outcomes recorded, oldest first. */
  readonly heuristics: readonly { readonly resourceId: string; readonly outcome: string; readonly atMs: number; readonly detail: string }[];
  /** What to do about it. */
  readonly suggestion: string;
}

/** `tm.describe()`. */
export interface ManagerDescription {
  readonly nodeName: string;
  /** hex */
  readonly nodeId: string;
  readonly recoveryNodeNames: readonly string[];
  /** Registered resource ids. */
  readonly resources: readonly string[];
  readonly settings: {
    readonly defaultTimeoutMs: number;
    readonly maxTimeoutMs: number;
    readonly orphanSafetyIntervalMs: number;
    readonly decisionRowRetentionMs: number;
    readonly recoveryIntervalMs: number;
    readonly phaseTwoWaitMs: number;
    readonly phaseTwo: PhaseTwoMode;
  };
  readonly metrics: TransactionManagerMetrics;
  readonly pending: readonly PendingTransactionInfo[];
  /** Orphan gtrids (hex) seen once, to be rolled back at the next scan if still there. */
  readonly orphanSightings: readonly string[];
}

/** Inputs of {@link describePending}. */
export interface PendingSources {
  readonly now: number;
  readonly inFlight: readonly GlobalTransactionImpl[];
  readonly logged: readonly PendingEntry[];
  isRegistered(resourceId: string): boolean;
  isDriving(gtridHex: string): boolean;
}

/** Joins in-flight transactions and log entries by gtrid (oldest first). */
export function describePending(sources: PendingSources): PendingTransactionInfo[] {
  const byGtrid = new Map<string, PendingTransactionInfo>();
  for (const entry of sources.logged) {
    const hex = gtridHex(entry.gtrid);
    byGtrid.set(hex, fromEntry(entry, hex, sources));
  }
  for (const tx of sources.inFlight) {
    const logged = byGtrid.get(tx.gtridHex);
    const participants =
      logged?.participants ??
      tx.branches().map((b) => ({ resourceId: b.resourceId, xid: b.xid, registered: sources.isRegistered(b.resourceId) }));
    byGtrid.set(tx.gtridHex, {
      gtrid: tx.gtridHex,
      nodeId: tx.gtrid.subarray(0, 8).toString('hex'),
      state: tx.state,
      inFlight: true,
      startedAtMs: tx.startedAtMs,
      ageMs: Math.max(0, sources.now - tx.startedAtMs),
      decidedAtMs: logged?.decidedAtMs,
      decisionAgeMs: logged?.decisionAgeMs,
      participants,
      heuristics: logged?.heuristics ?? [],
      suggestion: 'in progress in this process; nothing to do',
    });
  }
  return [...byGtrid.values()].sort((a, b) => (a.startedAtMs ?? 0) - (b.startedAtMs ?? 0));
}

function fromEntry(entry: PendingEntry, hex: string, sources: PendingSources): PendingTransactionInfo {
  const parts = parseGtrid(entry.gtrid);
  const wanted = entry.state === 'committing' ? 'heuristic-commit' : 'heuristic-rollback';
  const contrary = entry.heuristics.some((h) => h.outcome !== wanted);
  const participants = entry.participants.map((p) => {
    const heuristic = entry.heuristics.find((h) => h.resourceId === p.resourceId && h.branchQualifier.equals(p.branchQualifier));
    return {
      resourceId: p.resourceId,
      xid: describeXid({ formatId: METAQ_TM_FORMAT_ID, globalTransactionId: entry.gtrid, branchQualifier: p.branchQualifier }),
      registered: sources.isRegistered(p.resourceId),
      ...(heuristic === undefined ? {} : { heuristic: heuristic.outcome }),
    };
  });
  const unregistered = participants.filter((p) => !p.registered).map((p) => p.resourceId);
  let suggestion: string;
  if (contrary) suggestion = `heuristic outcome: check the data of every participant, repair it, then tm.forget('${hex}')`;
  else if (unregistered.length > 0) suggestion = `register ${unregistered.join(', ')} so recovery can complete it`;
  else if (entry.state === 'committing') suggestion = 'decided commit; recovery re-drives phase two until every participant answers (check the ones failing in the log)';
  else suggestion = 'orphan being rolled back by recovery; nothing to do';
  return {
    gtrid: hex,
    nodeId: entry.gtrid.subarray(0, 8).toString('hex'),
    state: contrary ? 'HEURISTIC' : entry.state === 'committing' ? 'COMMITTING' : 'PRESUMED_ABORTING',
    inFlight: sources.isDriving(hex),
    startedAtMs: parts?.startedAtMs,
    ageMs: parts === undefined ? undefined : Math.max(0, sources.now - parts.startedAtMs),
    decidedAtMs: entry.decidedAtMs,
    decisionAgeMs: Math.max(0, sources.now - entry.decidedAtMs),
    participants,
    heuristics: entry.heuristics.map((h) => ({ resourceId: h.resourceId, outcome: h.outcome, atMs: h.atMs, detail: h.detail })),
    suggestion,
  };
}
