/** Temporary directories for tests, removed when the test (or the process) ends. */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

/** Creates a fresh directory under the OS temp dir; `remove()` deletes it. */
export async function makeTempDir(prefix = 'metaq-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await fs.promises.mkdtemp(join(os.tmpdir(), prefix));
  return { path, remove: () => fs.promises.rm(path, { recursive: true, force: true }) };
}
