/**
 * Strict decimal numbers as they appear in header tokens and text bodies.
 *
 * MetaQ writes numbers with Java's `String.valueOf`: an optional `-` and digits, nothing else.
 * Java's parsers are laxer (`Integer.parseInt` accepts `+1`); we accept only what MetaQ writes
 * (leading zeros excepted: they are harmless and Java accepts them too), so a `+`, a space, an
 * empty token or hex never reaches the broker as a number.
 *
 * Every parser returns `undefined` instead of throwing, so that the caller can build an error
 * message that names the field and the offending header.
 */

/** Smallest Java `int`. */
export const INT32_MIN = -2147483648;
/** Largest Java `int`; also the opaque MetaQ assumes when `stats`/`version` omit it. */
export const INT32_MAX = 2147483647;
/** Smallest Java `long`. */
export const INT64_MIN = -9223372036854775808n;
/** Largest Java `long` (`Long.MAX_VALUE`). */
export const INT64_MAX = 9223372036854775807n;

const DECIMAL = /^-?\d+$/;

/** True when `token` is a strict decimal integer (optional `-`, at least one digit). */
export function isDecimal(token: string): boolean {
  return DECIMAL.test(token);
}

/** Parses a Java `int`; `undefined` when not strict decimal or out of range. */
export function parseInt32(token: string): number | undefined {
  // 11 characters is "-2147483648"; longer strings (after leading zeros) are out of range anyway,
  // but Number() handles them correctly, so no length shortcut is needed for correctness.
  if (!DECIMAL.test(token)) return undefined;
  const value = Number(token);
  if (value < INT32_MIN || value > INT32_MAX) return undefined;
  return value | 0; // normalises -0 to 0
}

/** Parses a Java `long` into a bigint; `undefined` when not strict decimal or out of range. */
export function parseInt64(token: string): bigint | undefined {
  if (!DECIMAL.test(token)) return undefined;
  const value = BigInt(token);
  return value < INT64_MIN || value > INT64_MAX ? undefined : value;
}

/**
 * Parses a Java `long` that must also be a safe JavaScript integer (|n| ≤ 2^53−1): offsets are
 * byte positions in a log and never get near 2^53, so a larger value is a broken peer.
 */
export function parseSafeInteger(token: string): number | undefined {
  if (!DECIMAL.test(token)) return undefined;
  const value = Number(token);
  return Number.isSafeInteger(value) ? value + 0 : undefined; // + 0 normalises -0
}

/** True when `value` is an integer that fits a Java `int`. */
export function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

/** True when `value` fits a Java `long`. */
export function isInt64(value: bigint): boolean {
  return value >= INT64_MIN && value <= INT64_MAX;
}
