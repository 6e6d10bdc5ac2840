/** The package version, read once from package.json (the broker answers `version` with it). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** metaq's version, e.g. `0.1.0`. */
export function metaqVersion(): string {
  if (cached !== undefined) return cached;
  // src/common/version.ts and dist/src/common/version.js: the package root is 2 or 3 levels up.
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'metaq' && pkg.version !== undefined) return (cached = pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return (cached = 'unknown');
}
