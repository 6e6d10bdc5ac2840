/**
 * What the `metaq` commands print: one line per sent or consumed message (text for people,
 * JSON lines with `--json` for scripts) and the two-column stats table. Pure functions, unit
 * tested without a broker.
 *
 * JSON conventions: message ids are strings (they are 64-bit and would lose precision as JSON
 * numbers); offsets and partitions are numbers (offsets stay below 2^53).
 */
import { isUtf8 } from 'node:buffer';
import type { ConsumedMessage, SendResult } from '../../client/message.js';
import { plain, type Paint } from './style.js';

/** `sent id=<id> partition=<p> offset=<o>`, or a JSON line with `json`. */
export function formatSendResult(result: Pick<SendResult, 'id' | 'topic' | 'partition' | 'offset'>, json: boolean): string {
  if (json) return JSON.stringify({ id: String(result.id), topic: result.topic, partition: result.partition, offset: result.offset });
  return `sent id=${result.id} partition=${result.partition} offset=${result.offset}`;
}

/** The JSON form of a consumed message (see {@link formatMessage}). */
export interface MessageJson {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** The 64-bit id, as a decimal string. */
  readonly id: string;
  /** The attribute, or `null` for none. */
  readonly attribute: string | null;
  /** How `data` is encoded: `utf8` when the payload is valid UTF-8, `base64` otherwise. */
  readonly encoding: 'utf8' | 'base64';
  readonly data: string;
}

/** The JSON form of a consumed message: text stays readable, binary stays exact. */
export function messageToJson(message: Pick<ConsumedMessage, 'topic' | 'partition' | 'offset' | 'id' | 'attribute' | 'data'>): MessageJson {
  const utf8 = isUtf8(message.data);
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    id: String(message.id),
    attribute: message.attribute ?? null,
    encoding: utf8 ? 'utf8' : 'base64',
    data: message.data.toString(utf8 ? 'utf8' : 'base64'),
  };
}

/**
 * One consumed message: `<partition>:<offset> <id> [<attribute>] <text>` (the attribute part
 * only when the message has one; the payload decoded as UTF-8), or a JSON line with `json`.
 */
export function formatMessage(
  message: Pick<ConsumedMessage, 'topic' | 'partition' | 'offset' | 'id' | 'attribute' | 'data'>,
  json: boolean,
  paint: Paint = plain,
): string {
  if (json) return JSON.stringify(messageToJson(message));
  const where = paint('dim', `${message.partition}:${message.offset} ${message.id}`);
  const attribute = message.attribute === undefined ? '' : ` ${paint('cyan', `[${message.attribute}]`)}`;
  return `${where}${attribute} ${message.data.toString('utf8')}`;
}

/** The rows of a stats record: one per value line (a repeated key, joined with `\n` by the client, gives several rows). */
export function statsRows(stats: Readonly<Record<string, string>>): [string, string][] {
  const rows: [string, string][] = [];
  for (const [key, value] of Object.entries(stats)) {
    for (const line of value.split('\n')) rows.push([key, line]);
  }
  return rows;
}

/** A stats record as an aligned two-column table (keys padded to the longest), one line per row. */
export function formatStatsTable(stats: Readonly<Record<string, string>>, paint: Paint = plain): string {
  const rows = statsRows(stats);
  const width = rows.reduce((max, [key]) => Math.max(max, key.length), 0);
  return rows.map(([key, value]) => `${paint('bold', key)}${' '.repeat(width - key.length)}  ${value}`.trimEnd()).join('\n');
}

/** A stats record as JSON (pretty-printed): `{ key: value }`, a repeated key's values joined with `\n`. */
export function formatStatsJson(stats: Readonly<Record<string, string>>): string {
  return JSON.stringify({ ...stats }, null, 2);
}
