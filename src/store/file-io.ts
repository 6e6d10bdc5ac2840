/**
 * Thin promise wrappers over the callback `fs` API for the store's hot path.
 *
 * Why not `fs/promises` FileHandle: the store keeps raw descriptors open for the life of a
 * segment and issues many small positional writes; the callback API with raw fds has the
 * least overhead per call and lets us use `writev` with one iovec per header and payload.
 */
import fs from 'node:fs';
import { dirname } from 'node:path';

/** What is left of `buffers` after the first `written` bytes (a short write, rare on regular files: disk full, signal). */
function unwritten(buffers: readonly Buffer[], written: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = written;
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

/** Writes all `buffers` at `position` (handles short writes). */
export function writevAll(fd: number, buffers: readonly Buffer[], position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, buffers as Buffer[], position, (error, written) => {
      if (error !== null) return reject(error);
      let total = 0;
      for (const b of buffers) total += b.length;
      if (written === total) return resolve();
      writevAll(fd, unwritten(buffers, written), position + written).then(resolve, reject);
    });
  });
}

/**
 * Writes all `buffers` at `position` synchronously, on the calling thread (handles short writes).
 * Only for small writes into the page cache, where a thread-pool hop costs more than the write
 * (see "Why a synchronous write" in partition-log.ts and tx-journal.ts).
 * @throws the `fs` error of the failed call; bytes before it may have reached the file.
 */
export function writevAllSync(fd: number, buffers: readonly Buffer[], position: number): void {
  let total = 0;
  for (const b of buffers) total += b.length;
  let written = 0;
  let rest = buffers;
  for (;;) {
    const n = fs.writevSync(fd, rest as Buffer[], position + written);
    if (n <= 0) throw new Error(`writev wrote ${n} of ${total - written} bytes`);
    written += n;
    if (written >= total) return;
    rest = unwritten(rest, n);
  }
}

/** Reads up to `length` bytes at `position`; the result is shorter only at end of file. */
export function readAt(fd: number, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  return new Promise((resolve, reject) => {
    const step = (filled: number): void => {
      fs.read(fd, buffer, filled, length - filled, position + filled, (error, bytes) => {
        if (error !== null) return reject(error);
        if (bytes === 0 || filled + bytes === length) return resolve(buffer.subarray(0, filled + bytes));
        step(filled + bytes);
      });
    };
    step(0);
  });
}

/** fdatasync: data and the metadata needed to read it back (the file size) reach the disk. */
export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (error) => (error === null ? resolve() : reject(error))));
}

/**
 * fsyncs a directory so that a file created, renamed or removed in it survives a power loss.
 * Without it a freshly rolled segment could vanish after a crash even though its data was synced.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `dir` (and parents) and fsyncs its parent so the new directory itself is durable. */
export async function ensureDurableDirectory(dir: string): Promise<void> {
  const existed = fs.existsSync(dir);
  await fs.promises.mkdir(dir, { recursive: true });
  if (!existed) await fsyncDirectory(dirname(dir));
}
