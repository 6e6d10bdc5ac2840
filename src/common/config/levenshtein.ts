/**
 * Edit distance and "did you mean" suggestions for misspelt configuration keys (MetaQ prints
 * `Invalid config key:X,do you mean 'Y'?`; we do the same).
 */

/**
 * The Levenshtein distance between `a` and `b`: the fewest single-character insertions,
 * deletions and substitutions turning one into the other. Case-sensitive.
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Two rolling rows instead of the full matrix: keys are short, but there is no reason to allocate more.
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidate closest to `input`, or `undefined` when none is close enough to be a plausible
 * typo. Comparison ignores case (so `brokerid` suggests `brokerId`); ties go to the earlier candidate.
 *
 * @param maxDistance - largest distance still suggested; defaults to a third of the longer
 *   string's length, at least 2, so `unflushThreshhold` finds `unflushThreshold` while an
 *   unrelated word suggests nothing rather than something silly.
 */
export function closestMatch(input: string, candidates: readonly string[], maxDistance?: number): string | undefined {
  const needle = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = levenshtein(needle, candidate.toLowerCase());
    const allowed = maxDistance ?? Math.max(2, Math.floor(Math.max(input.length, candidate.length) / 3));
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
