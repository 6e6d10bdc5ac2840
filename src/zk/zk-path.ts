/**
 * znode path helpers shared by the real adapter and the in-memory fake.
 *
 * Why our own check: the library throws plain `Error`s synchronously for a bad path, which
 * would escape the adapter's promise-based error mapping; checking first turns them into a
 * {@link ZookeeperError} (`BAD_ARGUMENTS`) like every other failure.
 */
import { ZookeeperError } from '../common/errors.js';

/**
 * Checks an absolute znode path (`/a/b`, no trailing `/`, no empty, `.` or `..` segments).
 * @returns the path unchanged.
 * @throws ZookeeperError `BAD_ARGUMENTS` for anything else.
 */
export function checkPath(path: string): string {
  const ok =
    path === '/' ||
    (path.startsWith('/') && !path.endsWith('/') && path.slice(1).split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..' && !segment.includes('\u0000')));
  if (!ok) throw new ZookeeperError('BAD_ARGUMENTS', `invalid znode path ${JSON.stringify(path)}: it must be absolute, without a trailing '/' or empty segments`, { path });
  return path;
}

/** The parent of a path (`/a/b` → `/a`, `/a` → `/`); `undefined` for `/`. */
export function parentPath(path: string): string | undefined {
  if (path === '/') return undefined;
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

/** The last segment of a path (`/a/b` → `b`). */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `parent` + `/` + `name`, without doubling the `/` of the root. */
export function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`;
}

/** The proper ancestors of a path below the root, outermost first (`/a/b/c` → `/a`, `/a/b`). */
export function ancestorPaths(path: string): string[] {
  const result: string[] = [];
  for (let parent = parentPath(path); parent !== undefined && parent !== '/'; parent = parentPath(parent)) result.unshift(parent);
  return result;
}
