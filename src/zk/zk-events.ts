/**
 * A small typed emitter for {@link ZkClientEvents}, shared by the real adapter and the fake.
 *
 * Why not Node's EventEmitter: typed payloads without casts, an `Unsubscribe` return value as the
 * interface wants, and a listener that throws must not break the adapter's reconnect logic (it
 * is logged and the other listeners still run).
 */
import type { Logger } from '../common/logger.js';
import type { Unsubscribe, ZkClientEvents } from './zk-client.js';

type Listener<K extends keyof ZkClientEvents> = (payload: ZkClientEvents[K]) => void;

/** Typed listeners of {@link ZkClientEvents}. */
export class ZkEventHub {
  readonly #listeners = new Map<keyof ZkClientEvents, Set<(payload: never) => void>>();
  readonly #log: Logger | undefined;

  /** @param log - where throwing listeners are reported (silently ignored without one). */
  constructor(log?: Logger) {
    this.#log = log;
  }

  /** Adds a listener; the returned function removes it. */
  on<K extends keyof ZkClientEvents>(event: K, listener: Listener<K>): Unsubscribe {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    const entry = listener as (payload: never) => void;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /** Calls the listeners of `event` synchronously, in subscription order. */
  emit<K extends keyof ZkClientEvents>(event: K, payload: ZkClientEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<K>)(payload);
      } catch (err) {
        this.#log?.error({ err, event }, 'ZooKeeper event listener threw');
      }
    }
  }

  /** Removes every listener (after close). */
  clear(): void {
    this.#listeners.clear();
  }
}
