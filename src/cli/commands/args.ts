/**
 * Argument handling shared by the `metaq` commands: `node:util` `parseArgs` (strict, no CLI
 * framework), the options every command takes (`-s/--server`, `--json`, `--timeout`,
 * `-h/--help`), and the two error kinds of the CLI:
 *
 * - {@link UsageError}: the command line is wrong (exit status 2, usage printed);
 * - {@link CliError}: something failed while running (exit status 1 unless told otherwise).
 */
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseBrokerUrl } from '../../client/broker-url.js';
import { closestMatch } from '../../common/config/levenshtein.js';

/** The broker used when neither `-s` nor `$METAQ_SERVER` names one. */
export const DEFAULT_SERVER = 'meta://127.0.0.1:8123';

/** The command line is wrong; the CLI prints the message and the command's usage, exit 2. */
export class UsageError extends Error {
  /** The usage text to print after the message. */
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message);
    this.name = 'UsageError';
    this.usage = usage;
  }
}

/** A failure the CLI reports as one line, `metaq: <message>`, with its own exit status. */
export class CliError extends Error {
  /** The process exit status (1: runtime failure; 2: bad arguments or configuration). */
  readonly exitCode: number;
  /** A stable error code shown in brackets, e.g. `METAQ_ERR_CONNECTION`. */
  readonly code: string | undefined;

  constructor(message: string, options: { exitCode?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
    this.code = options.code;
  }
}

/** `parseArgs` option descriptors (the shape `node:util` expects). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
}

/** The options every command accepts. */
export const COMMON_OPTIONS = {
  server: { type: 'string', short: 's' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Record<string, OptionSpec>;

/** The help rows (flags, description) of {@link COMMON_OPTIONS}. */
export const COMMON_OPTIONS_HELP: readonly (readonly [string, string])[] = [
  ['-s, --server <url>', `broker (default: $METAQ_SERVER or ${DEFAULT_SERVER})`],
  ['    --json', 'machine-readable output (JSON)'],
  ['    --timeout <ms>', 'request timeout in milliseconds (default: 3000)'],
  ['-h, --help', 'show this help'],
];

/** Help rows as aligned lines: `  <flags>   <description>`. */
export function formatOptionsHelp(rows: readonly (readonly [string, string])[]): string {
  const width = rows.reduce((max, [flags]) => Math.max(max, flags.length), 0);
  return rows.map(([flags, description]) => `  ${flags.padEnd(width)}   ${description}`).join('\n');
}

/** The parsed options of {@link COMMON_OPTIONS}, resolved. */
export interface CommonOptions {
  /** Canonical `meta://host:port`. */
  readonly server: string;
  readonly json: boolean;
  /** Request timeout in ms (undefined: the client's default). */
  readonly timeoutMs: number | undefined;
}

interface ParseArgsFailure {
  readonly code?: unknown;
  readonly message: string;
}

function isParseArgsFailure(error: unknown): error is ParseArgsFailure {
  return error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS');
}

/** The flags of `options` as written on the command line (`-s`, `--server`, …). */
function flagNames(options: Readonly<Record<string, OptionSpec>>): string[] {
  const names: string[] = [];
  for (const [name, spec] of Object.entries(options)) {
    names.push(`--${name}`);
    if (spec.short !== undefined) names.push(`-${spec.short}`);
  }
  return names;
}

/** Turns a `parseArgs` error into a short {@link UsageError} (with a "did you mean" for typos). */
function usageErrorFrom(error: ParseArgsFailure, command: string, options: Readonly<Record<string, OptionSpec>>, usage: string): UsageError {
  const unknown = /Unknown option '([^']+)'/.exec(error.message);
  if (unknown !== null) {
    const flag = unknown[1] as string;
    const suggestion = flag.startsWith('--') ? closestMatch(flag, flagNames(options).filter((f) => f.startsWith('--'))) : undefined;
    return new UsageError(`${command}: unknown option '${flag}'${suggestion === undefined ? '' : `; did you mean '${suggestion}'?`}`, usage);
  }
  const message = error.message
    .replace(/\s*\n\s*/g, ' ')
    .replace(/^Option /, 'option ')
    .replace(/\.$/, '');
  return new UsageError(`${command}: ${message}`, usage);
}

/**
 * `parseArgs` in strict mode with positionals (the caller passes `args` and `options`), its
 * errors turned into {@link UsageError}s. Typed exactly as `parseArgs`.
 */
export function parseCommandLine<const T extends ParseArgsConfig>(
  command: string,
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T & { allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ ...config, allowPositionals: true, strict: true });
  } catch (error) {
    if (isParseArgsFailure(error)) throw usageErrorFrom(error, command, (config.options ?? {}) as Record<string, OptionSpec>, usage);
    throw error;
  }
}

/**
 * The broker URL from `-s`, else `$METAQ_SERVER`, else {@link DEFAULT_SERVER}, in canonical
 * form. `host:port` and `host` are accepted without the `meta://` scheme.
 *
 * @throws {UsageError} when it is not a broker address.
 */
export function resolveServer(command: string, flag: string | undefined, env: NodeJS.ProcessEnv, usage: string): string {
  const fromEnv = env['METAQ_SERVER'];
  const text = flag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_SERVER);
  const where = flag !== undefined ? '-s/--server' : fromEnv !== undefined && fromEnv !== '' ? '$METAQ_SERVER' : 'default server';
  const withScheme = text.includes('://') ? text : `meta://${text}`;
  try {
    return parseBrokerUrl(withScheme).url;
  } catch {
    throw new UsageError(`${command}: ${where} ${JSON.stringify(text)} is not a broker address; expected meta://host[:port]`, usage);
  }
}

/**
 * An integer option within `[min, max]`.
 *
 * @throws {UsageError} naming the option.
 */
export function parseInteger(name: string, text: string, usage: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`${name} must be ${range}, got ${JSON.stringify(text)}`, usage);
  }
  return value;
}

/** Resolves the options of {@link COMMON_OPTIONS}. */
export function resolveCommonOptions(
  command: string,
  values: { server?: string | undefined; json?: boolean | undefined; timeout?: string | undefined },
  env: NodeJS.ProcessEnv,
  usage: string,
): CommonOptions {
  return {
    server: resolveServer(command, values.server, env, usage),
    json: values.json === true,
    timeoutMs: values.timeout === undefined ? undefined : parseInteger(`${command}: --timeout`, values.timeout, usage, 1, 3_600_000),
  };
}

/** `$METAQ_HOME`, default `~/.metaq`: where `metaq sub` keeps offsets and recovered messages. */
export function metaqHome(env: NodeJS.ProcessEnv): string {
  const fromEnv = env['METAQ_HOME'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(os.homedir(), '.metaq');
}

/**
 * The default offsets file of a group, `<METAQ_HOME>/offsets/<group>.json`. One file per group:
 * a local offsets file belongs to one process (each commit rewrites it whole), so two `metaq sub`
 * of different groups running at once must not share one.
 */
export function defaultOffsetsFile(env: NodeJS.ProcessEnv, group: string): string {
  return join(metaqHome(env), 'offsets', `${group}.json`);
}

/** The default recover store root, `<METAQ_HOME>/recover`. */
export function defaultRecoverPath(env: NodeJS.ProcessEnv): string {
  return join(metaqHome(env), 'recover');
}
