/**
 * Stops a consumer mid-stream whatever the machine's speed.
 *
 * Why: "wait until 200 of 600 messages arrived, then close" races the consumer on a fast machine
 * (all 600 may arrive before the close takes effect). With a gate, every listener call after the
 * first `count` waits; the test closes the consumer (which aborts its fetch loops synchronously)
 * and then opens the gate, so each partition finishes at most the one call it was blocked in.
 */
export interface ListenerGate {
  /** Await at the top of a listener: returns at once for the first `count` calls, then waits for `open()`. */
  pass(): Promise<void>;
  /** True once `count` calls went through. */
  reached(): boolean;
  /** Lets every waiting and later call through. */
  open(): void;
}

/** A gate that lets `count` listener calls through, then holds the rest until opened. */
export function gateAfter(count: number): ListenerGate {
  let passed = 0;
  let release!: () => void;
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    async pass() {
      if (passed < count) {
        passed += 1;
        return;
      }
      await opened;
    },
    reached: () => passed >= count,
    open: () => release(),
  };
}

/** Closes `consumer` while `gate` holds its listener calls, then lets the held calls finish. */
export async function closeAtGate(consumer: { close(): Promise<void> }, gate: ListenerGate): Promise<void> {
  const closing = consumer.close(); // aborts the fetch loops before the gate opens
  gate.open();
  await closing;
}
