/**
 * Status codes of `result` frames (MetaQ's `HttpStatus`, metaq-reference §1.3). Only 200 means
 * success; every other code is an error whose text is the result body.
 */

/** The status codes a MetaQ broker (or its network layer) sends. */
export const ResultCode = {
  /** OK; the body depends on the command. */
  Success: 200,
  /** `get`: the consumer must move its offset; the body is the new offset. */
  Moved: 301,
  /** `get` with `maxSize <= 0`; in metaq also a malformed frame just before the connection closes. */
  BadRequest: 400,
  /** Defined by MetaQ, never sent. */
  Unauthorized: 401,
  /** The partition is closed, or a transactional put arrived while the broker recovers. */
  Forbidden: 403,
  /** No store for the topic-partition, or a `get` at/after the end of the log. */
  NotFound: 404,
  /** Any other failure (store error, unknown topic, wrong partition, XA errors, bad checksum…). */
  InternalServerError: 500,
  /** Busy, or no processor for the command (MetaQ spells it `ServiceUnavilable`). */
  ServiceUnavailable: 503,
  /** Processing timed out. */
  GatewayTimeout: 504,
} as const;

/** One of the values of {@link ResultCode}. */
export type ResultCodeValue = (typeof ResultCode)[keyof typeof ResultCode];

const NAMES: ReadonlyMap<number, keyof typeof ResultCode> = new Map(
  (Object.entries(ResultCode) as [keyof typeof ResultCode, ResultCodeValue][]).map(([name, code]) => [code, name]),
);

/** The name of a known code (`404` → `'NotFound'`), or `undefined` for any other number. */
export function resultCodeName(code: number): keyof typeof ResultCode | undefined {
  return NAMES.get(code);
}

/** True when `code` is one of {@link ResultCode}. */
export function isKnownResultCode(code: number): code is ResultCodeValue {
  return NAMES.has(code);
}
