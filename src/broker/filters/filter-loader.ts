/**
 * Loads the server-side consumer filters of a broker configuration at start-up
 * (metaq-reference §5.1 `group.<consumerGroup>=<class>`, §6.9).
 *
 * MetaQ named a Java class, loaded from `appClassPath`. Here the value names an ES module file:
 * an absolute path as is, a relative one against `appClassPath` when set, otherwise against the
 * configuration file's directory (the working directory for a configuration without a file).
 * The module's default export — or a named export `filter` — is the function
 * `(group, message) => boolean` (consumer-filter.ts).
 *
 * Every module is imported before the broker serves anything: a missing file, a module that
 * throws while loading or one without a filter function stops the start with a ConfigError
 * naming the configuration line, the module and the fix. (MetaQ loaded a class at the first get
 * of the group, so a typo surfaced as failing gets in production.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseIni } from '../../common/config/ini.js';
import { GROUP_FILTER_PREFIX } from '../../common/config/schema.js';
import type { BrokerConfig } from '../../common/config/types.js';
import { ConfigError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { ConsumerFilter, type ServerMessageFilter } from './consumer-filter.js';

/** How to write a filter module, for error messages. */
const HOW_TO =
  'a filter module is an ES module file (.mjs, or .js in an ESM package) whose default export (or named export `filter`) ' +
  'is a synchronous function (group, message) => boolean';

/** The filters of a broker: (topic section pattern, consumer group) → filter. */
export class ConsumerFilters {
  /** No filters at all. */
  static readonly NONE = new ConsumerFilters([]);
  readonly #byPattern = new Map<string, Map<string, ConsumerFilter>>();
  readonly #all: readonly ConsumerFilter[];

  constructor(filters: readonly ConsumerFilter[]) {
    this.#all = filters;
    for (const filter of filters) {
      const { pattern, group } = filter.source;
      let groups = this.#byPattern.get(pattern);
      if (groups === undefined) this.#byPattern.set(pattern, (groups = new Map()));
      groups.set(group, filter);
    }
  }

  /** The filter of `group` in the topic section `pattern` (the topic's section, see topicConfigFor). */
  find(pattern: string | undefined, group: string): ConsumerFilter | undefined {
    if (pattern === undefined || this.#all.length === 0) return undefined;
    return this.#byPattern.get(pattern)?.get(group);
  }

  /** Every filter, in configuration order. */
  all(): readonly ConsumerFilter[] {
    return this.#all;
  }
}

/** Options of {@link loadConsumerFilters}. */
export interface LoadConsumerFiltersOptions {
  readonly log?: Logger;
}

/** The 1-based line of `group.<group>=` in the section of `pattern`, when it can be found. */
function entryLine(config: BrokerConfig, file: string, pattern: string, group: string): number | undefined {
  try {
    const document = parseIni(config.rawText, file);
    for (const section of document.sections) {
      const match = /^topic\s*=(.*)$/.exec(section.name);
      if (match === null || (match[1] ?? '').trim() !== pattern) continue;
      return section.entries.find((entry) => entry.key === `${GROUP_FILTER_PREFIX}${group}`)?.line ?? section.line;
    }
  } catch {
    // The text was valid when the configuration was parsed; without it, no line number.
  }
  return undefined;
}

function isClass(fn: (...args: never[]) => unknown): boolean {
  try {
    return /^class[\s{]/.test(Function.prototype.toString.call(fn));
  } catch {
    return false;
  }
}

/** The filter function a module exports, or why there is none. */
function exportedFilter(namespace: Record<string, unknown>): ServerMessageFilter | string {
  const candidates: [string, unknown][] = [
    ['default export', namespace['default']],
    ["named export 'filter'", namespace['filter']],
  ];
  // A CommonJS module's `module.exports = { filter }` arrives as the default export's property.
  const fallback = namespace['default'];
  if (fallback !== null && typeof fallback === 'object') candidates.push(["default export's 'filter' property", (fallback as Record<string, unknown>)['filter']]);
  for (const [what, value] of candidates) {
    if (typeof value !== 'function') continue;
    const fn = value as ServerMessageFilter;
    if (isClass(fn)) return `its ${what} is a class; export a function (group, message) => boolean instead (MetaQ's ConsumerMessageFilter.accept as a function)`;
    return fn;
  }
  const names = Object.keys(namespace);
  return `it exports no filter function (exports: ${names.length === 0 ? 'none' : names.join(', ')}); add \`export default function (group, message) { return ...; }\``;
}

/**
 * Imports every `group.<name>=<module>` of `config`'s topic sections.
 *
 * @throws {@link ConfigError} naming `file:line`, the module path and the fix, for the first
 *   module that does not exist, fails to load, or exports no filter function.
 */
export async function loadConsumerFilters(config: BrokerConfig, options: LoadConsumerFiltersOptions = {}): Promise<ConsumerFilters> {
  const log = options.log ?? componentLogger('filters', { brokerId: config.system.brokerId });
  const file = config.file ?? '<server.ini>';
  const base = config.system.appClassPath ?? (config.file === undefined ? process.cwd() : path.dirname(config.file));
  const baseText = config.system.appClassPath !== undefined ? `appClassPath ${base}` : config.file !== undefined ? `the configuration file's directory ${base}` : `the working directory ${base}`;
  const namespaces = new Map<string, Promise<Record<string, unknown>>>();
  const filters: ConsumerFilter[] = [];
  for (const topic of config.topics) {
    for (const [group, spec] of Object.entries(topic.groupFilters)) {
      const line = entryLine(config, file, topic.pattern, group);
      const where = line === undefined ? { file } : { file, line };
      const entry = `${GROUP_FILTER_PREFIX}${group}=${spec} in [topic=${topic.pattern}]`;
      const modulePath = path.isAbsolute(spec) ? spec : path.resolve(base, spec);
      const resolvedText = path.isAbsolute(spec) ? modulePath : `${modulePath} (resolved against ${baseText})`;

      let stat: fs.Stats | undefined;
      try {
        stat = await fs.promises.stat(modulePath);
      } catch {
        stat = undefined;
      }
      if (stat === undefined || !stat.isFile()) {
        const javaHint = /^[\w$]+(\.[\w$]+)+$/.test(spec) && !/\.(m?js|cjs|ts)$/.test(spec) ? ' It looks like a Java class name; metaq cannot load Java classes.' : '';
        throw new ConfigError(
          `${entry}: the filter module ${resolvedText} ${stat === undefined ? 'does not exist' : 'is not a file'}.${javaHint} ` +
            `Set the value to the path of the module; ${HOW_TO}`,
          where,
        );
      }
      let loading = namespaces.get(modulePath);
      if (loading === undefined) {
        loading = import(pathToFileURL(modulePath).href) as Promise<Record<string, unknown>>;
        namespaces.set(modulePath, loading);
      }
      let namespace: Record<string, unknown>;
      try {
        namespace = await loading;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        const tsHint = modulePath.endsWith('.ts') ? ' (a .ts module loads only when the broker runs under tsx; use a .mjs file)' : '';
        throw new ConfigError(`${entry}: cannot load the filter module ${modulePath}: ${reason}${tsHint}. Fix the module so that it imports cleanly; ${HOW_TO}`, where, {
          cause: error,
        });
      }
      const fn = exportedFilter(namespace);
      if (typeof fn === 'string') throw new ConfigError(`${entry}: the filter module ${modulePath} cannot be used: ${fn}`, where);
      filters.push(new ConsumerFilter({ pattern: topic.pattern, group, module: modulePath }, fn, log));
    }
  }
  if (filters.length > 0) {
    log.info({ filters: filters.map(({ source }) => ({ topic: source.pattern, group: source.group, module: source.module })) }, 'server-side consumer filters loaded');
  }
  return filters.length === 0 ? ConsumerFilters.NONE : new ConsumerFilters(filters);
}
