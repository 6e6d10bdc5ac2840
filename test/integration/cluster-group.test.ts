/**
 * Cluster mode end to end, every part a real process: a private ZooKeeper, broker processes
 * registered in it (`zk.zkEnable=true`, 4 partitions per topic each), consumers in child
 * processes that join their group through ZooKeeper (test/helpers/cluster.ts), and a private
 * PostgreSQL for exactly-once consumption and offsets.
 *
 * a. 3 brokers, a producer over ZooKeeper sending all along, 3 exactly-once consumers; a 4th
 *    consumer joins, one is SIGKILLed, a 4th broker is added: every acknowledged message has
 *    exactly one row, at the position its send was acknowledged with; rebalance convergence
 *    (read from the owner nodes in ZooKeeper) is measured and bounded.
 * b. ZooKeeper SIGKILLed under load and started again on the same port and data: consumers keep
 *    consuming meanwhile and afterwards, nothing acknowledged is lost, nothing doubled.
 * c. A consumer frozen (SIGSTOP) longer than its session timeout: the others take over, it
 *    rejoins after SIGCONT, exactly-once still holds.
 * d. Broadcast: three broadcast consumers each get every message.
 * e. ZooKeeper, PostgreSQL and local-file offset storages: a consumer closed midway and a new
 *    process on the same storage and group resume exactly after the committed offsets.
 * f. Offsets in ZooKeeper with a member frozen past its session: once the others took over,
 *    consumed everything and committed, the resumed member writes no offset node at all (its
 *    positions of the partitions it lost are older than the new owners' commits).
 * g. Plain at-least-once consumers (offsets in ZooKeeper, nothing deduplicated downstream)
 *    across a join, a graceful leave and a broker added: taken in the order the listeners got
 *    them, each partition's messages come in strictly increasing offsets, none twice, none
 *    missing: so no two members ever consumed a partition at the same time, and every hand-off
 *    started exactly at the previous owner's committed position.
 *
 * Bounds (consumers' ZooKeeper session timeout S = 4 s, group retry back-off 100 ms → 5 s):
 * - a member joining: the group converges within 10 s of its member node appearing (the
 *   others release at once when they see it; no session timeout is involved);
 * - a broker added: within 10 s of its registration appearing;
 * - a member SIGKILLed or frozen: not before S/2 (only the session expiry removes it; the last
 *   ping may be up to S/3 before the kill) and within S + 10 s (expiry, a ZooKeeper tick, the
 *   watch and one rebalance; the claims need no retry since the dead member's owner nodes go
 *   with its session);
 * - a frozen member resumed: back in the group within 10 s (it learns of the expiry when it
 *   reconnects, registers again, and the others release its share).
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { SendResult } from '../../src/index.js';
import { ContinuousProducer, startCluster, type ConsumerChild, type TestCluster } from '../helpers/cluster.js';
import type { ChildOffsetStorage, ReportedMessage } from '../helpers/cluster-protocol.js';
import { createRowsTable, endOf, seqOf } from '../helpers/exactly-once-workload.js';
import { waitFor } from '../helpers/wait-for.js';

const TOPICS = { a: 'cg-a', b: 'cg-b', c: 'cg-c', d: 'cg-d', e: 'cg-e', f: 'cg-f', g: 'cg-g' } as const;
const OFFSETS_TABLE = 'cluster_offsets';
/** Messages per second of the continuous producers. */
const RATE = 200;
/** Convergence bound after a join or a broker change, ms. */
const CHANGE_BOUND_MS = 10_000;

describe('cluster mode end to end: ZooKeeper, broker processes, consumer processes, PostgreSQL', { timeout: 280_000 }, () => {
  let cluster: TestCluster;
  let pool: pg.Pool;
  let session: number;

  before(async () => {
    cluster = await startCluster({ topics: Object.values(TOPICS), postgres: true });
    if (cluster.pool === undefined || cluster.pg === undefined) throw new Error('no PostgreSQL');
    pool = cluster.pool;
    session = cluster.consumerSessionTimeoutMs;
  });
  after(async () => {
    await cluster?.stop();
  });

  /** Fails a wait at once when a broker or consumer process crashed (cluster.checkProcesses). */
  const crashed = (): void => cluster.checkProcesses();

  const pgStorage = (): ChildOffsetStorage => ({ kind: 'postgres', connectionString: cluster.pg?.connectionString ?? '', table: OFFSETS_TABLE });

  const eoConsumer = (name: string, group: string, topic: string, rowsTable: string): Promise<ConsumerChild> =>
    cluster.spawnConsumer({ name, group, topic, mode: 'exactly-once', storage: pgStorage(), rowsTable });

  /** Waits for the group to converge on `members`; returns the time it took from `since`. */
  /**
   * Waits until the group converged on `members`; returns the time since `since`. On a timeout
   * the error carries the group's state in ZooKeeper and each member's log tail: a convergence
   * that never comes is otherwise undiagnosable after the fact (the logs go with the cluster).
   */
  async function convergence(group: string, topic: string, members: readonly ConsumerChild[], partitions: number, since: number, timeoutMs: number, what: string): Promise<number> {
    try {
      await waitFor(() => cluster.converged(group, topic, members, partitions), { abortIf: crashed, timeoutMs, intervalMs: 25, what });
    } catch (error) {
      const state = await cluster.groupState(group, topic).catch((e: unknown) => `(group state unreadable: ${String(e)})`);
      const owners = typeof state === 'string' ? state : `members ${state.members.join(' ')}; owners ${[...state.owners].map(([p, o]) => `${p}=${o}`).join(' ')}`;
      const tails = members.map((m) => m.diagnostics(25)).join('\n');
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${owners}\n${tails}\n${zookeeperLogExcerpt()}`, { cause: error });
    }
    return Date.now() - since;
  }

  /**
   * ZooKeeper's side of a convergence that never came: the sessions it expired (a member's
   * session that never expires cannot be taken over) and the tail of its log.
   */
  function zookeeperLogExcerpt(): string {
    let lines: string[];
    try {
      lines = fs.readFileSync(cluster.zk.logFile, 'utf8').split('\n');
    } catch (error) {
      return `(ZooKeeper's log ${cluster.zk.logFile} unreadable: ${String(error)})`;
    }
    const expiries = lines.filter((line) => /expir/i.test(line)).slice(-10);
    return `--- ZooKeeper: session expiries (last 10) ---\n${expiries.join('\n')}\n--- ZooKeeper: log tail ---\n${lines.slice(-15).join('\n')}`;
  }

  /** Waits until `check` holds (a znode appeared); returns when it was first seen. */
  const appeared = (check: () => Promise<boolean>, what: string): Promise<number> =>
    waitFor(async () => ((await check()) ? Date.now() : undefined), { abortIf: crashed, timeoutMs: 30_000, intervalMs: 20, what });

  async function rowCount(table: string): Promise<number> {
    return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n ?? 0);
  }

  async function rowsOf(table: string, pid: number | undefined): Promise<number> {
    return Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE pid = $1`, [pid ?? -1])).rows[0]?.n ?? 0);
  }

  /** Waits until the table has grown by `more` rows from now. */
  async function progress(table: string, more: number, what: string): Promise<void> {
    const from = await rowCount(table);
    await waitFor(async () => (await rowCount(table)) >= from + more, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 50, what: `${more} more rows in ${table} (${what})` });
  }

  /**
   * Throws unless every acknowledged send has a row in `table`, naming what is missing per
   * partition (first missing offset, and the group's stored offset there).
   */
  async function checkConsumed(producer: ContinuousProducer, table: string, group: string): Promise<void> {
    const wanted = [...producer.acked];
    const have = new Set((await pool.query<{ seq: number }>(`SELECT seq FROM ${table} WHERE seq = ANY($1::int[])`, [wanted.map(([seq]) => seq)])).rows.map((r) => r.seq));
    const missing = wanted.filter(([seq]) => !have.has(seq));
    if (missing.length === 0) return;
    const stored = await pool.query<{ key: string; offset: string }>(
      `SELECT broker_id || '-' || "partition" AS key, "offset"::text AS "offset" FROM ${OFFSETS_TABLE} WHERE group_name = $1 AND topic = $2`,
      [group, producer.topic],
    );
    const storedAt = new Map(stored.rows.map((r) => [r.key, r.offset]));
    const byPartition = new Map<string, number[]>();
    for (const [, result] of missing) {
      const key = `${brokerIdOf(result)}-${result.partition}`;
      byPartition.set(key, [...(byPartition.get(key) ?? []), result.offset]);
    }
    const detail = [...byPartition].map(([key, offsets]) => `${key}: ${offsets.length} from @${Math.min(...offsets)} (stored offset ${storedAt.get(key) ?? 'none'})`);
    throw new Error(`${missing.length} of ${wanted.length} acknowledged messages without a row; ${detail.join('; ')}`);
  }

  /** Waits until every acknowledged send has a row and nothing waits in the recover table. */
  async function allConsumed(producer: ContinuousProducer, table: string, group: string): Promise<void> {
    await waitFor(
      async () => {
        await checkConsumed(producer, table, group);
        const recover = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${OFFSETS_TABLE}_recover WHERE group_name = $1 AND topic = $2`, [group, producer.topic]);
        if (Number(recover.rows[0]?.n) > 0) throw new Error(`${recover.rows[0]?.n} messages still in the recover table`);
        return true;
      },
      { abortIf: crashed, timeoutMs: 60_000, intervalMs: 200, what: `every acknowledged message of ${producer.topic} consumed` },
    );
  }

  function brokerIdOf(result: SendResult): number {
    const broker = [...cluster.brokers.values()].find((b) => b.url === result.brokerUrl);
    if (broker === undefined) throw new Error(`no broker at ${result.brokerUrl}`);
    return broker.id;
  }

  /**
   * Message by message: every acknowledged send has exactly one row, at the partition and offset
   * it was acknowledged with; every other row belongs to a send that failed (it may have been
   * stored) and is single too; the recover table is empty; the stored offsets are the ends of
   * what was consumed.
   */
  async function verifyExactlyOnce(producer: ContinuousProducer, table: string, group: string): Promise<void> {
    const rows = (await pool.query<{ seq: number; partition: number; offset: string }>(`SELECT seq, "partition", "offset"::text AS "offset" FROM ${table}`)).rows;
    const bySeq = new Map<number, { partition: number; offset: number }[]>();
    for (const row of rows) bySeq.set(row.seq, [...(bySeq.get(row.seq) ?? []), { partition: row.partition, offset: Number(row.offset) }]);
    const problems: string[] = [];
    for (const [seq, result] of producer.acked) {
      const found = bySeq.get(seq) ?? [];
      if (found.length !== 1) problems.push(`acknowledged seq ${seq} (broker ${brokerIdOf(result)} partition ${result.partition} @${result.offset}) has ${found.length} rows`);
      else if (found[0]?.partition !== result.partition || found[0]?.offset !== result.offset) {
        problems.push(`seq ${seq}: row at partition ${found[0]?.partition} @${found[0]?.offset}, acknowledged at ${result.partition} @${result.offset}`);
      }
    }
    let unacknowledged = 0;
    for (const [seq, found] of bySeq) {
      if (producer.acked.has(seq)) continue;
      unacknowledged++;
      if (!producer.failed.has(seq)) problems.push(`row for seq ${seq}, which was never sent`);
      else if (found.length !== 1) problems.push(`seq ${seq} (send failed, message stored anyway) has ${found.length} rows`);
    }
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} exactly-once violations in ${table}`);
    const recover = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${OFFSETS_TABLE}_recover WHERE group_name = $1 AND topic = $2`, [group, producer.topic]);
    assert.equal(Number(recover.rows[0]?.n), 0, 'recover table empty');

    const ends = new Map<string, number>();
    for (const [seq, result] of producer.acked) {
      const key = `${brokerIdOf(result)}-${result.partition}`;
      ends.set(key, Math.max(ends.get(key) ?? 0, endOf(result.offset, seq)));
    }
    const stored = await pool.query<{ broker_id: number; partition: number; offset: string }>(
      `SELECT broker_id, "partition", "offset"::text AS "offset" FROM ${OFFSETS_TABLE} WHERE group_name = $1 AND topic = $2`,
      [group, producer.topic],
    );
    const storedBy = new Map(stored.rows.map((r) => [`${r.broker_id}-${r.partition}`, Number(r.offset)]));
    for (const [key, end] of ends) {
      const at = storedBy.get(key);
      // With a failed-but-stored send after the last acknowledged one, the offset is past it.
      if (unacknowledged === 0) assert.equal(at, end, `stored offset of ${key} is the end of its last message`);
      else assert.ok(at !== undefined && at >= end, `stored offset of ${key} (${String(at)}) is at least ${end}`);
    }
  }

  /** Closes consumers gracefully (in parallel) and reports their error logs. */
  async function closeAll(t: TestContext, consumers: readonly ConsumerChild[]): Promise<void> {
    crashed();
    await Promise.all(consumers.map((c) => c.close()));
    for (const c of consumers) if (c.errors.length > 0) t.diagnostic(`consumer ${c.name} logged errors: ${c.errors.slice(0, 3).join(' | ')}`);
  }

  it('a. exactly-once group of 3 → join, SIGKILL, 4th broker: every acknowledged message processed once; rebalances bounded', async (t) => {
    const group = 'grp-a';
    const rows = 'rows_a';
    const topic = TOPICS.a;
    await createRowsTable(pool, rows);
    const producer = await cluster.createProducer(topic);
    producer.start(RATE);
    try {
      let started = Date.now();
      const eo = (name: string): Promise<ConsumerChild> => eoConsumer(name, group, topic, rows);
      const [a, b, c] = await Promise.all([eo('a1'), eo('a2'), eo('a3')]);
      const startMs = await convergence(group, topic, [a, b, c], 12, started, 30_000, 'three consumers converged on 12 partitions');
      await progress(rows, 300, 'three consumers');

      // A fourth consumer joins: from its member node appearing to the new disjoint cover.
      const joining = eo('a4');
      const joinedAt = await appeared(() => cluster.checker.exists(cluster.paths.groupMember(group, 'a4')), "a4's member node");
      const d = await joining;
      const joinMs = await convergence(group, topic, [a, b, c, d], 12, joinedAt, CHANGE_BOUND_MS + 20_000, 'four consumers converged');
      await progress(rows, 300, 'four consumers');
      const dRowsBefore = await rowsOf(rows, d.pid);

      // b is SIGKILLed: its partitions wait for its session to expire.
      const bRows = await rowsOf(rows, b.pid);
      const killedAt = Date.now();
      await b.kill();
      const killMs = await convergence(group, topic, [a, c, d], 12, killedAt, session + 30_000, 'the survivors took over the killed consumer');
      await progress(rows, 300, 'after the kill');

      // A fourth broker: its partitions join the group's cover and get consumed.
      const adding = cluster.addBroker(4);
      const addedAt = await appeared(async () => ((await cluster.checker.children(cluster.paths.topicSub(topic))) ?? []).includes('4-m'), "broker 4's registration");
      const broker4 = await adding;
      const brokerMs = await convergence(group, topic, [a, c, d], 16, addedAt, CHANGE_BOUND_MS + 20_000, 'the group covers broker 4 too');
      const toBroker4 = (): number => [...producer.acked.values()].filter((r) => r.brokerUrl === broker4.url).length;
      await waitFor(() => toBroker4() >= 100, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 50, what: 'the producer sent 100 messages to broker 4' });

      started = Date.now();
      await producer.stop();
      await allConsumed(producer, rows, group);
      const drainMs = Date.now() - started;
      await closeAll(t, [a, c, d]);

      t.diagnostic(
        `sent ${producer.sent}, acknowledged ${producer.acked.size}, failed ${producer.failed.size}; convergence: start ${startMs} ms, join ${joinMs} ms, ` +
          `SIGKILL ${killMs} ms (session ${session} ms), broker added ${brokerMs} ms; drain ${drainMs} ms`,
      );
      await verifyExactlyOnce(producer, rows, group);
      assert.ok(producer.acked.size >= 1000, `a real load (${producer.acked.size} messages)`);
      assert.ok(toBroker4() >= 100, "broker 4's partitions got messages, all consumed (verified above)");
      assert.ok(bRows > 0, 'the killed consumer had consumed before');
      assert.ok((await rowsOf(rows, d.pid)) > dRowsBefore, 'the joined consumer consumed');
      assert.ok(joinMs <= CHANGE_BOUND_MS, `join converged in ${joinMs} ms (bound ${CHANGE_BOUND_MS})`);
      assert.ok(killMs >= session / 2, `take-over after ${killMs} ms: before the session (${session} ms) could have expired?`);
      assert.ok(killMs <= session + 10_000, `take-over after SIGKILL in ${killMs} ms (bound ${session + 10_000})`);
      assert.ok(brokerMs <= CHANGE_BOUND_MS, `broker addition converged in ${brokerMs} ms (bound ${CHANGE_BOUND_MS})`);
    } finally {
      await producer.stop();
    }
  });

  it('b. ZooKeeper SIGKILLed under load and restarted on the same port and data: nothing acknowledged lost, consumers resume', async (t) => {
    const group = 'grp-b';
    const rows = 'rows_b';
    const topic = TOPICS.b;
    const partitions = cluster.brokers.size * cluster.partitionsPerBroker;
    await createRowsTable(pool, rows);
    const producer = await cluster.createProducer(topic);
    producer.start(RATE);
    try {
      const [x, y] = await Promise.all([eoConsumer('b1', group, topic, rows), eoConsumer('b2', group, topic, rows)]);
      await convergence(group, topic, [x, y], partitions, Date.now(), 30_000, 'two consumers converged');
      await progress(rows, 200, 'before the outage');

      const downAt = Date.now();
      const sentBefore = producer.sent;
      const rowsBefore = await rowCount(rows);
      await cluster.zk.kill();
      // Brokers keep serving and consumers keep fetching without ZooKeeper; stay down 3 s at least.
      await waitFor(async () => Date.now() - downAt >= 3000 && (await rowCount(rows)) >= rowsBefore + 100, {
        abortIf: crashed,
        timeoutMs: 20_000,
        intervalMs: 100,
        what: '3 s of ZooKeeper outage with consumption going on',
      });
      const rowsDuring = (await rowCount(rows)) - rowsBefore;
      const sentDuring = producer.sent - sentBefore;
      await cluster.zk.start();
      const upAt = Date.now();
      const outageMs = upAt - downAt;

      const regroupMs = await convergence(group, topic, [x, y], partitions, upAt, 30_000, 'the group whole again after the restart');
      // The watches work in the restarted ZooKeeper: a third consumer joining is seen by the others.
      const joining = eoConsumer('b3', group, topic, rows);
      const joinedAt = await appeared(() => cluster.checker.exists(cluster.paths.groupMember(group, 'b3')), "b3's member node");
      const z = await joining;
      const joinMs = await convergence(group, topic, [x, y, z], partitions, joinedAt, CHANGE_BOUND_MS + 20_000, 'three consumers after the restart');
      // Consumption goes on after the restart: everything sent after it is consumed too (allConsumed).
      const mark = producer.sent;
      await waitFor(() => producer.acked.size >= mark + 200, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 50, what: '200 more messages acknowledged after the restart' });
      await producer.stop();
      await allConsumed(producer, rows, group);
      await closeAll(t, [x, y, z]);
      t.diagnostic(
        `ZooKeeper down ${outageMs} ms: ${sentDuring} sends, ${rowsDuring} rows meanwhile; group checked whole ${regroupMs} ms after the restart, ` +
          `a join after it converged in ${joinMs} ms; ` +
          `sent ${producer.sent}, acknowledged ${producer.acked.size}, failed ${producer.failed.size}`,
      );
      await verifyExactlyOnce(producer, rows, group);
      assert.ok(rowsDuring >= 100, 'consumption went on while ZooKeeper was down');
      assert.ok(joinMs <= CHANGE_BOUND_MS, `join after the restart converged in ${joinMs} ms (bound ${CHANGE_BOUND_MS})`);
      assert.equal((await cluster.subscribePartitions(topic)).length, partitions, 'every broker registered again');
    } finally {
      await producer.stop();
    }
  });

  it('c. a consumer frozen (SIGSTOP) past its session timeout: the group re-converges, it rejoins after SIGCONT, exactly-once holds', async (t) => {
    const group = 'grp-c';
    const rows = 'rows_c';
    const topic = TOPICS.c;
    const partitions = cluster.brokers.size * cluster.partitionsPerBroker;
    await createRowsTable(pool, rows);
    const producer = await cluster.createProducer(topic);
    producer.start(RATE);
    try {
      const eo = (name: string): Promise<ConsumerChild> => eoConsumer(name, group, topic, rows);
      const [p, q, r] = await Promise.all([eo('c1'), eo('c2'), eo('c3')]);
      await convergence(group, topic, [p, q, r], partitions, Date.now(), 30_000, 'three consumers converged');
      await progress(rows, 200, 'before the freeze');

      const stoppedAt = Date.now();
      r.pause();
      let expiryMs: number;
      try {
        expiryMs = await convergence(group, topic, [p, q], partitions, stoppedAt, session + 30_000, 'the two others took over the frozen consumer');
        await progress(rows, 150, 'while c3 is frozen');
      } finally {
        r.resume();
      }
      const resumedAt = Date.now();
      const rejoinMs = await convergence(group, topic, [p, q, r], partitions, resumedAt, CHANGE_BOUND_MS + 20_000, 'the resumed consumer back in the group');
      const rRows = await rowsOf(rows, r.pid);
      await waitFor(async () => (await rowsOf(rows, r.pid)) >= rRows + 50, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 100, what: 'the resumed consumer consuming again' });
      await producer.stop();
      await allConsumed(producer, rows, group);
      await closeAll(t, [p, q, r]);
      t.diagnostic(
        `frozen → others took over in ${expiryMs} ms (session ${session} ms); resumed → rejoined in ${rejoinMs} ms; ` +
          `sent ${producer.sent}, acknowledged ${producer.acked.size}, failed ${producer.failed.size}`,
      );
      await verifyExactlyOnce(producer, rows, group);
      assert.ok(expiryMs >= session / 2, `take-over after ${expiryMs} ms: before the session could have expired?`);
      assert.ok(expiryMs <= session + 10_000, `take-over of the frozen consumer in ${expiryMs} ms (bound ${session + 10_000})`);
      assert.ok(rejoinMs <= CHANGE_BOUND_MS, `rejoin converged in ${rejoinMs} ms (bound ${CHANGE_BOUND_MS})`);
    } finally {
      await producer.stop();
    }
  });

  it('d. broadcast: three broadcast consumers (distinct broadcastId) each get every message', async (t) => {
    const topic = TOPICS.d;
    const partitions = cluster.brokers.size * cluster.partitionsPerBroker;
    const producer = await cluster.createProducer(topic);
    await Promise.all(Array.from({ length: 150 }, () => producer.sendOne()));
    const consumers = await Promise.all(
      ['x', 'y', 'z'].map((id) =>
        cluster.spawnConsumer({
          name: `d-${id}`,
          group: 'bcast',
          topic,
          mode: 'report',
          broadcastId: id,
          storage: { kind: 'local', file: join(cluster.dir, `bcast-${id}.offsets`) },
        }),
      ),
    );
    await Promise.all(Array.from({ length: 150 }, () => producer.sendOne())); // and some sent while they run
    assert.equal(producer.failed.size, 0);
    const ids = new Set([...producer.acked.values()].map((r) => r.id.toString()));
    for (const [i, consumer] of consumers.entries()) {
      // Each is a group of its own, `bcast-<id>`, owning every partition.
      await convergence(`bcast-${['x', 'y', 'z'][i]}`, topic, [consumer], partitions, Date.now(), 20_000, `${consumer.name} owns every partition of its own group`);
      await waitFor(() => [...ids].every((id) => consumer.consumed.some((m) => m.id === id)) || undefined, {
        abortIf: crashed,
        timeoutMs: 30_000,
        intervalMs: 50,
        what: `${consumer.name} to get all ${ids.size} messages`,
      });
    }
    await closeAll(t, consumers);
    for (const consumer of consumers) {
      assert.deepEqual(consumer.consumed.map((m) => m.id).sort(), [...ids].sort(), `${consumer.name} got every message exactly once`);
    }
  });

  it("f. ZooKeeper offsets: a member frozen past its session never writes its stale positions over the new owners' commits", async (t) => {
    const group = 'grp-f';
    const topic = TOPICS.f;
    const partitions = cluster.brokers.size * cluster.partitionsPerBroker;
    const producer = await cluster.createProducer(topic);
    producer.start(RATE);
    const spawn = (name: string): Promise<ConsumerChild> => cluster.spawnConsumer({ name, group, topic, mode: 'report', storage: { kind: 'zookeeper' } });
    const [p, q, r] = await Promise.all([spawn('f1'), spawn('f2'), spawn('f3')]);
    const everyone = [p, q, r];
    const consumedIds = (): Set<string> => new Set(everyone.flatMap((c) => c.consumed.map((m) => m.id)));
    let producing = true;
    try {
      await convergence(group, topic, [p, q, r], partitions, Date.now(), 30_000, 'three consumers converged');
      // r has positions of its own that move faster than its commits (every 500 ms).
      await waitFor(() => r.consumed.length >= 100, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 20, what: 'f3 consumed 100 messages' });
      const stoppedAt = Date.now();
      r.pause();
      try {
        await convergence(group, topic, [p, q], partitions, stoppedAt, session + 30_000, 'the two others took over the frozen consumer');
        await producer.stop();
        producing = false;
        assert.equal(producer.failed.size, 0, 'no send failed');
        // The new owners consume everything and commit the ends.
        const ends = new Map<string, number>();
        for (const [seq, result] of producer.acked) {
          const key = `${brokerIdOf(result)}-${result.partition}`;
          ends.set(key, Math.max(ends.get(key) ?? 0, endOf(result.offset, seq)));
        }
        const ids = [...producer.acked.values()].map((a) => a.id.toString());
        await waitFor(() => ids.every((id) => consumedIds().has(id)) || undefined, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 50, what: 'every message consumed' });
        const settled = await waitFor(
          async () => {
            const stored = await zkOffsetNodes(group, topic);
            return [...ends].every(([key, end]) => stored.get(key)?.offset === end) ? stored : undefined;
          },
          { abortIf: crashed, timeoutMs: 30_000, intervalMs: 100, what: 'the new owners committed the end of every partition' },
        );
        r.resume();
        const resumedAt = Date.now();
        await convergence(group, topic, [p, q, r], partitions, resumedAt, CHANGE_BOUND_MS + 20_000, 'the resumed consumer back in the group');
        // Its commit timer (500 ms) and its hand-off commits had their chances since the resume.
        await waitFor(() => Date.now() - resumedAt >= 2000 || undefined, { timeoutMs: 5000, intervalMs: 100, what: '2 s after the resume' });
        const after = await zkOffsetNodes(group, topic);
        const moved = [...settled].filter(([key, node]) => after.get(key)?.version !== node.version || after.get(key)?.offset !== node.offset);
        t.diagnostic(`took over after ${Date.now() - stoppedAt} ms; ${producer.acked.size} messages; nodes rewritten after the resume: ${moved.length}`);
        assert.deepEqual(
          moved.map(([key, node]) => `${key}: ${node.offset} (v${node.version}) → ${after.get(key)?.offset} (v${after.get(key)?.version})`),
          [],
          `no offset node written after the resume (nothing new was consumed)\n${r.diagnostics(60)}`,
        );
      } finally {
        r.resume();
      }
      await closeAll(t, everyone);
    } finally {
      if (producing) await producer.stop();
    }
  });

  /** The ZooKeeper offset nodes of `group` for `topic`: `<brokerId>-<partition>` → offset, message id, version. */
  async function zkOffsetNodes(group: string, topic: string): Promise<Map<string, { offset: number; messageId: string; version: number }>> {
    const dir = cluster.paths.groupOffsets(group, topic);
    const stored = new Map<string, { offset: number; messageId: string; version: number }>();
    for (const name of (await cluster.checker.children(dir)) ?? []) {
      const node = await cluster.checker.get(`${dir}/${name}`);
      const match = /^(-?\d+)-(\d+)$/.exec(node?.data ?? '');
      assert.ok(match !== null && node !== undefined, `offset node ${dir}/${name} holds ${JSON.stringify(node?.data)}, not <msgId>-<offset>`);
      assert.equal(node.ephemeralOwner, undefined, 'offset nodes are persistent');
      stored.set(name, { offset: Number(match[2]), messageId: match[1] ?? '', version: node.version });
    }
    return stored;
  }

  describe('e. offset storages survive a consumer restart', () => {
    const N = 400;
    /** Message id → where and what it is. */
    const sent = new Map<string, { brokerId: number; partition: number; offset: number; seq: number }>();

    before(async () => {
      const producer = await cluster.createProducer(TOPICS.e);
      await Promise.all(Array.from({ length: N }, () => producer.sendOne()));
      assert.equal(producer.failed.size, 0);
      for (const [seq, result] of producer.acked) sent.set(result.id.toString(), { brokerId: brokerIdOf(result), partition: result.partition, offset: result.offset, seq });
    });

    /** Per `<brokerId>-<partition>`: what the storage must hold after `consumed` (last id and end offset; `-1`, 0 when nothing). */
    function expectedOffsets(consumed: readonly ReportedMessage[]): Map<string, { messageId: string; offset: number }> {
      const expected = new Map<string, { messageId: string; offset: number }>();
      for (const where of sent.values()) expected.set(`${where.brokerId}-${where.partition}`, { messageId: '-1', offset: 0 });
      for (const message of consumed) {
        const where = sent.get(message.id);
        assert.ok(where !== undefined, `consumed message ${message.id} was not sent`);
        const key = `${where.brokerId}-${where.partition}`;
        const end = endOf(where.offset, seqOf({ data: Buffer.from(message.data) }));
        if (end > (expected.get(key)?.offset ?? 0)) expected.set(key, { messageId: message.id, offset: end });
      }
      return expected;
    }

    /** First consumer stops after ~N/4 messages and closes; a second process resumes on the same storage and group. */
    async function restartCase(t: TestContext, kind: string, storage: ChildOffsetStorage, readStored: (group: string) => Promise<Map<string, { messageId: string; offset: number }>>): Promise<void> {
      const group = `grp-e-${kind}`;
      const first = await cluster.spawnConsumer({ name: `e-${kind}-1`, group, topic: TOPICS.e, mode: 'report', storage, pauseAfter: N / 4 });
      await waitFor(() => first.consumed.length >= N / 4, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 20, what: `${first.name} consumed ${N / 4}` });
      await first.close();
      const one = first.consumed;
      assert.ok(one.length >= N / 4 && one.length < N, `the first consumer stopped midway (${one.length} of ${N})`);
      // The storage holds exactly the position after the last message each partition gave the first consumer.
      assert.deepEqual(new Map([...(await readStored(group))].sort()), new Map([...expectedOffsets(one)].sort()), 'committed offsets after the graceful close');

      const second = await cluster.spawnConsumer({ name: `e-${kind}-2`, group, topic: TOPICS.e, mode: 'report', storage });
      await waitFor(() => one.length + second.consumed.length >= N, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 20, what: `${second.name} to consume the rest` });
      await second.close();
      const two = second.consumed;
      const firstIds = new Set(one.map((m) => m.id));
      const repeated = two.filter((m) => firstIds.has(m.id));
      assert.deepEqual(repeated.map((m) => m.id), [], 'nothing consumed before the restart is delivered again');
      assert.deepEqual([...one, ...two].map((m) => m.id).sort(), [...sent.keys()].sort(), 'every message exactly once across the restart (no gap, no duplicate)');
      assert.deepEqual(new Map([...(await readStored(group))].sort()), new Map([...expectedOffsets([...one, ...two])].sort()), 'committed offsets at the end');
      t.diagnostic(`${kind}: ${one.length} messages before the restart, ${two.length} after`);
    }

    it('ZooKeeper (the default in cluster mode): node data is "<msgId>-<offset>"', async (t) => {
      await restartCase(t, 'zk', { kind: 'zookeeper' }, async (group) => {
        const stored = await zkOffsetNodes(group, TOPICS.e);
        return new Map([...stored].map(([name, { messageId, offset }]) => [name, { messageId, offset }]));
      });
    });

    it('PostgreSQL', async (t) => {
      await restartCase(t, 'pg', pgStorage(), async (group) => {
        const result = await pool.query<{ broker_id: number; partition: number; offset: string; msg_id: string }>(
          `SELECT broker_id, "partition", "offset"::text AS "offset", msg_id::text AS msg_id FROM ${OFFSETS_TABLE} WHERE group_name = $1 AND topic = $2`,
          [group, TOPICS.e],
        );
        return new Map(result.rows.map((r) => [`${r.broker_id}-${r.partition}`, { messageId: r.msg_id, offset: Number(r.offset) }]));
      });
    });

    it('local file', async (t) => {
      const file = join(cluster.dir, 'e-local.offsets');
      await restartCase(t, 'local', { kind: 'local', file }, async (group) => {
        // MetaQ's JSON, read raw: {"<group>":[{"topic":..,"partition":{"brokerId":B,"partition":P},"offset":O,"messageId":M,...}]}
        const text = fs.readFileSync(file, 'utf8');
        const section = text.slice(text.indexOf(`${JSON.stringify(group)}:[`));
        const body = section.slice(0, section.indexOf(']'));
        const stored = new Map<string, { messageId: string; offset: number }>();
        for (const m of body.matchAll(/"topic":"([^"]*)","partition":\{"brokerId":(\d+),"partition":(\d+)\},"offset":(\d+),"messageId":(-?\d+)/g)) {
          if (m[1] === TOPICS.e) stored.set(`${m[2]}-${m[3]}`, { messageId: m[5] ?? '', offset: Number(m[4]) });
        }
        return stored;
      });
    });
  });
  it('g. at-least-once group, offsets in ZooKeeper: across a join, a graceful leave and a broker added, one member at a time per partition, in order, nothing twice', async (t) => {
    const group = 'grp-g';
    const topic = TOPICS.g;
    const perBroker = cluster.partitionsPerBroker;
    const producer = await cluster.createProducer(topic);
    producer.start(RATE);
    const spawn = (name: string): Promise<ConsumerChild> => cluster.spawnConsumer({ name, group, topic, mode: 'report', storage: { kind: 'zookeeper' } });
    const all: ConsumerChild[] = [];
    const consumedCount = (): number => all.reduce((n, c) => n + c.consumed.length, 0);
    const moreConsumed = async (more: number, what: string): Promise<void> => {
      const from = consumedCount();
      await waitFor(() => consumedCount() >= from + more || undefined, { abortIf: crashed, timeoutMs: 30_000, intervalMs: 20, what: `${more} more messages consumed (${what})` });
    };
    let producing = true;
    try {
      all.push(...(await Promise.all([spawn('g1'), spawn('g2'), spawn('g3')])));
      const [g1, g2, g3] = all as [ConsumerChild, ConsumerChild, ConsumerChild];
      let partitions = cluster.brokers.size * perBroker;
      await convergence(group, topic, [g1, g2, g3], partitions, Date.now(), 30_000, 'three consumers converged');
      await moreConsumed(300, 'three members');

      const g4 = await spawn('g4');
      all.push(g4);
      await convergence(group, topic, [g1, g2, g3, g4], partitions, Date.now(), CHANGE_BOUND_MS + 20_000, 'a fourth member joined');
      await moreConsumed(300, 'four members');

      await g2.close();
      await convergence(group, topic, [g1, g3, g4], partitions, Date.now(), CHANGE_BOUND_MS + 20_000, 'g2 left gracefully');
      await moreConsumed(300, 'after the leave');

      const id = Math.max(...cluster.brokers.keys()) + 1;
      const added = await cluster.addBroker(id);
      partitions += perBroker;
      await convergence(group, topic, [g1, g3, g4], partitions, Date.now(), CHANGE_BOUND_MS + 20_000, `the group covers broker ${id} too`);
      await waitFor(() => [...producer.acked.values()].filter((r) => r.brokerUrl === added.url).length >= 100 || undefined, {
        abortIf: crashed,
        timeoutMs: 30_000,
        intervalMs: 50,
        what: `the producer sent 100 messages to broker ${id}`,
      });
      await producer.stop();
      producing = false;

      // Every acknowledged message consumed (by anyone), then everyone closes.
      const where = new Map<string, { key: string; offset: number }>();
      for (const result of producer.acked.values()) where.set(result.id.toString(), { key: `${brokerIdOf(result)}-${result.partition}`, offset: result.offset });
      await waitFor(() => [...where.keys()].every((messageId) => all.some((c) => c.consumed.some((m) => m.id === messageId))) || undefined, {
        abortIf: crashed,
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'every acknowledged message consumed',
      });
      await closeAll(t, [g1, g3, g4]);

      // Per partition, in the order the listeners got them: strictly increasing offsets.
      const deliveries = new Map<string, { member: string; offset: number; at: number; id: string }[]>();
      const unknown: string[] = [];
      for (const consumer of all) {
        for (const m of consumer.consumed) {
          const at = where.get(m.id);
          if (at === undefined) {
            unknown.push(m.id);
            continue;
          }
          deliveries.set(at.key, [...(deliveries.get(at.key) ?? []), { member: consumer.name, offset: at.offset, at: m.at, id: m.id }]);
        }
      }
      const problems: string[] = [];
      let handOffs = 0;
      for (const [key, list] of deliveries) {
        list.sort((x, y) => x.at - y.at);
        for (let i = 1; i < list.length; i++) {
          const [before, now] = [list[i - 1], list[i]];
          if (before === undefined || now === undefined) continue;
          if (now.member !== before.member) handOffs++;
          if (now.offset <= before.offset) {
            problems.push(`${key}: ${now.member} got @${now.offset} at ${now.at.toFixed(3)} after ${before.member} got @${before.offset} at ${before.at.toFixed(3)}`);
          }
        }
      }
      const consumedIds = all.flatMap((c) => c.consumed.map((m) => m.id));
      t.diagnostic(
        `${producer.acked.size} acknowledged, ${consumedIds.length} deliveries over ${deliveries.size} partitions, ${handOffs} hand-offs; ` +
          all.map((c) => `${c.name} ${c.consumed.length}`).join(', '),
      );
      assert.deepEqual(problems.slice(0, 20), [], `${problems.length} deliveries out of order or twice`);
      assert.deepEqual(unknown, [], 'nothing consumed that was not acknowledged (no send failed)');
      assert.equal(producer.failed.size, 0, 'no send failed');
      assert.equal(consumedIds.length, new Set(consumedIds).size, 'no message delivered twice');
      assert.equal(deliveries.size, partitions, 'every partition got messages');
      assert.ok(handOffs >= perBroker, `partitions changed hands (${handOffs} hand-offs)`);
    } finally {
      if (producing) await producer.stop();
    }
  });
});
