/**
 * Consumer-group membership and rebalancing against the in-memory ZooKeeper, with a fake
 * partition source and fake consumers (onAssignment records what each one fetches).
 *
 * Every test replays the recorded events through a model that checks the hand-off protocol:
 * a member is told to fetch only partitions whose owner node it holds; it releases an owner
 * node only after it stopped fetching the partition; a claim succeeds only when no other member
 * fetches the partition.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { joinConsumerGroup, type ZkGroupMembership } from '../../src/client/zk/group/group-member.js';
import { consistentHashAssignment, rangeAssignment } from '../../src/client/zk/group/strategies.js';
import type { LoadBalanceStrategy, PartitionRef } from '../../src/client/session/broker-discovery.js';
import type { TopicPartitionSource } from '../../src/client/zk/topic-partition-source.js';
import type { Unsubscribe, ZkClient, ZkClientEvents, ZkCreateOptions, ZkCreateResult, ZkNode } from '../../src/zk/zk-client.js';
import { MetaPaths, partitionName } from '../../src/zk/meta-paths.js';
import { ZookeeperError } from '../../src/common/errors.js';
import { createZookeeperOffsetStorage } from '../../src/client/offsets/zookeeper-offset-storage.js';
import { FakeZookeeper } from '../helpers/fake-zk.js';
import { waitFor } from '../helpers/wait-for.js';

const GROUP = 'grp';
const TOPIC = 'orders';
const paths = new MetaPaths();

function brokerUrl(brokerId: number, slave = false): string {
  return `meta://broker${brokerId}${slave ? '-slave' : ''}:8123`;
}

/** 12 partitions: brokers 0 and 1 with 6 each. */
function twelve(): PartitionRef[] {
  const refs: PartitionRef[] = [];
  for (const brokerId of [0, 1]) for (let partition = 0; partition < 6; partition++) refs.push({ brokerId, brokerUrl: brokerUrl(brokerId), partition });
  return refs;
}

const ALL = twelve().map((r) => partitionName(r.brokerId, r.partition));

class FakeSource implements TopicPartitionSource {
  readonly #parts = new Map<string, readonly PartitionRef[]>();
  readonly #listeners = new Map<string, Set<() => void>>();

  set(topic: string, refs: readonly PartitionRef[]): void {
    this.#parts.set(topic, refs);
    for (const listener of this.#listeners.get(topic) ?? []) queueMicrotask(listener);
  }

  async subscribePartitions(topic: string): Promise<readonly PartitionRef[]> {
    return this.#parts.get(topic) ?? [];
  }

  onSubscribePartitionsChange(topic: string, listener: () => void): Unsubscribe {
    const set = this.#listeners.get(topic) ?? new Set();
    this.#listeners.set(topic, set);
    const entry = (): void => listener();
    set.add(entry);
    return () => set.delete(entry);
  }
}

type EventKind = 'assign-call' | 'assign-done' | 'claim' | 'claim-busy' | 'release' | 'gone' | 'session-end';
interface Event {
  readonly member: string;
  readonly kind: EventKind;
  readonly topic: string;
  readonly partitions: readonly string[];
  readonly at: number;
}

function ownerTarget(path: string): { topic: string; name: string } | undefined {
  const match = /\/consumers\/[^/]+\/owners\/([^/]+)\/([^/]+)$/.exec(path);
  return match === null ? undefined : { topic: match[1] ?? '', name: match[2] ?? '' };
}

/**
 * A ZkClient recording owner-node activity: a claim once the create succeeded, a release before
 * the delete is sent (so "release" always precedes the other member's successful "claim").
 */
class RecordingZk implements ZkClient {
  readonly #inner: ZkClient;
  readonly #member: string;
  readonly #log: Event[];

  constructor(inner: ZkClient, member: string, log: Event[]) {
    this.#inner = inner;
    this.#member = member;
    this.#log = log;
  }

  get inner(): ZkClient {
    return this.#inner;
  }
  get state() {
    return this.#inner.state;
  }
  get sessionId() {
    return this.#inner.sessionId;
  }
  get connectString() {
    return this.#inner.connectString;
  }
  waitConnected(timeoutMs?: number): Promise<void> {
    return this.#inner.waitConnected(timeoutMs);
  }
  async create(path: string, data: string, options?: ZkCreateOptions): Promise<ZkCreateResult> {
    const result = await this.#inner.create(path, data, options);
    const owner = ownerTarget(path);
    if (owner !== undefined) this.#record(result === 'created' ? 'claim' : 'claim-busy', owner.topic, [owner.name]);
    return result;
  }
  ensurePath(path: string): Promise<void> {
    return this.#inner.ensurePath(path);
  }
  get(path: string): Promise<ZkNode | undefined> {
    return this.#inner.get(path);
  }
  set(path: string, data: string, version?: number): Promise<boolean> {
    return this.#inner.set(path, data, version);
  }
  setInSession(path: string, data: string, sessionId: string): Promise<void> {
    return this.#inner.setInSession(path, data, sessionId);
  }
  children(path: string): Promise<string[] | undefined> {
    return this.#inner.children(path);
  }
  exists(path: string): Promise<boolean> {
    return this.#inner.exists(path);
  }
  remove(path: string): Promise<boolean> {
    this.#releasing(path);
    return this.#inner.remove(path);
  }
  removeRecursive(path: string): Promise<boolean> {
    return this.#inner.removeRecursive(path);
  }
  ownEphemeral(path: string, data: string, options?: { readonly waitMs?: number }): Promise<void> {
    return this.#inner.ownEphemeral(path, data, options);
  }
  updateEphemeral(path: string, data: string): Promise<void> {
    return this.#inner.updateEphemeral(path, data);
  }
  releaseEphemeral(path: string): Promise<boolean> {
    this.#releasing(path);
    return this.#inner.releaseEphemeral(path);
  }
  watchChildren(path: string, listener: () => void): Unsubscribe {
    return this.#inner.watchChildren(path, listener);
  }
  watchData(path: string, listener: () => void): Unsubscribe {
    return this.#inner.watchData(path, listener);
  }
  on<K extends keyof ZkClientEvents>(event: K, listener: (payload: ZkClientEvents[K]) => void): Unsubscribe {
    return this.#inner.on(event, listener);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  #releasing(path: string): void {
    const owner = ownerTarget(path);
    if (owner !== undefined) this.#record('release', owner.topic, [owner.name]);
  }

  #record(kind: EventKind, topic: string, partitions: readonly string[]): void {
    this.#log.push({ member: this.#member, kind, topic, partitions, at: Date.now() });
  }
}

interface MemberOptions {
  readonly topics?: readonly string[];
  readonly strategy?: LoadBalanceStrategy;
  /** Time onAssignment takes when it removes partitions (in-flight listener work). */
  readonly slowReleaseMs?: number;
  /** onAssignment rejects this many times first. */
  readonly failFirst?: number;
  readonly retry?: { initialDelayMs?: number; maxDelayMs?: number };
}

interface Member {
  readonly name: string;
  readonly id: string;
  readonly zk: RecordingZk;
  readonly membership: ZkGroupMembership;
  /** topic → partition names fetched (as the consumer would). */
  readonly fetching: Map<string, Set<string>>;
  /** topic → refs of the last assignment. */
  readonly refs: Map<string, readonly PartitionRef[]>;
  /** Every onAssignment call: partition names, and whether it said to discard positions. */
  readonly calls: { readonly topic: string; readonly names: readonly string[]; readonly discard: boolean }[];
  joinMs: number;
}

class Harness {
  readonly ensemble = new FakeZookeeper();
  readonly source = new FakeSource();
  readonly log: Event[] = [];
  readonly members: Member[] = [];

  constructor() {
    this.source.set(TOPIC, twelve());
  }

  async join(name: string, options: MemberOptions = {}): Promise<Member> {
    const zk = new RecordingZk(this.ensemble.client(), name, this.log);
    const fetching = new Map<string, Set<string>>();
    const refs = new Map<string, readonly PartitionRef[]>();
    const calls: Member['calls'] = [];
    let failures = options.failFirst ?? 0;
    const record = (kind: EventKind, topic: string, partitions: readonly string[]): void => {
      this.log.push({ member: name, kind, topic, partitions, at: Date.now() });
    };
    const started = Date.now();
    const membership = await joinConsumerGroup({
      zk,
      paths,
      partitions: this.source,
      retry: options.retry ?? { initialDelayMs: 5, maxDelayMs: 50 },
      subscription: {
        group: GROUP,
        consumerId: name,
        topics: options.topics ?? [TOPIC],
        strategy: options.strategy ?? 'range',
        onAssignment: async (topic, partitions, assignmentOptions) => {
          if (failures > 0) {
            failures--;
            throw new Error(`${name}: offsets storage unavailable (simulated)`);
          }
          const names = partitions.map((r) => partitionName(r.brokerId, r.partition));
          calls.push({ topic, names, discard: assignmentOptions?.discardPositions === true });
          record('assign-call', topic, names);
          const current = fetching.get(topic) ?? new Set<string>();
          const removes = [...current].some((n) => !names.includes(n));
          // Additions start at once; removals complete when the in-flight work is done.
          for (const n of names) current.add(n);
          fetching.set(topic, current);
          if (removes && (options.slowReleaseMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, options.slowReleaseMs));
          fetching.set(topic, new Set(names));
          refs.set(topic, partitions);
          record('assign-done', topic, names);
        },
      },
    });
    const member: Member = { name, id: `${GROUP}_${name}`, zk, membership, fetching, refs, calls, joinMs: Date.now() - started };
    this.members.push(member);
    return member;
  }

  /** The consumer stops fetching (close), then leaves. */
  async leave(member: Member): Promise<void> {
    for (const topic of member.fetching.keys()) {
      member.fetching.set(topic, new Set());
      this.log.push({ member: member.name, kind: 'assign-done', topic, partitions: [], at: Date.now() });
    }
    await member.membership.leave();
    this.members.splice(this.members.indexOf(member), 1);
  }

  /** The process dies; its session lingers until expired. */
  crash(member: Member): void {
    this.ensemble.crash(member.zk.inner);
    for (const topic of member.fetching.keys()) member.fetching.set(topic, new Set());
    this.log.push({ member: member.name, kind: 'gone', topic: TOPIC, partitions: [], at: Date.now() });
    this.members.splice(this.members.indexOf(member), 1);
  }

  ownerOf(topic: string, name: string): string | undefined {
    return this.ensemble.dump().get(`${paths.groupOwners(GROUP, topic)}/${name}`);
  }

  /** Whether the live members fetch and own exactly their strategy shares, nothing pending. */
  converged(strategy: LoadBalanceStrategy = 'range', topic = TOPIC, all = ALL): boolean {
    const ids = this.members.map((m) => m.id);
    const share = strategy === 'range' ? rangeAssignment : consistentHashAssignment;
    const registered = [...this.ensemble.dump().keys()].filter((p) => p.startsWith(`${paths.groupIds(GROUP)}/`)).map((p) => p.slice(p.lastIndexOf('/') + 1));
    if (registered.sort().join() !== [...ids].sort().join()) return false;
    for (const m of this.members) {
      const expected = share(all, ids, m.id);
      const actual = [...(m.fetching.get(topic) ?? [])].sort();
      if (actual.join() !== [...expected].sort().join()) return false;
      if ((m.membership.pending().get(topic) ?? []).length > 0) return false;
      if (m.membership.assignment().get(topic)?.length !== expected.length) return false;
      for (const name of expected) if (this.ownerOf(topic, name) !== m.id) return false;
    }
    return true;
  }

  async converge(strategy: LoadBalanceStrategy = 'range', what = 'convergence'): Promise<void> {
    await waitFor(() => this.converged(strategy), { timeoutMs: 10_000, intervalMs: 5, what });
  }

  /**
   * Replays the log through the protocol model; throws on the first violation. `lenient`
   * members (a partitioned session) are allowed to keep fetching what others took.
   */
  checkProtocol(lenient: ReadonlySet<string> = new Set()): void {
    const fetching = new Map<string, Set<string>>(); // member → topic/name
    const owner = new Map<string, string>(); // topic/name → member
    const fetchersOf = (key: string): string[] => [...fetching].filter(([, set]) => set.has(key)).map(([m]) => m);
    this.log.forEach((event, index) => {
      const where = `event #${index} ${event.member} ${event.kind} ${event.partitions.join(',')}`;
      const keys = event.partitions.map((n) => `${event.topic}/${n}`);
      const mine = fetching.get(event.member) ?? new Set<string>();
      fetching.set(event.member, mine);
      switch (event.kind) {
        case 'assign-call':
          for (const key of keys) {
            assert.equal(owner.get(key), event.member, `${where}: told to fetch ${key} owned by ${owner.get(key)}`);
            mine.add(key);
          }
          break;
        case 'assign-done':
          for (const key of [...mine]) if (key.startsWith(`${event.topic}/`) && !keys.includes(key)) mine.delete(key);
          break;
        case 'claim':
          for (const key of keys) {
            const others = fetchersOf(key).filter((m) => m !== event.member && !lenient.has(m));
            assert.deepEqual(others, [], `${where}: claimed ${key} while ${others.join()} still fetch it`);
            owner.set(key, event.member);
          }
          break;
        case 'release':
          for (const key of keys) {
            if (!lenient.has(event.member)) assert.ok(!mine.has(key), `${where}: released ${key} while still fetching it`);
            if (owner.get(key) === event.member) owner.delete(key);
          }
          break;
        case 'gone':
          fetching.delete(event.member);
          break;
        case 'session-end':
          for (const [key, holder] of [...owner]) if (holder === event.member) owner.delete(key);
          break;
        case 'claim-busy':
          break;
      }
    });
  }

  /** The member's session ended on the server for good: its owner nodes are gone. */
  sessionEnded(member: Member): void {
    this.log.push({ member: member.name, kind: 'session-end', topic: TOPIC, partitions: [], at: Date.now() });
  }

  async close(): Promise<void> {
    for (const m of [...this.members]) await m.membership.leave().catch(() => undefined);
    this.members.length = 0;
  }
}

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function newHarness(): Harness {
  harness = new Harness();
  return harness;
}

function indexOf(log: readonly Event[], predicate: (e: Event) => boolean, from = 0): number {
  for (let i = from; i < log.length; i++) if (predicate(log[i] as Event)) return i;
  return -1;
}

describe('consumer group member (fake ZooKeeper)', () => {
  it('three members converge to a disjoint cover of 12 partitions (range)', async () => {
    const h = newHarness();
    await Promise.all([h.join('a'), h.join('b'), h.join('c')]);
    await h.converge();
    const shares = new Map(h.members.map((m) => [m.name, [...(m.fetching.get(TOPIC) ?? [])].sort()]));
    assert.deepEqual(shares.get('a'), ['0-0', '0-1', '0-2', '0-3']);
    assert.deepEqual(shares.get('b'), ['0-4', '0-5', '1-0', '1-1']);
    assert.deepEqual(shares.get('c'), ['1-2', '1-3', '1-4', '1-5']);
    const dump = h.ensemble.dump();
    assert.equal(dump.get(paths.groupMember(GROUP, 'a')), TOPIC);
    assert.equal(dump.get(`${paths.groupOwners(GROUP, TOPIC)}/0-0`), 'grp_a');
    for (const m of h.members) assert.ok(m.membership.lastRebalance() !== undefined);
    h.checkProtocol();
  });

  it('a joining member claims partitions only after their owner released them', async () => {
    const h = newHarness();
    const a = await h.join('a');
    await h.converge();
    assert.equal(a.fetching.get(TOPIC)?.size, 12);
    const mark = h.log.length;
    await h.join('b');
    await h.converge();
    h.checkProtocol();
    const moved = rangeAssignment(ALL, ['grp_a', 'grp_b'], 'grp_b');
    assert.equal(moved.length, 6);
    for (const name of moved) {
      const doneWithout = indexOf(h.log, (e) => e.member === 'a' && e.kind === 'assign-done' && !e.partitions.includes(name), mark);
      const released = indexOf(h.log, (e) => e.member === 'a' && e.kind === 'release' && e.partitions.includes(name), mark);
      const claimed = indexOf(h.log, (e) => e.member === 'b' && e.kind === 'claim' && e.partitions.includes(name), mark);
      const started = indexOf(h.log, (e) => e.member === 'b' && e.kind === 'assign-call' && e.partitions.includes(name), mark);
      assert.ok(doneWithout >= 0 && released > doneWithout && claimed > released && started > claimed, `${name}: ${doneWithout} < ${released} < ${claimed} < ${started}`);
    }
  });

  it('a slow release delays the hand-off, but the claimant keeps trying (well past 7 attempts)', async () => {
    const h = newHarness();
    const slowMs = 1500;
    await h.join('a', { slowReleaseMs: slowMs });
    await h.converge();
    const joinedAt = Date.now();
    const b = await h.join('b', { retry: { initialDelayMs: 10, maxDelayMs: 40 } });
    // Joining does not wait for the hand-off: b starts with what it could claim (nothing yet).
    assert.ok(b.joinMs < slowMs, `join took ${b.joinMs} ms`);
    await waitFor(() => (b.membership.pending().get(TOPIC) ?? []).length === 6, { timeoutMs: 1000, intervalMs: 5, what: 'b pending' });
    await h.converge('range', 'hand-off after the slow release');
    const handOffMs = Date.now() - joinedAt;
    assert.ok(handOffMs >= slowMs, `hand-off after ${handOffMs} ms, before the release finished`);
    // b kept trying during the whole release (MetaQ stopped after 7 tries, 5 s apart): with
    // delays capped at 40 ms that is dozens of attempts, the last one shortly before the release.
    // The bounds leave room for a loaded machine's timer lag (a stop after 7 tries would end
    // about 250 ms after joining, below both).
    const busy = h.log.filter((e) => e.member === 'b' && e.kind === 'claim-busy' && e.partitions.includes('1-5'));
    assert.ok(busy.length > 7, `b tried only ${busy.length} times while a was releasing`);
    const lastTry = busy.at(-1)?.at ?? 0;
    assert.ok(lastTry >= joinedAt + slowMs - 800, `b's last attempt was ${lastTry - joinedAt} ms after joining, long before the release at ${slowMs} ms`);
    assert.deepEqual([...(b.fetching.get(TOPIC) ?? [])].sort(), rangeAssignment(ALL, ['grp_a', 'grp_b'], 'grp_b'));
    h.checkProtocol();
  });

  it('membership changing during a slow step: the computation starts over and converges', async () => {
    const h = newHarness();
    const a = await h.join('a', { slowReleaseMs: 300 });
    await h.converge();
    await h.join('b');
    await waitFor(() => h.log.some((e) => e.member === 'a' && e.kind === 'assign-call' && e.partitions.length === 6), { timeoutMs: 2000, intervalMs: 2, what: 'a releasing to b' });
    await h.join('c'); // while a is still in step 1
    await h.converge('range', 'three members after the restart');
    assert.deepEqual([...(a.fetching.get(TOPIC) ?? [])].sort(), ['0-0', '0-1', '0-2', '0-3']);
    h.checkProtocol();
  });

  it('retries a rejected onAssignment until it succeeds', async () => {
    const h = newHarness();
    const a = await h.join('a', { failFirst: 3 });
    await h.converge();
    assert.equal(a.fetching.get(TOPIC)?.size, 12);
    h.checkProtocol();
  });

  it('members leaving or dying hand their partitions to the others', async () => {
    const h = newHarness();
    const [, , c] = await Promise.all([h.join('a'), h.join('b'), h.join('c')]);
    await h.converge();
    await h.leave(c);
    // Its nodes are gone as soon as leave() resolves.
    assert.equal(h.ensemble.dump().get(paths.groupMember(GROUP, 'c')), undefined);
    assert.ok(![...h.ensemble.dump().values()].includes('grp_c'));
    await h.converge('range', 'take-over after leave');
    h.checkProtocol();

    const d = await h.join('d');
    await h.converge();
    const survivors = h.members.filter((m) => m !== d);
    const before = survivors.map((m) => [...(m.fetching.get(TOPIC) ?? [])].sort().join());
    h.crash(d);
    // Nothing moves while the dead member's session lingers...
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(
      survivors.map((m) => [...(m.fetching.get(TOPIC) ?? [])].sort().join()),
      before,
    );
    // ...and everything moves once it expires.
    const started = Date.now();
    h.sessionEnded(d);
    await h.ensemble.expireSession(d.zk.inner);
    await h.converge('range', 'take-over after the session of a dead member expired');
    const tookMs = Date.now() - started;
    assert.ok(tookMs < 8000, `the take-over after the expiry took ${tookMs} ms`);
    h.checkProtocol();
  });

  it('leave() is idempotent and succeeds after the client was closed (the session took the nodes)', async () => {
    const h = newHarness();
    const [a, b] = await Promise.all([h.join('a'), h.join('b')]);
    await h.converge();
    // The process stops fetching and closes its client: the session ends, its nodes go.
    h.log.push({ member: 'a', kind: 'gone', topic: TOPIC, partitions: [], at: Date.now() });
    h.sessionEnded(a);
    await a.zk.close();
    await a.membership.leave();
    await a.membership.leave();
    h.members.splice(h.members.indexOf(a), 1);
    await h.converge('range', 'b alone');
    assert.equal(b.fetching.get(TOPIC)?.size, 12);
    h.checkProtocol();
  });

  it('a member whose session expired re-registers and keeps its share', async () => {
    const h = newHarness();
    const [a] = await Promise.all([h.join('a'), h.join('b'), h.join('c')]);
    await h.converge();
    const before = [...(a.fetching.get(TOPIC) ?? [])].sort();
    const oldSession = a.zk.sessionId;
    await h.ensemble.expireSession(a.zk.inner);
    assert.notEqual(a.zk.sessionId, oldSession);
    await h.converge('range', 'convergence after expiry');
    assert.deepEqual([...(a.fetching.get(TOPIC) ?? [])].sort(), before);
    // Its owner nodes belong to the new session (re-created), and it still rebalances.
    const node = await a.zk.get(`${paths.groupOwners(GROUP, TOPIC)}/${before[0]}`);
    assert.equal(node?.ephemeralOwner, a.zk.sessionId);
    await h.join('d');
    await h.converge('range', 'convergence after a fourth member joined');
    h.checkProtocol();
  });

  it('a member partitioned away while its session expired gives up what others took, then gets its share back', async () => {
    const h = newHarness();
    const [a] = await Promise.all([h.join('a'), h.join('b'), h.join('c')]);
    await h.converge();
    const mark = h.log.length;
    h.ensemble.disconnect(a.zk.inner);
    h.sessionEnded(a);
    await h.ensemble.expireSession(a.zk.inner); // a learns of it only when reconnected
    // b and c see a's nodes vanish and take all 12 partitions.
    await waitFor(
      () => {
        const [b, c] = h.members.slice(1);
        return (b?.fetching.get(TOPIC)?.size ?? 0) + (c?.fetching.get(TOPIC)?.size ?? 0) === 12 && b?.membership.pending().get(TOPIC)?.length === 0 && c?.membership.pending().get(TOPIC)?.length === 0;
      },
      { timeoutMs: 5000, intervalMs: 5, what: 'b and c own all partitions' },
    );
    await h.ensemble.reconnect(a.zk.inner);
    await h.converge('range', 'convergence after a came back');
    // a's first act after coming back was to stop fetching everything it had lost.
    const firstA = h.log.slice(mark).find((e) => e.member === 'a' && (e.kind === 'assign-call' || e.kind === 'claim'));
    assert.equal(firstA?.kind, 'assign-call');
    assert.deepEqual(firstA?.partitions, []);
    // While a was cut off it still fetched (it could not know); from its return on, the protocol holds.
    h.checkProtocol(new Set(['a']));
  });

  it('offset commits are fenced by the session: unconfirmed from the expiry to the re-check, old positions discarded, lost partitions never committed', async () => {
    const h = newHarness();
    const [a, b] = await Promise.all([h.join('a'), h.join('b')]);
    await h.converge();
    const mine = [...(a.fetching.get(TOPIC) ?? [])].sort();
    const theirs = [...(b.fetching.get(TOPIC) ?? [])].sort();
    const ref = (name: string): { brokerId: number; partition: number } => {
      const [brokerId, partition] = name.split('-').map(Number);
      return { brokerId: brokerId ?? -1, partition: partition ?? -1 };
    };
    const firstSession = a.zk.sessionId ?? '';
    assert.deepEqual(a.membership.commitPermission?.(TOPIC, ref(mine[0] ?? '')), { status: 'owned', fence: { zkSessionId: firstSession } });
    assert.deepEqual(a.membership.commitPermission?.(TOPIC, ref(theirs[0] ?? '')), { status: 'lost' });
    assert.deepEqual(a.membership.commitPermission?.('other-topic', ref(mine[0] ?? '')), { status: 'lost' });

    // a is cut off and its session ends; b takes everything.
    h.ensemble.disconnect(a.zk.inner);
    h.sessionEnded(a);
    await h.ensemble.expireSession(a.zk.inner);
    await waitFor(() => b.fetching.get(TOPIC)?.size === 12 && b.membership.pending().get(TOPIC)?.length === 0, { timeoutMs: 5000, intervalMs: 5, what: 'b owns all partitions' });
    // a's commit of a stale position, bound to its old session, is refused once it reconnects.
    const storage = createZookeeperOffsetStorage({ zk: a.zk, paths });
    const node = paths.partitionOffset(GROUP, TOPIC, ref(mine[0] ?? '').brokerId, ref(mine[0] ?? '').partition);
    await b.zk.set(node, '-1-500'); // b's commit after the take-over
    const stale = storage.commit(GROUP, [{ topic: TOPIC, ...ref(mine[0] ?? ''), offset: 100, messageId: 7n }], { zkSessionId: firstSession });
    const atExpiry: unknown[] = [];
    const off = a.zk.on('expired', () => atExpiry.push(a.membership.commitPermission?.(TOPIC, ref(mine[0] ?? ''))));
    const calledBefore = a.calls.length;
    await h.ensemble.reconnect(a.zk.inner);
    off();
    await assert.rejects(stale, (err: unknown) => err instanceof ZookeeperError && err.zkCode === 'SESSION_EXPIRED');
    assert.equal((await b.zk.get(node))?.data, '-1-500', "the stale commit did not overwrite b's");
    assert.deepEqual(atExpiry, [{ status: 'unconfirmed' }], 'nothing may be committed from the moment the expiry is known');

    await h.converge('range', 'convergence after a came back');
    const newSession = a.zk.sessionId ?? '';
    assert.notEqual(newSession, firstSession);
    // The first call after the expiry stopped everything without a commit.
    assert.deepEqual(a.calls[calledBefore], { topic: TOPIC, names: [], discard: true });
    assert.ok(a.calls.slice(calledBefore + 1).every((call) => !call.discard), 'only that one discards');
    const now = [...(a.fetching.get(TOPIC) ?? [])];
    assert.ok(now.length > 0);
    for (const name of now) assert.deepEqual(a.membership.commitPermission?.(TOPIC, ref(name)), { status: 'owned', fence: { zkSessionId: newSession } });
    for (const name of b.fetching.get(TOPIC) ?? []) assert.deepEqual(a.membership.commitPermission?.(TOPIC, ref(name)), { status: 'lost' });
    await storage.close();
    h.checkProtocol(new Set(['a']));
  });

  it('consistent-hash strategy: members converge to the ketama shares', async () => {
    const h = newHarness();
    await Promise.all(['a', 'b', 'c'].map((n) => h.join(n, { strategy: 'consistent-hash' })));
    await h.converge('consistent-hash');
    const sizes = h.members.map((m) => m.fetching.get(TOPIC)?.size ?? 0);
    assert.equal(sizes.reduce((x, y) => x + y, 0), 12);
    h.checkProtocol();
  });

  it('a new broker URL for a kept partition (master gone, slave serves) restarts its fetch, ownership kept', async () => {
    const h = newHarness();
    const [a, b] = await Promise.all([h.join('a'), h.join('b')]);
    await h.converge();
    const holder = [a, b].find((m) => m.fetching.get(TOPIC)?.has('1-0')) as Member;
    h.source.set(
      TOPIC,
      twelve().map((r) => (r.brokerId === 1 ? { ...r, brokerUrl: brokerUrl(1, true) } : r)),
    );
    await waitFor(() => holder.refs.get(TOPIC)?.find((r) => r.brokerId === 1 && r.partition === 0)?.brokerUrl === brokerUrl(1, true), { timeoutMs: 5000, intervalMs: 5, what: 'slave URL' });
    assert.ok(h.converged());
    assert.equal(h.ownerOf(TOPIC, '1-0'), holder.id);
    h.checkProtocol();
  });

  it('partitions appearing and disappearing rebalance the group; an unsubscribed topic stays empty', async () => {
    const h = newHarness();
    const [a, b] = await Promise.all([h.join('a', { topics: [TOPIC, 'audit'] }), h.join('b')]);
    await h.converge();
    assert.deepEqual(a.membership.assignment().get('audit'), []); // no broker serves it yet
    h.source.set('audit', [{ brokerId: 0, brokerUrl: brokerUrl(0), partition: 0 }]);
    await waitFor(() => a.fetching.get('audit')?.has('0-0'), { timeoutMs: 5000, intervalMs: 5, what: 'audit partition' });
    assert.equal(b.membership.assignment().get('audit'), undefined);
    h.source.set(TOPIC, twelve().slice(0, 6)); // broker 1 leaves
    await waitFor(() => (a.fetching.get(TOPIC)?.size ?? 0) + (b.fetching.get(TOPIC)?.size ?? 0) === 6 && h.converged('range', TOPIC, ALL.slice(0, 6)), {
      timeoutMs: 5000,
      intervalMs: 5,
      what: 'six partitions',
    });
    h.checkProtocol();
  });
});
