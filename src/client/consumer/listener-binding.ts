/**
 * The hook through which a listener built by a delivery mode (the PostgreSQL exactly-once mode,
 * consumer/postgres-exactly-once.ts) takes part in how the consumer runs its subscription.
 *
 * A plain {@link MessageListener} only sees messages. A mode that commits offsets itself also
 * needs to know which broker a partition is on (the offset key), to keep failed messages in a
 * store of its own, and to check that the consumer uses a compatible offset storage. Such a
 * listener carries a {@link ListenerBinding} under {@link LISTENER_BINDING}; `subscribe()`
 * calls {@link ListenerBinding.bind} once, and the consumer then uses the bound pieces instead
 * of its defaults. Listeners without a binding are run exactly as before.
 *
 * Why a property on the listener rather than a new `subscribe` parameter: the mode then reads as
 * a listener (`subscribe(topic, options, exactlyOnce(storage, handler))`), and the consumer's
 * API and behaviour for every other listener stay unchanged.
 */
import type { Logger } from '../../common/logger.js';
import type { MessageListener } from '../message.js';
import type { OffsetStorage } from '../offsets/offset-storage.js';
import type { PartitionRef } from '../session/broker-discovery.js';
import type { RecoverStore } from './recover-store.js';

/** The key of a listener's {@link ListenerBinding}. */
export const LISTENER_BINDING: unique symbol = Symbol('metaq.listenerBinding');

/** What a binding learns about the subscription it is bound to. */
export interface BindingContext {
  readonly topic: string;
  readonly group: string;
  /** The consumer's offset storage. */
  readonly offsetStorage: OffsetStorage;
  readonly log: Logger;
}

/** The pieces the consumer uses for a bound subscription. */
export interface BoundSubscription {
  /** Where messages go when every retry failed (replaces the local recover store). */
  readonly recoverStore: RecoverStore;
  /** The listener of the fetch loop of one partition. */
  listenerFor(ref: PartitionRef): MessageListener;
  /** The listener of re-deliveries from {@link recoverStore}. */
  readonly recoveredListener: MessageListener;
}

/** Attached to a listener under {@link LISTENER_BINDING}. */
export interface ListenerBinding {
  /**
   * Binds to one subscription; called by `subscribe()`.
   *
   * @throws a MetaqError when the consumer cannot run this listener (e.g. another offset storage).
   */
  bind(context: BindingContext): BoundSubscription;
}

/** A listener that carries a binding. */
export interface BindableListener extends MessageListener {
  readonly [LISTENER_BINDING]: ListenerBinding;
}

/** The binding of `listener`, if it has one. */
export function listenerBinding(listener: MessageListener): ListenerBinding | undefined {
  const binding = (listener as Partial<BindableListener>)[LISTENER_BINDING];
  return binding !== undefined && typeof binding.bind === 'function' ? binding : undefined;
}
