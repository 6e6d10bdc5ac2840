/**
 * The typed, validated shape of `server.ini` (metaq-reference §5.1). Produced by
 * `loadBrokerConfig` / `parseBrokerConfig`; every object is frozen.
 */

/** Keys of the `[system]` section. Durations are in milliseconds unless the name says otherwise. */
export interface SystemConfig {
  /** 0–1023; becomes bits 12–21 of every message id. */
  readonly brokerId: number;
  /** Host name published in ZooKeeper; default: the first non-loopback IPv4 address. */
  readonly hostName: string;
  /** TCP port of the MetaQ protocol (default 8123; 0 = any free port). */
  readonly serverPort: number;
  /** Address the MetaQ protocol listens on (default 0.0.0.0). */
  readonly serverHost: string;
  /** Port of the HTTP gateway; 0 = no HTTP gateway (default). */
  readonly httpPort: number;
  /** Address the HTTP gateway listens on (default 0.0.0.0). */
  readonly httpHost: string;
  /** Largest payload of one put in bytes (default 1 MiB); the attribute may add up to 64 KiB. */
  readonly maxMessageSize: number;
  /** Port of the web dashboard (default 8120). */
  readonly dashboardHttpPort: number;
  /** Default number of partitions of a topic. */
  readonly numPartitions: number;
  /**
   * Root directory of the partition logs; absolute (a relative value is resolved against the
   * working directory, or the `baseDir` option). Default `<home>/meta`, as MetaQ.
   */
  readonly dataPath: string;
  /** Root directory of the transaction journal (default: dataPath). */
  readonly dataLogPath: string;
  /** Directory of server-side consumer filters (kept for compatibility); `undefined` when not set. */
  readonly appClassPath: string | undefined;
  /** > 0: fsync after that many appends; <= 0: group commit (ack only after fsync). */
  readonly unflushThreshold: number;
  /** Longest time between fsyncs in ms (when unflushThreshold > 0). */
  readonly unflushInterval: number;
  /** A segment file is rolled once it reaches this many bytes. */
  readonly maxSegmentSize: number;
  /** Largest body of one get response in bytes. */
  readonly maxTransferSize: number;
  readonly getProcessThreadCount: number;
  readonly putProcessThreadCount: number;
  /** Retention policy: `delete,N[h|m|s]` or `archive,N[h|m|s][,true]`. */
  readonly deletePolicy: string;
  /** Quartz cron expression on which retention runs. */
  readonly deleteWhen: string;
  readonly quartzThreadCount: number;
  /** Transaction journal checkpoints kept. */
  readonly maxCheckpoints: number;
  /** Interval between transaction journal checkpoints in ms. */
  readonly checkpointInterval: number;
  readonly maxTxTimeoutTimerCapacity: number;
  readonly maxTxTimeoutInSeconds: number;
  /** 0: journal flushed by a timer; 1: fsync at every commit; 2: write at commit, fsync by timer. */
  readonly flushTxLogAtCommit: 0 | 1 | 2;
  readonly acceptPublish: boolean;
  readonly acceptSubscribe: boolean;
  readonly stat: boolean;
  readonly updateConsumerOffsets: boolean;
  readonly loadMessageStoresInParallel: boolean;
}

/** Keys of the `[zookeeper]` section (all prefixed `zk.` in the file). */
export interface ZookeeperConfig {
  /** false: standalone broker, no ZooKeeper at all. */
  readonly zkEnable: boolean;
  /** `host:port[,host:port...][/chroot]`; required when zkEnable, `''` when not set. */
  readonly zkConnect: string;
  readonly zkSessionTimeoutMs: number;
  readonly zkConnectionTimeoutMs: number;
  readonly zkSyncTimeMs: number;
  readonly zkRoot: string;
}

/**
 * Per-topic settings after inheritance: every field is set, taken from the topic section when
 * given there, otherwise from `[system]`.
 */
export interface TopicConfig {
  /** The section's pattern, e.g. `test` or `order-*`. */
  readonly pattern: string;
  readonly numPartitions: number;
  readonly stat: boolean;
  readonly deletePolicy: string;
  readonly deleteWhen: string;
  readonly dataPath: string;
  readonly unflushInterval: number;
  readonly unflushThreshold: number;
  readonly acceptSubscribe: boolean;
  readonly acceptPublish: boolean;
  /** `group.<name>=<filter class>` entries: consumer group name → filter class name. */
  readonly groupFilters: Readonly<Record<string, string>>;
}

/** The whole broker configuration. */
export interface BrokerConfig {
  /** Absolute path of the file it was read from, if any. */
  readonly file: string | undefined;
  /** The raw file text (the `stats config` command returns it). */
  readonly rawText: string;
  readonly system: SystemConfig;
  readonly zookeeper: ZookeeperConfig;
  /** Topic sections in file order. */
  readonly topics: readonly TopicConfig[];
}
