/**
 * The texts a broker puts in `result` bodies for put/get/offset/stats (metaq-reference §1.4),
 * as functions, so that the broker, the client and the tests share the exact strings (Java
 * clients show them to users and some parse them). Grammar quirks ("is not exists", "do not
 * accept") are MetaQ's and kept on purpose.
 */
import { ProtocolError } from './protocol-error.js';
import { parseInt32, parseInt64, parseSafeInteger } from './numbers.js';

/** What a successful put (or sync) answers: `<msgId> <partition> <offset>`. */
export interface PutResult {
  /** The broker-assigned id (signed 64-bit). */
  readonly messageId: bigint;
  /** The partition actually used (the broker resolves `-1`). */
  readonly partition: number;
  /** Absolute offset of the stored record; `-1` for a put inside a transaction. */
  readonly offset: number;
}

/** The 200 body of a put: `<msgId> <partition> <offset>` (offset `-1` inside a transaction). */
export function putResultBody(messageId: bigint, partition: number, offset: number): string {
  return `${messageId} ${partition} ${offset}`;
}

/**
 * Parses the 200 body of a put or sync.
 *
 * @throws {ProtocolError} when it is not three decimal numbers separated by single spaces.
 */
export function parsePutResultBody(body: Buffer | string): PutResult {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const [id, partitionText, offsetText, extra] = text.split(' ');
  const messageId = id === undefined ? undefined : parseInt64(id);
  const partition = partitionText === undefined ? undefined : parseInt32(partitionText);
  const offset = offsetText === undefined ? undefined : parseSafeInteger(offsetText);
  if (messageId === undefined || partition === undefined || offset === undefined || extra !== undefined) {
    throw new ProtocolError(`Malformed put result body ${JSON.stringify(text.slice(0, 200))}: expected "<msgId> <partition> <offset>"`);
  }
  return { messageId, partition, offset };
}

/**
 * The body of a failed put (403/500):
 * `Put message to [broker '<url>'] [partition '<topic>-<partition>'] failed.Detail:<detail>`.
 * `brokerUrl` is the broker's `meta://host:port`.
 */
export function putFailedBody(brokerUrl: string, topic: string, partition: number, detail: string): string {
  return `Put message to [broker '${brokerUrl}'] [partition '${topic}-${partition}'] failed.Detail:${detail}`;
}

/** Put's 403 detail (lowercase `partition`, unlike get's): `partition[<brokerId>-<partition>] has been closed`. */
export function putPartitionClosedDetail(brokerId: number, partition: number): string {
  return `partition[${brokerId}-${partition}] has been closed`;
}

/** Put's 500 detail for a topic no `[topic=…]` section matches. */
export function topicNotAcceptedDetail(topic: string): string {
  return `The server do not accept topic ${topic}`;
}

/** Put's 500 detail for a partition number ≥ the topic's `numPartitions`. */
export function wrongPartitionDetail(partition: number): string {
  return `wrong partition ${partition}`;
}

/** Put's 500 detail when the broker's CRC differs from the header's checksum. */
export const CHECKSUM_FAILURE_DETAIL = 'Checksum failure,message may be corrupted when transfering on networking.';

/** Get's 403 body: `Partition[<brokerId>-<partition>] has been closed`. */
export function getPartitionClosedBody(brokerId: number, partition: number): string {
  return `Partition[${brokerId}-${partition}] has been closed`;
}

/** The 404 body of get and offset when no store exists (the backquotes are literal). */
export function topicPartitionNotFoundBody(topic: string, partition: number): string {
  return `The topic \`${topic}\` in partition \`${partition}\` is not exists`;
}

/** Get's 400 body for `maxSize <= 0`. */
export function invalidMaxSizeBody(maxSize: number): string {
  return `Bad request,invalid max size:${maxSize}`;
}

/** Get's 404 body at/after the end of the log. */
export function messageNotFoundBody(offset: number | bigint): string {
  return `Could not find message at position ${offset}`;
}

/** The body of get's 301 and offset's 200: a decimal offset. */
export function offsetBody(offset: number): string {
  return String(offset);
}

/**
 * Parses an offset body (get's 301, offset's 200).
 *
 * @throws {ProtocolError} when it is not a decimal integer within ±(2^53−1).
 */
export function parseOffsetBody(body: Buffer | string): number {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const offset = parseSafeInteger(text);
  if (offset === undefined) throw new ProtocolError(`Malformed offset body ${JSON.stringify(text.slice(0, 200))}`);
  return offset;
}

/** A `stats` body: `STATS\r\n`, one line per item, `END\r\n`. */
export function statsBody(lines: readonly string[]): string {
  return `STATS\r\n${lines.map((line) => `${line}\r\n`).join('')}END\r\n`;
}
