/**
 * An exclusive lock on a data directory, so that two brokers started by mistake on the same
 * directory do not both append to the same segment files (which would corrupt them).
 *
 * The lock is a file holding the owner's pid, created with O_EXCL. A lock left by a process
 * that no longer exists (after SIGKILL or a power loss) is stale and taken over.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, MetaqError } from '../common/errors.js';

/** Name of the lock file inside the data directory. */
export const LOCK_FILE_NAME = '.metaq.lock';

/** A held data directory lock. */
export interface DataDirLock {
  readonly path: string;
  /** Removes the lock file. */
  release(): Promise<void>;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock on `dir`, or fails naming the process that holds it. */
export async function lockDataDirectory(dir: string): Promise<DataDirLock> {
  const path = join(dir, LOCK_FILE_NAME);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.promises.writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return {
        path,
        release: async () => {
          await fs.promises.rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(await fs.promises.readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
      throw new MetaqError(
        ErrorCode.Startup,
        `data directory ${dir} is in use by another broker (pid ${owner}); stop that broker first, or point dataPath elsewhere`,
      );
    }
    // Stale: the owner is gone. Remove and try again.
    await fs.promises.rm(path, { force: true });
  }
  throw new MetaqError(ErrorCode.Startup, `could not lock data directory ${dir} (lock file ${path} keeps reappearing)`);
}
