/**
 * The coordinator log's state machine: the pending entries (COMMITTING or PRESUMED_ABORTING
 * without END) and the legal transitions between records, shared by the file log (live calls and
 * replay) and the in-memory log, so that both have exactly the same semantics.
 *
 * Each call is split in two: `plan*` decides, without changing anything, whether a record must be
 * written (or the call is a duplicate, or refused); `apply` then changes the table for a record
 * that is being written or replayed. The logs call both in the same synchronous section as the
 * journal append, so the table and the journal see calls in the same order (which is what makes a
 * checkpoint snapshot taken in the same turn as its marker consistent with the journal).
 *
 * Transitions (Atomikos' `presumedAborting` arbitration, transactions.md §2.4 and §5.3):
 *
 * | entry now | COMMITTING | PRESUMED_ABORTING | HEURISTIC | END |
 * |---|---|---|---|---|
 * | none | new committing entry | new presumed-aborting entry | new presumed-aborting entry (see below) | nothing |
 * | committing | duplicate: nothing, or participants added | declined (false) | added | removed |
 * | presumed-aborting | refused | duplicate: nothing | added | removed |
 * | none, but presumed-aborted and ended in this process | refused | new claim | new presumed-aborting entry | nothing |
 *
 * - Why a HEURISTIC without an entry creates a presumed-aborting one: heuristics only come from
 *   phase-two calls, and a phase-two call without COMMITTING is a rollback (a failed prepare, or
 *   recovery's orphan rollback). Under presumed abort that transaction IS aborting, and the
 *   heuristic must not be lost (MetaQ's unforced heuristic log is one of the pain points, §0.10).
 * - Why "ended in this process" is remembered: recovery may claim, roll back and END an orphan
 *   while the original 2PC of this same process is still slow on its way to COMMITTING; the
 *   COMMITTING must still be refused. After a restart no 2PC of the previous process is in flight
 *   any more, so that memory need not be durable; it is bounded ({@link DEFAULT_MAX_RECENTLY_ABORTED}).
 */
import { InvalidArgumentError } from '../../common/errors.js';
import type { LoggedHeuristic, LoggedParticipant, PendingEntry } from '../coordinator-log.js';
import { gtridHex } from '../xid.js';
import { assertBranch, assertGtrid, assertHeuristic, assertTimeMs, MAX_HEURISTIC_DETAIL_LENGTH } from './coordinator-fields.js';
import type { CommittingRecord, CoordinatorRecord, EndRecord, HeuristicRecord, PresumedAbortingRecord } from './coordinator-records.js';

/** How many ended presumed-aborting gtrids the table remembers to refuse a late COMMITTING. */
export const DEFAULT_MAX_RECENTLY_ABORTED = 65_536;

/** What {@link PendingTable.planCommitting} decided. */
export type CommittingPlan =
  /** Write this record (a new decision, or participants the logged decision lacks). */
  | { readonly action: 'write'; readonly record: CommittingRecord }
  /** A duplicate: the decision is logged (or being logged) with these participants already. */
  | { readonly action: 'already' }
  /** Recovery claimed the transaction: it must roll back. */
  | { readonly action: 'refuse'; readonly reason: string };

/** What {@link PendingTable.planPresumedAborting} decided. */
export type PresumedAbortingPlan =
  | { readonly action: 'write'; readonly record: PresumedAbortingRecord }
  /** A duplicate: the claim is logged (or being logged). */
  | { readonly action: 'already' }
  /** The transaction is COMMITTING: not an orphan. */
  | { readonly action: 'decline' };

/** What {@link PendingTable.planHeuristic} or {@link PendingTable.planEnd} decided. */
export type WritePlan<R> = { readonly action: 'write'; readonly record: R } | { readonly action: 'already' };

interface Slot {
  entry: PendingEntry;
  /** Insertion order, to break ties between equal decision times. */
  readonly seq: number;
}

/** Pending entries keyed by gtrid, with the transition rules above. */
export class PendingTable {
  readonly #slots = new Map<string, Slot>();
  /** gtrid hex → when its presumed-aborting entry ended; insertion order = age. */
  readonly #recentlyAborted = new Map<string, number>();
  readonly #maxRecentlyAborted: number;
  #seq = 0;

  /** @param maxRecentlyAborted see {@link DEFAULT_MAX_RECENTLY_ABORTED}. */
  constructor(maxRecentlyAborted = DEFAULT_MAX_RECENTLY_ABORTED) {
    this.#maxRecentlyAborted = maxRecentlyAborted;
  }

  /** Number of pending entries. */
  get size(): number {
    return this.#slots.size;
  }

  /** The entry of `gtrid`, if pending. */
  get(gtrid: Buffer): PendingEntry | undefined {
    return this.#slots.get(gtridHex(gtrid))?.entry;
  }

  /** Every pending entry, oldest decision first (ties in the order they were logged). */
  pending(): PendingEntry[] {
    return [...this.#slots.values()].sort((a, b) => a.entry.decidedAtMs - b.entry.decidedAtMs || a.seq - b.seq).map((s) => s.entry);
  }

  /**
   * Decides a COMMITTING call.
   * @throws InvalidArgumentError for a malformed gtrid, participant or time.
   */
  planCommitting(gtrid: Buffer, participants: readonly LoggedParticipant[], atMs: number): CommittingPlan {
    assertGtrid(gtrid);
    assertTimeMs(atMs, 'COMMITTING time');
    const unique = uniqueParticipants(participants);
    const key = gtridHex(gtrid);
    const entry = this.#slots.get(key)?.entry;
    if (entry?.state === 'presumed-aborting') {
      return {
        action: 'refuse',
        reason:
          `transaction ${key} cannot commit: recovery claimed it as an orphan (PRESUMED_ABORTING logged at ` +
          `${new Date(entry.decidedAtMs).toISOString()}), so it is being rolled back; roll it back everywhere`,
      };
    }
    if (entry === undefined && this.#recentlyAborted.has(key)) {
      return {
        action: 'refuse',
        reason: `transaction ${key} cannot commit: recovery already presumed it aborted and rolled it back; roll it back everywhere`,
      };
    }
    if (entry !== undefined && unique.every((p) => entry.participants.some((q) => sameBranch(p, q)))) return { action: 'already' };
    return { action: 'write', record: { kind: 'committing', gtrid: Buffer.from(gtrid), atMs, participants: unique } };
  }

  /**
   * Decides a PRESUMED_ABORTING call.
   * @throws InvalidArgumentError for a malformed gtrid or time.
   */
  planPresumedAborting(gtrid: Buffer, atMs: number): PresumedAbortingPlan {
    assertGtrid(gtrid);
    assertTimeMs(atMs, 'PRESUMED_ABORTING time');
    const entry = this.get(gtrid);
    if (entry?.state === 'committing') return { action: 'decline' };
    if (entry?.state === 'presumed-aborting') return { action: 'already' };
    return { action: 'write', record: { kind: 'presumed-aborting', gtrid: Buffer.from(gtrid), atMs } };
  }

  /**
   * Decides a HEURISTIC call: a duplicate (same participant and outcome already recorded) writes nothing.
   * @throws InvalidArgumentError for a malformed gtrid, heuristic or time.
   */
  planHeuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>, atMs: number): WritePlan<HeuristicRecord> {
    assertGtrid(gtrid);
    assertHeuristic(heuristic);
    assertTimeMs(atMs, 'heuristic time');
    const entry = this.get(gtrid);
    if (entry !== undefined && entry.heuristics.some((h) => sameHeuristic(h, heuristic))) return { action: 'already' };
    const logged: LoggedHeuristic = {
      resourceId: heuristic.resourceId,
      branchQualifier: Buffer.from(heuristic.branchQualifier),
      outcome: heuristic.outcome,
      atMs,
      // Operator prose: cut rather than refuse, a heuristic must be recorded whatever the text.
      detail: heuristic.detail.slice(0, MAX_HEURISTIC_DETAIL_LENGTH),
    };
    return { action: 'write', record: { kind: 'heuristic', gtrid: Buffer.from(gtrid), heuristic: logged } };
  }

  /**
   * Decides an END call: nothing to write when the gtrid has no entry.
   * @throws InvalidArgumentError for a malformed gtrid or time.
   */
  planEnd(gtrid: Buffer, atMs: number): WritePlan<EndRecord> {
    assertGtrid(gtrid);
    assertTimeMs(atMs, 'END time');
    if (this.get(gtrid) === undefined) return { action: 'already' };
    return { action: 'write', record: { kind: 'end', gtrid: Buffer.from(gtrid), atMs } };
  }

  /**
   * Applies a record being written or replayed.
   * @returns undefined when applied; otherwise why the record was ignored (an illegal transition,
   *   which replay reports: the live log never writes one).
   */
  apply(record: CoordinatorRecord): string | undefined {
    if (record.kind === 'checkpoint') return undefined;
    const key = gtridHex(record.gtrid);
    const slot = this.#slots.get(key);
    switch (record.kind) {
      case 'committing': {
        if (slot === undefined) {
          this.#insert(key, { gtrid: record.gtrid, state: 'committing', decidedAtMs: record.atMs, participants: Object.freeze([...record.participants]), heuristics: [] });
          return undefined;
        }
        if (slot.entry.state !== 'committing') return `COMMITTING of ${key} after its PRESUMED_ABORTING`;
        const added = record.participants.filter((p) => !slot.entry.participants.some((q) => sameBranch(p, q)));
        if (added.length > 0) slot.entry = { ...slot.entry, participants: Object.freeze([...slot.entry.participants, ...added]) };
        return undefined;
      }
      case 'presumed-aborting':
        if (slot === undefined) {
          this.#insert(key, { gtrid: record.gtrid, state: 'presumed-aborting', decidedAtMs: record.atMs, participants: [], heuristics: [] });
          return undefined;
        }
        return slot.entry.state === 'committing' ? `PRESUMED_ABORTING of ${key} after its COMMITTING` : undefined;
      case 'heuristic': {
        const h = record.heuristic;
        if (slot === undefined) {
          this.#insert(key, { gtrid: record.gtrid, state: 'presumed-aborting', decidedAtMs: h.atMs, participants: [], heuristics: Object.freeze([h]) });
        } else if (!slot.entry.heuristics.some((x) => sameHeuristic(x, h))) {
          slot.entry = { ...slot.entry, heuristics: Object.freeze([...slot.entry.heuristics, h]) };
        }
        return undefined;
      }
      case 'end':
        if (slot === undefined) return undefined;
        this.#slots.delete(key);
        if (slot.entry.state === 'presumed-aborting') this.#rememberAborted(key, record.atMs);
        return undefined;
    }
  }

  /** Replaces the whole table with a checkpoint's entries (in their order). */
  restore(entries: readonly PendingEntry[]): void {
    this.#slots.clear();
    for (const entry of entries) {
      this.#insert(gtridHex(entry.gtrid), {
        ...entry,
        participants: Object.freeze([...entry.participants]),
        heuristics: Object.freeze([...entry.heuristics]),
      });
    }
  }

  #insert(key: string, entry: PendingEntry): void {
    this.#recentlyAborted.delete(key);
    this.#slots.set(key, { entry: Object.freeze(entry), seq: this.#seq++ });
  }

  #rememberAborted(key: string, atMs: number): void {
    this.#recentlyAborted.set(key, atMs);
    if (this.#recentlyAborted.size > this.#maxRecentlyAborted) {
      const oldest = this.#recentlyAborted.keys().next();
      if (oldest.done !== true) this.#recentlyAborted.delete(oldest.value);
    }
  }
}

/** Validates `participants` and drops repeated branches (same resource and branch qualifier), copying the buffers. */
function uniqueParticipants(participants: readonly LoggedParticipant[]): LoggedParticipant[] {
  if (!Array.isArray(participants)) throw new InvalidArgumentError('participants must be an array');
  const unique: LoggedParticipant[] = [];
  for (const p of participants) {
    assertBranch(p.resourceId, p.branchQualifier);
    if (!unique.some((q) => sameBranch(p, q))) unique.push({ resourceId: p.resourceId, branchQualifier: Buffer.from(p.branchQualifier) });
  }
  return unique;
}

function sameBranch(a: LoggedParticipant, b: LoggedParticipant): boolean {
  return a.resourceId === b.resourceId && a.branchQualifier.equals(b.branchQualifier);
}

function sameHeuristic(a: Omit<LoggedHeuristic, 'atMs'>, b: Omit<LoggedHeuristic, 'atMs'>): boolean {
  return sameBranch(a, b) && a.outcome === b.outcome;
}
