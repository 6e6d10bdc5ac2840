/**
 * The identity of one client connection as command handlers see it. Local transactions belong
 * to the connection that began them and are rolled back when it closes (MetaQ meant to do this
 * but never registered its listener, so abandoned local transactions lived until a restart).
 */

/** A client connection, for handlers that keep per-connection state. */
export interface ConnectionSession {
  /** Unique per broker process. */
  readonly id: number;
  /** `address:port` of the client, for logs. */
  readonly remote: string;
}

let nextSessionId = 1;

/** A new session identity. */
export function newConnectionSession(remote: string): ConnectionSession {
  return { id: nextSessionId++, remote };
}

/** The session of in-process callers (HTTP gateway, admin routes): it never closes. */
export const INTERNAL_SESSION: ConnectionSession = { id: 0, remote: 'internal' };
