/**
 * The configuration module: reads `server.ini` (metaq-reference §5.1) into a typed, validated,
 * deeply frozen {@link BrokerConfig}. See docs/configuration.md for every key.
 */
export type { BrokerConfig, SystemConfig, TopicConfig, ZookeeperConfig } from './types.js';
export { parseBrokerConfig, loadBrokerConfig, type ParseBrokerConfigOptions, type LoadBrokerConfigOptions } from './load.js';
export { parseDeletePolicy, type DeletePolicy } from './delete-policy.js';
export {
  topicConfigFor,
  isValidTopicName,
  topicNameError,
  topicPatternError,
  topicPatternMatches,
  isWildcardPattern,
  configuredTopicNames,
  MAX_TOPIC_NAME_BYTES,
} from './topic-lookup.js';
export { evaluateIntegerExpression } from './expression.js';
export { closestMatch, levenshtein } from './levenshtein.js';
export { parseIni, type IniDocument, type IniEntry, type IniSection } from './ini.js';
export { CONFIG_SCHEMA, GROUP_FILTER_PREFIX, findSpec, specsOf, topicSpecs } from './schema.js';
export type { KeySpec, KeySection, IntSpec, EnumSpec, BoolSpec, StringSpec, StringFormat, DynamicDefault } from './schema.js';
export { detectMachineDefaults, firstNonInternalIpv4, type MachineDefaults } from './machine.js';
export { deepFreeze, type DeepReadonly } from './deep-freeze.js';
