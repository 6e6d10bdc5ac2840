/**
 * Consumer group names (metaq-reference §6.5). MetaQ forbids
 * ``~ ! # $ % ^ & * ( ) + = ` ' " , ; / ? [ ] < > . :`` and space. metaq also forbids every
 * other whitespace and control character: a group is a token of the text protocol
 * (`get <topic> <group> …`) and part of the recover-store directory name.
 */

/** The characters MetaQ rejects in a group name. */
export const FORBIDDEN_GROUP_CHARACTERS = "~!#$%^&*()+=`'\",;/?[]<>.: ";

const FORBIDDEN = /[~!#$%^&*()+=`'",;/?[\]<>.:\s\u0000-\u001f\u007f\\]/;

/** Longest group name in UTF-8 bytes (it becomes part of a directory name). */
export const MAX_GROUP_NAME_BYTES = 200;

/** Why `group` cannot be a consumer group name, or `undefined` when it can. */
export function groupNameError(group: unknown): string | undefined {
  if (typeof group !== 'string' || group === '') return 'it is empty';
  if (Buffer.byteLength(group, 'utf8') > MAX_GROUP_NAME_BYTES) return `it is longer than ${MAX_GROUP_NAME_BYTES} bytes`;
  const bad = FORBIDDEN.exec(group);
  if (bad !== null) return `it contains ${JSON.stringify(bad[0])}; a group may not contain any of ${FORBIDDEN_GROUP_CHARACTERS.trim()}, '\\', whitespace or control characters`;
  return undefined;
}
