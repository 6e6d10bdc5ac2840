/**
 * Crash safety of broker transactions (transactions.md §5.6–§5.7 cases 7, 8, 11, 21, 26), with a
 * real `metaq-server` process, raw wire frames and SIGKILL — from the test, or by the broker
 * itself at a named crash point (`METAQ_CRASH_POINT`, src/transaction/crash-points.ts).
 *
 * Every case runs in its own data directory:
 * 1. the crashing run sets up the same background — a plain put, one PREPARED XA branch that must
 *    survive, one in-flight XA branch and one in-flight local transaction that must vanish
 *    (presumed abort), and, where no commit crash point is armed, an XA and a local transaction
 *    committed and answered before the crash — then drives its target to the crash;
 * 2. a restart WITHOUT the crash point: RECOVER must list exactly the prepared branches, the
 *    coordinator's retry (commit again / RECOVER + commit / rollback) must answer as it should,
 *    and every partition is read with raw `get` from offset 0 to 404: each committed message
 *    exactly once under its acknowledged id, no aborted or in-flight message, nothing else;
 * 3. a second crash and restart (SIGKILL, so the journal is replayed again, now with the records
 *    of the first recovery): the same messages, still exactly once, nothing listed.
 *
 * Cases: (a) SIGKILL from the test, for flushTxLogAtCommit 0, 1 and 2; (b) every commit, prepare
 * and rollback crash point for an XA branch and every commit crash point for a local transaction,
 * with flushTxLogAtCommit=1; (c) the commit crash points for a local transaction with
 * flushTxLogAtCommit 0 and 2, where the commit record is not forced — SIGKILL keeps the page
 * cache, so a commit record that was written survives, and the batch is never half there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { localTransactionNotStartedBody, xaExceptionBody, xaTransactionNotStartedMessage, XaCode } from '../../src/protocol/transaction-bodies.js';
import type { CrashPoint } from '../../src/transaction/crash-points.js';
import { XA_RBROLLBACK } from '../../src/transaction/transaction-state.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import {
  assertIds,
  assertMessages,
  assertOk,
  assertXa,
  beginWithMessages,
  localKey,
  payloadBytes,
  preparedBranch,
  readAll,
  TxBrokerHome,
  TxClient,
  xaKey,
  type PutAck,
  type TxBrokerRun,
} from '../helpers/tx-wire.js';

type Target = 'kill' | 'xa-commit' | 'local-commit' | 'xa-prepare' | 'xa-rollback';

interface CrashCase {
  readonly target: Target;
  readonly flush: 0 | 1 | 2;
  readonly point?: CrashPoint;
}

const COMMIT_POINTS: readonly CrashPoint[] = ['commit.before-log', 'commit.after-log', 'commit.after-append', 'commit.after-applied', 'commit.before-answer'];
const PREPARE_POINTS: readonly CrashPoint[] = ['prepare.before-log', 'prepare.after-log', 'prepare.before-answer'];

const CASES: readonly CrashCase[] = [
  { target: 'kill', flush: 0 },
  { target: 'kill', flush: 1 },
  { target: 'kill', flush: 2 },
  ...COMMIT_POINTS.map((point) => ({ target: 'xa-commit' as const, flush: 1 as const, point })),
  ...COMMIT_POINTS.map((point) => ({ target: 'local-commit' as const, flush: 1 as const, point })),
  ...PREPARE_POINTS.map((point) => ({ target: 'xa-prepare' as const, flush: 1 as const, point })),
  { target: 'xa-rollback', flush: 1, point: 'rollback.after-log' },
  ...([0, 2] as const).flatMap((flush) => COMMIT_POINTS.map((point) => ({ target: 'local-commit' as const, flush, point }))),
];

/** Awaits a request the broker must not answer because it dies first. */
async function diesWithoutAnswer(request: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(request, /connection closed before the answer/, `${what} must not be answered`);
}

/**
 * Awaits a commit whose crash point may come after its answer (`commit.after-applied`: APPLIED is
 * journaled once the batches are durable, possibly after the answer): either no answer, or OK.
 */
async function okOrNoAnswer(request: Promise<{ code: number; text: string }>, what: string): Promise<void> {
  const outcome = await request.then(
    (answer) => answer,
    (error: unknown) => error,
  );
  if (outcome instanceof Error) assert.match(outcome.message, /connection closed before the answer/, what);
  else assertOk(outcome as { code: number; text: string }, `${what}: answered before the crash point`);
}

/** How the target's commit request must end at `point`. */
function commitCrash(point: CrashPoint | undefined, request: Promise<{ code: number; text: string }>, what: string): Promise<void> {
  return point === 'commit.after-applied' ? okOrNoAnswer(request, what) : diesWithoutAnswer(request, what);
}

/** A local ROLLBACK after the restart: "not started" for an unknown transaction, refused for a committed one. */
function assertLocalRollbackAfterRestart(answer: { code: number; text: string }, unknown: boolean, key: string): void {
  if (unknown) assert.deepEqual(answer, { code: 500, text: localTransactionNotStartedBody(key) });
  else assert.deepEqual(answer, { code: 500, text: 'cannot rollback a local transaction in state COMMITTED: the branch is already committed' });
}

/** Everything a case expects after the restart. */
interface Expectation {
  readonly committed: Set<string>;
  readonly aborted: Set<string>;
  /** Acknowledged ids of messages that must be stored. */
  readonly acks: Map<string, PutAck>;
  /** Keys RECOVER must list right after the restart. */
  readonly prepared: string[];
}

describe('broker transactions survive crashes (SIGKILL; named crash points)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  const homes: TxBrokerHome[] = [];
  before(async () => {
    dir = await makeTempDir('metaq-tx-crash-');
  });
  after(async () => {
    for (const home of homes) await home.kill();
    await dir.remove();
  });

  for (const c of CASES) {
    const name = c.point === undefined ? `SIGKILL from the test with a prepared, an in-flight XA and an in-flight local transaction (flushTxLogAtCommit=${c.flush})` : `${c.target} crashing at ${c.point} (flushTxLogAtCommit=${c.flush})`;
    it(name, async () => {
      const id = `${c.target}-${c.point ?? 'kill'}-f${c.flush}`.replace(/\./g, '_');
      const uq = `rm${c.flush}`;
      const home = await TxBrokerHome.create(join(dir.path, id), { flushTxLogAtCommit: c.flush });
      homes.push(home);
      const expect: Expectation = { committed: new Set(), aborted: new Set(), acks: new Map(), prepared: [] };
      const record = (into: Set<string>, tags: string[], acks?: PutAck[]): void => {
        for (const [i, tag] of tags.entries()) {
          into.add(tag);
          const ack = acks?.[i];
          if (ack !== undefined && into === expect.committed) expect.acks.set(tag, ack);
        }
      };

      // ---- 1. The crashing run (with a prepare crash point armed, the branch that must survive is
      // prepared in an earlier run, itself ended by SIGKILL).
      const prepareArmed = c.point?.startsWith('prepare.') === true;
      const keep = xaKey(`${id}-keep`, uq);
      const keepTags = [`${id}-keep-0`, `${id}-keep-1`];
      const keepMessages = [
        { topic: 'test', partition: 0, tag: keepTags[0] ?? '' },
        { topic: 'orders', partition: 1, tag: keepTags[1] ?? '' },
      ];
      if (prepareArmed) {
        const setup = await home.start();
        const setupClient = await setup.client();
        record(expect.committed, keepTags, await preparedBranch(setupClient, keep, keepMessages));
        setupClient.close();
        await setup.kill();
      }
      const crashing = await home.start(c.point === undefined ? {} : { METAQ_CRASH_POINT: c.point });
      const client = await crashing.client();
      const plain = await client.plainPut('orders', 2, payloadBytes(`${id}-plain`));
      expect.committed.add(`${id}-plain`);
      expect.acks.set(`${id}-plain`, plain);
      if (!prepareArmed) record(expect.committed, keepTags, await preparedBranch(client, keep, keepMessages));
      expect.prepared.push(keep);

      const open = xaKey(`${id}-open`, uq);
      const openTags = [`${id}-open-0`];
      await beginWithMessages(client, open, [{ topic: 'test', partition: 1, tag: openTags[0] ?? '' }]);
      record(expect.aborted, openTags);

      const lopen = localKey(`${id}-session`, 1);
      const lopenTags = [`${id}-lopen-0`, `${id}-lopen-1`];
      await beginWithMessages(client, lopen, [
        { topic: 'test', partition: 0, tag: lopenTags[0] ?? '' },
        { topic: 'orders', partition: 0, tag: lopenTags[1] ?? '' },
      ]);
      record(expect.aborted, lopenTags);

      const commitArmed = c.point?.startsWith('commit.') === true;
      const answeredRetries: ((tm: TxClient) => Promise<void>)[] = [];
      if (!commitArmed) {
        // Answered commits just before the crash: they must survive it in every flush mode.
        const cx = xaKey(`${id}-cx`, uq);
        const cxTags = [`${id}-cx-0`, `${id}-cx-1`];
        const cxMessages = [
          { topic: 'test', partition: 1, tag: cxTags[0] ?? '' },
          { topic: 'orders', partition: 2, tag: cxTags[1] ?? '' },
        ];
        // With a prepare crash point armed, the XA commit is a one-phase one (no prepare).
        const cxAcks = prepareArmed ? await beginWithMessages(client, cx, cxMessages) : await preparedBranch(client, cx, cxMessages);
        assertOk(await client.tx(cx, prepareArmed ? 'COMMIT_ONE_PHASE' : 'COMMIT_TWO_PHASE'));
        record(expect.committed, cxTags, cxAcks);
        const cl = localKey(`${id}-session`, 2);
        const clTags = [`${id}-cl-0`, `${id}-cl-1`];
        const clAcks = await beginWithMessages(client, cl, [
          { topic: 'test', partition: 0, tag: clTags[0] ?? '' },
          { topic: 'test', partition: 1, tag: clTags[1] ?? '' },
        ]);
        assertOk(await client.tx(cl, 'COMMIT_ONE_PHASE'));
        record(expect.committed, clTags, clAcks);
        answeredRetries.push(async (tm) => {
          // Both outcomes survive the crash as tombstones: a retry is answered OK, nothing is applied twice.
          assertOk(await tm.tx(cx, prepareArmed ? 'COMMIT_ONE_PHASE' : 'COMMIT_TWO_PHASE'), 'retried XA commit after the crash');
          assertOk(await tm.tx(cl, 'COMMIT_ONE_PHASE'), 'retried local commit after the crash');
          assertLocalRollbackAfterRestart(await tm.tx(cl, 'ROLLBACK'), false, cl);
        });
      }

      // The target, and what the coordinator / producer does after the restart.
      let retry: (client: TxClient) => Promise<void> = async () => undefined;
      const target = c.target === 'local-commit' ? localKey(`${id}-session`, 3) : xaKey(`${id}-target`, uq);
      const targetTags = [`${id}-t-0`, `${id}-t-1`, `${id}-t-2`];
      const targetMessages = [
        { topic: 'test', partition: 0, tag: targetTags[0] ?? '' },
        { topic: 'test', partition: 1, tag: targetTags[1] ?? '' },
        { topic: 'orders', partition: 1, tag: targetTags[2] ?? '' },
      ];
      switch (c.target) {
        case 'kill':
          await crashing.kill();
          break;
        case 'xa-commit': {
          const acks = await preparedBranch(client, target, targetMessages);
          await commitCrash(c.point, client.tx(target, 'COMMIT_TWO_PHASE'), 'the XA commit');
          await crashing.crashedAt(c.point ?? '');
          // The decision is durable from commit.after-log on; before it, the branch is still prepared.
          if (c.point === 'commit.before-log') expect.prepared.push(target);
          record(expect.committed, targetTags, acks);
          retry = async (tm) => {
            assertOk(await tm.tx(target, 'COMMIT_TWO_PHASE'), 'the TM re-drives the commit');
            assertOk(await tm.tx(target, 'COMMIT_TWO_PHASE'), 'and once more (duplicate)');
          };
          break;
        }
        case 'local-commit': {
          const acks = await beginWithMessages(client, target, targetMessages);
          await commitCrash(c.point, client.tx(target, 'COMMIT_ONE_PHASE'), 'the local commit');
          await crashing.crashedAt(c.point ?? '');
          // Before the commit record nothing is decided (presumed abort); from it on, the commit
          // survives: SIGKILL keeps the page cache even when the record was not forced (modes 0, 2).
          if (c.point === 'commit.before-log') record(expect.aborted, targetTags);
          else record(expect.committed, targetTags, acks);
          retry = async (producer) => {
            // The producer's retry after the restart: a commit whose record survived answers OK
            // from its outcome tombstone (and applies nothing again); one that did not is unknown.
            const answer = await producer.tx(target, 'COMMIT_ONE_PHASE');
            if (c.point === 'commit.before-log') assert.deepEqual(answer, { code: 500, text: localTransactionNotStartedBody(target) });
            else assertOk(answer, 'the retried local commit is answered from its tombstone');
            assertLocalRollbackAfterRestart(await producer.tx(target, 'ROLLBACK'), c.point === 'commit.before-log', target);
          };
          break;
        }
        case 'xa-prepare': {
          const acks = await beginWithMessages(client, target, targetMessages);
          assertOk(await client.tx(target, 'END'));
          await diesWithoutAnswer(client.tx(target, 'PREPARE'), 'the prepare');
          await crashing.crashedAt(c.point ?? '');
          if (c.point === 'prepare.before-log') {
            record(expect.aborted, targetTags);
            retry = async (tm) => {
              assert.deepEqual(await tm.tx(target, 'ROLLBACK'), { code: 500, text: xaExceptionBody(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(target)) });
            };
          } else if (c.point === 'prepare.after-log') {
            // Prepared on disk, vote lost: the TM never saw XA_OK and rolls back.
            expect.prepared.push(target);
            record(expect.aborted, targetTags);
            retry = async (tm) => {
              assertXa(await tm.tx(target, 'PREPARE'), XaCode.XAER_PROTO, 'a repeated prepare of a prepared branch');
              assertOk(await tm.tx(target, 'ROLLBACK'));
              assertOk(await tm.tx(target, 'ROLLBACK'), 'duplicate rollback');
              assertXa(await tm.tx(target, 'COMMIT_TWO_PHASE'), XA_RBROLLBACK, 'commit after rollback → XA_RBROLLBACK');
            };
          } else {
            // Prepared on disk; a TM that learns of it through RECOVER may commit it.
            expect.prepared.push(target);
            record(expect.committed, targetTags, acks);
            retry = async (tm) => {
              assertOk(await tm.tx(target, 'COMMIT_TWO_PHASE'));
              assertOk(await tm.tx(target, 'COMMIT_TWO_PHASE'), 'duplicate commit');
            };
          }
          break;
        }
        case 'xa-rollback': {
          await preparedBranch(client, target, targetMessages);
          await diesWithoutAnswer(client.tx(target, 'ROLLBACK'), 'the rollback');
          await crashing.crashedAt(c.point ?? '');
          record(expect.aborted, targetTags);
          retry = async (tm) => {
            assertOk(await tm.tx(target, 'ROLLBACK'), 'the TM repeats its rollback');
            assertXa(await tm.tx(target, 'COMMIT_TWO_PHASE'), XA_RBROLLBACK, 'commit after rollback → XA_RBROLLBACK');
          };
          break;
        }
      }
      client.close();
      const maxAckedId = [...expect.acks.values()].reduce((m, a) => (a.id > m ? a.id : m), 0n);

      // ---- 2. Restart without the crash point.
      const recovered: TxBrokerRun = await home.start();
      const tm = await recovered.client();
      assert.deepEqual((await tm.recover(uq)).sort(), [...expect.prepared].sort(), 'RECOVER lists exactly the prepared branches');
      await retry(tm);
      for (const again of answeredRetries) await again(tm);
      assertOk(await tm.tx(keep, 'COMMIT_TWO_PHASE'), 'the surviving prepared branch commits');
      assert.deepEqual(await tm.tx(open, 'PREPARE'), { code: 500, text: xaExceptionBody(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(open)) }, 'an unprepared XA branch vanished');
      assert.deepEqual(await tm.tx(lopen, 'COMMIT_ONE_PHASE'), { code: 500, text: localTransactionNotStartedBody(lopen) }, 'an in-flight local transaction vanished');
      assert.deepEqual(await tm.recover(uq), [], 'nothing left prepared');
      const fresh = await tm.plainPut('test', 0, payloadBytes(`${id}-fresh`));
      assert.ok(fresh.id > maxAckedId, 'ids after the restart are above every id handed out before it');
      expect.committed.add(`${id}-fresh`);
      tm.close();
      const stored = await readAll(recovered.port);
      assertMessages(stored, { committed: expect.committed, aborted: expect.aborted, exhaustive: true }, `${id} after the restart`);
      assertIds(stored, expect.acks, id);

      // ---- 3. Crash again and restart: replaying the journal once more changes nothing.
      await recovered.kill();
      const again = await home.start();
      const tm2 = await again.client();
      assert.deepEqual(await tm2.recover(uq), [], 'still nothing prepared');
      tm2.close();
      const storedAgain = await readAll(again.port);
      assert.deepEqual(storedAgain, stored, `${id}: a second recovery leaves every partition as it was`);
      await again.stop();
    });
  }
});
