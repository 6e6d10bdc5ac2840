/**
 * What a command handler answers, independent of the transport: the TCP front encodes it as a
 * `result` or `value` frame with the request's opaque, the HTTP gateway as a status code and body.
 */

/** A handler's answer. */
export type Reply =
  /** `result <code> <len> <opaque>` + body (text, or raw bytes for `stats config`). */
  | { readonly kind: 'result'; readonly code: number; readonly body: string | Buffer }
  /** `value <len> <opaque>` + raw stored records (a successful get). */
  | { readonly kind: 'value'; readonly data: Buffer };

/** A `result` reply. */
export function result(code: number, body: string | Buffer = ''): Reply {
  return { kind: 'result', code, body };
}
