/**
 * All partition logs of a broker: loads every `<topic>-<partition>` directory found under the
 * configured data paths at start-up (even topics no longer configured, as MetaQ does, so that
 * no data silently disappears), creates logs on first use, and runs retention on each topic's
 * `deleteWhen` schedule.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { Cron } from 'croner';
import { topicConfigFor } from '../common/config/index.js';
import { parseDeletePolicy } from '../common/config/delete-policy.js';
import type { BrokerConfig, TopicConfig } from '../common/config/types.js';
import { InvalidArgumentError, StoreClosedError } from '../common/errors.js';
import { componentLogger, type Logger } from '../common/logger.js';
import { ensureDurableDirectory } from './file-io.js';
import { messageIdFloorAt } from './message-id.js';
import { PartitionLog } from './partition-log.js';
import { applyRetention } from './retention.js';
import { parsePartitionDirName, partitionDirName } from './segment-name.js';

/** The settings a partition log takes from its topic (or from `[system]` when unconfigured). */
interface PartitionSettings {
  readonly dataPath: string;
  readonly unflushThreshold: number;
  readonly unflushInterval: number;
  readonly deletePolicy: string;
  readonly deleteWhen: string;
}

/**
 * Largest data length accepted in a stored record. Bigger length fields found on recovery are
 * treated as corruption. Generous on purpose: the put size limit is enforced by the broker.
 */
const MAX_RECORD_DATA_LENGTH = 256 * 1024 * 1024;

/** Owner of every partition log of one broker. */
export class MessageStoreManager {
  readonly #config: BrokerConfig;
  readonly #log: Logger;
  readonly #logs = new Map<string, PartitionLog>();
  readonly #opening = new Map<string, Promise<PartitionLog>>();
  readonly #crons: Cron[] = [];
  readonly #topicConfigs = new Map<string, TopicConfig | undefined>();
  /** Topics with at least one partition log. */
  readonly #topics = new Set<string>();
  readonly #topicCreatedListeners = new Set<(topic: string) => void>();
  #closed = false;

  private constructor(config: BrokerConfig, logger: Logger) {
    this.#config = config;
    this.#log = logger;
  }

  /** Opens (and recovers) every partition log found under the configured data paths. */
  static async open(config: BrokerConfig, logger: Logger = componentLogger('store')): Promise<MessageStoreManager> {
    const manager = new MessageStoreManager(config, logger);
    try {
      await manager.#loadExisting();
    } catch (error) {
      await manager.close();
      throw error;
    }
    return manager;
  }

  async #loadExisting(): Promise<void> {
    const dataPaths = new Set([this.#config.system.dataPath, ...this.#config.topics.map((t) => t.dataPath)]);
    const found: { dataPath: string; topic: string; partition: number }[] = [];
    for (const dataPath of dataPaths) {
      await ensureDurableDirectory(dataPath);
      for (const entry of await fs.promises.readdir(dataPath, { withFileTypes: true })) {
        const parsed = entry.isDirectory() ? parsePartitionDirName(entry.name) : undefined;
        if (parsed !== undefined) found.push({ dataPath, ...parsed });
      }
    }
    const load = async (item: (typeof found)[number]): Promise<void> => {
      const key = `${item.topic}-${item.partition}`;
      if (this.#logs.has(key)) {
        throw new InvalidArgumentError(`partition ${key} exists under two data paths (${item.dataPath} and ${this.#logs.get(key)?.dir})`);
      }
      this.#logs.set(key, await this.#openLog(item.topic, item.partition, join(item.dataPath, key)));
      this.#topics.add(item.topic);
    };
    if (this.#config.system.loadMessageStoresInParallel) {
      await Promise.all(found.map(load));
    } else {
      for (const item of found) await load(item);
    }
    this.#log.info({ partitions: this.#logs.size, dataPaths: [...dataPaths] }, 'message store loaded');
  }

  #settingsFor(topic: string): PartitionSettings {
    return this.topicConfig(topic) ?? this.#config.system;
  }

  async #openLog(topic: string, partition: number, dir: string): Promise<PartitionLog> {
    const settings = this.#settingsFor(topic);
    return PartitionLog.open({
      topic,
      partition,
      dir,
      maxSegmentSize: this.#config.system.maxSegmentSize,
      maxRecordDataLength: MAX_RECORD_DATA_LENGTH,
      unflushThreshold: settings.unflushThreshold,
      unflushInterval: settings.unflushInterval,
      logger: this.#log.child({ topic, partition }),
    });
  }

  /** The log of a partition, if it exists. */
  get(topic: string, partition: number): PartitionLog | undefined {
    return this.#logs.get(`${topic}-${partition}`);
  }

  /**
   * The log of a partition, created on first use.
   * @throws InvalidArgumentError when the topic is not configured or the partition is out of range.
   */
  async getOrCreate(topic: string, partition: number): Promise<PartitionLog> {
    if (this.#closed) throw new StoreClosedError('message store');
    const key = `${topic}-${partition}`;
    const existing = this.#logs.get(key);
    if (existing !== undefined) return existing;
    const topicConfig = this.topicConfig(topic);
    if (topicConfig === undefined) {
      throw new InvalidArgumentError(`topic '${topic}' is not configured; add a [topic=${topic}] section to the server configuration`);
    }
    if (!Number.isInteger(partition) || partition < 0 || partition >= topicConfig.numPartitions) {
      throw new InvalidArgumentError(`partition ${partition} of topic '${topic}' is out of range 0..${topicConfig.numPartitions - 1}`);
    }
    let opening = this.#opening.get(key);
    if (opening === undefined) {
      opening = (async () => {
        const dir = join(topicConfig.dataPath, key);
        await ensureDurableDirectory(dir);
        const log = await this.#openLog(topic, partition, dir);
        this.#logs.set(key, log);
        if (!this.#topics.has(topic)) {
          this.#topics.add(topic);
          this.#emitTopicCreated(topic);
        }
        return log;
      })().finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  /** Every open partition log. */
  logs(): PartitionLog[] {
    return [...this.#logs.values()];
  }

  /**
   * Calls `listener` (synchronously) when a topic gets its first partition log at run time,
   * i.e. a put created a topic that had no store yet (ZooKeeper registration hooks in here).
   * Not called for the topics loaded at start-up. Returns the function that unsubscribes.
   */
  onTopicCreated(listener: (topic: string) => void): () => void {
    this.#topicCreatedListeners.add(listener);
    return () => {
      this.#topicCreatedListeners.delete(listener);
    };
  }

  #emitTopicCreated(topic: string): void {
    for (const listener of [...this.#topicCreatedListeners]) {
      try {
        listener(topic);
      } catch (error) {
        this.#log.error({ err: error, topic }, 'a topic-created listener threw');
      }
    }
  }

  /**
   * Configuration of `topic` (after inheritance), if it is configured. Cached: every put asks,
   * and the configuration is immutable for the life of the manager.
   */
  topicConfig(topic: string): TopicConfig | undefined {
    if (this.#topicConfigs.has(topic)) return this.#topicConfigs.get(topic);
    const config = topicConfigFor(this.#config, topic);
    // Bounded so that a client sending puts to random unknown topics cannot grow it without end.
    if (this.#topicConfigs.size < 100_000) this.#topicConfigs.set(topic, config);
    return config;
  }

  /**
   * A message id at or above every id stored on this broker: the largest of the last ids found
   * in the active segments and the ids of the millisecond of each log's last write.
   */
  async messageIdFloor(): Promise<bigint> {
    let floor = 0n;
    for (const log of this.#logs.values()) {
      if (log.recoveredLastId !== undefined && log.recoveredLastId > floor) floor = log.recoveredLastId;
      const segments = await log.immutableSegments();
      const newest = segments.at(-1);
      if (newest !== undefined) {
        const atTime = messageIdFloorAt(newest.mtimeMs);
        if (atTime > floor) floor = atTime;
      }
    }
    return floor;
  }

  /** Runs retention over every log whose effective `deleteWhen` is `schedule` (all when omitted). */
  async runRetention(now: number = Date.now(), schedule?: string): Promise<number> {
    let removed = 0;
    for (const log of this.#logs.values()) {
      const settings = this.#settingsFor(log.topic);
      if (schedule !== undefined && settings.deleteWhen !== schedule) continue;
      try {
        const outcome = await applyRetention(log, parseDeletePolicy(settings.deletePolicy), now, this.#log.child({ topic: log.topic, partition: log.partition }));
        removed += outcome.removed.length;
      } catch (error) {
        this.#log.error({ err: error, topic: log.topic, partition: log.partition }, 'retention failed for a partition; will try again at the next run');
      }
    }
    return removed;
  }

  /**
   * Schedules retention: one cron job per distinct `deleteWhen` expression (Quartz syntax,
   * weekday numbering 1 = Sunday as in Quartz), as MetaQ shares one Quartz job per expression.
   */
  startRetentionSchedule(): void {
    const schedules = new Set([this.#config.system.deleteWhen, ...this.#config.topics.map((t) => t.deleteWhen)]);
    for (const expression of schedules) {
      const job = new Cron(expression, { alternativeWeekdays: true, protect: true, unref: true }, async () => {
        await this.runRetention(Date.now(), expression);
      });
      this.#crons.push(job);
      this.#log.info({ deleteWhen: expression, next: job.nextRun()?.toISOString() }, 'retention scheduled');
    }
  }

  /** Forces every log to disk. */
  async flushAll(): Promise<void> {
    await Promise.all([...this.#logs.values()].map((log) => log.flush()));
  }

  /** Stops retention, drains and syncs every log, and closes all files. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#crons.splice(0)) job.stop();
    await Promise.allSettled([...this.#opening.values()]);
    await Promise.all([...this.#logs.values()].map((log) => log.close()));
  }
}
