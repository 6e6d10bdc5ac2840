/**
 * `get`: a slice of a partition log from an offset (metaq-reference §1.4, §1.6), and `offset`:
 * the start of the segment that holds an offset. A group with a server-side filter
 * (`group.<name>=<module>`) gets the slice filtered (filters/filter-applier.ts explains the
 * answer's form and why it differs from MetaQ's when a rejected record sits between accepted ones).
 */
import { LONG_MAX_OFFSET, type LongMaxOffset } from '../../protocol/frames.js';
import { ResultCode } from '../../protocol/result-codes.js';
import { componentLogger } from '../../common/logger.js';
import { applyConsumerFilter } from '../filters/filter-applier.js';
import type { BrokerContext } from './broker-context.js';
import { result, type Reply } from './reply.js';
import {
  getPartitionClosedBody,
  invalidMaxSizeBody,
  messageNotFoundBody,
  offsetBody,
  topicPartitionNotFoundBody,
} from '../../protocol/response-bodies.js';

const log = componentLogger('get');

/** The parts of a get request the handler needs. */
export interface GetRequest {
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  readonly offset: number | LongMaxOffset;
  readonly maxSize: number;
}

/** Handles a get. Never throws. */
export async function handleGet(ctx: BrokerContext, request: GetRequest): Promise<Reply> {
  const { topic, partition } = request;
  ctx.stats.get(topic);
  if (ctx.partitions.isClosed(topic, partition)) return result(ResultCode.Forbidden, getPartitionClosedBody(ctx.config.system.brokerId, partition));
  const topicConfig = ctx.store.topicConfig(topic);
  if (topicConfig !== undefined && !topicConfig.acceptSubscribe) {
    return result(ResultCode.Forbidden, `topic ${topic} does not accept consumers (acceptSubscribe=false)`);
  }
  const store = ctx.store.get(topic, partition);
  if (store === undefined) {
    ctx.stats.getMiss(topic);
    return result(ResultCode.NotFound, topicPartitionNotFoundBody(topic, partition));
  }
  if (request.maxSize <= 0) return result(ResultCode.BadRequest, invalidMaxSizeBody(request.maxSize));
  if (request.offset === LONG_MAX_OFFSET) {
    // "Where is the end?": MetaQ answers 301 with the max offset even without updateConsumerOffsets.
    ctx.stats.getMiss(topic);
    ctx.stats.offset(topic);
    return result(ResultCode.Moved, String(store.maxOffset));
  }
  const offset = request.offset;
  try {
    const slice = await store.read(offset, Math.min(ctx.config.system.maxTransferSize, request.maxSize));
    switch (slice.kind) {
      case 'data': {
        const filter = ctx.filters?.find(topicConfig?.pattern, request.group);
        if (filter === undefined) return { kind: 'value', data: slice.data };
        const filtered = applyConsumerFilter(filter, slice.data, { topic, partition, offset });
        switch (filtered.kind) {
          case 'value':
            return { kind: 'value', data: filtered.data };
          case 'skip':
            // MetaQ's "nothing acceptable here, move forward" answer.
            return result(ResultCode.Moved, String(filtered.nextOffset));
          case 'unfiltered':
            return { kind: 'value', data: slice.data };
        }
      }
      case 'before-start':
        ctx.stats.getMiss(topic);
        return result(ResultCode.Moved, String(slice.minOffset));
      case 'past-end':
        ctx.stats.getMiss(topic);
        if (offset > slice.maxOffset && ctx.config.system.updateConsumerOffsets) {
          ctx.stats.offset(topic);
          return result(ResultCode.Moved, String(slice.maxOffset));
        }
        return result(ResultCode.NotFound, messageNotFoundBody(offset));
    }
  } catch (error) {
    log.error({ err: error, topic, partition, offset }, 'get failed');
    return result(ResultCode.InternalServerError, `Get message failed.Detail:${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The parts of an offset request the handler needs. */
export interface OffsetRequest {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** Handles `offset`: the start of the segment holding the offset (max offset past the end). */
export function handleOffset(ctx: BrokerContext, request: OffsetRequest): Reply {
  ctx.stats.offset(request.topic);
  const store = ctx.store.get(request.topic, request.partition);
  if (store === undefined) return result(ResultCode.NotFound, topicPartitionNotFoundBody(request.topic, request.partition));
  return result(ResultCode.Success, offsetBody(store.segmentStartFor(request.offset)));
}
