/**
 * Logging: one pino root logger, one child per component (`store`, `broker`, `config`, ...).
 *
 * The level comes from `METAQ_LOG_LEVEL`; without it the broker logs at `info` and tests (which
 * set `NODE_TEST_CONTEXT` through node:test) stay silent, so a failing test shows its assertion,
 * not pages of logs.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

function defaultLevel(): string {
  const fromEnv = process.env['METAQ_LOG_LEVEL'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return process.env['NODE_TEST_CONTEXT'] !== undefined ? 'silent' : 'info';
}

let root: Logger | undefined;

/** The process-wide root logger (created on first use). */
export function rootLogger(): Logger {
  root ??= pino({ name: 'metaq', level: defaultLevel() });
  return root;
}

/** Replaces the root logger, e.g. to send logs to a file or to silence them in a tool. */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

/** A child logger tagged with `component` and any extra bindings (topic, partition, ...). */
export function componentLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}
