/**
 * Consumer groups and the ZooKeeper offset storage against a REAL ZooKeeper (through
 * `connectZookeeper`), with a fixed in-memory partition source (12 partitions on brokers 0 and
 * 1) and fake consumers:
 * - three members converge to a disjoint cover;
 * - a member whose process is SIGKILLed (a child process; its session lingers until the session
 *   timeout) is taken over by the others — the time is measured and bounded;
 * - a member whose client is closed without leaving is taken over at once;
 * - a member whose session is expired by the server recovers and keeps its share;
 * - the offset storage writes MetaQ's exact node data.
 *
 * Run as a child process with METAQ_GROUP_CHILD set, this file is the member that gets killed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createZookeeperOffsetStorage } from '../../src/client/offsets/zookeeper-offset-storage.js';
import { joinConsumerGroup, type ZkGroupMembership } from '../../src/client/zk/group/group-member.js';
import { rangeAssignment } from '../../src/client/zk/group/strategies.js';
import type { PartitionRef } from '../../src/client/session/broker-discovery.js';
import type { TopicPartitionSource } from '../../src/client/zk/topic-partition-source.js';
import type { ZkClient } from '../../src/zk/zk-client.js';
import { MetaPaths, partitionName } from '../../src/zk/meta-paths.js';
import { connectZookeeper } from '../../src/zk/zookeeper-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { expireZkSession } from '../helpers/zk-expire.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper-server.js';

const GROUP = 'it-group';
const TOPIC = 'orders';
/** Session timeout of the members; a dead member's partitions wait this long (plus detection). */
const SESSION_TIMEOUT_MS = 4000;

const REFS: readonly PartitionRef[] = [0, 1].flatMap((brokerId) => Array.from({ length: 6 }, (_, partition) => ({ brokerId, brokerUrl: `meta://broker${brokerId}:8123`, partition })));
const ALL = REFS.map((r) => partitionName(r.brokerId, r.partition));

const staticSource: TopicPartitionSource = {
  subscribePartitions: async () => REFS,
  onSubscribePartitionsChange: () => () => undefined,
};

interface Member {
  readonly name: string;
  readonly id: string;
  readonly zk: ZkClient;
  readonly membership: ZkGroupMembership;
  readonly fetching: Set<string>;
}

async function joinMember(connectString: string, paths: MetaPaths, name: string): Promise<Member> {
  const zk = connectZookeeper({ connectString, sessionTimeoutMs: SESSION_TIMEOUT_MS, connectionTimeoutMs: 10_000 });
  const fetching = new Set<string>();
  const membership = await joinConsumerGroup({
    zk,
    paths,
    partitions: staticSource,
    retry: { initialDelayMs: 50, maxDelayMs: 1000 },
    subscription: {
      group: GROUP,
      consumerId: name,
      topics: [TOPIC],
      strategy: 'range',
      onAssignment: async (_topic, partitions) => {
        fetching.clear();
        for (const r of partitions) fetching.add(partitionName(r.brokerId, r.partition));
        if (process.env['METAQ_GROUP_CHILD'] !== undefined) process.stdout.write(`assigned ${[...fetching].sort().join(',')}\n`);
      },
    },
  });
  return { name, id: `${GROUP}_${name}`, zk, membership, fetching };
}

// ---- the child process: one member that is SIGKILLed by the test ----
if (process.env['METAQ_GROUP_CHILD'] !== undefined) {
  const [connectString, root, name] = process.env['METAQ_GROUP_CHILD'].split(' ');
  await joinMember(connectString ?? '', new MetaPaths(root), name ?? 'child');
  process.stdout.write('joined\n');
  setInterval(() => undefined, 60_000);
} else {
  describe('consumer groups in a real ZooKeeper', () => {
    let server: ZookeeperServer;
    let checker: ZkClient;
    const members: Member[] = [];
    const children = new Set<ChildProcess>();
    let rootCounter = 0;

    before(async () => {
      server = await startZookeeper();
      checker = connectZookeeper({ connectString: server.connectString });
      await checker.waitConnected(10_000);
    });
    after(async () => {
      for (const child of children) child.kill('SIGKILL');
      for (const m of members) {
        await m.membership.leave().catch(() => undefined);
        await m.zk.close();
      }
      await checker?.close();
      await server?.stop();
    });

    const newPaths = (): MetaPaths => new MetaPaths(`/it-${process.pid}-${++rootCounter}`);

    const join = async (paths: MetaPaths, name: string): Promise<Member> => {
      const member = await joinMember(server.connectString, paths, name);
      members.push(member);
      return member;
    };

    /** Every `live` member fetches and owns (in ZooKeeper) exactly its range share among `ids`. */
    const converged = async (paths: MetaPaths, live: readonly Member[], ids: readonly string[]): Promise<boolean> => {
      const registered = ((await checker.children(paths.groupIds(GROUP))) ?? []).sort();
      if (registered.join() !== [...ids].sort().join()) return false;
      for (const m of live) {
        const share = rangeAssignment(ALL, ids, m.id);
        if ([...m.fetching].sort().join() !== [...share].sort().join()) return false;
        if ((m.membership.pending().get(TOPIC) ?? []).length > 0) return false;
      }
      for (const name of ALL) {
        const owner = (await checker.get(`${paths.groupOwners(GROUP, TOPIC)}/${name}`))?.data;
        const expected = ids.find((id) => rangeAssignment(ALL, ids, id).includes(name));
        if (owner !== expected) return false;
      }
      return true;
    };

    it('three members converge to a disjoint cover of 12 partitions; one closing its client abruptly is taken over at once', async (t) => {
      const paths = newPaths();
      const started = Date.now();
      const [a, b, c] = await Promise.all([join(paths, 'a'), join(paths, 'b'), join(paths, 'c')]);
      await waitFor(() => converged(paths, [a, b, c], [a.id, b.id, c.id]), { timeoutMs: 15_000, intervalMs: 20, what: 'three members converged' });
      const joinMs = Date.now() - started;
      assert.deepEqual([...a.fetching].sort(), ['0-0', '0-1', '0-2', '0-3']);
      assert.deepEqual([...b.fetching].sort(), ['0-4', '0-5', '1-0', '1-1']);
      assert.deepEqual([...c.fetching].sort(), ['1-2', '1-3', '1-4', '1-5']);
      assert.equal((await checker.get(paths.groupMember(GROUP, 'a')))?.data, TOPIC);

      // c's client is closed without leaving: its session ends now, its nodes go with it.
      const closedAt = Date.now();
      await c.zk.close();
      members.splice(members.indexOf(c), 1);
      await waitFor(() => converged(paths, [a, b], [a.id, b.id]), { timeoutMs: 10_000, intervalMs: 20, what: 'a and b took over after c closed' });
      const takeoverMs = Date.now() - closedAt;
      t.diagnostic(`three members converged in ${joinMs} ms; take-over after an abrupt close: ${takeoverMs} ms`);
      assert.ok(takeoverMs < 3000, `take-over took ${takeoverMs} ms`);
    });

    it('a SIGKILLed member is taken over once its session times out', async (t) => {
      const paths = newPaths();
      const [a, b] = await Promise.all([join(paths, 'a'), join(paths, 'b')]);
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, METAQ_GROUP_CHILD: `${server.connectString} ${paths.root} c`, NODE_TEST_CONTEXT: '' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.add(child);
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
      });
      const ids = [a.id, b.id, `${GROUP}_c`];
      await waitFor(() => output.includes('joined') && converged(paths, [a, b], ids), { timeoutMs: 20_000, intervalMs: 20, what: 'a, b and the child converged' });
      await waitFor(() => output.includes(`assigned ${rangeAssignment(ALL, ids, `${GROUP}_c`).join(',')}\n`), { timeoutMs: 5000, intervalMs: 20, what: "the child's share" });

      const killedAt = Date.now();
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      children.delete(child);
      await waitFor(() => converged(paths, [a, b], [a.id, b.id]), { timeoutMs: SESSION_TIMEOUT_MS + 10_000, intervalMs: 20, what: 'a and b took over after the child died' });
      const takeoverMs = Date.now() - killedAt;
      t.diagnostic(`take-over after SIGKILL (session timeout ${SESSION_TIMEOUT_MS} ms): ${takeoverMs} ms`);
      // Bounds: the server expires a session a timeout after the client's last ping, and the client
      // pings every third of it, so the take-over can come from about 2/3 of the timeout after the
      // kill (half of it here, for ZooKeeper's 500 ms tick); at most the timeout, a tick and one
      // rebalance after it, with room for a loaded machine.
      assert.ok(takeoverMs >= SESSION_TIMEOUT_MS / 2, `took over after ${takeoverMs} ms, before the session could have expired`);
      assert.ok(takeoverMs < SESSION_TIMEOUT_MS + 4000, `take-over took ${takeoverMs} ms`);
    });

    it('a member whose session the server expired recovers its nodes and its share', async (t) => {
      const paths = newPaths();
      const [a, b, c] = await Promise.all([join(paths, 'a'), join(paths, 'b'), join(paths, 'c')]);
      const ids = [a.id, b.id, c.id];
      await waitFor(() => converged(paths, [a, b, c], ids), { timeoutMs: 15_000, intervalMs: 20, what: 'converged' });
      const before = [...a.fetching].sort();
      const oldSession = a.zk.sessionId;
      let settled = false;
      const off = a.zk.on('session', () => {
        off();
        settled = true;
      });
      const expiredAt = Date.now();
      await expireZkSession(server.connectString, a.zk);
      await waitFor(() => settled, { timeoutMs: 15_000, intervalMs: 20, what: "a's new session" });
      assert.notEqual(a.zk.sessionId, oldSession);
      await waitFor(() => converged(paths, [a, b, c], ids), { timeoutMs: 15_000, intervalMs: 20, what: 'converged after the expiry' });
      t.diagnostic(`converged again ${Date.now() - expiredAt} ms after the session expiry`);
      assert.deepEqual([...a.fetching].sort(), before);
      const owner = await checker.get(`${paths.groupOwners(GROUP, TOPIC)}/${before[0]}`);
      assert.equal(owner?.data, a.id);
      assert.equal(owner?.ephemeralOwner, a.zk.sessionId, "the owner node belongs to a's new session");
      // And a leaves cleanly: its nodes are gone at once.
      await a.membership.leave();
      assert.equal(await checker.exists(paths.groupMember(GROUP, 'a')), false);
      await waitFor(() => converged(paths, [b, c], [b.id, c.id]), { timeoutMs: 10_000, intervalMs: 20, what: 'b and c after a left' });
    });

    it('the ZooKeeper offset storage writes MetaQ node data and reads it back', async () => {
      const paths = newPaths();
      const storage = createZookeeperOffsetStorage({ zk: checker, paths });
      const node = (b: number, p: number): string => `${paths.root}/consumers/${GROUP}/offsets/${TOPIC}/${b}-${p}`;
      await storage.init(TOPIC, GROUP, { brokerId: 0, partition: 0 }, 0);
      assert.equal((await checker.get(node(0, 0)))?.data, '-1-0');
      await storage.commit(GROUP, [
        { topic: TOPIC, brokerId: 0, partition: 0, offset: 1024, messageId: 7n },
        { topic: TOPIC, brokerId: 1, partition: 3, offset: 98_304, messageId: -4611686018427387904n },
      ]);
      assert.equal((await checker.get(node(0, 0)))?.data, '7-1024');
      assert.equal((await checker.get(node(1, 3)))?.data, '-4611686018427387904-98304');
      assert.equal((await checker.get(node(1, 3)))?.ephemeralOwner, undefined, 'offset nodes are persistent');
      await storage.init(TOPIC, GROUP, { brokerId: 0, partition: 0 }, 0); // no overwrite
      await checker.set(node(1, 4), '5555'); // a pre-1.4 client's node
      assert.deepEqual(await storage.load(TOPIC, GROUP, [{ brokerId: 0, partition: 0 }, { brokerId: 1, partition: 3 }, { brokerId: 1, partition: 4 }, { brokerId: 1, partition: 5 }]), [
        { topic: TOPIC, brokerId: 0, partition: 0, offset: 1024, messageId: 7n },
        { topic: TOPIC, brokerId: 1, partition: 3, offset: 98_304, messageId: -4611686018427387904n },
        { topic: TOPIC, brokerId: 1, partition: 4, offset: 5555, messageId: -1n },
      ]);
      await storage.close();
    });
  });
}
