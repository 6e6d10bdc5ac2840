/**
 * A consumer's configuration (MetaQ's `ConsumerConfig`, metaq-reference §6.5), with MetaQ's
 * names and defaults, resolved once into a frozen object and validated with messages that
 * name the bad property.
 */
import os from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../../common/errors.js';
import type { LoadBalanceStrategy } from '../session/broker-discovery.js';
import { groupNameError } from './group-name.js';

/** MetaQ's `fetchTimeoutInMills`. */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
/** MetaQ's `maxDelayFetchTimeInMills`: the cap of the back-off between empty fetches. */
export const DEFAULT_MAX_DELAY_FETCH_MS = 5_000;
/** MetaQ's `maxFetchRetries`: listener retries before a message goes to the recover store. */
export const DEFAULT_MAX_FETCH_RETRIES = 5;
/** MetaQ's `maxIncreaseFetchDataRetries`: fetches without a whole message before `maxSize` doubles. */
export const DEFAULT_MAX_INCREASE_FETCH_DATA_RETRIES = 5;
/** MetaQ's `commitOffsetPeriodInMills`. */
export const DEFAULT_COMMIT_OFFSET_PERIOD_MS = 5_000;
/** MetaQ's `recoverMessageIntervalInMills` (5 minutes). */
export const DEFAULT_RECOVER_MESSAGE_INTERVAL_MS = 300_000;

/** MetaQ's default recover directory, `${user.home}/.meta_recover`. */
export function defaultRecoverPath(): string {
  return join(os.homedir(), '.meta_recover');
}

/** What `createConsumer` accepts. Only `group` is required. */
export interface ConsumerConfig {
  /** The consumer group (see docs/client.md for the allowed characters). */
  readonly group: string;
  /** This member's id; default `<hostname>-<pid>-<random>`. */
  readonly consumerId?: string;
  /** Timeout of one fetch (`get`) in ms. Default 10 000. */
  readonly fetchTimeoutInMills?: number;
  /** Cap of the delay between fetches of a partition that has nothing new, in ms. Default 5000. */
  readonly maxDelayFetchTimeInMills?: number;
  /** How many times a failed listener call is retried before the message goes to the recover store. Default 5. */
  readonly maxFetchRetries?: number;
  /** Fetches that returned no whole message before `maxSize` doubles (up to 2 MiB). Default 5. */
  readonly maxIncreaseFetchDataRetries?: number;
  /** Period of offset commits in ms. Default 5000. */
  readonly commitOffsetPeriodInMills?: number;
  /** Period of re-deliveries from the recover store in ms. Default 300 000. */
  readonly recoverMessageIntervalInMills?: number;
  /** Offset to start from in a partition with no committed offset. Default 0. */
  readonly offset?: number;
  /** Start at the end of partitions with no committed offset (skip what is already there). Default false. */
  readonly consumeFromMaxOffset?: boolean;
  /**
   * MetaQ's `setConsumeFromMaxOffset(true)`: start every partition at its end whenever this
   * consumer starts fetching it, ignoring the committed offset: what was published while no
   * consumer ran is skipped. In a group this includes partitions handed over by a rebalance
   * (the messages since the previous owner's last commit are skipped too). For consumers that
   * only want live data, e.g. cache invalidation. Default false.
   */
  readonly alwaysConsumeFromMaxOffset?: boolean;
  /** Root of the recover store; messages go to `<recoverPath>/<topic>@<group>/`. Default `~/.meta_recover`. */
  readonly recoverPath?: string;
  /**
   * How a group spreads partitions over its members in cluster mode (MetaQ's
   * `loadBalanceStrategyType`): `range` (DEFAULT) or `consistent-hash` (CONSIST). Default `range`.
   */
  readonly loadBalanceStrategy?: LoadBalanceStrategy;
  /**
   * Where to continue when the committed offset is beyond the end of a partition's log (the
   * data was deleted, the log recreated, or the broker has less data after a failover):
   * `max` = the end of the log (MetaQ's `updateConsumerOffsets`, Kafka's `latest`), `min` = its
   * start (re-read everything retained). Default `max`.
   */
  readonly offsetOutOfRange?: OffsetOutOfRangePolicy;
}

/** See {@link ConsumerConfig.offsetOutOfRange}. */
export type OffsetOutOfRangePolicy = 'max' | 'min';

/** A consumer configuration with every default applied. */
export type ResolvedConsumerConfig = Readonly<Required<ConsumerConfig>>;

function integer(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidArgumentError(`ConsumerConfig.${name} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

function outOfRangePolicy(value: OffsetOutOfRangePolicy | undefined): OffsetOutOfRangePolicy {
  if (value === undefined) return 'max';
  if (value !== 'max' && value !== 'min') throw new InvalidArgumentError(`ConsumerConfig.offsetOutOfRange must be 'max' or 'min', got ${JSON.stringify(value)}`);
  return value;
}

function strategy(value: LoadBalanceStrategy | undefined): LoadBalanceStrategy {
  if (value === undefined) return 'range';
  if (value !== 'range' && value !== 'consistent-hash') {
    throw new InvalidArgumentError(`ConsumerConfig.loadBalanceStrategy must be 'range' or 'consistent-hash', got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validates `config` and applies the defaults.
 *
 * @throws {InvalidArgumentError} naming the bad property.
 */
export function resolveConsumerConfig(config: ConsumerConfig): ResolvedConsumerConfig {
  if (config === null || typeof config !== 'object') throw new InvalidArgumentError('createConsumer needs a ConsumerConfig with at least a group');
  const problem = groupNameError(config.group);
  if (problem !== undefined) throw new InvalidArgumentError(`ConsumerConfig.group ${JSON.stringify(config.group)} is invalid: ${problem}`);
  const consumerId = config.consumerId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  if (typeof consumerId !== 'string' || consumerId === '' || /\s/.test(consumerId)) {
    throw new InvalidArgumentError(`ConsumerConfig.consumerId ${JSON.stringify(consumerId)} must be non-empty without whitespace`);
  }
  return Object.freeze({
    group: config.group,
    consumerId,
    fetchTimeoutInMills: integer('fetchTimeoutInMills', config.fetchTimeoutInMills, DEFAULT_FETCH_TIMEOUT_MS, 1),
    maxDelayFetchTimeInMills: integer('maxDelayFetchTimeInMills', config.maxDelayFetchTimeInMills, DEFAULT_MAX_DELAY_FETCH_MS, 0),
    maxFetchRetries: integer('maxFetchRetries', config.maxFetchRetries, DEFAULT_MAX_FETCH_RETRIES, 0),
    maxIncreaseFetchDataRetries: integer('maxIncreaseFetchDataRetries', config.maxIncreaseFetchDataRetries, DEFAULT_MAX_INCREASE_FETCH_DATA_RETRIES, 0),
    commitOffsetPeriodInMills: integer('commitOffsetPeriodInMills', config.commitOffsetPeriodInMills, DEFAULT_COMMIT_OFFSET_PERIOD_MS, 1),
    recoverMessageIntervalInMills: integer('recoverMessageIntervalInMills', config.recoverMessageIntervalInMills, DEFAULT_RECOVER_MESSAGE_INTERVAL_MS, 1),
    offset: integer('offset', config.offset, 0, 0),
    consumeFromMaxOffset: config.consumeFromMaxOffset ?? false,
    alwaysConsumeFromMaxOffset: config.alwaysConsumeFromMaxOffset ?? false,
    recoverPath: config.recoverPath ?? defaultRecoverPath(),
    loadBalanceStrategy: strategy(config.loadBalanceStrategy),
    offsetOutOfRange: outOfRangePolicy(config.offsetOutOfRange),
  });
}

/**
 * A broadcast consumer's configuration (`factory.createBroadcastConsumer`, MetaQ's
 * `MetaBroadcastMessageSessionFactory`, metaq-reference §6.8): the group is rewritten to
 * `<group>-<broadcastId>` so that each instance is a group of its own and gets every message.
 */
export interface BroadcastConsumerConfig extends ConsumerConfig {
  /**
   * What makes this instance's group unique. Default: the local IP address with `.` and `:`
   * replaced by `-` (MetaQ's rule: one broadcast group per host). Set it to run several
   * broadcast consumers of one group on one machine (e.g. `'host1-worker2'`); it must stay the
   * same across restarts for the instance to resume from its committed offsets.
   */
  readonly broadcastId?: string;
}
