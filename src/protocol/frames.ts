/**
 * The typed frames of the MetaQ text protocol (metaq-reference §1.1–1.4, §1.7), a discriminated
 * union on `type`. Decoders produce them, encoders consume them; the shapes are the same in both
 * directions so that `decode(encode(frame))` deep-equals `frame`.
 *
 * Numbers: every 32-bit field (partition, flag, checksum, maxSize, opaque, code, timeout) is a
 * `number` holding a Java `int`. Offsets are 64-bit on the wire but byte positions in practice,
 * so they are `number`s limited to ±(2^53−1); the one exception is the `get` offset, see
 * {@link LONG_MAX_OFFSET}. Message ids use the full signed 64-bit range and are `bigint`s.
 *
 * Bodies (`data`, `body`) may be views into the chunks given to the decoder (no copy).
 */
import type { TransactionKey } from './transaction-key.js';
import type { TransactionTypeName } from './transaction-type.js';

/**
 * Java's `Long.MAX_VALUE`, which a consumer sends as a `get` offset to ask "where is the end of
 * the log?" (the broker answers `301` with its max offset even when `updateConsumerOffsets` is
 * off). It is not representable as a `number`, so {@link GetFrame.offset} carries this exact
 * bigint instead; compare with `===`. Every other offset beyond ±(2^53−1) is a protocol error.
 */
export const LONG_MAX_OFFSET = 9223372036854775807n;

/** The type of {@link LONG_MAX_OFFSET}: the literal bigint `9223372036854775807n`. */
export type LongMaxOffset = typeof LONG_MAX_OFFSET;

/**
 * Which of MetaQ's three `put` header layouts a frame uses (the token count, `put` included):
 * - 6: legacy (< 1.4.4, and the Python/Ruby/.NET/PHP clients): no checksum, no transaction key;
 * - 7: either a checksum (new, no transaction) or a transaction key (legacy transactional);
 * - 8: checksum and transaction key (new, transactional).
 */
export type PutForm = 6 | 7 | 8;

/** `put <topic> <partition> <length> <flag> [<checksum>] [<txKey>] <opaque>\r\n<data>`: a producer sends one message. */
export interface PutFrame {
  readonly type: 'put';
  readonly topic: string;
  /** Partition on this broker; `-1` asks the broker to choose. */
  readonly partition: number;
  /** Message data: optional attribute block + payload (see message-data.ts). */
  readonly data: Buffer;
  /** Flag word; bit 0 means `data` starts with an attribute block. */
  readonly flag: number;
  /** The client's checksum of `data` (CRC-32 & 0x7FFFFFFF), or `-1` = not supplied. */
  readonly checksum: number;
  /**
   * The transaction the message belongs to: `undefined` when the header has no key token,
   * `null` when the token is the literal `null` (also no transaction).
   */
  readonly transactionKey: TransactionKey | null | undefined;
  readonly opaque: number;
  /**
   * The header layout. Always set by the decoder. When encoding, leave it out to get what
   * MetaQ ≥ 1.4.4 writes (8 tokens with a key, 7 without).
   */
  readonly form?: PutForm;
}

/** `get <topic> <group> <partition> <offset> <maxSize> <opaque>\r\n`: a consumer fetches bytes. */
export interface GetFrame {
  readonly type: 'get';
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  /** Absolute log offset to read from, or {@link LONG_MAX_OFFSET} ("tell me the max offset"). */
  readonly offset: number | LongMaxOffset;
  /** Largest body the consumer wants; the broker answers 400 when `<= 0`, so any `int` decodes. */
  readonly maxSize: number;
  readonly opaque: number;
}

/** `offset <topic> <group> <partition> <offset> <opaque>\r\n`: start of the segment holding `offset`. */
export interface OffsetFrame {
  readonly type: 'offset';
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  readonly offset: number;
  readonly opaque: number;
}

/** `stats [<item>] [<opaque>]\r\n`: broker statistics (`topics`, `offsets`, `realtime`, `config`, a topic…). */
export interface StatsFrame {
  readonly type: 'stats';
  /** The item; `undefined` for the general broker info (empty token or absent). */
  readonly item: string | undefined;
  /** Defaults to 2147483647 when the request omits it (telnet users do). */
  readonly opaque: number;
}

/** `version [<opaque>]\r\n`: the broker's version; also the client's heartbeat. */
export interface VersionFrame {
  readonly type: 'version';
  /** Defaults to 2147483647 when the request omits it. */
  readonly opaque: number;
}

/** `quit\r\n`: the broker closes the connection without answering. */
export interface QuitFrame {
  readonly type: 'quit';
}

/**
 * `transaction <txKey> <sessionId> <TYPE> [<timeout>] [<uniqueQualifier>] <opaque>\r\n`
 * (metaq-reference §1.7). Which fields matter depends on `transactionType`: `timeout` only on
 * BEGIN; `uniqueQualifier` on XA operations (RECOVER uses it to filter); the key is `null` only
 * for RECOVER.
 */
export interface TransactionFrame {
  readonly type: 'transaction';
  /** The transaction; `null` for the literal `null` (RECOVER). */
  readonly transactionKey: TransactionKey | null;
  /** The producer session (local transactions are kept per session). */
  readonly sessionId: string;
  readonly transactionType: TransactionTypeName;
  /** Transaction timeout in seconds; `0` = none (the header then has no timeout token). */
  readonly timeout: number;
  /** The XA resource manager's id; `undefined` when absent (local transactions). */
  readonly uniqueQualifier: string | undefined;
  readonly opaque: number;
}

/**
 * `sync <topic> <partition> <length> <flag> <msgId> [<checksum>] <opaque>\r\n<data>`: a master
 * replicates one put to its sync slave (gregor role), which stores it under the master's id.
 */
export interface SyncFrame {
  readonly type: 'sync';
  readonly topic: string;
  readonly partition: number;
  readonly data: Buffer;
  readonly flag: number;
  /** The id the master assigned (signed 64-bit). */
  readonly messageId: bigint;
  /** Checksum of `data`, or `-1` (always `-1` in the legacy 7-token form). */
  readonly checksum: number;
  readonly opaque: number;
  /** 8 tokens (≥ 1.4.4, with checksum) or 7 (legacy). Encoding without it writes 8. */
  readonly form?: 7 | 8;
}

/** `result <code> <length> <opaque>\r\n<body>`: the answer to every request except a successful get. */
export interface ResultFrame {
  readonly type: 'result';
  /** See {@link ResultCode}; only 200 is success. */
  readonly code: number;
  /** UTF-8 text (may be empty): put ids, offsets, stats, error messages… */
  readonly body: Buffer;
  readonly opaque: number;
}

/** `value <length> <opaque>\r\n<body>`: a successful get; the body is raw stored records. */
export interface ValueFrame {
  readonly type: 'value';
  readonly body: Buffer;
  readonly opaque: number;
}

/** A frame a client sends to a broker. */
export type RequestFrame = PutFrame | GetFrame | OffsetFrame | StatsFrame | VersionFrame | QuitFrame | TransactionFrame | SyncFrame;

/** A frame a broker sends to a client. */
export type ResponseFrame = ResultFrame | ValueFrame;

/** Any MetaQ frame. */
export type Frame = RequestFrame | ResponseFrame;

/** The `type` of a frame (also its command word, except that `quit` matches any word starting with `q`). */
export type FrameType = Frame['type'];
