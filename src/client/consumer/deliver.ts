/**
 * Giving one fetched message to the listener (metaq-reference §6.6): retried up to
 * `maxFetchRetries` times with a growing delay (`maxDelayFetchTimeInMills / 10 × attempt`),
 * then saved to the recover store so that the partition can move on. The caller advances the
 * partition's offset only after this resolves with `delivered` or `recovered`.
 */
import type { Logger } from '../../common/logger.js';
import type { ClientEmitter, ConsumerMessageEvent } from '../instrumentation.js';
import type { ConsumedMessage, MessageListener } from '../message.js';
import { sleep } from '../util/sleep.js';
import type { RecoverStore } from './recover-store.js';

/** What happened to a message. */
export type DeliveryOutcome =
  /** The listener accepted it. */
  | 'delivered'
  /** Every attempt failed; it is now in the recover store. */
  | 'recovered'
  /** The consumer is closing; the message was not consumed and will be fetched again. */
  | 'stopped';

/** What {@link deliver} needs besides the message. */
export interface DeliveryContext {
  readonly listener: MessageListener;
  readonly group: string;
  readonly brokerId: number;
  readonly maxFetchRetries: number;
  readonly maxDelayMs: number;
  readonly recoverStore: RecoverStore;
  readonly signal: AbortSignal;
  readonly emitter: ClientEmitter;
  readonly log: Logger;
}

/** Delay before retry `attempt` (1-based) of a failed listener call. */
export function retryDelay(attempt: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, Math.round((maxDelayMs / 10) * attempt));
}

/** Delivers `message`, retrying and finally recovering it; see the module comment. */
export async function deliver(message: ConsumedMessage, ctx: DeliveryContext): Promise<DeliveryOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ctx.listener(message);
      return 'delivered';
    } catch (error) {
      const event: ConsumerMessageEvent = { topic: message.topic, group: ctx.group, partition: message.partition, offset: message.offset, messageId: message.id };
      ctx.log.warn({ err: error, ...event, attempt }, 'listener failed');
      if (ctx.emitter.has('consumer.listener_failed')) ctx.emitter.emit('consumer.listener_failed', { ...event, attempt, error });
      if (attempt > ctx.maxFetchRetries) return recover(message, ctx, event);
    }
    if (!(await sleep(retryDelay(attempt, ctx.maxDelayMs), ctx.signal))) return 'stopped';
  }
}

async function recover(message: ConsumedMessage, ctx: DeliveryContext, event: ConsumerMessageEvent): Promise<DeliveryOutcome> {
  for (;;) {
    try {
      await ctx.recoverStore.save(ctx.brokerId, message);
      ctx.log.warn({ ...event, dir: ctx.recoverStore.dir }, 'message moved to the recover store after every retry failed');
      if (ctx.emitter.has('consumer.message_recovered')) ctx.emitter.emit('consumer.message_recovered', event);
      return 'recovered';
    } catch (error) {
      // Never skip a message that is not safely stored: wait and try again (disk full, permissions…).
      ctx.log.error({ err: error, ...event, dir: ctx.recoverStore.dir }, 'cannot save a failed message to the recover store; retrying');
      if (!(await sleep(Math.max(1000, ctx.maxDelayMs), ctx.signal))) return 'stopped';
    }
  }
}
