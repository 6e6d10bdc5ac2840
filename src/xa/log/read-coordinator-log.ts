/**
 * Reads a coordinator log without disturbing the manager that may be running on it: for
 * operator tools (`metaq tx list --coordinator-log <dir>`).
 *
 * Why a copy: opening the journal in place would take part in the live manager's files (torn-tail
 * truncation writes, the lock). The files are copied to a temporary directory and replayed there
 * exactly as the manager would at start-up; a record being written during the copy shows up as a
 * torn tail of the copy and is cut there, which only means the listing is a moment old.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { componentLogger } from '../../common/logger.js';
import { TxJournal } from '../../transaction/log/tx-journal.js';
import type { PendingEntry } from '../coordinator-log.js';
import { COORDINATOR_LOCK_FILE_NAME } from './coordinator-log-lock.js';
import { replayCoordinatorLog } from './coordinator-log-replay.js';
import { PendingTable } from './pending-table.js';

/**
 * The pending entries (COMMITTING or PRESUMED_ABORTING without END) of the coordinator log in
 * `dir`, read from a private copy.
 *
 * @throws Error when `dir` does not exist or holds no coordinator log; StoreCorruptError when a
 *   record cannot be decoded.
 */
export async function readCoordinatorLog(dir: string): Promise<PendingEntry[]> {
  const names = await fs.readdir(dir);
  const copy = await fs.mkdtemp(join(os.tmpdir(), 'metaq-coordinator-log-'));
  try {
    for (const name of names) {
      if (name === COORDINATOR_LOCK_FILE_NAME) continue;
      const stat = await fs.stat(join(dir, name)).catch(() => undefined);
      if (stat?.isFile() === true) await fs.copyFile(join(dir, name), join(copy, name));
    }
    const log = componentLogger('xa-log-reader');
    const journal = await TxJournal.open(copy, { logger: log });
    try {
      const table = new PendingTable();
      await replayCoordinatorLog(copy, journal, table, log);
      return table.pending();
    } finally {
      await journal.close();
    }
  } finally {
    await fs.rm(copy, { recursive: true, force: true });
  }
}
