/**
 * Parsing `stats` answers (metaq-reference §1.4): `STATS\r\n`, one `key value…` line per item,
 * `END\r\n`. (`stats config` is different: the broker's raw server.ini.)
 */

/** The item lines of a stats body (without the `STATS` and `END` markers). */
export function statsLines(body: string): string[] {
  const lines = body.split(/\r?\n/);
  const out: string[] = [];
  for (const line of lines) {
    if (line === '' || line === 'STATS' || line === 'END') continue;
    out.push(line);
  }
  return out;
}

/**
 * A stats body as a record: the first word of each line is the key, the rest the value
 * (`uptime 42` → `{ uptime: '42' }`; a line with one word gets `''`). When a key repeats
 * (`stats offsets` has one line per partition, keyed by topic), the values are joined with
 * `\n` in line order.
 */
export function parseStatsBody(body: string): Record<string, string> {
  // No prototype: a topic called `__proto__` or `constructor` is just a key.
  const record = Object.create(null) as Record<string, string>;
  for (const line of statsLines(body)) {
    const space = line.indexOf(' ');
    const key = space === -1 ? line : line.slice(0, space);
    const value = space === -1 ? '' : line.slice(space + 1);
    const previous = record[key];
    record[key] = previous === undefined ? value : `${previous}\n${value}`;
  }
  return record;
}
