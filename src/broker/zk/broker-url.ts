/**
 * The URL a broker publishes in ZooKeeper (metaq-reference §4, "Broker id → URL"):
 * `meta://<hostName>:<port>`, an IPv6 address in brackets as MetaQ's `Broker.getZKString()`.
 */

/**
 * `meta://<host>:<port>`; an IPv6 literal (any host containing `:`) is put in brackets unless it
 * already is.
 */
export function brokerUrl(hostName: string, port: number): string {
  const host = hostName.includes(':') && !hostName.startsWith('[') ? `[${hostName}]` : hostName;
  return `meta://${host}:${port}`;
}
