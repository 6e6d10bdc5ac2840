/**
 * Table names given by the application to the PostgreSQL offset storage (and the exactly-once
 * recover table), validated and quoted before they go into SQL text.
 *
 * Why validate *and* quote: a table name cannot be a bind parameter, so it is pasted into the
 * statements. Allowing only lower-case letters, digits and `_` (plus one optional `schema.`)
 * makes the quoted name mean the same as the unquoted one a DBA would type in psql (unquoted
 * names fold to lower case), and quoting keeps reserved words (`user`, `order`) working.
 */
import { InvalidArgumentError } from '../../common/errors.js';

/** PostgreSQL's identifier length limit (NAMEDATALEN - 1); longer names are silently truncated. */
export const MAX_PG_IDENTIFIER_BYTES = 63;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/**
 * Why `name` is not acceptable as a table name (`table` or `schema.table`), or `undefined`
 * when it is.
 */
export function tableNameError(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'it must be a non-empty string';
  const parts = name.split('.');
  if (parts.length > 2) return 'use "table" or "schema.table"';
  for (const part of parts) {
    if (!IDENTIFIER.test(part)) return `"${part}" may only hold lower-case letters, digits and _, and may not start with a digit`;
    if (part.length > MAX_PG_IDENTIFIER_BYTES) return `"${part}" is longer than PostgreSQL's ${MAX_PG_IDENTIFIER_BYTES}-byte identifier limit`;
  }
  return undefined;
}

/**
 * The table name quoted for SQL text (`"schema"."table"`).
 *
 * @param what - names the option in the error message, e.g. `createPostgresOffsetStorage: table`.
 * @throws {InvalidArgumentError} when {@link tableNameError} objects.
 */
export function quoteTableName(name: string, what: string): string {
  const problem = tableNameError(name);
  if (problem !== undefined) throw new InvalidArgumentError(`${what} ${JSON.stringify(name)} is not a valid table name: ${problem}`);
  return name
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}
