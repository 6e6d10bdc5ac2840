/**
 * Fakes for unit tests of the XA transaction manager: scriptable resources and branches that
 * record every call in a shared journal, and a coordinator log wrapper that records into the
 * same journal (to assert orders such as "COMMITTING forced before any phase-two call").
 */
import { XaError } from '../../src/common/errors.js';
import { XaCode, xaCodeName } from '../../src/client/transaction/xa-codes.js';
import type { CoordinatorLog, LoggedHeuristic, LoggedParticipant, PendingEntry } from '../../src/xa/coordinator-log.js';
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import type { Branch, EnlistableResource, PhaseTwoOutcome, PrepareVote } from '../../src/xa/resource.js';
import { makeGtrid, nodeIdOf, branchXid, type Xid } from '../../src/xa/xid.js';

/** `resourceId:bqualHex`, or with `op:` prefix in the journal. */
export function keyOf(xid: Xid): string {
  return `${xid.globalTransactionId.toString('hex')}/${xid.branchQualifier.toString('hex')}`;
}

/** An XaError with `code`. */
export function xaFail(code: number, message = 'scripted'): XaError {
  return new XaError(code, `${xaCodeName(code)} (${code}): ${message}`);
}

/** A scripted answer: a value, or an error to throw. */
export type Script<T> = T | XaError | Error;

/** What a fake resource does; each field can be changed between calls. */
export interface FakeScript {
  prepare: Script<PrepareVote>;
  /** Errors thrown by the next commitPrepared calls, in order, before the outcome. */
  commitFailures: Error[];
  commitOutcome: PhaseTwoOutcome;
  rollbackFailures: Error[];
  rollbackOutcome: PhaseTwoOutcome;
  onePhase: Script<void>;
  recover: Script<Xid[]> | undefined;
  /** Called at the start of prepare (e.g. to simulate a concurrent recovery claim). */
  beforePrepare?: (xid: Xid) => Promise<void> | void;
}

/** A fake branch: `work()` marks it as having work. */
export class FakeBranch implements Branch {
  readonly resourceId: string;
  readonly xid: Xid;
  hasWork = false;
  readonly #resource: FakeResource;

  constructor(resource: FakeResource, xid: Xid) {
    this.#resource = resource;
    this.resourceId = resource.resourceId;
    this.xid = xid;
  }

  work(): void {
    this.hasWork = true;
  }

  async end(success: boolean): Promise<void> {
    this.#resource.note(`end(${success})`, this.xid);
  }

  async prepare(): Promise<PrepareVote> {
    const script = this.#resource.script;
    await script.beforePrepare?.(this.xid);
    this.#resource.note('prepare', this.xid);
    const vote = script.prepare;
    if (vote instanceof Error) throw vote;
    if (vote === 'ok') this.#resource.prepared.set(keyOf(this.xid), this.xid);
    return vote;
  }

  async commitOnePhase(): Promise<void> {
    this.#resource.note('commitOnePhase', this.xid);
    const answer = this.#resource.script.onePhase;
    if (answer instanceof Error) throw answer;
    this.#resource.committed.add(keyOf(this.xid));
  }

  async rollback(): Promise<void> {
    this.#resource.note('rollback', this.xid);
    this.#resource.rolledBack.add(keyOf(this.xid));
    this.#resource.prepared.delete(keyOf(this.xid));
  }
}

/** A fake resource manager. */
export class FakeResource implements EnlistableResource<FakeBranch> {
  readonly resourceId: string;
  readonly journal: string[];
  readonly prepared = new Map<string, Xid>();
  readonly committed = new Set<string>();
  readonly rolledBack = new Set<string>();
  readonly forgotten = new Set<string>();
  readonly branches: FakeBranch[] = [];
  readonly markersDeleted: Xid[] = [];
  /** Extra XIDs `recover()` lists (e.g. orphans of a crashed run). */
  readonly extraListed: Xid[] = [];
  script: FakeScript = {
    prepare: 'ok',
    commitFailures: [],
    commitOutcome: 'committed',
    rollbackFailures: [],
    rollbackOutcome: 'rolled-back',
    onePhase: undefined,
    recover: undefined,
  };
  withMarkers = false;

  constructor(resourceId: string, journal: string[] = []) {
    this.resourceId = resourceId;
    this.journal = journal;
  }

  note(op: string, xid: Xid): void {
    this.journal.push(`${this.resourceId} ${op} ${keyOf(xid)}`);
  }

  /** Journal lines of this resource with `op`. */
  calls(op: string): string[] {
    return this.journal.filter((line) => line.startsWith(`${this.resourceId} ${op} `));
  }

  async begin(xid: Xid): Promise<FakeBranch> {
    this.note('begin', xid);
    const branch = new FakeBranch(this, xid);
    this.branches.push(branch);
    return branch;
  }

  async recover(): Promise<Xid[]> {
    this.journal.push(`${this.resourceId} recover`);
    const scripted = this.script.recover;
    if (scripted instanceof Error) throw scripted;
    if (scripted !== undefined) return scripted;
    return [...this.prepared.values(), ...this.extraListed];
  }

  async commitPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    this.note('commitPrepared', xid);
    const failure = this.script.commitFailures.shift();
    if (failure !== undefined) throw failure;
    this.prepared.delete(keyOf(xid));
    this.#unlist(xid);
    if (this.script.commitOutcome === 'committed') this.committed.add(keyOf(xid));
    return this.script.commitOutcome;
  }

  async rollbackPrepared(xid: Xid): Promise<PhaseTwoOutcome> {
    this.note('rollbackPrepared', xid);
    const failure = this.script.rollbackFailures.shift();
    if (failure !== undefined) throw failure;
    this.prepared.delete(keyOf(xid));
    this.#unlist(xid);
    if (this.script.rollbackOutcome === 'rolled-back') this.rolledBack.add(keyOf(xid));
    return this.script.rollbackOutcome;
  }

  async forget(xid: Xid): Promise<void> {
    this.note('forget', xid);
    this.forgotten.add(keyOf(xid));
  }

  get deleteMarkers(): ((xids: readonly Xid[]) => Promise<void>) | undefined {
    if (!this.withMarkers) return undefined;
    return async (xids) => {
      this.journal.push(`${this.resourceId} deleteMarkers ${xids.map(keyOf).join(',')}`);
      this.markersDeleted.push(...xids);
    };
  }

  #unlist(xid: Xid): void {
    const i = this.extraListed.findIndex((x) => keyOf(x) === keyOf(xid));
    if (i >= 0) this.extraListed.splice(i, 1);
  }
}

/** A CoordinatorLog that records its calls in the journal, around a MemoryCoordinatorLog. */
export class RecordingLog implements CoordinatorLog {
  readonly inner: MemoryCoordinatorLog;
  readonly journal: string[];
  /** Called before presumedAborting reaches the inner log (to simulate a racing COMMITTING). */
  beforePresumedAborting: ((gtrid: Buffer) => Promise<void>) | undefined;
  /** When false, `sync` is absent (like a log without it). */
  readonly sync: (() => Promise<void>) | undefined;

  constructor(journal: string[], inner = new MemoryCoordinatorLog(), options: { withSync?: boolean } = {}) {
    this.inner = inner;
    this.journal = journal;
    this.sync =
      options.withSync === false
        ? undefined
        : async () => {
            this.journal.push('log sync');
            await this.inner.sync();
          };
  }

  async committing(gtrid: Buffer, participants: readonly LoggedParticipant[]): Promise<void> {
    this.journal.push(`log committing ${gtrid.toString('hex')} ${participants.map((p) => p.resourceId).join(',')}`);
    await this.inner.committing(gtrid, participants);
  }

  async presumedAborting(gtrid: Buffer): Promise<boolean> {
    await this.beforePresumedAborting?.(gtrid);
    const claimed = await this.inner.presumedAborting(gtrid);
    this.journal.push(`log presumedAborting ${gtrid.toString('hex')} ${claimed}`);
    return claimed;
  }

  async heuristic(gtrid: Buffer, heuristic: Omit<LoggedHeuristic, 'atMs'>): Promise<void> {
    this.journal.push(`log heuristic ${gtrid.toString('hex')} ${heuristic.resourceId} ${heuristic.outcome}`);
    await this.inner.heuristic(gtrid, heuristic);
  }

  async end(gtrid: Buffer): Promise<void> {
    this.journal.push(`log end ${gtrid.toString('hex')}`);
    await this.inner.end(gtrid);
  }

  get(gtrid: Buffer): PendingEntry | undefined {
    return this.inner.get(gtrid);
  }

  pending(): PendingEntry[] {
    return this.inner.pending();
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}

/** An XID of node `nodeName` begun `ageMs` ago, branch `index`. */
export function xidOfNode(nodeName: string, ageMs: number, index = 0, sequence = 1n): Xid {
  return branchXid(makeGtrid({ nodeId: nodeIdOf(nodeName), startedAtMs: Date.now() - ageMs, sequence }), index);
}

/** RMFAIL, the retriable error. */
export function rmfail(): XaError {
  return xaFail(XaCode.XAER_RMFAIL, 'resource unreachable (scripted)');
}

/** Fast retries for tests. */
export const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 5, jitter: 0 } as const;
