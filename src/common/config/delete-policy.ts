/**
 * The retention policy syntax of MetaQ's `deletePolicy` key (metaq-reference §2, §5.1):
 *
 * - `delete,<N>[h|m|s]` — delete segments older than N hours (or minutes / seconds);
 * - `archive,<N>[h|m|s][,true|false]` — move them to an archive directory instead, zipped when
 *   the third part is `true`.
 *
 * The unit defaults to hours, as in MetaQ (`delete,168` = one week).
 */
import { InvalidArgumentError } from '../errors.js';

/** A parsed `deletePolicy`. */
export interface DeletePolicy {
  /** `delete` removes old segments; `archive` moves them aside. */
  readonly kind: 'delete' | 'archive';
  /** Segments whose last modification is older than this many milliseconds are eligible. */
  readonly maxAgeMs: number;
  /** For `archive`: whether archived segments are compressed. Always false for `delete`. */
  readonly compress: boolean;
}

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000 } as const;

const SYNTAX = "expected 'delete,<N>[h|m|s]' or 'archive,<N>[h|m|s][,true|false]' (N a positive integer, unit hours by default)";

function invalid(text: string, why: string): never {
  throw new InvalidArgumentError(`invalid deletePolicy '${text}': ${why}; ${SYNTAX}`);
}

/**
 * Parses a `deletePolicy` value. Whitespace around the comma-separated parts and the case of
 * the unit and of `true`/`false` are ignored.
 *
 * @example parseDeletePolicy('delete,168')          // { kind: 'delete', maxAgeMs: 604_800_000, compress: false }
 * @example parseDeletePolicy('archive,30m,true')    // { kind: 'archive', maxAgeMs: 1_800_000, compress: true }
 * @throws {@link InvalidArgumentError} naming the problem and the accepted syntax.
 */
export function parseDeletePolicy(text: string): DeletePolicy {
  const parts = text.split(',').map((part) => part.trim());
  const [kind, age, compressText] = parts;
  if (kind !== 'delete' && kind !== 'archive') invalid(text, `unknown policy '${kind ?? ''}'`);
  const maxParts = kind === 'delete' ? 2 : 3;
  if (parts.length > maxParts) invalid(text, `too many parts for '${kind}'`);
  if (age === undefined || age === '') invalid(text, 'the maximum age is missing');
  const match = /^(\d+)([hms]?)$/i.exec(age);
  if (match === null) invalid(text, `'${age}' is not a positive integer with an optional unit h, m or s`);
  const amount = Number(match[1]);
  const unit = (match[2] === undefined || match[2] === '' ? 'h' : match[2].toLowerCase()) as keyof typeof UNIT_MS;
  if (amount <= 0) invalid(text, 'the maximum age must be positive');
  const maxAgeMs = amount * UNIT_MS[unit];
  if (!Number.isSafeInteger(maxAgeMs)) invalid(text, 'the maximum age is too large');
  let compress = false;
  if (compressText !== undefined) {
    const lower = compressText.toLowerCase();
    if (lower !== 'true' && lower !== 'false') invalid(text, `the compress flag must be true or false, not '${compressText}'`);
    compress = lower === 'true';
  }
  return Object.freeze({ kind, maxAgeMs, compress });
}
