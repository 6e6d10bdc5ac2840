/**
 * Errors as a person at a terminal should see them: one line, `metaq: <message> [<code>]`, no
 * stack trace, and the exit status (2: the command line or configuration is wrong; 1: running
 * the command failed).
 */
import { MetaqError } from '../../common/errors.js';
import { CliError, UsageError } from '../commands/args.js';

/** What to print and which status to exit with. */
export interface ErrorReport {
  /** The text for stderr (one line; a usage error adds the usage after a blank line). */
  readonly text: string;
  readonly exitCode: number;
}

/** Short words for the system errors of a failed connection. */
const CONNECT_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EADDRNOTAVAIL: 'address not available',
};

/** Why a connection attempt failed, in a few words (`connection refused`, `host not found`, …). */
export function connectFailureReason(error: unknown): string {
  if (error === undefined || error === null) return 'connection failed';
  const code = typeof error === 'object' && 'code' in error ? String((error as { code: unknown }).code) : undefined;
  if (code !== undefined && CONNECT_REASONS[code] !== undefined) return CONNECT_REASONS[code];
  const message = error instanceof Error ? error.message : String(error);
  if (/timed out/i.test(message)) return 'timed out';
  return message;
}

/** The friendly error for a broker that could not be reached at all. */
export function cannotConnectError(serverUrl: string, cause: unknown): CliError {
  return new CliError(`cannot connect to ${serverUrl} (${connectFailureReason(cause)}); is the broker running? (npm start)`, {
    code: 'METAQ_ERR_CONNECTION',
    cause,
  });
}

/** The report for any error a command threw. */
export function reportError(error: unknown): ErrorReport {
  if (error instanceof UsageError) return { text: `metaq: ${error.message}\n\n${error.usage}`, exitCode: 2 };
  if (error instanceof CliError) return { text: `metaq: ${error.message}${error.code === undefined ? '' : ` [${error.code}]`}`, exitCode: error.exitCode };
  // BrokerError's message already reads "… broker answered <status>: <text>".
  if (error instanceof MetaqError) return { text: `metaq: ${error.message} [${error.code}]`, exitCode: 1 };
  if (error instanceof Error) {
    const code = 'code' in error && typeof error.code === 'string' ? ` [${error.code}]` : '';
    return { text: `metaq: ${error.message}${code}`, exitCode: 1 };
  }
  return { text: `metaq: ${String(error)}`, exitCode: 1 };
}
