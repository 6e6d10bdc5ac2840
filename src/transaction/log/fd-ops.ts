/**
 * Promise wrappers over the descriptor calls `src/store/file-io.ts` does not cover (open, close,
 * ftruncate, fstat). Raw descriptors, like the store's segments: the journal's hot path uses
 * `writevAll`/`fdatasync` on a raw fd, and a `FileHandle` could be closed behind our back when
 * garbage-collected.
 */
import fs from 'node:fs';

/** Opens `path` with `flags` (`'r'`, `'r+'`, `'wx+'`, … or `fs.constants` bits) and returns the raw descriptor. */
export function openFd(path: string, flags: string | number): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, (error, fd) => (error === null ? resolve(fd) : reject(error))));
}

/** Closes `fd`, ignoring errors: there is nothing useful to do about a failed close of a synced file. */
export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

/** Cuts the file open at `fd` to `length` bytes. */
export function ftruncateFd(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, length, (error) => (error === null ? resolve() : reject(error))));
}

/** Size in bytes of the file open at `fd`. */
export function fstatSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => fs.fstat(fd, (error, stats) => (error === null ? resolve(stats.size) : reject(error))));
}
