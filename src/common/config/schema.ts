/**
 * The table of every `server.ini` key (metaq-reference §5.1): its section, type, default,
 * allowed range and whether topic sections may override it. Validation (`values.ts`) and
 * assembly (`load.ts`) are driven by this table; docs/configuration.md documents the same keys.
 *
 * Why a data table: one place to read "what does key X accept", and unknown-key suggestions
 * come from the same list, so they can never drift from what is actually accepted.
 */

/** The section a key belongs to. Topic sections accept the subset marked `inTopic`. */
export type KeySection = 'system' | 'zookeeper';

/**
 * String formats with extra validation:
 * - `hostName`: non-empty, no whitespace;
 * - `path`: a directory; relative paths are resolved against the base directory;
 * - `deletePolicy`: see `delete-policy.ts`;
 * - `cron`: a Quartz cron expression, checked with croner;
 * - `zkConnect`: `host[:port][,host[:port]...][/chroot]`;
 * - `zkRoot`: an absolute ZooKeeper path such as `/meta`.
 */
export type StringFormat = 'hostName' | 'path' | 'deletePolicy' | 'cron' | 'zkConnect' | 'zkRoot';

/**
 * Defaults that depend on the machine or on other keys, resolved by `load.ts`:
 * - `firstIpv4`: the first non-internal IPv4 address;
 * - `tenTimesCpus`: 10 × the CPU count;
 * - `homeMeta`: `<home directory>/meta`;
 * - `systemDataPath`: the (resolved) system `dataPath`.
 */
export type DynamicDefault = 'firstIpv4' | 'tenTimesCpus' | 'homeMeta' | 'systemDataPath';

interface BaseSpec {
  /** The key exactly as written in the file (the `[zookeeper]` keys carry their `zk.` prefix). */
  readonly key: string;
  readonly section: KeySection;
  /** One line for error messages and docs. */
  readonly doc: string;
  /** Missing or blank is an error. (`zk.zkConnect` is conditionally required; see load.ts.) */
  readonly required?: boolean;
  /** May also appear in `[topic=...]` sections, overriding the system value for those topics. */
  readonly inTopic?: boolean;
  /** Set when the default is not a constant. */
  readonly dynamicDefault?: DynamicDefault;
}

/** An integer key; the value may be an arithmetic expression such as `1024*1024`. */
export interface IntSpec extends BaseSpec {
  readonly type: 'int';
  readonly default?: number;
  /** Inclusive lower bound. */
  readonly min?: number;
  /** Inclusive upper bound. */
  readonly max?: number;
}

/** An integer key restricted to a few values (e.g. `flushTxLogAtCommit` 0/1/2). */
export interface EnumSpec extends BaseSpec {
  readonly type: 'enum';
  readonly default: number;
  readonly values: readonly number[];
}

/** A boolean key: `true` or `false`, case-insensitive. */
export interface BoolSpec extends BaseSpec {
  readonly type: 'bool';
  readonly default: boolean;
}

/** A string key, optionally with a validated {@link StringFormat}. */
export interface StringSpec extends BaseSpec {
  readonly type: 'string';
  readonly default?: string;
  readonly format?: StringFormat;
}

/** The specification of one key. */
export type KeySpec = IntSpec | EnumSpec | BoolSpec | StringSpec;

/** Java's `Integer.MAX_VALUE`: MetaQ stores these sizes in `int` fields, so larger values never worked there. */
const JAVA_INT_MAX = 2_147_483_647;

/** Every key, `[system]` first, in the order of metaq-reference §5.1. */
export const CONFIG_SCHEMA: readonly KeySpec[] = [
  // [system]
  { key: 'brokerId', section: 'system', type: 'int', required: true, min: 0, max: 1023, doc: 'broker id, unique in the cluster; bits 12–21 of every message id' },
  { key: 'hostName', section: 'system', type: 'string', format: 'hostName', dynamicDefault: 'firstIpv4', doc: 'host name or address clients use to reach this broker' },
  // 0 = any free port (tests, embedded brokers); the broker logs the port it got.
  { key: 'serverPort', section: 'system', type: 'int', default: 8123, min: 0, max: 65535, doc: 'TCP port of the MetaQ protocol (0 = any free port)' },
  { key: 'httpPort', section: 'system', type: 'int', default: 0, min: 0, max: 65535, doc: 'port of the HTTP gateway (MetaQ put/get/offset, /healthz, /readyz); 0 = off' },
  { key: 'httpHost', section: 'system', type: 'string', format: 'hostName', default: '0.0.0.0', doc: 'address the HTTP gateway listens on' },
  { key: 'serverHost', section: 'system', type: 'string', format: 'hostName', default: '0.0.0.0', doc: 'address the MetaQ protocol listens on' },
  { key: 'maxMessageSize', section: 'system', type: 'int', default: 1_048_576, min: 1, max: 256 * 1024 * 1024, doc: 'largest message payload a put may carry, in bytes (plus up to 64 KiB of attribute)' },
  { key: 'dashboardHttpPort', section: 'system', type: 'int', default: 8120, min: 0, max: 65535, doc: 'port of the web dashboard' },
  { key: 'numPartitions', section: 'system', type: 'int', default: 1, min: 1, inTopic: true, doc: 'partitions per topic' },
  { key: 'dataPath', section: 'system', type: 'string', format: 'path', dynamicDefault: 'homeMeta', inTopic: true, doc: 'root directory of the partition logs' },
  { key: 'dataLogPath', section: 'system', type: 'string', format: 'path', dynamicDefault: 'systemDataPath', doc: 'root directory of the transaction journal' },
  { key: 'appClassPath', section: 'system', type: 'string', format: 'path', doc: 'directory of server-side consumer filters (compatibility only)' },
  // Any integer: <= 0 selects group commit, so there is deliberately no lower bound.
  { key: 'unflushThreshold', section: 'system', type: 'int', default: 1000, inTopic: true, doc: 'fsync after this many appends; <= 0 = group commit' },
  { key: 'unflushInterval', section: 'system', type: 'int', default: 10_000, min: 1, inTopic: true, doc: 'longest time between fsyncs in ms' },
  { key: 'maxSegmentSize', section: 'system', type: 'int', default: 1_073_741_824, min: 1, max: JAVA_INT_MAX, doc: 'segment file size in bytes before rolling' },
  { key: 'maxTransferSize', section: 'system', type: 'int', default: 1_048_576, min: 1, max: JAVA_INT_MAX, doc: 'largest get response body in bytes' },
  { key: 'getProcessThreadCount', section: 'system', type: 'int', min: 1, dynamicDefault: 'tenTimesCpus', doc: 'get request concurrency' },
  { key: 'putProcessThreadCount', section: 'system', type: 'int', min: 1, dynamicDefault: 'tenTimesCpus', doc: 'put / transaction request concurrency' },
  { key: 'deletePolicy', section: 'system', type: 'string', format: 'deletePolicy', default: 'delete,168', inTopic: true, doc: 'retention policy' },
  { key: 'deleteWhen', section: 'system', type: 'string', format: 'cron', default: '0 0 6,18 * * ?', inTopic: true, doc: 'Quartz cron expression on which retention runs' },
  { key: 'quartzThreadCount', section: 'system', type: 'int', default: 5, min: 1, doc: 'scheduler threads (compatibility)' },
  { key: 'maxCheckpoints', section: 'system', type: 'int', default: 3, min: 1, doc: 'transaction journal checkpoints kept' },
  { key: 'checkpointInterval', section: 'system', type: 'int', default: 3_600_000, min: 1, doc: 'interval between transaction journal checkpoints in ms' },
  { key: 'maxTxTimeoutTimerCapacity', section: 'system', type: 'int', default: 30_000, min: 1, doc: 'most transactions with a pending timeout' },
  { key: 'maxTxTimeoutInSeconds', section: 'system', type: 'int', default: 60, min: 1, doc: 'largest transaction timeout in seconds' },
  { key: 'flushTxLogAtCommit', section: 'system', type: 'enum', default: 1, values: [0, 1, 2], doc: 'transaction journal durability: 0 timer, 1 fsync at commit, 2 write at commit' },
  { key: 'acceptPublish', section: 'system', type: 'bool', default: true, inTopic: true, doc: 'accept put requests' },
  { key: 'acceptSubscribe', section: 'system', type: 'bool', default: true, inTopic: true, doc: 'accept get requests' },
  { key: 'stat', section: 'system', type: 'bool', default: false, inTopic: true, doc: 'keep per-topic realtime statistics' },
  { key: 'updateConsumerOffsets', section: 'system', type: 'bool', default: false, doc: 'answer an out-of-range offset with the max offset instead of 404' },
  { key: 'loadMessageStoresInParallel', section: 'system', type: 'bool', default: false, doc: 'open partition stores in parallel at startup' },
  // [zookeeper]
  { key: 'zk.zkEnable', section: 'zookeeper', type: 'bool', default: true, doc: 'register in ZooKeeper; false = standalone broker' },
  { key: 'zk.zkConnect', section: 'zookeeper', type: 'string', format: 'zkConnect', doc: 'ZooKeeper ensemble, required when zk.zkEnable=true' },
  { key: 'zk.zkSessionTimeoutMs', section: 'zookeeper', type: 'int', default: 30_000, min: 1, doc: 'ZooKeeper session timeout in ms' },
  { key: 'zk.zkConnectionTimeoutMs', section: 'zookeeper', type: 'int', default: 30_000, min: 1, doc: 'ZooKeeper connection timeout in ms' },
  { key: 'zk.zkSyncTimeMs', section: 'zookeeper', type: 'int', default: 5_000, min: 0, doc: 'ZooKeeper sync time in ms' },
  { key: 'zk.zkRoot', section: 'zookeeper', type: 'string', format: 'zkRoot', default: '/meta', doc: 'root path of MetaQ in ZooKeeper' },
];

/** Prefix of the per-consumer-group filter entries of topic sections: `group.<consumerGroup>=<filter class>`. */
export const GROUP_FILTER_PREFIX = 'group.';

/** The specs of one section, in table order. */
export function specsOf(section: KeySection): readonly KeySpec[] {
  return CONFIG_SCHEMA.filter((spec) => spec.section === section);
}

/** The specs of the keys a `[topic=...]` section may set (besides `group.*`). */
export function topicSpecs(): readonly KeySpec[] {
  return CONFIG_SCHEMA.filter((spec) => spec.inTopic === true);
}

/** The spec of `key` in `section`, or `undefined` when the key does not belong there. */
export function findSpec(section: KeySection | 'topic', key: string): KeySpec | undefined {
  return CONFIG_SCHEMA.find((spec) => spec.key === key && (section === 'topic' ? spec.inTopic === true : spec.section === section));
}
