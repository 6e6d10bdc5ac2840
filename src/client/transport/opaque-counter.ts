/**
 * Opaques: the 32-bit signed request ids a client puts at the end of every request header and
 * the broker copies into its answer (metaq-reference §1.1). Answers may come out of order, so
 * the opaque is the only correlation.
 */
import { INT32_MAX, INT32_MIN } from '../../protocol/numbers.js';

/**
 * A per-connection counter that wraps from 2^31−1 to −2^31 (Java `int` overflow, as MetaQ's
 * client). `next(inUse)` skips values still waiting for an answer, which only matters after
 * four billion requests on one connection with a very old request still pending.
 */
export class OpaqueCounter {
  #next: number;

  constructor(start = 1) {
    this.#next = start | 0;
  }

  /** The next opaque not reported in use by `inUse`. */
  next(inUse?: (opaque: number) => boolean): number {
    for (;;) {
      const opaque = this.#next;
      this.#next = opaque === INT32_MAX ? INT32_MIN : opaque + 1;
      if (inUse === undefined || !inUse(opaque)) return opaque;
    }
  }
}
