/**
 * What the transaction manager needs from a resource manager (the broker, a PostgreSQL
 * database), in two shapes:
 *
 * - a {@link Branch}: one participant of one live transaction, created when the application
 *   enlists the resource (`tx.enlistPostgres(pool)`, `tx.send(producer, message)`); it does the
 *   work and votes;
 * - a {@link RecoverableResource}: the resource as recovery sees it after a crash, knowing only
 *   XIDs (from the coordinator log or from the resource's own `recover`).
 *
 * Error contract (transactions.md §0 item 5): every method rejects with an `XaError`.
 * - XAER_RMFAIL (-7) or XA_RETRY: the resource could not be reached or did not answer; the
 *   outcome is unknown; the manager retries. A connection loss is never reported as a rollback.
 * - XA_RB* (100–107) from `prepare`: the branch is rolled back (vote "no").
 * - Heuristic codes from `commit`/`rollback`: see {@link PhaseTwoOutcome} instead of throwing.
 */
import type { Xid } from './xid.js';

/**
 * Stable name of a resource manager, recorded in the coordinator log so that recovery after a
 * restart finds the resource again: e.g. `metaq:meta://10.0.0.5:8123#orders-tm` or
 * `postgres:orders-db`. The application registers resources under these names.
 */
export type ResourceId = string;

/** A prepare vote: `ok` (prepared, durable) or `read-only` (nothing to commit; the branch is finished). */
export type PrepareVote = 'ok' | 'read-only';

/**
 * What a phase-two call found. `committed` / `rolled-back`: done now, or earlier (a repeated
 * call: tombstone, or PostgreSQL's "does not exist" with the marker row telling which).
 * `heuristic-*`: somebody else (an operator) decided; the manager records a HEURISTIC entry,
 * alerts, and calls `forget` where the resource needs it.
 */
export type PhaseTwoOutcome = 'committed' | 'rolled-back' | 'heuristic-commit' | 'heuristic-rollback' | 'heuristic-mixed' | 'heuristic-hazard';

/** One participant of one live transaction. */
export interface Branch {
  readonly resourceId: ResourceId;
  readonly xid: Xid;
  /** False when the application enlisted the resource but did no work: the branch is skipped (no prepare, no commit). */
  readonly hasWork: boolean;
  /** Ends the work phase (XA `end`): `success` false marks it rollback-only. */
  end(success: boolean): Promise<void>;
  /** Phase one. Rejects with XA_RB* when the branch was rolled back instead. */
  prepare(): Promise<PrepareVote>;
  /** The one-phase optimisation: commit a branch that was not prepared (the only participant with work). */
  commitOnePhase(): Promise<void>;
  /** Rolls back a branch that is not prepared (prepared ones are rolled back through the resource). */
  rollback(): Promise<void>;
}

/** A resource manager as recovery and phase two see it: addressed by XID only. */
export interface RecoverableResource {
  readonly resourceId: ResourceId;
  /** The prepared (and heuristically completed) branches this manager may own: formatId {@link METAQ_TM_FORMAT_ID} ones. */
  recover(): Promise<Xid[]>;
  /** Phase two commit of a prepared branch; idempotent (a repeated commit answers `committed`). */
  commitPrepared(xid: Xid): Promise<PhaseTwoOutcome>;
  /** Rolls back a prepared branch; idempotent (an unknown or already rolled back branch answers `rolled-back`). */
  rollbackPrepared(xid: Xid): Promise<PhaseTwoOutcome>;
  /** Forgets a heuristically completed branch (no-op where the resource keeps no heuristic state). */
  forget(xid: Xid): Promise<void>;
  /**
   * Optional housekeeping: deletes what the resource kept to tell a committed branch from a
   * rolled-back one after "does not exist" (PostgreSQL's marker rows, transactions.md §5.6). The
   * manager calls it, in batches, only for committed branches whose END is known to be on disk
   * (a lost END makes recovery re-drive the commit, which then needs the marker). Best effort:
   * a rejection is logged and the XIDs are offered again later; unknown XIDs are ignored.
   */
  deleteMarkers?(xids: readonly Xid[]): Promise<void>;
  /**
   * Optional housekeeping, with `deleteMarkers`: one page of the markers that exist for branches
   * of the nodes `nodeIds` (8-byte node ids), in a stable order, starting after the position
   * `after` (a {@link MarkerPage.next} of an earlier call; undefined: from the start). The
   * manager's orphan-marker sweep (orphan-marker-sweeper.ts) deletes those no pending transaction needs.
   */
  listMarkers?(nodeIds: readonly Buffer[], limit: number, after?: string): Promise<MarkerPage>;
}

/** One page of {@link RecoverableResource.listMarkers}. */
export interface MarkerPage {
  /** XIDs whose marker exists, of the requested nodes, in the resource's order. */
  readonly xids: readonly Xid[];
  /** Opaque position to continue after this page; undefined when the listing reached its end. */
  readonly next: string | undefined;
}

/**
 * A resource the application can enlist in a live transaction: it starts a {@link Branch} for an
 * XID (the broker resource: XA `start`; the PostgreSQL resource: `BEGIN` on a pinned client).
 */
export interface EnlistableResource<B extends Branch = Branch> extends RecoverableResource {
  /**
   * Starts the branch `xid`. `timeoutSeconds` is the transaction's timeout (resources that can
   * time a branch out on their side use it; others ignore it).
   */
  begin(xid: Xid, timeoutSeconds?: number): Promise<B>;
}

/** The outcome a {@link DecisionKeeper} holds for a transaction. */
export type RecordedDecision = 'commit' | 'rollback';

/**
 * A branch that can be the *last resource* of a commit (decision-row mode, transactions.md §5.1):
 * the other participants are prepared first, then this branch writes the commit decision (a row
 * keyed by the gtrid) inside its own transaction and commits it one-phase. Its commit *is* the
 * decision: no PREPARE of its own, no forced coordinator log record. Recovery finds the decision
 * through the branch's resource, a {@link DecisionKeeper}.
 */
export interface LastResourceBranch extends Branch {
  /** Marks the branch as able to decide (see {@link isLastResourceBranch}). */
  readonly lastResource: true;
  /**
   * Writes the commit decision of the branch's gtrid inside the branch and commits it (one round
   * trip). Resolves once committed: the global transaction is then decided. Call it only after
   * every other participant voted ok.
   *
   * @throws XaError XA_RB* when the branch rolled back instead: XA_RBINTEGRITY for a deferred
   * constraint, XA_RBTRANSIENT for a serialization failure, XA_RBROLLBACK when recovery had
   * already claimed the gtrid for rollback (its rollback row holds the key) or an earlier
   * statement failed; XAER_RMFAIL when the connection was lost during COMMIT (the outcome is
   * unknown: settle it with the resource's {@link DecisionKeeper.claimRollback}); XAER_PROTO in a
   * state that does not allow it.
   */
  commitAsDecision(): Promise<void>;
}

/** True when `branch` can be the last resource (decision-row mode). */
export function isLastResourceBranch(branch: Branch): branch is LastResourceBranch {
  return (branch as Partial<LastResourceBranch>).lastResource === true;
}

/**
 * A resource that keeps commit decisions for the transactions whose last resource it was
 * (decision-row mode): one row per gtrid, `commit` written by the committing branch, `rollback`
 * by recovery when it claims an orphan. The key is unique, so a commit and a claim of the same
 * gtrid cannot both succeed: the later insert waits for the earlier one's transaction and then
 * finds its row (Atomikos' `presumedAborting`, played by the database's unique index).
 *
 * Housekeeping uses the {@link RecoverableResource} marker methods: `listMarkers` lists decision
 * rows (as XIDs of the row's gtrid with an empty branch qualifier: a row belongs to the whole
 * transaction), `deleteMarkers` deletes the rows of the XIDs' gtrids.
 */
export interface DecisionKeeper extends RecoverableResource {
  /** Marks the resource as a decision keeper (see {@link isDecisionKeeper}). */
  readonly keepsDecisions: true;
  /**
   * The decisions recorded for `gtrids`, keyed by `gtridHex`; a gtrid without a row is absent.
   *
   * @throws XaError XAER_RMFAIL when the database cannot be reached; XAER_RMERR otherwise.
   */
  decisionsOf(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>>;
  /**
   * Claims undecided transactions for rollback: inserts a `rollback` row for each gtrid unless
   * one exists, then reads what holds. A commit in progress makes the insert wait for it (at most
   * a few seconds): a gtrid whose claim could not be settled in that time is absent from the
   * result (ask again later). A gtrid mapped to `commit` committed first: commit its branches.
   *
   * @throws XaError XAER_RMFAIL when the database cannot be reached; XAER_RMERR otherwise.
   */
  claimRollback(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>>;
}

/** True when `resource` keeps commit decisions (decision-row mode). */
export function isDecisionKeeper(resource: RecoverableResource): resource is DecisionKeeper {
  return (resource as Partial<DecisionKeeper>).keepsDecisions === true;
}
