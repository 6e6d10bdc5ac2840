/**
 * Re-delivers messages from the recover stores of a consumer (MetaQ's recover thread): every
 * `recoverMessageIntervalInMills` (first run after at most 5 s), each stored message is given
 * to its topic's listener once; on success it is deleted, on failure it stays for the next
 * round. A message that keeps failing does not hold back the others (MetaQ issues 99/111).
 *
 * Recovered messages are delivered outside the per-partition order, possibly while the fetch
 * loop delivers newer messages of the same partition to the same listener.
 */
import type { Logger } from '../../common/logger.js';
import type { ClientEmitter } from '../instrumentation.js';
import type { MessageListener } from '../message.js';
import { sleep } from '../util/sleep.js';
import type { RecoverStore } from './recover-store.js';

/** How soon after start the first round runs at the latest (MetaQ: 5 s). */
export const FIRST_RECOVER_DELAY_MS = 5_000;

/** A topic's store and the listener its messages go to. */
export interface RecoverTarget {
  readonly topic: string;
  readonly store: RecoverStore;
  readonly listener: MessageListener;
}

/** Settings of {@link RecoverTask}. */
export interface RecoverTaskOptions {
  readonly group: string;
  readonly intervalMs: number;
  readonly targets: readonly RecoverTarget[];
  readonly emitter: ClientEmitter;
  readonly log: Logger;
}

/** The background re-delivery of one consumer. Internal. */
export class RecoverTask {
  readonly #options: RecoverTaskOptions;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(options: RecoverTaskOptions) {
    this.#options = options;
  }

  /** Starts the periodic rounds. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops; resolves after the delivery in progress, if any, has finished. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  /** One round over every store; resolves when done. Exposed for tests. */
  async runOnce(): Promise<void> {
    for (const target of this.#options.targets) {
      let names: string[];
      try {
        names = await target.store.names();
      } catch (error) {
        this.#options.log.error({ err: error, dir: target.store.dir }, 'cannot list the recover store');
        continue;
      }
      for (const name of names) {
        if (this.#abort.signal.aborted) return;
        await this.#redeliver(target, name);
      }
    }
  }

  async #run(): Promise<void> {
    const { intervalMs } = this.#options;
    let delay = Math.min(intervalMs, FIRST_RECOVER_DELAY_MS);
    // Unref'd: re-delivery is a background chore; the fetch loops keep a running consumer alive.
    while (await sleep(delay, this.#abort.signal, true)) {
      await this.runOnce();
      delay = intervalMs;
    }
  }

  async #redeliver(target: RecoverTarget, name: string): Promise<void> {
    const { emitter, group, log } = this.#options;
    let stored;
    try {
      stored = await target.store.read(name);
    } catch (error) {
      log.error({ err: error, dir: target.store.dir, name }, 'cannot read a recovered message');
      return;
    }
    if (stored === undefined) return;
    const { message } = stored;
    const event = { topic: message.topic, group, partition: message.partition, offset: message.offset, messageId: message.id };
    try {
      await target.listener(message);
    } catch (error) {
      log.warn({ err: error, ...event }, 'recovered message failed again; kept for the next round');
      if (emitter.has('consumer.listener_failed')) emitter.emit('consumer.listener_failed', { ...event, attempt: 0, error });
      return;
    }
    try {
      await target.store.remove(name);
    } catch (error) {
      log.error({ err: error, dir: target.store.dir, name }, 'cannot remove a redelivered message; it will be delivered again');
    }
    if (emitter.has('consumer.message_redelivered')) emitter.emit('consumer.message_redelivered', event);
  }
}
