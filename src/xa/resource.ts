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
