/**
 * `meta://host:port` broker URLs: MetaQ's scheme for its TCP protocol (metaq-reference §1.1).
 */
import { InvalidArgumentError } from '../common/errors.js';

/** MetaQ's default broker port. */
export const DEFAULT_BROKER_PORT = 8123;

/** A parsed broker URL. */
export interface BrokerAddress {
  /** Canonical form, `meta://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  /** Host name or address, without IPv6 brackets. */
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `meta://host[:port]` (port 8123 when absent).
 *
 * @throws {InvalidArgumentError} for another scheme, a missing host, a bad port or a path.
 */
export function parseBrokerUrl(text: string): BrokerAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`serverUrl ${JSON.stringify(text)} is not a URL; expected meta://host:port`);
  }
  if (url.protocol !== 'meta:') throw new InvalidArgumentError(`serverUrl ${JSON.stringify(text)} must use the meta:// scheme`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw new InvalidArgumentError(`serverUrl ${JSON.stringify(text)} has no host`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError(`serverUrl ${JSON.stringify(text)} must not have a path, query or fragment`);
  }
  const port = url.port === '' ? DEFAULT_BROKER_PORT : Number(url.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new InvalidArgumentError(`serverUrl ${JSON.stringify(text)} has an invalid port`);
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { url: `meta://${hostPart}:${port}`, host, port };
}
