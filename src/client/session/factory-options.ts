/**
 * Options of `createMessageSessionFactory`, validated once (nats.js `parseOptions` style): a bad
 * value fails at construction with a message that names the property, never later at a send.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import { parseBrokerUrl, type BrokerAddress } from '../broker-url.js';
import { resolveConnectionSettings, type ConnectionSettings, type ResolvedConnectionSettings } from '../transport/connection-options.js';
import { normalizeZkRoot } from '../../zk/meta-paths.js';
import type { BrokerDiscovery } from './broker-discovery.js';

/** Default timeout of a send or a stats request (MetaQ's `sendMessage` default, 3 s). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3_000;

/** MetaQ's ZooKeeper session timeout default (`zkSessionTimeoutMs`). */
export const DEFAULT_ZK_SESSION_TIMEOUT_MS = 30_000;
/** MetaQ's ZooKeeper connection timeout default (`zkConnectionTimeoutMs`). */
export const DEFAULT_ZK_CONNECTION_TIMEOUT_MS = 30_000;

/** Options of a session factory. Exactly one of `serverUrl`, `zkConnect` and `discovery` is required. */
export interface MessageSessionFactoryOptions extends ConnectionSettings {
  /** Direct mode: the one broker, `meta://host:port` (port 8123 when left out). */
  readonly serverUrl?: string;
  /**
   * Cluster mode: the ZooKeeper ensemble the brokers register in, `host:port[,host:port...][/chroot]`
   * (MetaQ's `zkConnect`). Producers send to every broker that registers a topic; consumers
   * form groups in ZooKeeper and keep their offsets there by default.
   */
  readonly zkConnect?: string;
  /** Cluster mode: the root of MetaQ's znodes, as the brokers' `zk.zkRoot`. Default `/meta`. */
  readonly zkRoot?: string;
  /** Cluster mode: ZooKeeper session timeout in ms. Default 30 000. */
  readonly zkSessionTimeoutMs?: number;
  /** Cluster mode: how long a ZooKeeper operation waits for a connection, in ms. Default 30 000. */
  readonly zkConnectionTimeoutMs?: number;
  /** Another way to find brokers and partitions (e.g. `createZookeeperDiscovery` on your own ZkClient). */
  readonly discovery?: BrokerDiscovery;
  /**
   * Direct mode: partition counts per topic. Without an entry the count comes from the broker's
   * configuration (`stats config`); see docs/client.md.
   */
  readonly partitions?: Readonly<Record<string, number>>;
  /** Default timeout of sends and stats requests in ms. Default 3000. */
  readonly requestTimeoutMs?: number;
}

/** The ZooKeeper settings of a factory in cluster mode, validated. */
export interface ResolvedZookeeperOptions {
  readonly connectString: string;
  /** Normalised (`meta/` → `/meta`). */
  readonly root: string;
  readonly sessionTimeoutMs: number;
  readonly connectionTimeoutMs: number;
}

/** Factory options after validation. */
export interface ResolvedFactoryOptions {
  readonly server: BrokerAddress | undefined;
  readonly zookeeper: ResolvedZookeeperOptions | undefined;
  readonly discovery: BrokerDiscovery | undefined;
  readonly partitions: Readonly<Record<string, number>>;
  readonly requestTimeoutMs: number;
  readonly connection: ResolvedConnectionSettings;
}

function checkInteger(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions.${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/**
 * Validates and completes the options.
 *
 * @throws {InvalidArgumentError} naming the bad property.
 */
export function resolveFactoryOptions(options: MessageSessionFactoryOptions): ResolvedFactoryOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('createMessageSessionFactory needs options with serverUrl (one broker) or zkConnect (a cluster)');
  }
  const modes = (['serverUrl', 'zkConnect', 'discovery'] as const).filter((name) => options[name] !== undefined);
  if (modes.length > 1) {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions: ${modes.join(' and ')} are mutually exclusive; give exactly one of serverUrl, zkConnect and discovery`);
  }
  if (modes.length === 0) {
    throw new InvalidArgumentError(
      'MessageSessionFactoryOptions: give serverUrl (meta://host:port, one broker), zkConnect (host:port[,host:port...], a cluster) or a discovery',
    );
  }
  const zookeeper = resolveZookeeper(options);
  checkInteger('requestTimeoutMs', options.requestTimeoutMs, 1);
  checkInteger('connectTimeoutMs', options.connectTimeoutMs, 1);
  checkInteger('heartbeatIdleMs', options.heartbeatIdleMs, 0);
  checkInteger('heartbeatTimeoutMs', options.heartbeatTimeoutMs, 1);
  checkInteger('heartbeatMaxFailures', options.heartbeatMaxFailures, 1);
  checkInteger('timerResolutionMs', options.timerResolutionMs, 1);
  checkInteger('drainTimeoutMs', options.drainTimeoutMs, 0);
  checkInteger('reconnect.initialDelayMs', options.reconnect?.initialDelayMs, 0);
  checkInteger('reconnect.maxDelayMs', options.reconnect?.maxDelayMs, 0);
  const jitter = options.reconnect?.jitter;
  if (jitter !== undefined && !(typeof jitter === 'number' && jitter >= 0 && jitter <= 1)) {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions.reconnect.jitter must be between 0 and 1, got ${String(jitter)}`);
  }
  if (options.connector !== undefined && typeof options.connector !== 'function') {
    throw new InvalidArgumentError('MessageSessionFactoryOptions.connector must be a function');
  }
  if (options.partitions !== undefined && options.serverUrl === undefined) {
    throw new InvalidArgumentError(
      'MessageSessionFactoryOptions.partitions applies to direct mode (serverUrl) only; in cluster mode the brokers register their partition counts in ZooKeeper',
    );
  }
  const partitions: Record<string, number> = {};
  for (const [topic, count] of Object.entries(options.partitions ?? {})) {
    checkInteger(`partitions['${topic}']`, count, 1);
    partitions[topic] = count;
  }
  if (options.discovery !== undefined && (typeof options.discovery !== 'object' || typeof options.discovery.publishPartitions !== 'function')) {
    throw new InvalidArgumentError('MessageSessionFactoryOptions.discovery must be a BrokerDiscovery (e.g. from createZookeeperDiscovery)');
  }
  return Object.freeze({
    server: options.serverUrl === undefined ? undefined : parseBrokerUrl(options.serverUrl),
    zookeeper,
    discovery: options.discovery,
    partitions: Object.freeze(partitions),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    connection: resolveConnectionSettings(options),
  });
}

/** `host:port` with a port; hosts may be names, IPv4 or bracketed IPv6. */
const ZK_SERVER = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/**
 * Validates the ZooKeeper options: present only with `zkConnect`, which must be
 * `host:port[,host:port...][/chroot]`.
 */
function resolveZookeeper(options: MessageSessionFactoryOptions): ResolvedZookeeperOptions | undefined {
  const zkOnly = (['zkRoot', 'zkSessionTimeoutMs', 'zkConnectionTimeoutMs'] as const).filter((name) => options[name] !== undefined);
  if (options.zkConnect === undefined) {
    if (zkOnly.length > 0) throw new InvalidArgumentError(`MessageSessionFactoryOptions.${zkOnly[0]} needs zkConnect (it only applies to cluster mode)`);
    return undefined;
  }
  const connect = options.zkConnect;
  if (typeof connect !== 'string' || connect.trim() === '') {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions.zkConnect must be 'host:port[,host:port...][/chroot]', got ${JSON.stringify(connect)}`);
  }
  const text = connect.trim();
  const slash = text.indexOf('/');
  const servers = (slash < 0 ? text : text.slice(0, slash)).split(',');
  const chroot = slash < 0 ? '' : text.slice(slash);
  for (const server of servers) {
    const match = ZK_SERVER.exec(server.trim());
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || port < 1 || port > 65535) {
      throw new InvalidArgumentError(
        `MessageSessionFactoryOptions.zkConnect ${JSON.stringify(connect)} is not 'host:port[,host:port...][/chroot]': ${JSON.stringify(server)} is not host:port`,
      );
    }
  }
  if (chroot !== '' && (chroot.endsWith('/') || chroot.includes('//'))) {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions.zkConnect ${JSON.stringify(connect)} has an invalid chroot ${JSON.stringify(chroot)}`);
  }
  if (options.zkRoot !== undefined && (typeof options.zkRoot !== 'string' || /\/\/|\s/.test(options.zkRoot))) {
    throw new InvalidArgumentError(`MessageSessionFactoryOptions.zkRoot must be a znode path such as '/meta', got ${JSON.stringify(options.zkRoot)}`);
  }
  checkInteger('zkSessionTimeoutMs', options.zkSessionTimeoutMs, 1);
  checkInteger('zkConnectionTimeoutMs', options.zkConnectionTimeoutMs, 1);
  return Object.freeze({
    connectString: servers.map((s) => s.trim()).join(',') + chroot,
    root: normalizeZkRoot(options.zkRoot),
    sessionTimeoutMs: options.zkSessionTimeoutMs ?? DEFAULT_ZK_SESSION_TIMEOUT_MS,
    connectionTimeoutMs: options.zkConnectionTimeoutMs ?? DEFAULT_ZK_CONNECTION_TIMEOUT_MS,
  });
}
