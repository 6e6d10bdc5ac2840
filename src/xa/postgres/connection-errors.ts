/**
 * Recognising "the connection to PostgreSQL failed or was lost" among the errors `pg`, `pg-pool`
 * and Node.js produce. Shared by the XA resource, the transaction manager and the consumer.
 *
 * Why it matters (transactions.md §0 item 5): a connection failure says nothing about what the
 * server did, so it must become XAER_RMFAIL ("retry later"), never a rollback code — mapping it
 * to XA_RB* or XAER_RMERR is how pgjdbc#4438 and ARTEMIS-136 lost data.
 */

/** Node.js socket/DNS error codes of a failed or lost connection. */
const NODE_CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/**
 * SQLSTATEs (outside class 08) after which the session is gone or could not be opened:
 * admin_shutdown (57P01: `pg_terminate_backend`, fast shutdown), crash_shutdown (57P02),
 * cannot_connect_now (57P03: starting up / recovering), database_dropped (57P04),
 * idle_session_timeout (57P05), idle_in_transaction_session_timeout (25P03),
 * too_many_connections (53300).
 */
const SESSION_LOST_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '57P04', '57P05', '25P03', '53300']);

/**
 * Messages of errors that `pg`/`pg-pool` create without any code. Matched exactly at the start
 * of the message, so that a server message quoting them does not match.
 */
const PG_CONNECTION_MESSAGES: readonly string[] = [
  'Connection terminated', // also "... unexpectedly" and "... due to connection timeout"
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect', // pg-pool: connectionTimeoutMillis while waiting for a client
  'timeout expired', // pg: connectionTimeoutMillis while connecting
  'Query read timeout', // pg: query_timeout; the statement may still run on the server
];

/** The SQLSTATE of a PostgreSQL error (`err.code` of five characters), or undefined. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = codeOf(err);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True when `err` means the connection to PostgreSQL could not be made, was lost, or is
 * unusable, so that whatever the statement in flight did is unknown: Node.js socket errors
 * (ECONNREFUSED, ECONNRESET, ...), SQLSTATE class 08 and the session-ending 57P0x codes,
 * pg's "Connection terminated ..." / "not queryable" errors and pool/connect/query timeouts.
 * Looks through `cause` chains and `AggregateError`s (Node's happy-eyeballs connect).
 */
export function isPostgresConnectionError(err: unknown): boolean {
  return matches(err, 0);
}

function matches(err: unknown, depth: number): boolean {
  if (depth > 8 || typeof err !== 'object' || err === null) return false;
  const code = codeOf(err);
  if (code !== undefined) {
    if (NODE_CONNECTION_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || SESSION_LOST_SQLSTATES.has(code))) return true;
  }
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && code === undefined && PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m))) return true;
  if (err instanceof AggregateError && err.errors.some((e) => matches(e, depth + 1))) return true;
  return matches((err as { cause?: unknown }).cause, depth + 1);
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
