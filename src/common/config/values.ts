/**
 * Turns one raw `server.ini` value into a typed, validated value according to its
 * {@link KeySpec}. Every failure is a {@link ConfigError} naming the file, line, key, value and
 * what would be accepted.
 */
import path from 'node:path';
import { Cron } from 'croner';
import { ConfigError } from '../errors.js';
import { parseDeletePolicy } from './delete-policy.js';
import { evaluateIntegerExpression } from './expression.js';
import type { KeySpec, StringFormat } from './schema.js';

/** A parsed configuration value. */
export type ConfigValue = number | boolean | string;

/** Where a value came from, and what relative paths are resolved against. */
export interface ValueContext {
  /** File name used in error messages. */
  readonly file: string;
  /** 1-based line of the value. */
  readonly line: number;
  /** Absolute directory relative paths are resolved against. */
  readonly baseDir: string;
}

/** The message of `error`, without a trailing period so it can be embedded in a sentence. */
function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${min} to ${max}`;
  if (min !== undefined) return `>= ${min}`;
  return `<= ${String(max)}`;
}

function parseInteger(spec: KeySpec, raw: string, ctx: ValueContext): number {
  try {
    return evaluateIntegerExpression(raw);
  } catch (error) {
    throw new ConfigError(`invalid value for '${spec.key}': '${raw}' is not an integer (${message(error)})`, ctx, { cause: error });
  }
}

/** `key=raw` plus ` (= value)` when the text was an expression, for range messages. */
function shown(spec: KeySpec, raw: string, value: number): string {
  return raw === String(value) ? `${spec.key}=${raw}` : `${spec.key}=${raw} (= ${value})`;
}

function validateString(key: string, format: StringFormat | undefined, raw: string, ctx: ValueContext): string {
  switch (format) {
    case undefined:
      return raw;
    case 'hostName':
      if (/\s/.test(raw)) throw new ConfigError(`invalid ${key} '${raw}': it must not contain whitespace`, ctx);
      return raw;
    case 'path':
      if (raw.includes('\0')) throw new ConfigError(`invalid ${key}: the path contains a NUL character`, ctx);
      // Relative paths resolve against the base directory (the working directory by default),
      // so `dataPath=./data` means `<where the broker was started>/data`; see docs/configuration.md.
      return path.resolve(ctx.baseDir, raw);
    case 'deletePolicy':
      try {
        parseDeletePolicy(raw);
      } catch (error) {
        // The parser's message already names deletePolicy, the value and the syntax.
        throw new ConfigError(message(error), ctx, { cause: error });
      }
      return raw;
    case 'cron':
      try {
        // Paused: this only checks the syntax, it must not schedule anything.
        new Cron(raw, { paused: true, alternativeWeekdays: true }).stop();
      } catch (error) {
        throw new ConfigError(
          `invalid ${key} '${raw}': ${message(error)}; expected a Quartz cron expression 'sec min hour day-of-month month day-of-week [year]', e.g. '0 0 6,18 * * ?'`,
          ctx,
          { cause: error },
        );
      }
      return raw;
    case 'zkConnect':
      validateZkConnect(key, raw, ctx);
      return raw;
    case 'zkRoot':
      if (!raw.startsWith('/') || /\s/.test(raw) || raw.includes('//') || (raw.length > 1 && raw.endsWith('/'))) {
        throw new ConfigError(`invalid ${key} '${raw}': expected an absolute ZooKeeper path such as '/meta' (no whitespace, no empty or trailing segments)`, ctx);
      }
      return raw;
  }
}

function validateZkConnect(key: string, raw: string, ctx: ValueContext): void {
  const fail = (why: string): never => {
    throw new ConfigError(`invalid ${key} '${raw}': ${why}; expected host:port[,host:port...][/chroot], e.g. localhost:2181`, ctx);
  };
  if (/\s/.test(raw)) fail('it must not contain whitespace');
  const slash = raw.indexOf('/');
  const hosts = slash < 0 ? raw : raw.slice(0, slash);
  const chroot = slash < 0 ? '' : raw.slice(slash);
  if (chroot !== '' && chroot !== '/' && (chroot.endsWith('/') || chroot.includes('//'))) fail(`bad chroot '${chroot}'`);
  for (const server of hosts.split(',')) {
    const colon = server.lastIndexOf(':');
    const host = colon < 0 ? server : server.slice(0, colon);
    if (host === '') fail(`empty host in '${server}'`);
    if (colon >= 0) {
      const port = server.slice(colon + 1);
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) fail(`bad port '${port}' (1 to 65535)`);
    }
  }
}

/**
 * Parses a non-blank raw value for `spec`.
 *
 * @throws {@link ConfigError} with `file:line:` when the value is not an integer / boolean,
 *   is out of range, or does not follow the key's string format.
 */
export function parseValue(spec: KeySpec, raw: string, ctx: ValueContext): ConfigValue {
  switch (spec.type) {
    case 'int': {
      const value = parseInteger(spec, raw, ctx);
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        throw new ConfigError(`${shown(spec, raw, value)} is out of range; allowed: ${rangeText(spec.min, spec.max)}`, ctx);
      }
      return value;
    }
    case 'enum': {
      const value = parseInteger(spec, raw, ctx);
      if (!spec.values.includes(value)) {
        throw new ConfigError(`${shown(spec, raw, value)} is not allowed; allowed values: ${spec.values.join(', ')}`, ctx);
      }
      return value;
    }
    case 'bool': {
      const lower = raw.toLowerCase();
      if (lower !== 'true' && lower !== 'false') {
        throw new ConfigError(`invalid boolean for '${spec.key}': '${raw}'; use true or false`, ctx);
      }
      return lower === 'true';
    }
    case 'string':
      return validateString(spec.key, spec.format, raw, ctx);
  }
}
