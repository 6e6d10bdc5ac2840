/**
 * One consumer's membership of its group in ZooKeeper (MetaQ's `ZKLoadRebalanceListener`,
 * metaq-reference §4), with the hand-off made safe and patient:
 *
 * - Registration: ephemeral `consumers/<group>/ids/<group>_<consumerId>` = topics CSV, owned
 *   through the ZkClient so that it is re-created after a session expiry.
 * - Triggers: the children of `ids`, each topic's subscribe partitions (TopicPartitionSource),
 *   and every new ZooKeeper session. Events are coalesced; one rebalance runs at a time; an
 *   event arriving during a rebalance makes it start over after its current step.
 * - Per topic (topics in parallel), target = the strategy's share among the members whose data
 *   lists the topic, then:
 *   1. `onAssignment(topic, owned ∩ target)`: the consumer stops fetching what it loses, waits
 *      for the listener calls in progress and commits — before anyone else may take it;
 *   2. the owner nodes of the lost partitions are deleted (only those holding our id);
 *   3. the owner nodes of `target \ owned` are created; one still held by another member is
 *      pending (that member is still in step 1);
 *   4. `onAssignment(topic, owned)`: fetching starts at once for what was claimed.
 * - Pending claims and failures (ZooKeeper errors, a rejected onAssignment) are retried with
 *   bounded exponential back-off — forever, until claimed or the target changes. MetaQ gave up
 *   after 7 attempts ("rebalance failed,finally") and left partitions unconsumed until the next
 *   ZooKeeper event; a slow listener on the releasing side was enough (MetaQ issue 117). Owner
 *   nodes being deleted also trigger a retry at once, so a hand-off completes as soon as the
 *   previous owner lets go.
 * - Slave fallback: the partition source gives each partition's URL (master, else a slave).
 *   A new URL for a partition we keep is passed in step 1; the consumer keys its fetchers by
 *   URL and partition, so it stops the old fetch (committing) and starts one on the new broker,
 *   while the ownership stays.
 * - Session expiry: the ZkClient re-creates the member node and our owner nodes in the new
 *   session (one taken by another member meanwhile is a conflict and stays theirs). Then the
 *   next rebalance starts from scratch: every owner node we believe ours is re-read, and the
 *   partitions now owned by another member are given up through onAssignment before anything
 *   else. (While the connection is down, before the expiry is known, the consumer keeps
 *   fetching; another member may take its partitions over meanwhile: at-least-once.)
 * - Offsets are fenced by the session: from the `expired` event until that re-check, no offset
 *   may be committed (commitPermission answers `unconfirmed`); afterwards only the partitions
 *   still ours, under the session that holds their owner nodes (`ZkClient.setInSession` in the
 *   ZooKeeper storage). The positions of partitions lost meanwhile are dropped: committing them
 *   would move the new owner's offset back (MetaQ's Java client does exactly that).
 * - `leave()`: stops rebalancing, deletes our owner nodes, then the member node (in that order,
 *   so the others can claim at once when they see us go).
 */
import { ZookeeperError } from '../../../common/errors.js';
import { componentLogger, type Logger } from '../../../common/logger.js';
import type { Unsubscribe, ZkClient } from '../../../zk/zk-client.js';
import { consumerIdString, type MetaPaths, partitionName } from '../../../zk/meta-paths.js';
import type { StoredPartition } from '../../offsets/offset-storage.js';
import type { CommitPermission, GroupMembership, GroupSubscription, PartitionRef } from '../../session/broker-discovery.js';
import { backoffDelay } from '../../transport/backoff.js';
import type { TopicPartitionSource } from '../topic-partition-source.js';
import { encodeMemberTopics, readGroupView } from './group-view.js';
import { OwnerNodes } from './ownership.js';
import { assignmentFunction, sortJavaStrings } from './strategies.js';

/** Back-off of retries (pending claims, failures). */
export interface GroupRetryOptions {
  /** First delay in ms. Default 100. */
  readonly initialDelayMs?: number;
  /** Largest delay in ms. Default 5000. */
  readonly maxDelayMs?: number;
}

/** Options of {@link joinConsumerGroup}. */
export interface JoinConsumerGroupOptions {
  readonly zk: ZkClient;
  readonly paths: MetaPaths;
  readonly subscription: GroupSubscription;
  readonly partitions: TopicPartitionSource;
  readonly retry?: GroupRetryOptions;
  readonly log?: Logger;
}

/** Facts about the last rebalance that completed (nothing pending). */
export interface RebalanceStats {
  /** From the first event (or join) to every target partition owned and applied, in ms. */
  readonly durationMs: number;
  /** Passes it took (retries and restarts included). */
  readonly passes: number;
  /** `Date.now()` when it completed. */
  readonly finishedAt: number;
}

/** A {@link GroupMembership} with what tests and metrics want to see. */
export interface ZkGroupMembership extends GroupMembership {
  /** Our member id, `<group>_<consumerId>`. */
  readonly memberId: string;
  /** topic → the partitions the consumer was last told to fetch (by onAssignment). */
  assignment(): ReadonlyMap<string, readonly PartitionRef[]>;
  /** topic → names of target partitions still held by another member. */
  pending(): ReadonlyMap<string, readonly string[]>;
  /** The last completed rebalance; `undefined` before the first. */
  lastRebalance(): RebalanceStats | undefined;
}

const DEFAULT_RETRY = { initialDelayMs: 100, maxDelayMs: 5000 };

/**
 * Joins the consumer group of `subscription`: registers the member and starts rebalancing.
 * Resolves once every subscribed topic got its first assignment (possibly empty, or partial
 * while other members still hold partitions that are ours: those follow as they are released).
 * Rejects if the registration fails or the ZkClient is closed before that.
 */
export async function joinConsumerGroup(options: JoinConsumerGroupOptions): Promise<ZkGroupMembership> {
  const member = new GroupMember(options);
  await member.start();
  return member;
}

type PassOutcome = 'settled' | 'pending' | 'restart';

interface TopicState {
  readonly topic: string;
  /** Partition names whose owner node we hold. */
  readonly owned: Set<string>;
  /** What the consumer was last told (name → ref); `undefined` before the first time. */
  applied: Map<string, PartitionRef> | undefined;
  /** Target partitions still held by others. */
  pending: Set<string>;
  /**
   * The session in which `owned` is known to be ours: set at the start and by the re-check
   * after a new session, cleared the moment a session expires. Offsets are committed only
   * under it (see commitPermission).
   */
  confirmedIn: string | undefined;
}

function sameRef(a: PartitionRef | undefined, b: PartitionRef | undefined): boolean {
  return a !== undefined && b !== undefined && a.brokerId === b.brokerId && a.partition === b.partition && a.brokerUrl === b.brokerUrl;
}

function sameAssignment(a: ReadonlyMap<string, PartitionRef>, b: ReadonlyMap<string, PartitionRef>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, ref] of a) if (!sameRef(ref, b.get(name))) return false;
  return true;
}

function isClosedError(error: unknown): boolean {
  return error instanceof ZookeeperError && error.zkCode === 'CLOSED';
}

class GroupMember implements ZkGroupMembership {
  readonly memberId: string;
  readonly #zk: ZkClient;
  readonly #paths: MetaPaths;
  readonly #subscription: GroupSubscription;
  readonly #source: TopicPartitionSource;
  readonly #retry: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  readonly #log: Logger;
  readonly #owners: OwnerNodes;
  readonly #memberPath: string;
  readonly #topics: Map<string, TopicState>;
  readonly #assign: (partitions: readonly string[], consumers: readonly string[], me: string) => string[];
  readonly #unsubscribes: Unsubscribe[] = [];

  /** A full recomputation is due (members, partitions or session changed). */
  #dirty = true;
  /** Re-read every owner node we believe ours before anything else (after a new session). */
  #fromScratch = false;
  /** A retry of pending claims is due (timer or owner nodes changed). */
  #retryDue = false;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #leaving: Promise<void> | undefined;
  /** When the current unfinished rebalance was triggered, and its passes so far. */
  #since: number | undefined = Date.now();
  #passes = 0;
  #running = false;
  #ownersChangedDuringPass = false;
  #last: RebalanceStats | undefined;
  #joined: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  /** Session expiries seen; tells a re-check whether another expiry happened while it ran. */
  #expiries = 0;

  constructor(options: JoinConsumerGroupOptions) {
    const { subscription } = options;
    this.#zk = options.zk;
    this.#paths = options.paths;
    this.#subscription = subscription;
    this.#source = options.partitions;
    this.#retry = {
      initialDelayMs: Math.max(1, options.retry?.initialDelayMs ?? DEFAULT_RETRY.initialDelayMs),
      maxDelayMs: Math.max(1, options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs),
      jitter: 0.2,
    };
    this.memberId = consumerIdString(subscription.group, subscription.consumerId);
    this.#memberPath = options.paths.groupMember(subscription.group, subscription.consumerId);
    this.#log = (options.log ?? componentLogger('client.group')).child({ group: subscription.group, member: this.memberId });
    this.#owners = new OwnerNodes(options.zk, options.paths, subscription.group, this.memberId);
    this.#assign = assignmentFunction(subscription.strategy);
    this.#topics = new Map(sortJavaStrings(subscription.topics).map((topic) => [topic, { topic, owned: new Set(), applied: undefined, pending: new Set(), confirmedIn: undefined }]));
  }

  async start(): Promise<void> {
    const { group } = this.#subscription;
    const changed = (): void => this.#trigger();
    // Watches first, so that no change between registration and the first read is missed.
    this.#unsubscribes.push(this.#zk.watchChildren(this.#paths.groupIds(group), changed));
    for (const topic of this.#topics.keys()) {
      this.#unsubscribes.push(this.#source.onSubscribePartitionsChange(topic, changed));
      this.#unsubscribes.push(this.#zk.watchChildren(this.#paths.groupOwners(group, topic), () => this.#ownersChanged(topic)));
    }
    this.#unsubscribes.push(
      this.#zk.on('expired', () => {
        // At once (this event comes before any operation of the new session): from now until
        // the re-check, what we own is unknown, so no offset may be committed.
        this.#expiries++;
        for (const state of this.#topics.values()) state.confirmedIn = undefined;
        this.#log.warn('ZooKeeper session expired; our member and owner nodes are re-created in the new session');
      }),
      this.#zk.on('session', ({ conflicts }) => {
        const mine = conflicts.filter((path) => path === this.#memberPath || path.startsWith(`${this.#paths.group(group)}/owners/`));
        if (mine.includes(this.#memberPath)) {
          this.#log.error({ path: this.#memberPath }, 'our member node was taken by another session: is another consumer running with the same consumer id?');
        } else if (mine.length > 0) {
          this.#log.warn({ conflicts: mine }, 'partitions were taken over by other members while our session was gone; giving them up');
        }
        this.#fromScratch = true;
        this.#trigger();
      }),
    );
    const expiries = this.#expiries;
    try {
      await this.#zk.ownEphemeral(this.#memberPath, encodeMemberTopics([...this.#subscription.topics]));
    } catch (error) {
      this.#stopWatching();
      throw error;
    }
    // Nothing is owned yet; what is claimed from now on is claimed in this session (an expiry
    // clears this again, and the re-check after it confirms the new one).
    const session = this.#zk.sessionId;
    if (expiries === this.#expiries && session !== undefined) for (const state of this.#topics.values()) state.confirmedIn = session;
    this.#log.info({ topics: [...this.#topics.keys()], strategy: this.#subscription.strategy }, 'joined consumer group');
    const joined = new Promise<void>((resolve, reject) => {
      this.#joined = { resolve, reject };
    });
    this.#loop = this.#run();
    try {
      await joined;
    } catch (error) {
      this.#stopped = true;
      this.#stopWatching();
      clearTimeout(this.#retryTimer);
      throw error;
    }
  }

  assignment(): ReadonlyMap<string, readonly PartitionRef[]> {
    return new Map([...this.#topics].map(([topic, state]) => [topic, [...(state.applied?.values() ?? [])]]));
  }

  pending(): ReadonlyMap<string, readonly string[]> {
    return new Map([...this.#topics].map(([topic, state]) => [topic, sortJavaStrings(state.pending)]));
  }

  lastRebalance(): RebalanceStats | undefined {
    return this.#last;
  }

  leave(): Promise<void> {
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  async #leave(): Promise<void> {
    this.#stopped = true;
    this.#stopWatching();
    clearTimeout(this.#retryTimer);
    this.#wake?.();
    await this.#loop;
    this.#joined?.reject(new ZookeeperError('CLOSED', `left consumer group ${this.#subscription.group} before the first assignment`));
    const failures: unknown[] = [];
    await Promise.all(
      [...this.#topics.values()].map(async (state) => {
        try {
          await Promise.all([...state.owned].map((name) => this.#owners.release(state.topic, name)));
          await this.#owners.releaseAllOf(state.topic);
          state.owned.clear();
        } catch (error) {
          failures.push(error);
        }
      }),
    );
    try {
      await this.#zk.releaseEphemeral(this.#memberPath);
    } catch (error) {
      failures.push(error);
    }
    // A closed client's session is over: ZooKeeper already deleted its nodes.
    const real = failures.filter((error) => !isClosedError(error));
    if (real.length > 0) {
      this.#log.warn({ err: real[0] }, 'leaving the consumer group was incomplete; the nodes left go away with the ZooKeeper session');
      throw real[0];
    }
    this.#log.info('left consumer group');
  }

  #stopWatching(): void {
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe();
  }

  /** Members, partitions or the session changed. */
  #trigger(): void {
    if (this.#stopped) return;
    this.#since ??= Date.now();
    this.#dirty = true;
    this.#wake?.();
  }

  /** Owner nodes of `topic` changed: a pending claim may succeed now. */
  #ownersChanged(topic: string): void {
    if (this.#stopped) return;
    if (this.#running) {
      // Possibly a release racing with this pass's claim: retry at once if the pass ends pending.
      this.#ownersChangedDuringPass = true;
      return;
    }
    if ((this.#topics.get(topic)?.pending.size ?? 0) === 0) return;
    this.#retryDue = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (!this.#dirty && !this.#retryDue) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = undefined;
        continue;
      }
      // Let a burst of events (several watches firing together) land before reading.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#stopped) break;
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#dirty = false;
      this.#retryDue = false;
      this.#passes++;
      let outcome: PassOutcome | 'failed';
      this.#running = true;
      this.#ownersChangedDuringPass = false;
      try {
        outcome = await this.#pass();
      } catch (error) {
        if (this.#stopped) break;
        if (isClosedError(error)) {
          this.#log.warn({ err: error }, 'the ZooKeeper client was closed; rebalancing stops');
          this.#stopped = true;
          this.#joined?.reject(error);
          break;
        }
        this.#log.warn({ err: error, attempt: this.#attempt }, 'rebalance step failed; retrying');
        outcome = 'failed';
      } finally {
        this.#running = false;
      }
      if (this.#stopped) break;
      if (outcome === 'restart') continue;
      if (outcome === 'settled') {
        this.#attempt = 0;
        if (!this.#dirty && this.#since !== undefined) {
          this.#last = { durationMs: Date.now() - this.#since, passes: this.#passes, finishedAt: Date.now() };
          this.#log.info({ durationMs: this.#last.durationMs, passes: this.#passes, assignment: this.#describe() }, 'rebalance complete');
          this.#since = undefined;
          this.#passes = 0;
        }
        continue;
      }
      if (outcome === 'pending' && this.#ownersChangedDuringPass) {
        this.#retryDue = true;
        continue;
      }
      const delay = backoffDelay(this.#attempt++, this.#retry);
      if (outcome === 'pending' && this.#attempt % 10 === 0) {
        this.#log.info({ pending: this.#describePending(), attempt: this.#attempt }, 'still waiting for other members to release partitions');
      }
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#retryDue = true;
        this.#wake?.();
      }, delay);
    }
  }

  /** One rebalance pass over every topic. */
  async #pass(): Promise<PassOutcome> {
    if (this.#fromScratch) {
      await Promise.all([...this.#topics.values()].map((state) => this.#recheck(state)));
      this.#fromScratch = false;
      if (this.#interrupted()) return 'restart';
    }
    const view = await readGroupView(this.#zk, this.#paths, this.#subscription.group);
    if (!view.members.has(this.memberId) && !this.#stopped) {
      // Our node is gone (deleted by hand, or the session is being replaced): register again;
      // the children watch brings us back here.
      this.#log.warn({ path: this.#memberPath }, 'our member node is missing; registering again');
      await this.#zk.ownEphemeral(this.#memberPath, encodeMemberTopics([...this.#subscription.topics]));
      this.#dirty = true;
      return 'restart';
    }
    const outcomes = await Promise.allSettled(
      [...this.#topics.values()].map((state) => this.#balance(state, view.membersByTopic.get(state.topic) ?? [])),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const results = outcomes.map((o) => (o.status === 'fulfilled' ? o.value : 'pending'));
    if (results.includes('restart')) return 'restart';
    return results.includes('pending') ? 'pending' : 'settled';
  }

  /**
   * After a new session: keep only the owner nodes still ours. Every partition is first stopped
   * without committing its position, then the ones still ours restart from their stored
   * offsets. Why all of them, not only the lost ones: while our session was gone, another
   * member may have owned a partition, consumed, committed and released it again (we then got
   * the node back); our position would take it backwards, and our commit would undo theirs.
   * What we consumed since our last commit is delivered again (at-least-once, as after a crash).
   */
  async #recheck(state: TopicState): Promise<void> {
    const session = this.#zk.sessionId;
    const expiries = this.#expiries;
    const lost: string[] = [];
    await Promise.all(
      [...state.owned].map(async (name) => {
        const check = await this.#owners.check(state.topic, name);
        if (check === 'ours') return;
        // Missing: not re-created by the ZkClient; try to take it back before anyone does.
        if (check === 'missing' && (await this.#owners.claim(state.topic, name)) === 'owned') return;
        lost.push(name);
      }),
    );
    for (const name of lost) state.owned.delete(name);
    if (lost.length > 0) this.#log.warn({ topic: state.topic, lost: sortJavaStrings(lost) }, 'partitions owned by another member after the session expiry; stopping them');
    const keep = new Map([...(state.applied ?? [])].filter(([name]) => state.owned.has(name)));
    if (state.applied !== undefined && state.applied.size > 0) {
      await this.#subscription.onAssignment(state.topic, [], { discardPositions: true });
      state.applied = new Map();
    }
    // Owner nodes are ephemeral: checked in `session`, they stay ours for as long as it lives.
    if (expiries === this.#expiries && session !== undefined) state.confirmedIn = session;
    if (keep.size > 0) await this.#apply(state, keep);
  }

  /** Steps 1–4 for one topic. */
  async #balance(state: TopicState, consumers: readonly string[]): Promise<PassOutcome> {
    const { topic } = state;
    const refs = await this.#source.subscribePartitions(topic);
    const byName = new Map<string, PartitionRef>();
    for (const ref of refs) if (!byName.has(partitionName(ref.brokerId, ref.partition))) byName.set(partitionName(ref.brokerId, ref.partition), ref);
    const target = new Map<string, PartitionRef>();
    for (const name of this.#assign([...byName.keys()], consumers, this.memberId)) {
      const ref = byName.get(name);
      if (ref !== undefined) target.set(name, ref);
    }

    // Step 1: stop what we lose (and restart what moved to another broker URL).
    const applied = state.applied ?? new Map<string, PartitionRef>();
    if ([...applied].some(([name, ref]) => !sameRef(ref, target.get(name)))) {
      await this.#apply(state, this.#ownedIn(state, target));
      if (this.#interrupted()) return 'restart';
    }

    // Step 2: release the owner nodes of what we lost.
    const lost = [...state.owned].filter((name) => !target.has(name));
    if (lost.length > 0) {
      await Promise.all(
        lost.map(async (name) => {
          await this.#owners.release(topic, name);
          state.owned.delete(name);
        }),
      );
      this.#log.info({ topic, released: sortJavaStrings(lost) }, 'released partitions');
      if (this.#interrupted()) return 'restart';
    }

    // Step 3: claim what we gain; what another member still holds stays pending.
    const wanted = [...target.keys()].filter((name) => !state.owned.has(name));
    const pending = new Set<string>();
    const claimed: string[] = [];
    await Promise.all(
      wanted.map(async (name) => {
        if ((await this.#owners.claim(topic, name)) === 'owned') {
          state.owned.add(name);
          claimed.push(name);
        } else {
          pending.add(name);
        }
      }),
    );
    state.pending = pending;
    if (claimed.length > 0) this.#log.info({ topic, claimed: sortJavaStrings(claimed), pending: sortJavaStrings(pending) }, 'claimed partitions');
    if (this.#interrupted()) return 'restart';

    // Step 4: fetch what we own.
    const owned = this.#ownedIn(state, target);
    if (state.applied === undefined || !sameAssignment(owned, state.applied)) await this.#apply(state, owned);
    this.#checkJoined();
    return pending.size > 0 ? 'pending' : 'settled';
  }

  commitPermission(topic: string, partition: StoredPartition): CommitPermission {
    const state = this.#topics.get(topic);
    if (state === undefined) return { status: 'lost' };
    if (state.confirmedIn === undefined) return { status: 'unconfirmed' };
    if (!state.owned.has(partitionName(partition.brokerId, partition.partition))) return { status: 'lost' };
    return { status: 'owned', fence: { zkSessionId: state.confirmedIn } };
  }

  /** A newer event (or leave) makes the current computation start over after this step. */
  #interrupted(): boolean {
    return this.#dirty || this.#stopped;
  }

  /** The owned partitions of `target`, in sorted name order, with the target's refs. */
  #ownedIn(state: TopicState, target: ReadonlyMap<string, PartitionRef>): Map<string, PartitionRef> {
    const result = new Map<string, PartitionRef>();
    for (const name of sortJavaStrings(state.owned)) {
      const ref = target.get(name);
      if (ref !== undefined) result.set(name, ref);
    }
    return result;
  }

  /** Tells the consumer; it resolves once it fetches exactly `partitions` (rejection: retried). */
  async #apply(state: TopicState, partitions: Map<string, PartitionRef>): Promise<void> {
    await this.#subscription.onAssignment(state.topic, [...partitions.values()]);
    state.applied = partitions;
  }

  #checkJoined(): void {
    if (this.#joined === undefined) return;
    for (const state of this.#topics.values()) if (state.applied === undefined) return;
    this.#joined.resolve();
    this.#joined = undefined;
  }

  #describe(): Record<string, string[]> {
    return Object.fromEntries([...this.#topics].map(([topic, state]) => [topic, [...(state.applied?.keys() ?? [])]]));
  }

  #describePending(): Record<string, string[]> {
    return Object.fromEntries([...this.#topics].map(([topic, state]) => [topic, sortJavaStrings(state.pending)]));
  }
}
