/**
 * Producing and consuming workloads for client integration tests.
 */
import type { MessageProducer, Message, SendResult } from '../../src/index.js';

/** Outcome of one send in {@link sendPipelined}. */
export type SendOutcome = { readonly ok: true; readonly result: SendResult } | { readonly ok: false; readonly error: unknown };

/** Options of {@link sendPipelined}. */
export interface SendPipelinedOptions {
  /** Sees each outcome as it arrives (`settled` = outcomes so far). */
  readonly onSettled?: (i: number, outcome: SendOutcome, settled: number) => void;
  /** Per-send timeout. */
  readonly timeoutMs?: number;
  /** Checked before each new send: once it returns true no more sends start. */
  readonly stop?: () => boolean;
}

/**
 * Sends up to `count` messages built by `make(i)` with at most `window` in flight, and
 * resolves with the outcome of every send started (index = i; unstarted ones are missing).
 */
export async function sendPipelined(
  producer: MessageProducer,
  count: number,
  window: number,
  make: (i: number) => Message,
  options: SendPipelinedOptions = {},
): Promise<SendOutcome[]> {
  const outcomes: SendOutcome[] = [];
  let next = 0;
  let settled = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (next < count && next - settled < window && options.stop?.() !== true) {
        const i = next++;
        producer.send(make(i), options.timeoutMs === undefined ? undefined : { timeoutMs: options.timeoutMs }).then(
          (result) => done(i, { ok: true, result }),
          (error: unknown) => done(i, { ok: false, error }),
        );
      }
      if (settled === next) resolve();
    };
    const done = (i: number, outcome: SendOutcome): void => {
      outcomes[i] = outcome;
      settled++;
      options.onSettled?.(i, outcome, settled);
      pump();
    };
    pump();
  });
  return outcomes;
}

/** Polls `predicate` every 10 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A deterministic payload for message `i` of varying length (10–~600 bytes). */
export function payloadFor(i: number): string {
  return `msg-${i}-` + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(1 + ((i * 7919) % 17)).slice(0, 5 + ((i * 31) % 600));
}
