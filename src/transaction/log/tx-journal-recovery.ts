/**
 * Start-up of the journal directory: find the journal files, check that their sequence has no
 * gap, validate every older file completely (any damage there refuses the start), and validate the
 * last file record by record, cutting off a torn or corrupt tail.
 *
 * Why older files must be perfect: the journal fdatasyncs a file before it starts the next one, so
 * a crash can only tear the last file. Damage anywhere else is lost data, and replaying around it
 * could resurrect or forget a prepared transaction; the operator must decide, not the broker.
 * Why validate older files at open rather than during replay: the broker must refuse to start
 * before the engine has acted on anything; the cost is one sequential read of the journal, which
 * checkpoints and `deleteFilesBefore` keep short.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { StoreCorruptError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { fdatasync, fsyncDirectory, readAt } from '../../store/file-io.js';
import { closeFd, fstatSize, ftruncateFd, openFd } from './fd-ops.js';
import { scanFrames } from './tx-frame-reader.js';
import { FIRST_JOURNAL_SEQUENCE, journalFileName, parseJournalFileName } from './tx-file-names.js';

/** An immutable (older) journal file. */
export interface SealedJournalFile {
  readonly sequence: number;
  readonly path: string;
  /** Final size in bytes; all of it is valid records. */
  readonly size: number;
}

/** The journal file being appended to. */
export interface ActiveJournalFile {
  readonly sequence: number;
  readonly path: string;
  /** Read-write descriptor. */
  readonly fd: number;
  /** Bytes written (all valid records). */
  size: number;
  /** Bytes known to be on disk (covered by a completed fdatasync). */
  durableSize: number;
  /**
   * Length of the file itself: `size` plus the zero-filled space written ahead of the records
   * (see "Why preallocate" in tx-journal.ts). Always >= `size`.
   */
  allocated: number;
}

/** What {@link recoverJournalDirectory} found. */
export interface RecoveredJournal {
  /** Older files, oldest first. */
  readonly sealed: SealedJournalFile[];
  /** The last file, open for appending. */
  readonly active: ActiveJournalFile;
  /** Bytes cut off the tail of the last file (0 after a clean shutdown). */
  readonly truncatedBytes: number;
}

/**
 * Opens the journal in `dir` (which must exist), or creates its first file.
 * @throws StoreCorruptError naming the file when a journal file is missing or an older one is damaged.
 */
export async function recoverJournalDirectory(dir: string, logger: Logger): Promise<RecoveredJournal> {
  const sequences = (await fs.promises.readdir(dir))
    .map((name) => parseJournalFileName(name))
    .filter((sequence): sequence is number => sequence !== undefined)
    .sort((a, b) => a - b);
  assertNoGap(dir, sequences);

  const last = sequences.at(-1);
  if (last === undefined) {
    const path = join(dir, journalFileName(FIRST_JOURNAL_SEQUENCE));
    const fd = await openFd(path, 'wx+');
    await fsyncDirectory(dir);
    logger.info({ file: path }, 'created a new transaction journal');
    return { sealed: [], active: { sequence: FIRST_JOURNAL_SEQUENCE, path, fd, size: 0, durableSize: 0, allocated: 0 }, truncatedBytes: 0 };
  }

  const sealed: SealedJournalFile[] = [];
  for (const sequence of sequences.slice(0, -1)) sealed.push(await validateSealedFile(dir, sequence));
  const { active, truncatedBytes } = await recoverLastFile(dir, last, logger);
  return { sealed, active, truncatedBytes };
}

function assertNoGap(dir: string, sequences: readonly number[]): void {
  for (let i = 1; i < sequences.length; i++) {
    const prev = sequences[i - 1];
    const cur = sequences[i];
    if (prev === undefined || cur === undefined || cur === prev + 1) continue;
    throw new StoreCorruptError(
      `transaction journal ${dir} is missing ${journalFileName(prev + 1)} (found ${journalFileName(prev)} then ${journalFileName(cur)}): ` +
        `a journal file was removed by hand. Restore it from a backup; or, accepting that the prepared and in-flight ` +
        `transactions recorded in the journal are lost, move the whole directory away and start again.`,
    );
  }
}

async function validateSealedFile(dir: string, sequence: number): Promise<SealedJournalFile> {
  const path = join(dir, journalFileName(sequence));
  const fd = await openFd(path, 'r');
  try {
    const size = await fstatSize(fd);
    const scan = await scanFrames(fd, size);
    if (scan.problem !== undefined) {
      throw new StoreCorruptError(
        `transaction journal file ${path} is corrupt at byte ${scan.validLength} of ${size} (${scan.problem}) after ` +
          `${scan.records} valid records. Only the newest journal file can be torn by a crash (older ones were synced ` +
          `before the journal moved on), so this is damage to the disk or a file edited by hand. Restore the file ` +
          `from a backup; or, accepting that the transactions recorded in it are lost, move the directory away.`,
      );
    }
    return { sequence, path, size };
  } finally {
    await closeFd(fd);
  }
}

async function recoverLastFile(dir: string, sequence: number, logger: Logger): Promise<{ active: ActiveJournalFile; truncatedBytes: number }> {
  const path = join(dir, journalFileName(sequence));
  const fd = await openFd(path, 'r+');
  try {
    const size = await fstatSize(fd);
    const scan = await scanFrames(fd, size);
    if (scan.validLength < size && (await isZeroFilled(fd, scan.validLength, size))) {
      // Space the journal wrote ahead of its records (zeros never decode as a record, see
      // tx-record-frame.ts): not damage, and kept so that appends go on overwriting it.
      await fdatasync(fd);
      return { active: { sequence, path, fd, size: scan.validLength, durableSize: scan.validLength, allocated: size }, truncatedBytes: 0 };
    }
    const cut = size - scan.validLength;
    if (cut > 0) {
      logger.warn(
        { file: path, validBytes: scan.validLength, truncatedBytes: cut, reason: scan.problem, records: scan.records },
        `transaction journal recovery: truncating ${cut} bytes of torn or corrupt tail (${scan.problem ?? 'unknown'}) ` +
          `of ${path} after ${scan.records} valid records`,
      );
      await ftruncateFd(fd, scan.validLength);
    }
    // Always sync, not only after a cut: the previous process may have died (without the machine)
    // with 'none' or 'deferred' records still in the page cache. The engine is about to act on
    // what it replays, so those records must be on disk before it does.
    await fdatasync(fd);
    return { active: { sequence, path, fd, size: scan.validLength, durableSize: scan.validLength, allocated: scan.validLength }, truncatedBytes: cut };
  } catch (error) {
    await closeFd(fd);
    throw error;
  }
}

/** Bytes read at a time when checking a preallocated tail. */
const ZERO_CHECK_BLOCK = 1024 * 1024;

/** True when bytes [from, to) of the file open at `fd` are all zero. */
async function isZeroFilled(fd: number, from: number, to: number): Promise<boolean> {
  for (let offset = from; offset < to; offset += ZERO_CHECK_BLOCK) {
    const block = await readAt(fd, Math.min(ZERO_CHECK_BLOCK, to - offset), offset);
    if (block.length === 0) return false;
    for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  }
  return true;
}
