/**
 * Fakes for unit tests of decision-row mode (transactions.md §5.1): a resource whose branches are
 * last resources and which keeps decision rows in memory, with the unique-key arbitration of the
 * real table (a commit and a rollback claim of one gtrid: the first one wins).
 */
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import type { DecisionKeeper, LastResourceBranch, MarkerPage, RecordedDecision } from '../../src/xa/resource.js';
import { gtridHex, METAQ_TM_FORMAT_ID, type Xid } from '../../src/xa/xid.js';
import { FakeBranch, FakeResource, keyOf, xaFail } from './xa-fakes.js';

/** What `commitAsDecision` does: commit (writes the row unless claimed), or throw. */
export type DecisionCommitScript = 'commit' | Error | { readonly lostAfterCommit: true };

/** A last-resource branch of a {@link FakeDecisionResource}. */
export class FakeLastBranch extends FakeBranch implements LastResourceBranch {
  readonly lastResource = true;
  readonly #keeper: FakeDecisionResource;

  constructor(keeper: FakeDecisionResource, xid: Xid) {
    super(keeper, xid);
    this.#keeper = keeper;
  }

  async commitAsDecision(): Promise<void> {
    this.#keeper.note('commitAsDecision', this.xid);
    const script = this.#keeper.decisionScript;
    if (script instanceof Error) throw script;
    const hex = gtridHex(this.xid.globalTransactionId);
    if (this.#keeper.rows.get(hex) === 'rollback') throw xaFail(XaCode.XA_RBROLLBACK, 'the rollback claim holds the key');
    this.#keeper.rows.set(hex, 'commit');
    this.#keeper.committed.add(keyOf(this.xid));
    if (script !== 'commit') throw xaFail(XaCode.XAER_RMFAIL, 'connection lost after COMMIT was sent (scripted)');
  }
}

/** A fake decision-row resource: last-resource branches and in-memory decision rows. */
export class FakeDecisionResource extends FakeResource implements DecisionKeeper {
  readonly keepsDecisions = true;
  /** gtrid hex → recorded outcome. */
  readonly rows = new Map<string, RecordedDecision>();
  decisionScript: DecisionCommitScript = 'commit';
  /** Thrown by decisionsOf / claimRollback when set. */
  keeperFailure: Error | undefined;
  /** gtrid hex whose claims cannot be settled (a commit still holds the key). */
  readonly unsettled = new Set<string>();
  /** Called at the start of claimRollback (e.g. a slow commit landing just before the claim's insert). */
  onClaim: ((gtrid: Buffer) => void) | undefined;

  override async begin(xid: Xid): Promise<FakeLastBranch> {
    this.note('begin', xid);
    const branch = new FakeLastBranch(this, xid);
    this.branches.push(branch);
    return branch;
  }

  async decisionsOf(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    this.journal.push(`${this.resourceId} decisionsOf ${gtrids.length}`);
    if (this.keeperFailure !== undefined) throw this.keeperFailure;
    const found = new Map<string, RecordedDecision>();
    for (const gtrid of gtrids) {
      const row = this.rows.get(gtridHex(gtrid));
      if (row !== undefined) found.set(gtridHex(gtrid), row);
    }
    return found;
  }

  async claimRollback(gtrids: readonly Buffer[]): Promise<Map<string, RecordedDecision>> {
    this.journal.push(`${this.resourceId} claimRollback ${gtrids.map(gtridHex).join(',')}`);
    if (this.keeperFailure !== undefined) throw this.keeperFailure;
    const settled = new Map<string, RecordedDecision>();
    for (const gtrid of gtrids) {
      this.onClaim?.(gtrid);
      const hex = gtridHex(gtrid);
      if (this.unsettled.has(hex)) continue;
      if (!this.rows.has(hex)) this.rows.set(hex, 'rollback');
      settled.set(hex, this.rows.get(hex) ?? 'rollback');
    }
    return settled;
  }

  override get deleteMarkers(): (xids: readonly Xid[]) => Promise<void> {
    return async (xids) => {
      this.journal.push(`${this.resourceId} deleteMarkers ${xids.map((x) => gtridHex(x.globalTransactionId)).join(',')}`);
      this.markersDeleted.push(...xids);
      for (const xid of xids) this.rows.delete(gtridHex(xid.globalTransactionId));
    };
  }

  get listMarkers(): (nodeIds: readonly Buffer[], limit: number, after?: string) => Promise<MarkerPage> {
    return async () => ({
      xids: [...this.rows.keys()].map((hex) => ({ formatId: METAQ_TM_FORMAT_ID, globalTransactionId: Buffer.from(hex, 'hex'), branchQualifier: Buffer.alloc(0) })),
      next: undefined,
    });
  }
}
