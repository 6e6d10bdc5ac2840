/**
 * Routes a decoded request frame to its handler. Shared by every connection.
 */
import type { RequestFrame } from '../../protocol/frames.js';
import { ResultCode } from '../../protocol/result-codes.js';
import type { BrokerContext } from './broker-context.js';
import type { ConnectionSession } from './connection-session.js';
import { handleGet, handleOffset } from './get-command.js';
import { handlePut } from './put-command.js';
import { result, type Reply } from './reply.js';
import { handleStats } from './stats-command.js';

/** What to do with a request: answer it (now or later), or close the connection (`quit`). */
export type Dispatch = Reply | Promise<Reply> | 'quit';

/** Dispatches one request from `session`. Handlers never throw; every failure is an error reply. */
export function dispatchRequest(ctx: BrokerContext, frame: RequestFrame, session: ConnectionSession): Dispatch {
  switch (frame.type) {
    case 'put': {
      const request = { topic: frame.topic, partition: frame.partition, data: frame.data, flag: frame.flag, checksum: frame.checksum };
      const key = frame.transactionKey;
      return key === undefined || key === null ? handlePut(ctx, request) : ctx.transactions.put(request, key, session);
    }
    case 'get':
      return handleGet(ctx, frame);
    case 'offset':
      return handleOffset(ctx, frame);
    case 'stats':
      return handleStats(ctx, frame.item);
    case 'version':
      return result(ResultCode.Success, ctx.version);
    case 'quit':
      return 'quit';
    case 'transaction':
      return ctx.transactions.command(frame, session);
    case 'sync':
      // What gecko answers when no processor is registered: this broker is not a sync slave.
      return result(ResultCode.ServiceUnavailable, 'sync is only accepted by a sync-replication slave');
  }
}
