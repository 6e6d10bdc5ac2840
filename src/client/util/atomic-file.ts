/**
 * Crash-safe file replacement: write a temporary file next to the target, fsync it, rename it
 * over the target, fsync the directory. A reader (or a restart after a crash at any point)
 * sees either the old content or the new one, never a mix or a truncated file.
 *
 * Temporary files are named `<name>.tmp-<pid>-<n>`; a crash between write and rename leaves
 * one behind, which {@link removeStaleTempFiles} deletes once its process is gone.
 */
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncDirectory } from '../../store/file-io.js';

let counter = 0;

/** The temporary name used for writing `file`. */
function tempName(file: string): string {
  counter = (counter + 1) % 1_000_000_000;
  return `${file}.tmp-${process.pid}-${counter}`;
}

/** Replaces `file` with `data` atomically and durably (creates the directory if needed). */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const dir = dirname(file);
  await fs.promises.mkdir(dir, { recursive: true });
  const temp = tempName(file);
  try {
    const handle = await fs.promises.open(temp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temp, file);
  } catch (error) {
    await fs.promises.rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dir);
}

const TEMP_SUFFIX = /\.tmp-(\d+)-\d+$/;

/** True when `name` is a temporary file of {@link writeFileAtomic}. */
export function isTempFileName(name: string): boolean {
  return TEMP_SUFFIX.test(name);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the temporary files in `dir` (for targets named `prefix…`, all when no prefix) whose
 * writing process no longer runs: leftovers of a crash between write and rename. Files of live
 * processes are kept, since they may be writing right now.
 */
export async function removeStaleTempFiles(dir: string, prefix?: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = TEMP_SUFFIX.exec(name);
    if (match === null || (prefix !== undefined && !name.startsWith(prefix))) continue;
    if (processAlive(Number(match[1]))) continue;
    await fs.promises.rm(join(dir, name), { force: true });
  }
}
