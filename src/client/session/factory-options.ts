/**
 * Options of `createMessageSessionFactory`, validated once (nats.js `parseOptions` style): a bad
 * value fails at construction with a message that names the property, never later at a send.
 */
import { InvalidArgumentError } from '../../common/errors.js';
import { parseBrokerUrl, type BrokerAddress } from '../broker-url.js';
import { resolveConnectionSettings, type ConnectionSettings, type ResolvedConnectionSettings } from '../transport/connection-options.js';
import type { BrokerDiscovery } from './broker-discovery.js';

/** Default timeout of a send or a stats request (MetaQ's `sendMessage` default, 3 s). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3_000;

/** Options of a session factory. Either `serverUrl` or `discovery` is required. */
export interface MessageSessionFactoryOptions extends ConnectionSettings {
  /** Direct mode: the one broker, `meta://host:port` (port 8123 when left out). */
  readonly serverUrl?: string;
  /** Another way to find brokers and partitions (e.g. ZooKeeper); replaces `serverUrl`. */
  readonly discovery?: BrokerDiscovery;
  /**
   * Direct mode: partition counts per topic. Without an entry the count comes from the broker's
   * configuration (`stats config`); see docs/client.md.
   */
  readonly partitions?: Readonly<Record<string, number>>;
  /** Default timeout of sends and stats requests in ms. Default 3000. */
  readonly requestTimeoutMs?: number;
}

/** Factory options after validation. */
export interface ResolvedFactoryOptions {
  readonly server: BrokerAddress | undefined;
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
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('createMessageSessionFactory needs options with serverUrl');
  if (options.serverUrl !== undefined && options.discovery !== undefined) {
    throw new InvalidArgumentError('MessageSessionFactoryOptions: serverUrl and discovery are mutually exclusive');
  }
  if (options.serverUrl === undefined && options.discovery === undefined) {
    throw new InvalidArgumentError('MessageSessionFactoryOptions: give serverUrl (meta://host:port) or a discovery');
  }
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
  const partitions: Record<string, number> = {};
  for (const [topic, count] of Object.entries(options.partitions ?? {})) {
    checkInteger(`partitions['${topic}']`, count, 1);
    partitions[topic] = count;
  }
  return Object.freeze({
    server: options.serverUrl === undefined ? undefined : parseBrokerUrl(options.serverUrl),
    discovery: options.discovery,
    partitions: Object.freeze(partitions),
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    connection: resolveConnectionSettings(options),
  });
}
