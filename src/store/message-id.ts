/**
 * Message ids in MetaQ's Snowflake layout (metaq-reference §1.5):
 * `((ms - 1303895660503) << 22) | (brokerId << 12) | sequence`.
 *
 * Fixes MetaQ's quirk: MetaQ used a monotonic clock with an arbitrary origin, so its ids were
 * negative and restarted lower after every reboot. Here the timestamp is the wall clock, and the
 * generator never goes backwards: it starts strictly above the largest id found in the store at
 * start-up, and when the clock steps back (NTP) or 4096 ids are taken in one millisecond it
 * borrows the next millisecond instead of failing or spinning the event loop.
 */
import { InvalidArgumentError } from '../common/errors.js';

/** MetaQ's id epoch (2011-04-27), kept so ids decode the same way in both systems. */
export const MESSAGE_ID_EPOCH_MS = 1303895660503;
const SEQUENCE_BITS = 12n;
const WORKER_BITS = 10n;
const SEQUENCE_MASK = (1 << Number(SEQUENCE_BITS)) - 1;
/** Largest broker id the layout can hold. */
export const MAX_BROKER_ID = (1 << Number(WORKER_BITS)) - 1;

/** The parts of a message id. */
export interface MessageIdParts {
  readonly timestampMs: number;
  readonly brokerId: number;
  readonly sequence: number;
}

/** Splits an id into its timestamp, broker id and sequence. */
export function decodeMessageId(id: bigint): MessageIdParts {
  return {
    timestampMs: Number(id >> (SEQUENCE_BITS + WORKER_BITS)) + MESSAGE_ID_EPOCH_MS,
    brokerId: Number((id >> SEQUENCE_BITS) & BigInt(MAX_BROKER_ID)),
    sequence: Number(id & BigInt(SEQUENCE_MASK)),
  };
}

/** Options of {@link MessageIdGenerator}. */
export interface MessageIdGeneratorOptions {
  /** Every generated id is strictly greater than this one (the largest id already stored). */
  readonly floor?: bigint;
  /** Clock source, for tests. */
  readonly now?: () => number;
}

/** Generates strictly increasing message ids for one broker. */
export class MessageIdGenerator {
  readonly #brokerPart: bigint;
  readonly #now: () => number;
  #lastMs = 0;
  #sequence = 0;

  constructor(brokerId: number, options: MessageIdGeneratorOptions = {}) {
    if (!Number.isInteger(brokerId) || brokerId < 0 || brokerId > MAX_BROKER_ID) {
      throw new InvalidArgumentError(`brokerId must be an integer from 0 to ${MAX_BROKER_ID}, got ${brokerId}`);
    }
    this.#brokerPart = BigInt(brokerId) << SEQUENCE_BITS;
    this.#now = options.now ?? Date.now;
    if (options.floor !== undefined && options.floor > 0n) {
      // Start in the millisecond after the floor's: whatever broker id or sequence the floor
      // carries, every id of a later millisecond is larger.
      this.#lastMs = decodeMessageId(options.floor).timestampMs + 1;
      this.#sequence = -1;
    }
  }

  /** The next id; strictly greater than every id this generator returned before. */
  next(): bigint {
    const now = this.#now();
    if (now > this.#lastMs) {
      this.#lastMs = now;
      this.#sequence = 0;
    } else if (this.#sequence < SEQUENCE_MASK) {
      this.#sequence += 1;
    } else {
      this.#lastMs += 1;
      this.#sequence = 0;
    }
    return (BigInt(this.#lastMs - MESSAGE_ID_EPOCH_MS) << (SEQUENCE_BITS + WORKER_BITS)) | this.#brokerPart | BigInt(this.#sequence);
  }
}

/** The largest id any broker can generate in millisecond `ms` (wall-clock time). */
export function messageIdFloorAt(ms: number): bigint {
  const offset = BigInt(Math.max(0, Math.ceil(ms) - MESSAGE_ID_EPOCH_MS));
  return (offset << (SEQUENCE_BITS + WORKER_BITS)) | ((1n << (SEQUENCE_BITS + WORKER_BITS)) - 1n);
}
