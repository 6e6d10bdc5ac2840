/**
 * Reads `server.ini` into a validated, deeply frozen {@link BrokerConfig}
 * (metaq-reference §5.1), failing fast with a {@link ConfigError} that names the file, the line
 * and how to fix it.
 *
 * Differences from Java MetaQ, on purpose (see docs/configuration.md):
 * - `zk.zkConnect` is required only when `zk.zkEnable=true`: a standalone broker needs no ZooKeeper;
 * - relative paths resolve against the working directory (or `baseDir`), not the JVM's `user.dir`
 *   quirks; `dataPath` still defaults to `<home>/meta` like MetaQ's `${user.home}/meta`;
 * - duplicate keys and sections are errors instead of "last one wins".
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { componentLogger } from '../logger.js';
import { deepFreeze } from './deep-freeze.js';
import { parseIni, type IniSection } from './ini.js';
import { closestMatch } from './levenshtein.js';
import { detectMachineDefaults, type MachineDefaults } from './machine.js';
import { CONFIG_SCHEMA, GROUP_FILTER_PREFIX, findSpec, specsOf, topicSpecs, type KeySection, type KeySpec } from './schema.js';
import { topicPatternError } from './topic-lookup.js';
import type { BrokerConfig, SystemConfig, TopicConfig, ZookeeperConfig } from './types.js';
import { parseValue, type ConfigValue } from './values.js';

/** Options of {@link parseBrokerConfig}. */
export interface ParseBrokerConfigOptions {
  /**
   * The file the text came from: used in error messages as given (e.g. `conf/server.ini:7:`)
   * and stored, made absolute, in {@link BrokerConfig.file}. Without it messages say `<server.ini>`.
   */
  readonly file?: string;
  /**
   * Directory relative paths (`dataPath=./data`) are resolved against. Default: `process.cwd()`
   * — `npm start` runs from the repository root, where the shipped `conf/server.ini` expects `./data`.
   */
  readonly baseDir?: string;
  /** Overrides of the machine-dependent defaults (host name, CPU count, home directory), for tests. */
  readonly machine?: Partial<MachineDefaults>;
}

/** Options of {@link loadBrokerConfig}. */
export type LoadBrokerConfigOptions = Omit<ParseBrokerConfigOptions, 'file'>;

/** A value as written in one section: `undefined` value = blank. */
interface SetValue {
  readonly value: ConfigValue | undefined;
  readonly line: number;
}

interface ParsedSection {
  readonly section: IniSection;
  readonly values: Map<string, SetValue>;
}

interface ParsedTopic extends ParsedSection {
  readonly pattern: string;
  readonly groupFilters: Map<string, string>;
}

const SECTION_FORMS = '[system], [zookeeper] and [topic=<name or pattern>]';

/** `<0-1023>`, `<integer >= 1>`, `<true|false>`... for "add key=<...>" hints. */
function placeholder(spec: KeySpec): string {
  switch (spec.type) {
    case 'int':
      if (spec.min !== undefined && spec.max !== undefined) return `<${spec.min}-${spec.max}>`;
      return spec.min !== undefined ? `<integer >= ${spec.min}>` : '<integer>';
    case 'enum':
      return `<${spec.values.join('|')}>`;
    case 'bool':
      return '<true|false>';
    case 'string':
      return spec.format === 'zkConnect' ? '<host:port[,host:port...]>' : '<value>';
  }
}

function unknownKeyMessage(key: string, where: KeySection | 'topic', candidates: readonly string[]): string {
  const header = where === 'topic' ? 'a [topic=...] section' : `[${where}]`;
  const suggestion = closestMatch(key, candidates);
  return suggestion !== undefined
    ? `unknown key '${key}' in ${header}; did you mean '${suggestion}'?`
    : `unknown key '${key}' in ${header}; valid keys: ${candidates.join(', ')}`;
}

/** Parses the entries of a `[system]` or `[zookeeper]` section. */
function parseKeySection(section: IniSection, kind: KeySection, file: string, baseDir: string): ParsedSection {
  const values = new Map<string, SetValue>();
  for (const entry of section.entries) {
    const where = { file, line: entry.line };
    const spec = findSpec(kind, entry.key);
    if (spec === undefined) {
      const elsewhere = CONFIG_SCHEMA.find((candidate) => candidate.key === entry.key);
      if (elsewhere !== undefined) {
        throw new ConfigError(`key '${entry.key}' belongs in [${elsewhere.section}], not [${kind}]; move it there`, where);
      }
      throw new ConfigError(unknownKeyMessage(entry.key, kind, specsOf(kind).map((s) => s.key)), where);
    }
    // Blank = "not set": the default applies (required keys are checked later).
    const value = entry.value === '' ? undefined : parseValue(spec, entry.value, { ...where, baseDir });
    values.set(entry.key, { value, line: entry.line });
  }
  return { section, values };
}

/** Parses the entries of a `[topic=<pattern>]` section. */
function parseTopicSection(section: IniSection, pattern: string, file: string, baseDir: string): ParsedTopic {
  const values = new Map<string, SetValue>();
  const groupFilters = new Map<string, string>();
  for (const entry of section.entries) {
    const where = { file, line: entry.line };
    if (entry.key.startsWith(GROUP_FILTER_PREFIX)) {
      const group = entry.key.slice(GROUP_FILTER_PREFIX.length);
      if (group === '' || /\s/.test(group)) {
        throw new ConfigError(`invalid consumer group in '${entry.key}'; expected group.<consumerGroup>=<filter class>`, where);
      }
      if (entry.value !== '') groupFilters.set(group, entry.value);
      continue;
    }
    const spec = findSpec('topic', entry.key);
    if (spec === undefined) {
      const elsewhere = CONFIG_SCHEMA.find((candidate) => candidate.key === entry.key);
      if (elsewhere !== undefined) {
        throw new ConfigError(`key '${entry.key}' cannot be set per topic; it belongs in [${elsewhere.section}]`, where);
      }
      const candidates = [...topicSpecs().map((s) => s.key), `${GROUP_FILTER_PREFIX}<consumerGroup>`];
      throw new ConfigError(unknownKeyMessage(entry.key, 'topic', candidates), where);
    }
    const value = entry.value === '' ? undefined : parseValue(spec, entry.value, { ...where, baseDir });
    values.set(entry.key, { value, line: entry.line });
  }
  return { section, values, pattern, groupFilters };
}

/**
 * Parses and validates the text of a `server.ini`.
 *
 * @returns the configuration, deeply frozen, with every default applied and every topic
 *   section's missing values inherited from `[system]`.
 * @throws {@link ConfigError} on the first problem found, in file order: unparsable line,
 *   duplicate key or section, unknown section, unknown key (with a "did you mean" suggestion),
 *   invalid or out-of-range value; then missing `[system]`, missing or blank `brokerId`,
 *   `zk.zkEnable=true` without `zk.zkConnect`, and no `[topic=...]` section.
 */
export function parseBrokerConfig(text: string, options: ParseBrokerConfigOptions = {}): BrokerConfig {
  const file = options.file ?? '<server.ini>';
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const machine: MachineDefaults = { ...detectMachineDefaults(), ...options.machine };
  const document = parseIni(text, file);

  let system: ParsedSection | undefined;
  let zookeeper: ParsedSection | undefined;
  const topics: ParsedTopic[] = [];
  const patternLines = new Map<string, number>();
  for (const section of document.sections) {
    const where = { file, line: section.line };
    if (section.name === 'system') {
      system = parseKeySection(section, 'system', file, baseDir);
      continue;
    }
    if (section.name === 'zookeeper') {
      zookeeper = parseKeySection(section, 'zookeeper', file, baseDir);
      continue;
    }
    const topicMatch = /^topic\s*=(.*)$/.exec(section.name);
    if (topicMatch === null) {
      if (section.name === 'topic') throw new ConfigError('a topic section needs a name: [topic=<name or pattern>], e.g. [topic=test]', where);
      const suggestion = closestMatch(section.name, ['system', 'zookeeper']);
      const hint = suggestion === undefined ? '' : `did you mean [${suggestion}]? `;
      throw new ConfigError(`unknown section [${section.name}]; ${hint}valid sections are ${SECTION_FORMS}`, where);
    }
    const pattern = (topicMatch[1] ?? '').trim();
    const problem = topicPatternError(pattern);
    if (problem !== undefined) {
      throw new ConfigError(`invalid topic section [${section.name}]: the topic name or pattern is invalid because ${problem}`, where);
    }
    const first = patternLines.get(pattern);
    if (first !== undefined) throw new ConfigError(`duplicate topic section for '${pattern}' (first defined at line ${first})`, where);
    patternLines.set(pattern, section.line);
    topics.push(parseTopicSection(section, pattern, file, baseDir));
  }

  if (system === undefined) throw new ConfigError('no [system] section; add one with at least brokerId=<0-1023>', { file });
  const systemSection = system;
  for (const spec of specsOf('system')) {
    if (spec.required !== true) continue;
    const set = systemSection.values.get(spec.key);
    if (set === undefined) {
      throw new ConfigError(`missing required key '${spec.key}' in [system]; add ${spec.key}=${placeholder(spec)} (${spec.doc})`, {
        file,
        line: systemSection.section.line,
      });
    }
    if (set.value === undefined) {
      throw new ConfigError(`blank value for ${spec.key}; set ${spec.key}=${placeholder(spec)} (${spec.doc})`, { file, line: set.line });
    }
  }

  /** The value of a system / zookeeper key: as set, else its default. */
  const valueOf = (spec: KeySpec, from: ParsedSection | undefined): ConfigValue | undefined => {
    const set = from?.values.get(spec.key)?.value;
    if (set !== undefined) return set;
    switch (spec.dynamicDefault) {
      case 'firstIpv4':
        return machine.hostName;
      case 'tenTimesCpus':
        return 10 * machine.cpuCount;
      case 'homeMeta':
        return path.resolve(machine.homeDir, 'meta');
      case 'systemDataPath':
        return resolvedSystem('dataPath');
      case undefined:
        return spec.default;
    }
  };
  const resolvedSystem = (key: string): ConfigValue | undefined => {
    const spec = findSpec('system', key);
    if (spec === undefined) throw new Error(`internal: no spec for system key '${key}'`);
    return valueOf(spec, systemSection);
  };
  const resolvedZk = (key: string): ConfigValue | undefined => {
    const spec = findSpec('zookeeper', key);
    if (spec === undefined) throw new Error(`internal: no spec for zookeeper key '${key}'`);
    return valueOf(spec, zookeeper);
  };
  // The schema guarantees each key's type; these narrow it and guard against table mistakes.
  const num = (value: ConfigValue | undefined, key: string): number => {
    if (typeof value !== 'number') throw new Error(`internal: '${key}' is not a number`);
    return value;
  };
  const bool = (value: ConfigValue | undefined, key: string): boolean => {
    if (typeof value !== 'boolean') throw new Error(`internal: '${key}' is not a boolean`);
    return value;
  };
  const str = (value: ConfigValue | undefined, key: string): string => {
    if (typeof value !== 'string') throw new Error(`internal: '${key}' is not a string`);
    return value;
  };
  const sysNum = (key: string): number => num(resolvedSystem(key), key);
  const sysBool = (key: string): boolean => bool(resolvedSystem(key), key);
  const sysStr = (key: string): string => str(resolvedSystem(key), key);

  const flushTxLogAtCommit = sysNum('flushTxLogAtCommit');
  if (flushTxLogAtCommit !== 0 && flushTxLogAtCommit !== 1 && flushTxLogAtCommit !== 2) {
    throw new Error('internal: flushTxLogAtCommit escaped validation');
  }
  const appClassPath = resolvedSystem('appClassPath');
  const systemConfig: SystemConfig = {
    brokerId: sysNum('brokerId'),
    hostName: sysStr('hostName'),
    serverPort: sysNum('serverPort'),
    serverHost: sysStr('serverHost'),
    httpPort: sysNum('httpPort'),
    httpHost: sysStr('httpHost'),
    maxMessageSize: sysNum('maxMessageSize'),
    dashboardHttpPort: sysNum('dashboardHttpPort'),
    numPartitions: sysNum('numPartitions'),
    dataPath: sysStr('dataPath'),
    dataLogPath: sysStr('dataLogPath'),
    appClassPath: appClassPath === undefined ? undefined : str(appClassPath, 'appClassPath'),
    unflushThreshold: sysNum('unflushThreshold'),
    unflushInterval: sysNum('unflushInterval'),
    maxSegmentSize: sysNum('maxSegmentSize'),
    maxTransferSize: sysNum('maxTransferSize'),
    getProcessThreadCount: sysNum('getProcessThreadCount'),
    putProcessThreadCount: sysNum('putProcessThreadCount'),
    deletePolicy: sysStr('deletePolicy'),
    deleteWhen: sysStr('deleteWhen'),
    quartzThreadCount: sysNum('quartzThreadCount'),
    maxCheckpoints: sysNum('maxCheckpoints'),
    checkpointInterval: sysNum('checkpointInterval'),
    maxTxTimeoutTimerCapacity: sysNum('maxTxTimeoutTimerCapacity'),
    maxTxTimeoutInSeconds: sysNum('maxTxTimeoutInSeconds'),
    flushTxLogAtCommit,
    acceptPublish: sysBool('acceptPublish'),
    acceptSubscribe: sysBool('acceptSubscribe'),
    stat: sysBool('stat'),
    updateConsumerOffsets: sysBool('updateConsumerOffsets'),
    loadMessageStoresInParallel: sysBool('loadMessageStoresInParallel'),
  };

  const zkEnable = bool(resolvedZk('zk.zkEnable'), 'zk.zkEnable');
  const zkConnect = resolvedZk('zk.zkConnect');
  if (zkEnable && zkConnect === undefined) {
    // Why conditional: MetaQ always required zkConnect, but a standalone broker (zkEnable=false)
    // never talks to ZooKeeper, so demanding an address there would only invite fake values.
    const setConnect = zookeeper?.values.get('zk.zkConnect');
    const enableLine = zookeeper?.values.get('zk.zkEnable')?.line;
    const fix = 'add zk.zkConnect=<host:port[,host:port...]> to [zookeeper], or set zk.zkEnable=false in [zookeeper] for a standalone broker';
    if (setConnect !== undefined) {
      throw new ConfigError(`blank value for zk.zkConnect, which is required when zk.zkEnable=true; ${fix}`, { file, line: setConnect.line });
    }
    const line = enableLine ?? zookeeper?.section.line;
    const why = enableLine === undefined ? 'zk.zkEnable is true by default' : 'zk.zkEnable=true';
    throw new ConfigError(`missing zk.zkConnect: it is required because ${why}; ${fix}`, line === undefined ? { file } : { file, line });
  }
  const zookeeperConfig: ZookeeperConfig = {
    zkEnable,
    // Empty when not set: a standalone broker has no ensemble, and a made-up default would mislead.
    zkConnect: zkConnect === undefined ? '' : str(zkConnect, 'zk.zkConnect'),
    zkSessionTimeoutMs: num(resolvedZk('zk.zkSessionTimeoutMs'), 'zk.zkSessionTimeoutMs'),
    zkConnectionTimeoutMs: num(resolvedZk('zk.zkConnectionTimeoutMs'), 'zk.zkConnectionTimeoutMs'),
    zkSyncTimeMs: num(resolvedZk('zk.zkSyncTimeMs'), 'zk.zkSyncTimeMs'),
    zkRoot: str(resolvedZk('zk.zkRoot'), 'zk.zkRoot'),
  };

  if (topics.length === 0) {
    throw new ConfigError('no topic section; add at least one [topic=<name>] section, e.g. [topic=test] (an empty section inherits every value from [system])', {
      file,
    });
  }
  const topicConfigs = topics.map((topic): TopicConfig => {
    /** The topic's own value, else the (resolved) system value: MetaQ's inheritance. */
    const inherited = (key: keyof SystemConfig): ConfigValue | undefined => topic.values.get(key)?.value ?? systemConfig[key];
    return {
      pattern: topic.pattern,
      numPartitions: num(inherited('numPartitions'), 'numPartitions'),
      stat: bool(inherited('stat'), 'stat'),
      deletePolicy: str(inherited('deletePolicy'), 'deletePolicy'),
      deleteWhen: str(inherited('deleteWhen'), 'deleteWhen'),
      dataPath: str(inherited('dataPath'), 'dataPath'),
      unflushInterval: num(inherited('unflushInterval'), 'unflushInterval'),
      unflushThreshold: num(inherited('unflushThreshold'), 'unflushThreshold'),
      acceptSubscribe: bool(inherited('acceptSubscribe'), 'acceptSubscribe'),
      acceptPublish: bool(inherited('acceptPublish'), 'acceptPublish'),
      // fromEntries defines own properties, so even a group named '__proto__' is stored safely.
      groupFilters: Object.fromEntries(topic.groupFilters),
    };
  });

  if (systemConfig.updateConsumerOffsets) {
    componentLogger('config').warn({ file }, 'updateConsumerOffsets=true: consumers beyond the log end jump to the max offset; MetaQ advises false in production');
  }

  return deepFreeze({
    file: options.file === undefined ? undefined : path.resolve(options.file),
    rawText: text,
    system: systemConfig,
    zookeeper: zookeeperConfig,
    topics: topicConfigs,
  });
}

/**
 * Reads and parses a `server.ini` file (see {@link parseBrokerConfig}). Error messages name the
 * file as passed in `file`; {@link BrokerConfig.file} holds its absolute path.
 *
 * @throws {@link ConfigError} when the file cannot be read or is invalid.
 */
export async function loadBrokerConfig(file: string, options: LoadBrokerConfigOptions = {}): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`cannot read the configuration file: ${reason}`, { file }, { cause: error });
  }
  const config = parseBrokerConfig(text, { ...options, file });
  componentLogger('config').info(
    {
      file: config.file,
      brokerId: config.system.brokerId,
      serverPort: config.system.serverPort,
      dataPath: config.system.dataPath,
      zkEnable: config.zookeeper.zkEnable,
      topics: config.topics.map((topic) => topic.pattern),
    },
    'configuration loaded',
  );
  return config;
}
