/**
 * Topic names, topic section patterns, and finding the `[topic=...]` section that applies to a
 * topic.
 *
 * Lookup order: a section whose pattern is exactly the topic name wins; otherwise the first
 * wildcard section, in file order, whose pattern matches. `*` matches any run of characters
 * (including none); every other character matches itself.
 */
import type { BrokerConfig, TopicConfig } from './types.js';

/**
 * Longest topic name in UTF-8 bytes. Why: a partition lives in the directory
 * `<topic>-<partition>`, and most file systems cap a name at 255 bytes; 200 leaves room for the
 * partition number.
 */
export const MAX_TOPIC_NAME_BYTES = 200;

/** Reasons shared by names and patterns; `null` when `text` is fine. */
function characterProblem(text: string): string | null {
  if (text === '') return 'it is empty';
  if (Buffer.byteLength(text, 'utf8') > MAX_TOPIC_NAME_BYTES) return `it is longer than ${MAX_TOPIC_NAME_BYTES} bytes`;
  // Why these: '/' and '\' would escape the data directory, whitespace would break the
  // space-separated text protocol (`put <topic> ...`), and NUL / control characters are never
  // intended and cannot appear in file names.
  if (/[/\\]/.test(text)) return "it contains '/' or '\\' (a topic becomes a directory name)";
  if (/[\s\u0000-\u001f\u007f]/.test(text)) return 'it contains whitespace or a control character';
  return null;
}

/**
 * Why `name` cannot be a topic name, or `undefined` when it can. A topic name is 1–200 UTF-8
 * bytes without `/`, `\`, whitespace, control characters (NUL included) or `*`, and is not `.`
 * or `..`. Dashes are fine: a partition directory `<topic>-<partition>` is split at its LAST dash.
 */
export function topicNameError(name: string): string | undefined {
  const problem = characterProblem(name);
  if (problem !== null) return problem;
  if (name.includes('*')) return "it contains '*' (only topic section patterns may use wildcards)";
  if (name === '.' || name === '..') return `'${name}' is not a usable directory name`;
  return undefined;
}

/** True when `name` is a valid topic name (see {@link topicNameError}). */
export function isValidTopicName(name: string): boolean {
  return topicNameError(name) === undefined;
}

/**
 * Why `pattern` cannot be a `[topic=...]` pattern, or `undefined` when it can. A pattern without
 * `*` must be a valid topic name; one with `*` follows the same character rules.
 */
export function topicPatternError(pattern: string): string | undefined {
  if (!pattern.includes('*')) return topicNameError(pattern);
  return characterProblem(pattern) ?? undefined;
}

/** True when `pattern` contains a `*` wildcard. */
export function isWildcardPattern(pattern: string): boolean {
  return pattern.includes('*');
}

/** Compiles a wildcard pattern to an anchored regular expression. */
function compile(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

/** True when `topic` matches `pattern` (`*` = any run of characters, everything else literal). */
export function topicPatternMatches(pattern: string, topic: string): boolean {
  return isWildcardPattern(pattern) ? compile(pattern).test(topic) : pattern === topic;
}

interface Lookup {
  readonly exact: ReadonlyMap<string, TopicConfig>;
  readonly wildcards: readonly { readonly regex: RegExp; readonly topic: TopicConfig }[];
}

// Why a WeakMap cache: lookups happen per request, and a BrokerConfig is frozen, so the index
// built for it once stays valid for its lifetime and disappears with it.
const lookups = new WeakMap<BrokerConfig, Lookup>();

function lookupFor(config: BrokerConfig): Lookup {
  let lookup = lookups.get(config);
  if (lookup === undefined) {
    const exact = new Map<string, TopicConfig>();
    const wildcards: { regex: RegExp; topic: TopicConfig }[] = [];
    for (const topic of config.topics) {
      if (isWildcardPattern(topic.pattern)) wildcards.push({ regex: compile(topic.pattern), topic });
      else if (!exact.has(topic.pattern)) exact.set(topic.pattern, topic);
    }
    lookup = { exact, wildcards };
    lookups.set(config, lookup);
  }
  return lookup;
}

/**
 * The topic section that applies to `topic`: the section named exactly `topic`, else the first
 * wildcard section in file order that matches it, else `undefined` (the topic is not configured).
 * An invalid topic name (see {@link isValidTopicName}) never matches, even a `*` section.
 */
export function topicConfigFor(config: BrokerConfig, topic: string): TopicConfig | undefined {
  if (!isValidTopicName(topic)) return undefined;
  const lookup = lookupFor(config);
  return lookup.exact.get(topic) ?? lookup.wildcards.find((entry) => entry.regex.test(topic))?.topic;
}

/** The concrete (wildcard-free) topic names configured, in file order. */
export function configuredTopicNames(config: BrokerConfig): readonly string[] {
  return Object.freeze(config.topics.filter((topic) => !isWildcardPattern(topic.pattern)).map((topic) => topic.pattern));
}
