/**
 * Default limits of the codec. They protect a broker (and a client) from a peer that announces
 * absurd sizes: without them one header line could make us buffer gigabytes.
 */

/** Largest header line, in bytes, excluding its CRLF. A longer line is a protocol error. */
export const DEFAULT_MAX_HEADER_LENGTH = 4096;

/**
 * Largest `put`/`sync` body (the message data) a broker accepts: 1 MiB of payload plus 64 KiB for
 * the attribute block (4-byte length + attribute text). MetaQ had no explicit broker-side limit;
 * its network layer refused reads above 2 MiB. Configure per broker with `maxBodySize`.
 */
export const DEFAULT_MAX_BODY_SIZE = 1024 * 1024 + 64 * 1024;

/**
 * Largest `value` body a client accepts. A broker sends at most `min(maxTransferSize, maxSize)`
 * bytes and the Java client grows its `maxSize` up to 2 MiB, so 16 MiB leaves room for brokers
 * with a raised `maxTransferSize` while still bounding memory.
 */
export const DEFAULT_MAX_VALUE_BODY_SIZE = 16 * 1024 * 1024;

/**
 * Largest `result` body a client accepts. Result bodies are short texts (ids, offsets, errors,
 * stats, RECOVER key lists, or the broker's server.ini for `stats config`).
 */
export const DEFAULT_MAX_RESULT_BODY_SIZE = 4 * 1024 * 1024;

/**
 * Largest data length of one stored record when walking a `value` body: MetaQ's client default
 * (`notify.remoting.max_read_buffer_size`, 2 MiB).
 */
export const DEFAULT_MAX_RECORD_DATA_LENGTH = 2 * 1024 * 1024;

/** The opaque MetaQ assumes when a `stats` or `version` request omits it (`Integer.MAX_VALUE`). */
export const DEFAULT_OPAQUE = 2147483647;
