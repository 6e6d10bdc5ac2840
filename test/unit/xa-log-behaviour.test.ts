/**
 * One behavioural suite of the CoordinatorLog contract, run against both implementations (the
 * file log and the in-memory one), so that the manager's unit tests on the in-memory log mean
 * something for the real one.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { IllegalStateError, InvalidArgumentError, StoreClosedError } from '../../src/common/errors.js';
import type { CoordinatorLog, LoggedParticipant } from '../../src/xa/coordinator-log.js';
import { MemoryCoordinatorLog, openCoordinatorLog, type CoordinatorLogMetrics } from '../../src/xa/log/index.js';
import { branchQualifier, makeGtrid, nodeIdOf } from '../../src/xa/xid.js';
import { makeTempDir } from '../helpers/temp-dir.js';

type LogUnderTest = CoordinatorLog & CoordinatorLogMetrics;

interface Harness {
  open(now: () => number): Promise<LogUnderTest>;
  cleanup(): Promise<void>;
}

const implementations: Record<string, () => Promise<Harness>> = {
  MemoryCoordinatorLog: () =>
    Promise.resolve({
      open: (now) => Promise.resolve(new MemoryCoordinatorLog({ now })),
      cleanup: () => Promise.resolve(),
    }),
  FileCoordinatorLog: async () => {
    const temp = await makeTempDir('metaq-xa-log-');
    const opened: LogUnderTest[] = [];
    return {
      open: async (now) => {
        const log = await openCoordinatorLog(join(temp.path, 'tm'), { now, checkpointIntervalMs: 0, nodeName: 'tm-test' });
        opened.push(log);
        return log;
      },
      cleanup: async () => {
        await Promise.all(opened.map((l) => l.close()));
        await temp.remove();
      },
    };
  },
};

const gtrid = (sequence: number): Buffer => makeGtrid({ nodeId: nodeIdOf('tm-test'), startedAtMs: 1_700_000_000_000, sequence: BigInt(sequence) });
const pg: LoggedParticipant = { resourceId: 'postgres:orders', branchQualifier: branchQualifier(0) };
const mq: LoggedParticipant = { resourceId: 'metaq:broker-1', branchQualifier: branchQualifier(1) };
const mq2: LoggedParticipant = { resourceId: 'metaq:broker-2', branchQualifier: branchQualifier(2) };

for (const [name, makeHarness] of Object.entries(implementations)) {
  describe(`CoordinatorLog contract: ${name}`, () => {
    let harness: Harness;
    let log: LogUnderTest;
    let clock: number;
    beforeEach(async () => {
      clock = 1_700_000_001_000;
      harness = await makeHarness();
      log = await harness.open(() => clock);
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    it('COMMITTING is forced and creates a committing entry with its participants and time', async () => {
      await log.committing(gtrid(1), [pg, mq]);
      const entry = log.get(gtrid(1));
      assert.ok(entry !== undefined);
      assert.equal(entry.state, 'committing');
      assert.equal(entry.decidedAtMs, 1_700_000_001_000);
      assert.deepEqual(entry.participants, [pg, mq]);
      assert.deepEqual(entry.heuristics, []);
      assert.equal(log.pendingCount, 1);
      assert.equal(log.appendCount, 1);
      assert.equal(log.syncCount, 1);
    });

    it('keeps private copies of the caller buffers', async () => {
      const g = gtrid(1);
      const bq = branchQualifier(0);
      await log.committing(g, [{ resourceId: 'postgres:x', branchQualifier: bq }]);
      const copy = Buffer.from(g);
      g.fill(0);
      bq.fill(9);
      assert.deepEqual(log.get(copy)?.participants[0]?.branchQualifier, branchQualifier(0));
      assert.deepEqual(log.get(copy)?.gtrid, copy);
    });

    it('pending() lists the oldest decision first', async () => {
      clock = 300;
      await log.committing(gtrid(3), [pg]);
      clock = 100;
      await log.presumedAborting(gtrid(1));
      clock = 200;
      await log.committing(gtrid(2), [mq]);
      assert.deepEqual(
        log.pending().map((e) => [e.gtrid, e.state, e.decidedAtMs]),
        [
          [gtrid(1), 'presumed-aborting', 100],
          [gtrid(2), 'committing', 200],
          [gtrid(3), 'committing', 300],
        ],
      );
    });

    it('COMMITTING after PRESUMED_ABORTING is refused with IllegalStateError and writes nothing', async () => {
      assert.equal(await log.presumedAborting(gtrid(1)), true);
      const appends = log.appendCount;
      await assert.rejects(log.committing(gtrid(1), [pg, mq]), (e: unknown) => e instanceof IllegalStateError && e.message.includes(gtrid(1).toString('hex')));
      assert.equal(log.appendCount, appends);
      assert.equal(log.get(gtrid(1))?.state, 'presumed-aborting');
    });

    it('PRESUMED_ABORTING after COMMITTING answers false and writes nothing', async () => {
      await log.committing(gtrid(1), [pg, mq]);
      const appends = log.appendCount;
      assert.equal(await log.presumedAborting(gtrid(1)), false);
      assert.equal(log.appendCount, appends);
      assert.equal(log.get(gtrid(1))?.state, 'committing');
    });

    it('COMMITTING stays refused after the presumed-aborted transaction ended (a late 2PC of this process)', async () => {
      await log.presumedAborting(gtrid(1));
      await log.end(gtrid(1));
      assert.equal(log.get(gtrid(1)), undefined);
      await assert.rejects(log.committing(gtrid(1), [pg]), IllegalStateError);
      // A committed-and-ended transaction has no such memory: a second claim on it is a new orphan.
      await log.committing(gtrid(2), [pg]);
      await log.end(gtrid(2));
      assert.equal(await log.presumedAborting(gtrid(2)), true);
    });

    it('a race in one turn: the first call wins, the other is refused or declined', async () => {
      const [committed, claimed] = await Promise.allSettled([log.committing(gtrid(1), [pg]), log.presumedAborting(gtrid(1))]);
      assert.equal(committed.status, 'fulfilled');
      assert.deepEqual(claimed, { status: 'fulfilled', value: false });
      const [claimed2, committed2] = await Promise.allSettled([log.presumedAborting(gtrid(2)), log.committing(gtrid(2), [pg])]);
      assert.deepEqual(claimed2, { status: 'fulfilled', value: true });
      assert.equal(committed2.status, 'rejected');
      assert.ok(committed2.status === 'rejected' && committed2.reason instanceof IllegalStateError);
    });

    it('duplicates are idempotent: same COMMITTING or PRESUMED_ABORTING again writes nothing', async () => {
      await log.committing(gtrid(1), [pg, mq]);
      await log.presumedAborting(gtrid(2));
      const appends = log.appendCount;
      await log.committing(gtrid(1), [mq, pg]);
      await log.committing(gtrid(1), [pg]);
      assert.equal(await log.presumedAborting(gtrid(2)), true);
      assert.equal(log.appendCount, appends);
      assert.deepEqual(log.get(gtrid(1))?.participants, [pg, mq]);
    });

    it('concurrent duplicate COMMITTING calls write one record and both resolve', async () => {
      await Promise.all([log.committing(gtrid(1), [pg]), log.committing(gtrid(1), [pg]), log.committing(gtrid(1), [pg, pg])]);
      assert.equal(log.appendCount, 1);
      assert.deepEqual(log.get(gtrid(1))?.participants, [pg]);
    });

    it('a COMMITTING repeated with more participants adds them (never loses a branch phase two must reach)', async () => {
      await log.committing(gtrid(1), [pg]);
      await log.committing(gtrid(1), [mq, pg, mq2]);
      assert.deepEqual(log.get(gtrid(1))?.participants, [pg, mq, mq2]);
      assert.equal(log.appendCount, 2);
      assert.equal(log.get(gtrid(1))?.decidedAtMs, 1_700_000_001_000);
    });

    it('HEURISTIC is forced and recorded on the entry, duplicates (same branch and outcome) once', async () => {
      await log.committing(gtrid(1), [pg, mq]);
      const syncs = log.syncCount;
      clock += 50;
      await log.heuristic(gtrid(1), { resourceId: pg.resourceId, branchQualifier: pg.branchQualifier, outcome: 'heuristic-rollback', detail: 'marker absent' });
      await log.heuristic(gtrid(1), { resourceId: pg.resourceId, branchQualifier: pg.branchQualifier, outcome: 'heuristic-rollback', detail: 'again' });
      await log.heuristic(gtrid(1), { resourceId: mq.resourceId, branchQualifier: mq.branchQualifier, outcome: 'heuristic-commit', detail: '' });
      assert.equal(log.syncCount, syncs + 2);
      const entry = log.get(gtrid(1));
      assert.equal(entry?.state, 'committing');
      assert.deepEqual(entry?.heuristics, [
        { resourceId: pg.resourceId, branchQualifier: pg.branchQualifier, outcome: 'heuristic-rollback', atMs: 1_700_000_001_050, detail: 'marker absent' },
        { resourceId: mq.resourceId, branchQualifier: mq.branchQualifier, outcome: 'heuristic-commit', atMs: 1_700_000_001_050, detail: '' },
      ]);
    });

    it('HEURISTIC without an entry (a rollback path) creates a presumed-aborting one, which refuses COMMITTING', async () => {
      await log.heuristic(gtrid(1), { resourceId: mq.resourceId, branchQualifier: mq.branchQualifier, outcome: 'heuristic-commit', detail: 'operator committed' });
      const entry = log.get(gtrid(1));
      assert.equal(entry?.state, 'presumed-aborting');
      assert.equal(entry?.heuristics.length, 1);
      await assert.rejects(log.committing(gtrid(1), [mq]), IllegalStateError);
      assert.equal(await log.presumedAborting(gtrid(1)), true);
    });

    it('END is unforced, removes the entry, and is idempotent', async () => {
      await log.committing(gtrid(1), [pg]);
      const syncs = log.syncCount;
      await log.end(gtrid(1));
      assert.equal(log.get(gtrid(1)), undefined);
      assert.equal(log.pendingCount, 0);
      assert.equal(log.syncCount, syncs);
      const appends = log.appendCount;
      await log.end(gtrid(1));
      await log.end(gtrid(99));
      assert.equal(log.appendCount, appends);
      assert.deepEqual(log.pending(), []);
    });

    it('a gtrid can be decided again after END of a committed transaction (no stale state)', async () => {
      await log.committing(gtrid(1), [pg]);
      await log.end(gtrid(1));
      await log.committing(gtrid(1), [mq]);
      assert.deepEqual(log.get(gtrid(1))?.participants, [mq]);
    });

    it('refuses malformed arguments with InvalidArgumentError, writing nothing', async () => {
      await assert.rejects(log.committing(Buffer.alloc(0), [pg]), InvalidArgumentError);
      await assert.rejects(log.committing(Buffer.alloc(65), [pg]), InvalidArgumentError);
      await assert.rejects(log.committing(gtrid(1), [{ resourceId: '', branchQualifier: branchQualifier(0) }]), InvalidArgumentError);
      await assert.rejects(log.presumedAborting('x' as unknown as Buffer), InvalidArgumentError);
      await assert.rejects(
        log.heuristic(gtrid(1), { resourceId: 'r', branchQualifier: branchQualifier(0), outcome: 'rolled-back' as never, detail: '' }),
        InvalidArgumentError,
      );
      assert.equal(log.appendCount, 0);
      assert.equal(log.pendingCount, 0);
    });

    it('refuses every call after close with StoreClosedError', async () => {
      await log.committing(gtrid(1), [pg]);
      await log.close();
      await log.close();
      await assert.rejects(log.committing(gtrid(2), [pg]), StoreClosedError);
      await assert.rejects(log.presumedAborting(gtrid(2)), StoreClosedError);
      await assert.rejects(log.heuristic(gtrid(1), { resourceId: 'r', branchQualifier: branchQualifier(0), outcome: 'heuristic-mixed', detail: '' }), StoreClosedError);
      await assert.rejects(log.end(gtrid(1)), StoreClosedError);
      assert.ok(log.sync !== undefined);
      await assert.rejects(log.sync(), StoreClosedError);
    });

    it('sync() resolves and changes nothing', async () => {
      await log.committing(gtrid(1), [pg]);
      await log.end(gtrid(1));
      const appends = log.appendCount;
      assert.ok(log.sync !== undefined);
      await log.sync();
      assert.equal(log.appendCount, appends);
      assert.equal(log.pendingCount, 0);
    });

    it('a restart keeps COMMITTING, PRESUMED_ABORTING and HEURISTIC entries and forgets ended ones', async () => {
      await log.committing(gtrid(1), [pg, mq]);
      await log.presumedAborting(gtrid(2));
      await log.committing(gtrid(3), [pg]);
      await log.heuristic(gtrid(1), { resourceId: 'metaq:broker-1', branchQualifier: branchQualifier(1), outcome: 'heuristic-hazard', detail: 'no answer' });
      await log.end(gtrid(3));
      const before = log.pending();
      const reopened = log instanceof MemoryCoordinatorLog ? log.restart() : (await log.close(), await harness.open(() => clock));
      assert.deepEqual(reopened.pending(), before);
      assert.equal(reopened.pendingCount, 2);
      await assert.rejects(reopened.committing(gtrid(2), [pg]), IllegalStateError);
      assert.equal(await reopened.presumedAborting(gtrid(1)), false);
    });
  });
}

describe('MemoryCoordinatorLog extras', () => {
  it('records() lists what was written and whether it was forced', async () => {
    const log = new MemoryCoordinatorLog({ now: () => 5 });
    await log.committing(gtrid(1), [pg]);
    await log.end(gtrid(1));
    assert.deepEqual(
      log.records().map((r) => [r.record.kind, r.forced]),
      [
        ['committing', true],
        ['end', false],
      ],
    );
  });

  it('fail() makes every later call reject with a StoreIoError', async () => {
    const log = new MemoryCoordinatorLog();
    log.fail();
    await assert.rejects(log.committing(gtrid(1), [pg]), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'METAQ_ERR_STORE_IO');
    assert.equal(log.pendingCount, 0);
  });
});
