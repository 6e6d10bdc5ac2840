/**
 * `put`: store one message and answer `<msgId> <partition> <offset>` once the flush policy
 * allows (with group commit, after the fdatasync that covers it).
 */
import { messageChecksum } from '../../protocol/record.js';
import { ATTRIBUTE_FLAG } from '../../protocol/message-data.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { componentLogger } from '../../common/logger.js';
import type { BrokerContext } from './broker-context.js';
import { result, type Reply } from './reply.js';
import {
  CHECKSUM_FAILURE_DETAIL,
  putFailedBody,
  putPartitionClosedDetail,
  putResultBody,
  topicNotAcceptedDetail,
  wrongPartitionDetail,
} from '../../protocol/response-bodies.js';

const log = componentLogger('put');

/** The parts of a put request the handler needs (shared by the TCP and HTTP fronts). */
export interface PutRequest {
  readonly topic: string;
  /** Partition, or -1 for "broker chooses". */
  readonly partition: number;
  readonly data: Buffer;
  readonly flag: number;
  /** The producer's checksum, or -1 when it sent none. */
  readonly checksum: number;
}

/** Largest attribute block a put may carry on top of `maxMessageSize` (4-byte length + text). */
export const MAX_ATTRIBUTE_BLOCK = 64 * 1024;

/**
 * Why this data is not acceptable under `maxMessageSize`, if it is not: the payload (data
 * minus the attribute block) must fit, and an attribute block must be well-formed.
 */
export function messageSizeProblem(data: Buffer, flag: number, maxMessageSize: number): string | undefined {
  let payload = data.length;
  if ((flag & ATTRIBUTE_FLAG) !== 0) {
    if (data.length < 4) return `flag says the data starts with an attribute, but the data has only ${data.length} bytes`;
    const attributeLength = data.readInt32BE(0);
    if (attributeLength < 0 || attributeLength > data.length - 4) {
      return `attribute length ${attributeLength} does not fit in ${data.length} bytes of data`;
    }
    if (4 + attributeLength > MAX_ATTRIBUTE_BLOCK) return `attribute of ${attributeLength} bytes exceeds the limit of ${MAX_ATTRIBUTE_BLOCK - 4}`;
    payload -= 4 + attributeLength;
  }
  if (payload > maxMessageSize) return `message payload of ${payload} bytes exceeds maxMessageSize (${maxMessageSize} bytes)`;
  return undefined;
}

/** A put that passed every check: where it goes and its verified checksum. */
export interface CheckedPut {
  readonly ok: true;
  readonly partition: number;
  readonly checksum: number;
}

/**
 * Checks a put the way MetaQ does, in MetaQ's order (topic configured, partition open and in
 * range, publishing allowed) plus metaq's size and checksum checks. Shared by plain puts and
 * transactional puts, so a message is refused the same way whether or not it is in a transaction.
 */
export function checkPut(ctx: BrokerContext, request: PutRequest): CheckedPut | { readonly ok: false; readonly reply: Reply } {
  const { topic } = request;
  const fail = (code: number, partition: number, detail: string): { ok: false; reply: Reply } => {
    ctx.stats.putFailed(topic);
    return { ok: false, reply: result(code, putFailedBody(ctx.brokerUrl(), topic, partition, detail)) };
  };
  const topicConfig = ctx.store.topicConfig(topic);
  if (topicConfig === undefined) return fail(ResultCode.InternalServerError, request.partition, topicNotAcceptedDetail(topic));
  const partition = request.partition === -1 ? chooseOpenPartition(ctx, topic, topicConfig.numPartitions) : request.partition;
  if (ctx.partitions.isClosed(topic, partition)) {
    return fail(ResultCode.Forbidden, partition, putPartitionClosedDetail(ctx.config.system.brokerId, partition));
  }
  if (!topicConfig.acceptPublish) {
    return fail(ResultCode.Forbidden, partition, `topic ${topic} does not accept messages (acceptPublish=false)`);
  }
  if (partition < 0 || partition >= topicConfig.numPartitions) return fail(ResultCode.InternalServerError, partition, wrongPartitionDetail(partition));
  const sizeProblem = messageSizeProblem(request.data, request.flag, ctx.config.system.maxMessageSize);
  if (sizeProblem !== undefined) return fail(ResultCode.BadRequest, partition, sizeProblem);
  const checksum = messageChecksum(request.data);
  if (request.checksum !== -1 && request.checksum !== checksum) return fail(ResultCode.InternalServerError, partition, CHECKSUM_FAILURE_DETAIL);
  return { ok: true, partition, checksum };
}

/** Handles a put outside a transaction. Never throws: every failure becomes an error reply. */
export async function handlePut(ctx: BrokerContext, request: PutRequest): Promise<Reply> {
  const { topic } = request;
  ctx.stats.put(topic, request.data.length);
  const checked = checkPut(ctx, request);
  if (!checked.ok) return checked.reply;
  const { partition, checksum } = checked;
  try {
    const log = await ctx.store.getOrCreate(topic, partition);
    const id = ctx.ids.next();
    const offset = await log.append({ id, flag: request.flag, data: request.data, checksum });
    return result(ResultCode.Success, putResultBody(id, partition, offset));
  } catch (error) {
    log.error({ err: error, topic, partition }, 'put failed');
    ctx.stats.putFailed(topic);
    return result(ResultCode.InternalServerError, putFailedBody(ctx.brokerUrl(), topic, partition, error instanceof Error ? error.message : String(error)));
  }
}

/** A random open partition (MetaQ chose among all, closed ones included); 0 when all are closed. */
function chooseOpenPartition(ctx: BrokerContext, topic: string, numPartitions: number): number {
  const open: number[] = [];
  for (let p = 0; p < numPartitions; p++) if (!ctx.partitions.isClosed(topic, p)) open.push(p);
  return open[Math.floor(Math.random() * open.length)] ?? 0;
}
