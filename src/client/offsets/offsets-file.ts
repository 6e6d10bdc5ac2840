/**
 * The JSON format of MetaQ's `LocalOffsetStorage` file (metaq-reference §6.7), read and written
 * losslessly:
 *
 * ```json
 * {"my-group":[
 * {"topic":"test","partition":{"brokerId":0,"partition":1},"offset":1024,"messageId":-6402851124219904,"modified":false}
 * ]}
 * ```
 *
 * Why hand-written instead of `JSON.stringify`/`JSON.parse` alone: message ids are 64-bit and
 * lose precision as JavaScript numbers. They are written as JSON numbers (as Java writes them)
 * and, before parsing, quoted so that they come back as exact bigints.
 */
import type { PartitionOffset } from './offset-storage.js';

/** Offsets by group, as stored in the file. */
export type OffsetsByGroup = Map<string, PartitionOffset[]>;

/** Serialises every group's offsets: one line per partition, for humans and diffs. */
export function formatOffsetsFile(groups: OffsetsByGroup): string {
  const parts: string[] = [];
  for (const [group, offsets] of groups) {
    const entries = offsets.map(
      (o) =>
        `{"topic":${JSON.stringify(o.topic)},"partition":{"brokerId":${o.brokerId},"partition":${o.partition}},` +
        `"offset":${o.offset},"messageId":${o.messageId.toString()},"modified":false}`,
    );
    parts.push(`${JSON.stringify(group)}:[\n${entries.join(',\n')}\n]`);
  }
  return `{${parts.join(',\n')}}\n`;
}

/** Every JSON string token, optionally followed by `: <integer>`. Consuming whole strings keeps the scan out of string contents. */
const STRING_OR_KEYED_INTEGER = /"(?:[^"\\]|\\.)*"(?:(\s*:\s*)(-?\d+)(?![\d.eE]))?/g;

/**
 * Parses an offsets file.
 *
 * @throws {Error} with a reason when the text is not JSON of the expected shape.
 */
export function parseOffsetsFile(text: string): OffsetsByGroup {
  const exact = text.replace(STRING_OR_KEYED_INTEGER, (match, colon: string | undefined, digits: string | undefined) => {
    if (colon === undefined || digits === undefined || !match.startsWith('"messageId"')) return match;
    return `"messageId"${colon}"${digits}"`;
  });
  const root: unknown = JSON.parse(exact);
  if (root === null || typeof root !== 'object' || Array.isArray(root)) throw new Error('the top level is not an object of groups');
  const groups: OffsetsByGroup = new Map();
  for (const [group, list] of Object.entries(root as Record<string, unknown>)) {
    if (!Array.isArray(list)) throw new Error(`group ${JSON.stringify(group)} is not an array`);
    groups.set(
      group,
      list.map((entry, index) => parseEntry(entry, `${group}[${index}]`)),
    );
  }
  return groups;
}

function parseEntry(entry: unknown, where: string): PartitionOffset {
  const e = entry as { topic?: unknown; partition?: { brokerId?: unknown; partition?: unknown }; offset?: unknown; messageId?: unknown };
  const brokerId = e.partition?.brokerId;
  const partition = e.partition?.partition;
  if (typeof e.topic !== 'string' || !Number.isInteger(brokerId) || !Number.isInteger(partition) || !Number.isSafeInteger(e.offset)) {
    throw new Error(`${where} needs topic, partition.brokerId, partition.partition and offset`);
  }
  let messageId = -1n;
  if (typeof e.messageId === 'string' && /^-?\d+$/.test(e.messageId)) messageId = BigInt(e.messageId);
  else if (e.messageId !== undefined && e.messageId !== null) throw new Error(`${where}.messageId is not an integer`);
  return { topic: e.topic, brokerId: brokerId as number, partition: partition as number, offset: e.offset as number, messageId };
}
