/**
 * A small INI reader for `server.ini`: `[section]` headers, `key=value` lines and whole-line
 * comments starting with `;` or `#`. Values are kept as raw (trimmed) strings and every section
 * and key remembers its 1-based line number, so later validation can point at the exact line.
 *
 * Why our own and not an npm INI package: those silently merge duplicate keys, interpret values
 * and drop line numbers — and we want all three to be errors or available for error messages.
 *
 * What it deliberately does not do:
 * - inline comments: a `;` or `#` after a value is part of the value (Quartz cron expressions
 *   may contain `#`, e.g. `0 0 6 ? * 6#3`, and MetaQ's ini4j did not strip them either);
 * - quoting, escapes or line continuations.
 *
 * It knows nothing about which sections or keys are valid; that is `load.ts`'s job.
 */
import { ConfigError } from '../errors.js';

/** One `key=value` line. */
export interface IniEntry {
  /** The key, trimmed. */
  readonly key: string;
  /** The value after the first `=`, trimmed; may be empty (a blank value). */
  readonly value: string;
  /** 1-based line number. */
  readonly line: number;
}

/** One `[name]` section with its entries in file order. */
export interface IniSection {
  /** The text between the brackets, trimmed, e.g. `system` or `topic=meta-*`. */
  readonly name: string;
  /** 1-based line number of the header. */
  readonly line: number;
  /** Entries in file order; keys are unique within a section. */
  readonly entries: readonly IniEntry[];
}

/** A parsed INI file: its sections in file order. */
export interface IniDocument {
  readonly sections: readonly IniSection[];
}

/**
 * Parses INI text.
 *
 * @param text - the file content; `\n`, `\r\n` and a leading byte-order mark are handled.
 * @param file - name used in error messages.
 * @throws {@link ConfigError} with `file:line:` for a line that is neither a header, a
 *   `key=value` pair, a comment nor blank; a key before the first section; an empty key or
 *   section name; a duplicate key within a section or a duplicate section (naming both lines).
 */
export function parseIni(text: string, file: string): IniDocument {
  const sections: { name: string; line: number; entries: IniEntry[] }[] = [];
  const sectionLines = new Map<string, number>();
  let current: { name: string; line: number; entries: IniEntry[]; keyLines: Map<string, number> } | undefined;

  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = index + 1;
    const trimmed = rawLine.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#')) return;

    if (trimmed.startsWith('[')) {
      if (!trimmed.endsWith(']')) {
        throw new ConfigError(`malformed section header '${trimmed}': missing the closing ']'`, { file, line });
      }
      const name = trimmed.slice(1, -1).trim();
      if (name === '') throw new ConfigError("empty section name '[]'", { file, line });
      const previous = sectionLines.get(name);
      if (previous !== undefined) {
        throw new ConfigError(`duplicate section [${name}] (first defined at line ${previous}); merge the two sections`, { file, line });
      }
      sectionLines.set(name, line);
      current = { name, line, entries: [], keyLines: new Map() };
      sections.push(current);
      return;
    }

    const eq = trimmed.indexOf('=');
    if (eq < 0) {
      throw new ConfigError(
        `cannot parse line '${trimmed}': expected a [section] header, a key=value pair, or a comment starting with ';' or '#'`,
        { file, line },
      );
    }
    const key = trimmed.slice(0, eq).trim();
    const value = trimmed.slice(eq + 1).trim();
    if (key === '') throw new ConfigError(`missing key before '=' in '${trimmed}'`, { file, line });
    if (current === undefined) {
      throw new ConfigError(`key '${key}' appears before any section; put it under [system], [zookeeper] or [topic=<name>]`, {
        file,
        line,
      });
    }
    const first = current.keyLines.get(key);
    if (first !== undefined) {
      throw new ConfigError(`duplicate key '${key}' in [${current.name}] (first set at line ${first}, again at line ${line}); keep only one`, {
        file,
        line,
      });
    }
    current.keyLines.set(key, line);
    current.entries.push({ key, value, line });
  });

  return { sections: sections.map(({ name, line, entries }) => ({ name, line, entries })) };
}
