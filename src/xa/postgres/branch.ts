/**
 * One PostgreSQL participant of one live XA transaction (transactions.md §5.4): a pool client
 * pinned from `begin` until the branch is prepared, committed one-phase or rolled back.
 *
 * pgjdbc's mapping, with node-postgres: start → `BEGIN`; work → statements on the pinned client;
 * prepare → marker row + `PREPARE TRANSACTION '<gid>'`, then the client goes back to the pool
 * (the prepared transaction is no longer bound to the session); one-phase commit → `COMMIT`;
 * rollback → `ROLLBACK`. Prepared branches are finished through the resource
 * (`COMMIT PREPARED` / `ROLLBACK PREPARED` on any connection).
 *
 * In `decision-row` mode (transactions.md §5.1) the branch is a {@link LastResourceBranch}: it
 * is never prepared; the manager prepares the other participants, then calls
 * {@link PostgresBranch.commitAsDecision}, which inserts the decision row `(gtrid, 'C')` and
 * commits in one round trip (decision-commit.ts) — that commit is the global decision. Its
 * `prepare` refuses (rolls back, XA_RBPROTO): two decision-row branches cannot both be last.
 *
 * State diagram:
 *
 * ```text
 * active ──end(true)──▶ ended ──prepare──▶ prepared            (client released; xa mode)
 *   │                     │    ├─commitOnePhase─▶ committed      (client released)
 *   │                     │    └─commitAsDecision▶ committed     (client released; decision-row mode)
 *   │                     └─(no work)──────────▶ read-only      (client released)
 *   └─end(false) / rollback / failed prepare or commit ─▶ rolled-back (client released)
 * connection lost during PREPARE ─▶ prepare-unknown;
 * during one-phase COMMIT or commitAsDecision ─▶ commit-unknown
 * ```
 */
import type { PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { XaCode } from '../../client/transaction/xa-codes.js';
import { xaError } from '../../client/transaction/xa-errors.js';
import type { XaError } from '../../common/errors.js';
import type { Branch, LastResourceBranch, PhaseTwoOutcome, PrepareVote, ResourceId } from '../resource.js';
import type { Xid } from '../xid.js';
import { isPostgresConnectionError, sqlStateOf } from './connection-errors.js';
import { decisionCommitEndTag, decisionCommitFailure, decisionCommitStatement } from './decision-commit.js';
import type { DecisionTableSql } from './decision-table.js';
import { describePgError, phaseOneFailure, SQLSTATE_IN_FAILED_TRANSACTION, SQLSTATE_UNDEFINED_TABLE } from './error-mapping.js';
import { pgGidLiteral } from './gid.js';
import type { MarkerTableSql } from './marker-table.js';
import { lastStatementTag } from './query-string-results.js';
import type { PinnedClient } from './pinned-client.js';

/** Where a {@link PostgresBranch} is in its life; see the module comment. */
export type PostgresBranchState = 'active' | 'ended' | 'prepared' | 'committed' | 'rolled-back' | 'read-only' | 'prepare-unknown' | 'commit-unknown';

/** What a branch needs from the resource that created it. */
export interface PostgresBranchContext {
  readonly resourceId: ResourceId;
  readonly markers: MarkerTableSql;
  /** The decision table in `decision-row` mode (the branches are last resources); undefined in `xa` mode. */
  readonly decisions: DecisionTableSql | undefined;
  /** `ROLLBACK PREPARED` through the resource: {@link PostgresBranch.rollback} of a prepared branch uses it. */
  readonly rollbackPrepared: (xid: Xid) => Promise<PhaseTwoOutcome>;
}

/** How {@link PostgresBranch}'s end-of-block statement is run and checked. */
interface BlockEnd {
  readonly statement: string;
  /** The tag PostgreSQL must answer for the block to be committed/prepared. */
  readonly expectedTag: string;
  /** The command tag of the statement that ended the block, or undefined for an answer of another shape. */
  readonly endTagOf: (result: unknown) => string | undefined;
  /** An XA_RB* error of its own for an SQL error, or undefined for `phaseOneFailure`'s. */
  readonly failureOf?: (err: unknown) => XaError | undefined;
}

/**
 * A PostgreSQL branch. Do the transaction's SQL through {@link query} (or {@link client}), then
 * let the transaction manager drive `end` / `prepare` / commit / rollback.
 *
 * In `decision-row` mode {@link lastResource} is true and the manager commits the branch last
 * with {@link commitAsDecision}; in `xa` mode it is undefined (not a last resource).
 *
 * Every method rejects with an `XaError` (the work-phase {@link query} rejects with pg's own
 * error, so application code sees PostgreSQL's message and SQLSTATE unchanged).
 */
export class PostgresBranch implements Branch {
  readonly resourceId: ResourceId;
  readonly xid: Xid;
  /** The PostgreSQL gid (`formatId_base64(gtrid)_base64(bqual)`), validated. */
  readonly gid: string;
  /**
   * `true` in `decision-row` mode: the branch is a {@link LastResourceBranch} (see
   * `isLastResourceBranch`); undefined in `xa` mode.
   */
  readonly lastResource: true | undefined;
  /** The decision key of the gtrid (decision-row mode), validated by the resource. */
  readonly #decisionKey: string | undefined;
  #pinned: PinnedClient;
  #context: PostgresBranchContext;
  #state: PostgresBranchState = 'active';
  #hasWork = false;
  #busy: string | undefined;
  /** Why the branch is rolled back, answered to a later prepare / one-phase commit. */
  #rollbackReason: XaError | undefined;

  /**
   * Use `PostgresResource.begin`, which validates the gid (and in decision-row mode the
   * `decisionKey` of the gtrid) and runs `BEGIN` on `pinned`.
   */
  constructor(context: PostgresBranchContext, xid: Xid, gid: string, pinned: PinnedClient, decisionKey?: string) {
    this.resourceId = context.resourceId;
    this.xid = xid;
    this.gid = gid;
    this.#pinned = pinned;
    this.#context = context;
    this.#decisionKey = context.decisions === undefined ? undefined : decisionKey;
    this.lastResource = this.#decisionKey === undefined ? undefined : true;
  }

  /** True once a statement ran (or {@link client} was handed out): the branch must be prepared or committed. */
  get hasWork(): boolean {
    return this.#hasWork;
  }

  /** Where the branch is in its life. */
  get state(): PostgresBranchState {
    return this.#state;
  }

  /**
   * The pinned pg client, for libraries that need one (query builders, ORMs). Everything they
   * run is part of the branch. Counts as work (the branch cannot see what the library does).
   * Do not run `COMMIT`/`ROLLBACK`/`PREPARE TRANSACTION` on it, and do not release it.
   *
   * @throws XaError XAER_PROTO after `end`, or while a phase call runs.
   */
  get client(): PoolClient {
    this.#requireWorkPhase('client');
    this.#hasWork = true;
    return this.#pinned.client;
  }

  /**
   * Runs one statement in the branch, like `pg.Client.query(text, values)`.
   *
   * @throws XaError XAER_PROTO after `end`; otherwise pg's error unchanged. A failed statement
   * aborts the PostgreSQL transaction (unless rolled back to a savepoint): prepare then answers
   * XA_RBROLLBACK.
   */
  async query<R extends QueryResultRow = QueryResultRow>(textOrConfig: string | QueryConfig<unknown[]>, values?: unknown[]): Promise<QueryResult<R>> {
    this.#requireWorkPhase('query');
    this.#hasWork = true;
    try {
      return await this.#pinned.client.query<R, unknown[]>(textOrConfig, values);
    } catch (err) {
      throw this.#pinned.noteError(err);
    }
  }

  /**
   * XA `end`. `success` true ends the work phase (a branch without work gives its client back
   * right away and will vote read-only); false rolls the transaction back now — why keep its
   * locks until the manager gets round to it — and makes `prepare` answer XA_RBROLLBACK.
   */
  async end(success: boolean): Promise<void> {
    if (this.#state !== 'active' && this.#state !== 'ended') return;
    await this.#exclusive('end', async () => {
      if (!success) {
        await this.#rollbackAndRelease(xaError(XaCode.XA_RBROLLBACK, `${this.#what('prepare')}: the branch was ended with failure (end(false)) and rolled back`));
      } else if (!this.#hasWork) {
        await this.#rollbackAndRelease(undefined);
        this.#state = 'read-only';
      } else {
        this.#state = 'ended';
      }
    });
  }

  /**
   * Phase one: inserts the marker row, then `PREPARE TRANSACTION '<gid>'`, then gives the client
   * back to the pool. Idempotent once prepared.
   *
   * @returns `ok`, or `read-only` when no statement ran (nothing to commit; the branch is finished).
   * @throws XaError XA_RB* when PostgreSQL rolled the transaction back instead (XA_RBINTEGRITY for
   * a deferred constraint, XA_RBDEADLOCK, XA_RBTRANSIENT for a serialization failure,
   * XA_RBCOMMFAIL when the connection was lost before PREPARE was sent, XA_RBROLLBACK otherwise);
   * XAER_RMFAIL when the connection was lost during PREPARE (it may or may not be prepared:
   * finish it with `rollbackPrepared`, which answers `rolled-back` if it is not);
   * XAER_PROTO in a state that does not allow prepare. In decision-row mode a branch with work
   * is never prepared: it rolls back and answers XA_RBPROTO (a "no" vote) — only one
   * decision-row branch can be committed last, the others must use mode `xa`.
   */
  async prepare(): Promise<PrepareVote> {
    return this.#exclusive('prepare', async () => {
      switch (this.#state) {
        case 'prepared':
          return 'ok';
        case 'read-only':
          return 'read-only';
        case 'rolled-back':
          throw this.#rolledBackError('prepare');
        case 'committed':
        case 'prepare-unknown':
        case 'commit-unknown':
          throw this.#protocolError('prepare');
        case 'active':
        case 'ended':
          break;
      }
      if (!this.#hasWork) {
        // PostgreSQL has no read-only vote of its own; nothing ran, so there is nothing to keep.
        await this.#rollbackAndRelease(undefined);
        this.#state = 'read-only';
        return 'read-only';
      }
      if (this.lastResource === true) {
        // Why roll back rather than answer XAER_PROTO and keep the transaction: the manager only
        // prepares a last-resource branch when another one was chosen to commit last, and this
        // one cannot vote "yes" (PREPARE would need max_prepared_transactions and the marker
        // table, which decision-row mode does without). A rollback code is a clean "no" vote.
        const failure = xaError(
          XaCode.XA_RBPROTO,
          `${this.#what('prepare')}: a decision-row PostgreSQL branch is committed last, never prepared; only one decision-row resource may do work in a transaction — use mode 'xa' for the others. The branch was rolled back`,
        );
        await this.#rollbackAndRelease(failure);
        throw failure;
      }
      await this.#checkStillInTransaction('prepare');
      // The marker row and PREPARE TRANSACTION in one round trip (see markerAndPrepareBlockEnd).
      // "If PREPARE TRANSACTION fails for any reason, it becomes a ROLLBACK."
      await this.#endTransactionBlock('prepare', markerAndPrepareBlockEnd(this.#pinned.client, this.#context.markers, this.gid, this.#what('prepare')), 'prepare-unknown');
      this.#pinned.release();
      this.#state = 'prepared';
      return 'ok';
    });
  }

  /**
   * Runs the statement that ends the transaction block (PREPARE TRANSACTION, COMMIT, or the
   * decision row + COMMIT) and checks that PostgreSQL did what was asked. A lost connection
   * leaves the outcome unknown (`unknownState`, XAER_RMFAIL); any other error rolls back (XA_RB*).
   *
   * Why check the command tag: in an aborted transaction block PostgreSQL raises no error for
   * PREPARE TRANSACTION or COMMIT; it rolls back and answers "ROLLBACK". Taking that for success
   * would commit everything else and lose this branch. The caller releases the client on success.
   */
  async #endTransactionBlock(what: 'prepare' | 'commitOnePhase' | 'commitAsDecision', end: BlockEnd, unknownState: PostgresBranchState): Promise<void> {
    let result: unknown;
    try {
      result = await this.#pinned.client.query(end.statement);
    } catch (err) {
      if (isPostgresConnectionError(this.#pinned.noteError(err))) {
        this.#pinned.release();
        this.#state = unknownState;
        throw phaseOneFailure(err, this.#what(what));
      }
      const failure = end.failureOf?.(err) ?? phaseOneFailure(err, this.#what(what));
      await this.#rollbackAndRelease(failure);
      throw failure;
    }
    const tag = end.endTagOf(result);
    if (tag === undefined) {
      // Cannot happen with node-pg as it is; if it does, nobody knows whether COMMIT ran. Do not
      // roll back (that could contradict a commit): close the session, which keeps a commit and
      // undoes anything still open, and report an unknown outcome.
      this.#pinned.release(true);
      this.#state = unknownState;
      throw xaError(XaCode.XAER_RMERR, `${this.#what(what)}: PostgreSQL's answer has an unexpected shape, so the outcome is unknown`);
    }
    if (tag !== end.expectedTag) {
      const failure = xaError(XaCode.XA_RBROLLBACK, `${this.#what(what)}: PostgreSQL answered ${tag} instead of ${end.expectedTag}: the transaction had already failed and was rolled back`);
      await this.#rollbackAndRelease(failure);
      throw failure;
    }
  }

  /**
   * The one-phase optimisation: `COMMIT` (no marker: there is no phase two to resolve).
   * Idempotent once committed; a branch without work just gives its client back.
   *
   * @throws XaError XA_RB* when PostgreSQL rolled back instead (deferred constraint,
   * serialization failure, an earlier failed statement); XAER_RMFAIL when the connection was lost
   * during COMMIT (the outcome is unknown and, without a prepared transaction, cannot be found
   * out later: a repeated call answers XAER_PROTO); XAER_PROTO for a prepared branch
   * (use the resource's `commitPrepared`).
   */
  async commitOnePhase(): Promise<void> {
    await this.#exclusive('commitOnePhase', async () => {
      switch (this.#state) {
        case 'committed':
        case 'read-only':
          return;
        case 'rolled-back':
          throw this.#rolledBackError('commitOnePhase');
        case 'prepared':
        case 'prepare-unknown':
        case 'commit-unknown':
          throw this.#protocolError('commitOnePhase');
        case 'active':
        case 'ended':
          break;
      }
      if (!this.#hasWork) {
        await this.#rollbackAndRelease(undefined);
        this.#state = 'read-only';
        return;
      }
      await this.#checkStillInTransaction('commitOnePhase');
      await this.#endTransactionBlock('commitOnePhase', plainBlockEnd('COMMIT', 'COMMIT'), 'commit-unknown');
      this.#pinned.release();
      this.#state = 'committed';
    });
  }

  /**
   * Decision-row mode's last-resource commit ({@link LastResourceBranch.commitAsDecision}): in
   * ONE round trip, `INSERT INTO <decision table> (gtrid, outcome) VALUES ('<key>', 'C'); COMMIT`
   * on the pinned client, then gives the client back. Once it resolves, the global transaction
   * is decided (commit). Idempotent once committed.
   *
   * A branch that did no work but still holds its client records the decision all the same:
   * resolving must mean "decided", and after a crash only the row can say so.
   *
   * @throws XaError XA_RBROLLBACK when recovery had already claimed the gtrid for rollback (its
   * rollback row holds the key; the branch is rolled back) or an earlier statement failed;
   * XA_RBINTEGRITY / XA_RBTRANSIENT / XA_RBDEADLOCK when COMMIT failed on a deferred constraint,
   * a serialization failure or a deadlock; XA_RBCOMMFAIL when the connection was already lost
   * during the work phase (PostgreSQL rolled back); XAER_RMFAIL when the connection was lost
   * during the round trip (state `commit-unknown`: the outcome is unknown until the resource's
   * `claimRollback` settles it); XAER_PROTO in `xa` mode, after `end` of a branch without work
   * (its client is gone, it cannot record a decision), or in a state that does not allow it.
   */
  async commitAsDecision(): Promise<void> {
    await this.#exclusive('commitAsDecision', async () => {
      const decisions = this.#context.decisions;
      const key = this.#decisionKey;
      if (decisions === undefined || key === undefined) {
        throw xaError(XaCode.XAER_PROTO, `${this.#what('commitAsDecision')}: the resource is in mode 'xa', so its branches are prepared, never committed as the decision`);
      }
      switch (this.#state) {
        case 'committed':
          return;
        case 'rolled-back':
          throw this.#rolledBackError('commitAsDecision');
        case 'read-only':
          throw xaError(
            XaCode.XAER_PROTO,
            `${this.#what('commitAsDecision')}: the branch did no work and already gave its connection back at end(), so it cannot record the commit decision; choose a branch with work as the last resource`,
          );
        case 'prepared':
        case 'prepare-unknown':
        case 'commit-unknown':
          throw this.#protocolError('commitAsDecision');
        case 'active':
        case 'ended':
          break;
      }
      await this.#checkStillInTransaction('commitAsDecision');
      const what = this.#what('commitAsDecision');
      await this.#endTransactionBlock(
        'commitAsDecision',
        {
          statement: decisionCommitStatement(this.#pinned.client, decisions, key),
          expectedTag: 'COMMIT',
          endTagOf: decisionCommitEndTag,
          failureOf: (err) => decisionCommitFailure(err, decisions, what),
        },
        'commit-unknown',
      );
      this.#pinned.release();
      this.#state = 'committed';
    });
  }

  /**
   * Rolls the branch back: `ROLLBACK` and release. Never fails for an unprepared branch: if the
   * connection is gone, PostgreSQL rolled the transaction back when the session ended. A
   * prepared branch (or one whose PREPARE outcome is unknown) is rolled back with
   * `ROLLBACK PREPARED` through the resource. Idempotent.
   *
   * @throws XaError XAER_PROTO after a one-phase commit (or one with an unknown outcome);
   * XA_HEURCOM when an administrator committed the prepared transaction; the resource's
   * XAER_RMFAIL / XAER_RMERR for a prepared branch it could not roll back.
   */
  async rollback(): Promise<void> {
    await this.#exclusive('rollback', async () => {
      switch (this.#state) {
        case 'rolled-back':
        case 'read-only':
          return;
        case 'committed':
        case 'commit-unknown':
          throw this.#protocolError('rollback');
        case 'prepared':
        case 'prepare-unknown': {
          const outcome = await this.#context.rollbackPrepared(this.xid);
          if (outcome !== 'rolled-back') {
            throw xaError(XaCode.XA_HEURCOM, `${this.#what('rollback')}: ROLLBACK PREPARED found the transaction ${outcome === 'heuristic-commit' ? 'committed (by an administrator)' : outcome}`);
          }
          this.#state = 'rolled-back';
          return;
        }
        case 'active':
        case 'ended':
          await this.#rollbackAndRelease(xaError(XaCode.XA_RBROLLBACK, `${this.#what('prepare')}: the branch was rolled back`));
      }
    });
  }

  /** `prepare of <gid> on postgres:<name>`. */
  #what(operation: string): string {
    return `${operation} of ${this.gid} on ${this.resourceId}`;
  }

  #requireWorkPhase(operation: string): void {
    if (this.#state !== 'active') throw this.#protocolError(operation);
    if (this.#busy !== undefined) throw xaError(XaCode.XAER_PROTO, `${this.#what(operation)}: ${this.#busy} is in progress`);
  }

  /** Runs one state-changing call at a time: a second concurrent one is a protocol error. */
  async #exclusive<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#busy !== undefined) throw xaError(XaCode.XAER_PROTO, `${this.#what(operation)}: ${this.#busy} is in progress on this branch`);
    this.#busy = operation;
    try {
      return await fn();
    } finally {
      this.#busy = undefined;
    }
  }

  #protocolError(operation: string): XaError {
    return xaError(XaCode.XAER_PROTO, `${this.#what(operation)}: not allowed in state ${this.#state}`);
  }

  #rolledBackError(operation: string): XaError {
    const reason = this.#rollbackReason;
    if (reason !== undefined) return xaError(reason.xaCode, `${this.#what(operation)}: the branch was rolled back earlier: ${reason.message}`, reason);
    return xaError(XaCode.XA_RBROLLBACK, `${this.#what(operation)}: the branch was rolled back earlier`);
  }

  /**
   * Before PREPARE / COMMIT: the connection must be alive and the session inside a healthy
   * transaction block. Fails (rolling back and releasing) otherwise.
   */
  async #checkStillInTransaction(operation: string): Promise<void> {
    if (this.#pinned.broken) {
      const failure = xaError(
        XaCode.XA_RBCOMMFAIL,
        `${this.#what(operation)}: the connection to PostgreSQL was lost during the work phase (${describePgError(this.#pinned.brokenBy)}); PostgreSQL rolled the transaction back`,
        this.#pinned.brokenBy,
      );
      await this.#rollbackAndRelease(failure);
      throw failure;
    }
    // 'E': a statement failed and the block is aborted; 'I': the application ended the block
    // itself (COMMIT/ROLLBACK through query()), so its work is outside the XA transaction.
    // (pg updates the status when it reads ReadyForQuery, which for a failed statement can come
    // after the rejection: 'E' is best effort, the marker insert then fails with 25P02. 'I'
    // is reliable: a successful statement resolves only on ReadyForQuery.)
    const status = this.#pinned.client.getTransactionStatus();
    if (status === 'E') {
      const failure = xaError(XaCode.XA_RBROLLBACK, `${this.#what(operation)}: a statement of the branch failed, so PostgreSQL aborted the transaction`);
      await this.#rollbackAndRelease(failure);
      throw failure;
    }
    if (status === 'I') {
      const failure = xaError(
        XaCode.XAER_PROTO,
        `${this.#what(operation)}: the session is no longer in a transaction block: a statement run through the branch (COMMIT, ROLLBACK, END, ...) ended it, so its work was committed or rolled back outside the XA transaction`,
      );
      await this.#rollbackAndRelease(failure);
      throw failure;
    }
  }

  /**
   * `ROLLBACK` (unless the connection is gone) and release; the state becomes `rolled-back` with
   * `reason` for later calls. A failing ROLLBACK discards the client: closing the session rolls
   * the transaction back too.
   */
  async #rollbackAndRelease(reason: XaError | undefined): Promise<void> {
    this.#rollbackReason ??= reason;
    this.#state = 'rolled-back';
    if (this.#pinned.released) return;
    let discard = false;
    if (!this.#pinned.broken) {
      try {
        await this.#pinned.client.query('ROLLBACK');
      } catch (err) {
        this.#pinned.noteError(err);
        discard = true;
      }
    }
    this.#pinned.release(discard);
  }
}

/**
 * `INSERT INTO <marker table> (gid) VALUES ('<gid>'); PREPARE TRANSACTION '<gid>'` as ONE
 * simple-protocol query: the marker costs no round trip of its own (one of the five a branch
 * used to make: BEGIN, the work, the marker, PREPARE, COMMIT PREPARED).
 *
 * Why this is safe: PostgreSQL runs the statements of a query string in order and stops at the
 * first error, so PREPARE never runs without the marker, and a failed INSERT leaves the block
 * open and aborted (the branch then rolls back, as before). node-pg answers two results, the
 * last tagged `PREPARE` (or `ROLLBACK` when the block had already failed). The gid is validated
 * and escaped: neither statement can take a bind parameter in a multi-statement query. A lost
 * connection leaves the outcome unknown, exactly as a lost PREPARE alone did.
 */
function markerAndPrepareBlockEnd(client: PoolClient, markers: MarkerTableSql, gid: string, what: string): BlockEnd {
  const literal = pgGidLiteral(client, gid);
  return {
    statement: `${markers.insertRow(literal)}; PREPARE TRANSACTION ${literal}`,
    expectedTag: 'PREPARE',
    endTagOf: (result) => lastStatementTag(result, 2),
    failureOf: (err) => {
      // The usual way to learn that an earlier statement failed: its ReadyForQuery('E') may not
      // have been read yet when prepare() checked the transaction status.
      if (sqlStateOf(err) === SQLSTATE_IN_FAILED_TRANSACTION) return xaError(XaCode.XA_RBROLLBACK, `${what}: a statement of the branch failed, so PostgreSQL aborted the transaction (${describePgError(err)})`, err);
      if (sqlStateOf(err) === SQLSTATE_UNDEFINED_TABLE) return xaError(XaCode.XA_RBROLLBACK, `${what}: cannot insert the marker row: ${describePgError(err)}. Call init() on the resource against this database first`, err);
      return undefined;
    },
  };
}

/** A one-statement block end (PREPARE TRANSACTION, COMMIT): the statement's own command tag. */
function plainBlockEnd(statement: string, expectedTag: string): BlockEnd {
  return { statement, expectedTag, endTagOf: (result) => (result as QueryResult).command };
}
