/**
 * The broker's counters, as the `stats` command reports them (metaq-reference §1.4): totals
 * since start-up, realtime windows for the broker and, for topics with `stat=true`, per topic.
 */
import { RealtimeStat } from './realtime-stat.js';

/** Names of the realtime statistics, in MetaQ's order. */
export const REALTIME_NAMES = ['put', 'get', 'offset', 'get_miss', 'put_failed', 'message_size'] as const;
/** One of {@link REALTIME_NAMES}. */
export type RealtimeName = (typeof REALTIME_NAMES)[number];

type RealtimeSet = Record<RealtimeName, RealtimeStat>;

function realtimeSet(now: () => number): RealtimeSet {
  return {
    put: new RealtimeStat(now),
    get: new RealtimeStat(now),
    offset: new RealtimeStat(now),
    get_miss: new RealtimeStat(now),
    put_failed: new RealtimeStat(now),
    message_size: new RealtimeStat(now),
  };
}

/** Counters since start-up. */
export interface BrokerTotals {
  cmdPut: number;
  cmdGet: number;
  cmdOffset: number;
  txBegin: number;
  txXaBegin: number;
  txCommit: number;
  txRollback: number;
  getMiss: number;
  putFailed: number;
}

/** All counters of one broker. */
export class BrokerStats {
  readonly startedAt: number;
  readonly totals: BrokerTotals = { cmdPut: 0, cmdGet: 0, cmdOffset: 0, txBegin: 0, txXaBegin: 0, txCommit: 0, txRollback: 0, getMiss: 0, putFailed: 0 };
  readonly realtime: RealtimeSet;
  readonly #perTopic = new Map<string, RealtimeSet>();
  readonly #now: () => number;
  /** Decides whether a topic keeps its own realtime statistics (`stat=true`). */
  readonly #statEnabled: (topic: string) => boolean;

  constructor(statEnabled: (topic: string) => boolean, now: () => number = Date.now) {
    this.#now = now;
    this.#statEnabled = statEnabled;
    this.startedAt = now();
    this.realtime = realtimeSet(now);
  }

  #topic(topic: string): RealtimeSet | undefined {
    if (!this.#statEnabled(topic)) return undefined;
    let set = this.#perTopic.get(topic);
    if (set === undefined) {
      set = realtimeSet(this.#now);
      this.#perTopic.set(topic, set);
    }
    return set;
  }

  #record(topic: string, name: RealtimeName, count: number, value = count): void {
    this.realtime[name].add(count, value);
    this.#topic(topic)?.[name].add(count, value);
  }

  /** A put arrived with `bytes` of data. */
  put(topic: string, bytes: number): void {
    this.totals.cmdPut += 1;
    this.#record(topic, 'put', 1);
    this.#record(topic, 'message_size', 1, bytes);
  }

  /** A put failed. */
  putFailed(topic: string): void {
    this.totals.putFailed += 1;
    this.#record(topic, 'put_failed', 1);
  }

  /** A get arrived. */
  get(topic: string): void {
    this.totals.cmdGet += 1;
    this.#record(topic, 'get', 1);
  }

  /** A get found nothing to return. */
  getMiss(topic: string): void {
    this.totals.getMiss += 1;
    this.#record(topic, 'get_miss', 1);
  }

  /** An offset request arrived (or a get was answered with an offset). */
  offset(topic: string): void {
    this.totals.cmdOffset += 1;
    this.#record(topic, 'offset', 1);
  }

  /** The realtime set of a topic with `stat=true`, if it has recorded anything. */
  topicRealtime(topic: string): Readonly<RealtimeSet> | undefined {
    return this.#perTopic.get(topic);
  }

  /** Restarts every realtime window (`stats reset`). */
  resetRealtime(): void {
    for (const stat of Object.values(this.realtime)) stat.reset();
    for (const set of this.#perTopic.values()) for (const stat of Object.values(set)) stat.reset();
  }

  /** Seconds since start-up. */
  uptimeSeconds(): number {
    return Math.floor((this.#now() - this.startedAt) / 1000);
  }
}
