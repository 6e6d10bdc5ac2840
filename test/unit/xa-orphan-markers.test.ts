/**
 * The orphan-marker sweep (src/xa/orphan-marker-sweeper.ts) against fake resources: markers a
 * dead manager left behind are deleted after recovery, those a pending transaction needs are
 * kept (COMMITTING or PRESUMED_ABORTING without END, in flight), candidates are selected before
 * the pending set is read, ENDs are made durable first, paging gets past markers that must stay,
 * failures only postpone; and the PostgreSQL resource's `listMarkers` SQL.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Pool } from 'pg';
import { componentLogger } from '../../src/common/logger.js';
import { DEFAULT_PHASE_TWO_RETRY, type CoordinatorContext } from '../../src/xa/coordinator-context.js';
import { MemoryCoordinatorLog } from '../../src/xa/log/memory-coordinator-log.js';
import { MarkerSweeper } from '../../src/xa/marker-sweeper.js';
import { MetricsCounters } from '../../src/xa/metrics.js';
import { OrphanMarkerSweeper } from '../../src/xa/orphan-marker-sweeper.js';
import { createPostgresResource } from '../../src/xa/postgres/index.js';
import { TrackedLog } from '../../src/xa/tracked-log.js';
import { createTransactionManager, type TransactionManagerOptions } from '../../src/xa/transaction-manager.js';
import { branchXid, gtridHex, makeGtrid, nodeIdOf, pgGidOf, type Xid } from '../../src/xa/xid.js';
import { FakePgPool } from '../helpers/fake-pg-pool.js';
import { FAST_RETRY, FakeResource, keyOf, RecordingLog, xidOfNode } from '../helpers/xa-fakes.js';
import { FakeMarkerResource, GatedResource, until } from '../helpers/xa-marker-fakes.js';

const NODE = 'node-a';
const BROKER_ID = 'metaq:meta://localhost:8123#tm';

/** A finished transaction's PostgreSQL branch XID of NODE (branch 1), begun `ageMs` ago. */
function finished(sequence: bigint, ageMs = 60_000, node = NODE): Xid {
  return xidOfNode(node, ageMs, 1, sequence);
}

async function manager(db: FakeMarkerResource, options: Partial<TransactionManagerOptions> & { log?: RecordingLog } = {}) {
  const journal = db.journal;
  const broker = new FakeResource(BROKER_ID, journal);
  const log = options.log ?? new RecordingLog(journal);
  const tm = await createTransactionManager({ nodeName: NODE, log, resources: [broker, db], recoveryIntervalMs: 0, phaseTwoRetry: FAST_RETRY, ...options });
  return { broker, log, tm };
}

describe('orphan-marker sweep: through the manager', () => {
  it('after the recovery at start, deletes the markers of ended transactions left by a dead run; other nodes’ markers stay', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const mine = [finished(1n), finished(2n), finished(3n)];
    const foreign = finished(4n, 60_000, 'node-b');
    for (const xid of [...mine, foreign]) db.addMarker(xid);
    const { tm } = await manager(db);
    assert.deepEqual(db.markerKeys(), [keyOf(foreign)], 'only the other node’s marker is left');
    assert.equal(tm.metrics().orphanMarkersDeleted, 3);
    assert.ok(db.calls('deleteMarkers').length === 1, 'one batch');
    await tm.close();
  });

  it('recoveryNodeNames: the markers of a renamed predecessor are swept too', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const old = finished(1n, 60_000, 'old-name');
    db.addMarker(old);
    const { tm } = await manager(db, { recoveryNodeNames: ['old-name'] });
    assert.deepEqual(db.markerKeys(), []);
    await tm.close();
  });

  it('keeps the marker of a COMMITTING without END that recovery cannot finish yet (not in flight), then deletes it once recovery ended it', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const gtrid = makeGtrid({ nodeId: nodeIdOf(NODE), startedAtMs: Date.now() - 60_000, sequence: 9n });
    const brokerXid = branchXid(gtrid, 0);
    const pgXid = branchXid(gtrid, 1);
    // The dead run committed PostgreSQL (marker visible), not the broker branch.
    db.addMarker(pgXid);
    const inner = new MemoryCoordinatorLog();
    await inner.committing(gtrid, [
      { resourceId: BROKER_ID, branchQualifier: brokerXid.branchQualifier },
      { resourceId: db.resourceId, branchQualifier: pgXid.branchQualifier },
    ]);
    // The broker resource is not registered: the transaction stays COMMITTING, unresolvable.
    const log = new RecordingLog(db.journal, inner);
    const tm = await createTransactionManager({ nodeName: NODE, log, resources: [db], recoveryIntervalMs: 0, phaseTwoRetry: FAST_RETRY });
    for (let i = 0; i < 3; i++) {
      const report = await tm.recover();
      assert.deepEqual(report.unresolvable, [gtridHex(gtrid)]);
    }
    assert.deepEqual(db.markerKeys(), [keyOf(pgXid)], 'the marker of the pending COMMITTING is kept');
    assert.equal(tm.metrics().heuristics, 0, 'every re-driven COMMIT PREPARED found its marker: committed, no heuristic');
    assert.equal(tm.metrics().orphanMarkersDeleted, 0);

    const broker = new FakeResource(BROKER_ID, db.journal);
    broker.prepared.set(keyOf(brokerXid), brokerXid);
    tm.register(broker);
    await tm.recover();
    assert.equal(inner.pendingCount, 0, 'END written');
    assert.deepEqual(db.markerKeys(), [], 'and the marker deleted');
    assert.equal(tm.metrics().heuristics, 0);
    await tm.close();
  });

  it('keeps the marker of a PRESUMED_ABORTING without END (it tells an administrator’s commit from a rollback)', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const pgXid = finished(5n);
    db.addMarker(pgXid);
    const inner = new MemoryCoordinatorLog();
    await inner.presumedAborting(pgXid.globalTransactionId);
    // Make the claim stay pending: the listing fails, so recovery cannot END the claimed orphan.
    const broker = new FakeResource(BROKER_ID, db.journal);
    broker.script.recover = new Error('broker down');
    const log = new RecordingLog(db.journal, inner);
    const tm = await createTransactionManager({ nodeName: NODE, log, resources: [broker, db], recoveryIntervalMs: 0, phaseTwoRetry: FAST_RETRY });
    await tm.recover();
    assert.equal(inner.pendingCount, 1, 'the claim is still pending');
    assert.deepEqual(db.markerKeys(), [keyOf(pgXid)]);
    await tm.close();
  });

  it('candidates are selected BEFORE the pending set is read: a transaction that commits during the SELECT keeps its marker', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const stale = finished(1n);
    db.addMarker(stale);
    const broker = new GatedResource(BROKER_ID, db.journal);
    const log = new RecordingLog(db.journal);
    const tm = await createTransactionManager({ nodeName: NODE, log, resources: [broker, db], recoveryIntervalMs: 0, recoverOnStart: false, phaseTwoRetry: FAST_RETRY });
    let racing: { pgXid: Xid; commit: Promise<unknown> } | undefined;
    db.beforeList = async () => {
      if (racing !== undefined) return;
      // While the sweep's SELECT is on its way: a transaction begins, decides, commits PostgreSQL
      // (its marker becomes visible) and waits for the broker's commit.
      const tx = tm.begin();
      (await tx.enlist(broker)).work();
      const pg = await tx.enlist(db);
      pg.work();
      racing = { pgXid: pg.xid, commit: tx.commit() };
      await until(() => db.markers.has(keyOf(pg.xid)) && broker.waiting === 1, 'the PostgreSQL commit of the racing transaction');
    };
    await tm.recover();
    assert.ok(racing !== undefined);
    assert.deepEqual(db.markerKeys(), [keyOf(racing.pgXid)], 'the stale marker is deleted, the racing transaction’s is kept');
    broker.open();
    await racing.commit;
    await tm.recover();
    assert.deepEqual(db.markerKeys(), [], 'deleted once its transaction ended');
    assert.equal(tm.metrics().heuristics, 0);
    await tm.close();
  });

  it('a failing listing or delete only postpones the sweep; recover() still resolves', async () => {
    const db = new FakeMarkerResource('postgres:db');
    db.addMarker(finished(1n));
    db.listFailure = new Error('connection refused');
    const { tm } = await manager(db);
    assert.equal(db.markers.size, 1);
    db.listFailure = undefined;
    db.deleteFailure = new Error('connection reset');
    await tm.recover();
    assert.equal(db.markers.size, 1);
    db.deleteFailure = undefined;
    await tm.recover();
    assert.equal(db.markers.size, 0);
    assert.equal(tm.metrics().orphanMarkersDeleted, 1);
    await tm.close();
  });
});

/** A sweeper over `log` and `db` alone, with `inFlight` as given. */
function sweeperFor(db: FakeMarkerResource, log: TrackedLog, inFlight: (hex: string) => boolean = () => false, pageSize?: number) {
  const logger = componentLogger('xa-orphan-markers-test');
  const ctx: CoordinatorContext = {
    log,
    logger,
    counters: new MetricsCounters(),
    retry: DEFAULT_PHASE_TWO_RETRY,
    signal: new AbortController().signal,
    markers: new MarkerSweeper(log, logger),
    resource: () => undefined,
  };
  return { ctx, sweeper: new OrphanMarkerSweeper({ ctx, nodeIds: [nodeIdOf(NODE)], resources: () => [db], inFlight, decisionRowRetentionMs: 0, now: Date.now }, pageSize) };
}

describe('orphan-marker sweep: the sweeper', () => {
  it('keeps the marker of a transaction in flight in this process (even without a log entry)', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const busy = finished(1n);
    const done = finished(2n);
    db.addMarker(busy);
    db.addMarker(done);
    const busyHex = gtridHex(busy.globalTransactionId);
    const { sweeper } = sweeperFor(db, new TrackedLog(new MemoryCoordinatorLog()), (hex) => hex === busyHex);
    assert.deepEqual(await sweeper.sweep(), { listed: 2, kept: 1, deleted: 1 });
    assert.deepEqual(db.markerKeys(), [keyOf(busy)]);
  });

  it('a log without sync: an END not known durable keeps the marker until a later forced record', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const log = new TrackedLog(new RecordingLog(db.journal, new MemoryCoordinatorLog(), { withSync: false }));
    const xid = finished(1n);
    const gtrid = xid.globalTransactionId;
    await log.committing(gtrid, [{ resourceId: db.resourceId, branchQualifier: xid.branchQualifier }]);
    db.addMarker(xid);
    await log.endTracked(gtrid);
    const { sweeper } = sweeperFor(db, log);
    assert.deepEqual(await sweeper.sweep(), { listed: 1, kept: 1, deleted: 0 }, 'END issued but not durable');
    await log.committing(finished(2n).globalTransactionId, []); // forced: the END before it is durable now
    assert.deepEqual(await sweeper.sweep(), { listed: 1, kept: 0, deleted: 1 });
    assert.deepEqual(db.markerKeys(), []);
  });

  it('a log with sync: syncs it before deleting markers whose END is not durable yet', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const log = new TrackedLog(new RecordingLog(db.journal));
    const xid = finished(1n);
    await log.committing(xid.globalTransactionId, [{ resourceId: db.resourceId, branchQualifier: xid.branchQualifier }]);
    db.addMarker(xid);
    await log.endTracked(xid.globalTransactionId);
    const { sweeper } = sweeperFor(db, log);
    await sweeper.sweep();
    const sync = db.journal.indexOf('log sync');
    const del = db.journal.findIndex((line) => line.startsWith(`${db.resourceId} deleteMarkers`));
    assert.ok(sync >= 0 && del > sync, `log sync before the delete:\n${db.journal.join('\n')}`);
  });

  it('pages past markers that must stay, and starts over at the end', async () => {
    const db = new FakeMarkerResource('postgres:db');
    const inner = new MemoryCoordinatorLog();
    // Older transactions sort first (the start time follows the node id in the gtrid).
    const pending = [finished(1n, 90_000), finished(2n, 80_000)];
    const orphans = [finished(3n, 30_000), finished(4n, 20_000), finished(5n, 10_000)];
    for (const xid of pending) await inner.committing(xid.globalTransactionId, [{ resourceId: db.resourceId, branchQualifier: xid.branchQualifier }]);
    for (const xid of [...pending, ...orphans]) db.addMarker(xid);
    const { sweeper, ctx } = sweeperFor(db, new TrackedLog(inner), () => false, 2);
    assert.deepEqual(await sweeper.sweep(), { listed: 2, kept: 2, deleted: 0 }, 'first page: the pending ones');
    assert.deepEqual(await sweeper.sweep(), { listed: 2, kept: 0, deleted: 2 });
    assert.deepEqual(await sweeper.sweep(), { listed: 1, kept: 0, deleted: 1 }, 'a short page: the end');
    assert.deepEqual(await sweeper.sweep(), { listed: 2, kept: 2, deleted: 0 }, 'from the start again');
    assert.deepEqual(db.markerKeys(), pending.map(keyOf).sort());
    assert.deepEqual(db.listCalls.slice(0, 2), [undefined, keyOf(pending[1] as Xid)]);
    assert.equal(ctx.counters.orphanMarkersDeleted, 3);
  });
});

describe('orphan-marker sweep: PostgresResource.listMarkers', () => {
  it('one SELECT with the node-id prefixes; foreign rows skipped; a full page gives the position to continue', async () => {
    const fake = new FakePgPool();
    // The resource listens for 'error' on its pool: give the fake an emitter's face.
    const pool = Object.assign(new EventEmitter(), { connect: () => fake.connect() }) as unknown as Pool;
    const resource = createPostgresResource({ pool, name: 'orders' });
    const a = finished(1n);
    const b = finished(2n, 1000, 'node-b');
    const c = finished(3n);
    const rows = [pgGidOf(a), pgGidOf(b), 'not-ours', pgGidOf(c)];
    fake.respond = (text) => (text.startsWith('SELECT gid FROM "metaq_xa_marker"') ? { rows: rows.map((gid) => ({ gid })) } : {});
    const page = await resource.listMarkers([nodeIdOf(NODE)], 4, 'after-this');
    assert.deepEqual(page.xids.map(keyOf), [keyOf(a), keyOf(c)], 'own XIDs only');
    assert.equal(page.next, rows[3], 'a full page: continue after its last row');
    const [query] = fake.queries;
    assert.equal(query?.text, 'SELECT gid FROM "metaq_xa_marker" WHERE gid LIKE ANY($1::text[]) AND ($2::text IS NULL OR gid > $2) ORDER BY gid LIMIT $3');
    const [patterns, after, limit] = query?.values ?? [];
    assert.deepEqual([after, limit], ['after-this', 4]);
    assert.ok(Array.isArray(patterns) && patterns.length === 1);
    const pattern = String(patterns[0]);
    assert.match(pattern, /^1297175635\\_[A-Za-z0-9+/]{8}%$/);
    const prefix = pattern.replace('\\_', '_').slice(0, -1);
    assert.ok(pgGidOf(a).startsWith(prefix) && !pgGidOf(b).startsWith(prefix), 'the pattern matches this node’s gids, not another’s');

    fake.respond = () => ({ rows: [{ gid: pgGidOf(a) }] });
    assert.equal((await resource.listMarkers([nodeIdOf(NODE)], 4)).next, undefined, 'a short page is the end');
    assert.equal(fake.queries[1]?.values?.[1], null, 'from the start: no position');
    assert.deepEqual(await resource.listMarkers([], 4), { xids: [], next: undefined });
    await assert.rejects(resource.listMarkers([nodeIdOf(NODE)], 0), /positive integer/);
  });
});
