/**
 * Checkpoints of the transaction engine: `checkpoint-<sequence>.ckp` files in the journal
 * directory, each holding a journal position (replay starts there) and the engine's snapshot of
 * live transactions (format in tx-checkpoint-format.ts).
 *
 * A checkpoint is written atomically (temporary file, fdatasync, rename, directory fsync), so a
 * crash leaves either the old set or the old set plus the complete new one. Several are kept
 * (`maxCheckpoints`, MetaQ's default 3) because a checkpoint can still be damaged later (bad
 * sector, bit rot); loading then falls back to the previous one, which is only useful if the
 * journal still has the files it needs: see {@link oldestCheckpointPosition}.
 */
import fs from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, StoreIoError } from '../../common/errors.js';
import { componentLogger, type Logger } from '../../common/logger.js';
import { ensureDurableDirectory, fdatasync, fsyncDirectory, writevAll } from '../../store/file-io.js';
import { closeFd, openFd } from './fd-ops.js';
import { assertJournalPosition, compareJournalPositions, type JournalPosition } from './journal-position.js';
import { decodeCheckpoint, encodeCheckpoint } from './tx-checkpoint-format.js';
import { CHECKPOINT_TEMP_SUFFIX, checkpointFileName, isCheckpointTempFileName, parseCheckpointFileName } from './tx-file-names.js';

/** Default number of checkpoint files kept (MetaQ's `maxCheckpoints`). */
export const DEFAULT_MAX_CHECKPOINTS = 3;

/** What the engine checkpoints. */
export interface CheckpointInput {
  /** Replay starts here: typically the first record of the oldest live transaction, or the journal end. */
  readonly position: JournalPosition;
  /** The engine's snapshot of live transactions. */
  readonly payload: Buffer;
}

/** A checkpoint as loaded. */
export interface LoadedCheckpoint {
  /** Where replay starts. */
  readonly position: JournalPosition;
  /** The engine's snapshot. */
  readonly payload: Buffer;
  /** The checkpoint's sequence number (from `checkpoint-<sequence>.ckp`). */
  readonly sequence: number;
}

/** Settings of {@link writeCheckpoint}. */
export interface WriteCheckpointOptions {
  /** Checkpoints kept, the new one included (at least 1). Default {@link DEFAULT_MAX_CHECKPOINTS}. */
  readonly maxCheckpoints?: number;
  /** Logger; default `componentLogger('txlog', { dir })`. */
  readonly logger?: Logger;
}

/** Settings of {@link loadNewestCheckpoint} and {@link oldestCheckpointPosition}. */
export interface LoadCheckpointOptions {
  /** Logger for skipped corrupt checkpoints; default `componentLogger('txlog', { dir })`. */
  readonly logger?: Logger;
}

/**
 * Per-directory queue, so that two checkpoints written at once in this process cannot pick the
 * same sequence number or prune each other's files.
 */
const writeQueues = new Map<string, Promise<unknown>>();

/**
 * Writes a new checkpoint atomically with the next sequence number, then deletes all but the
 * newest `maxCheckpoints` checkpoints (and any temporary file a crash left behind).
 * Creates `dir` (durably) if needed.
 * @throws InvalidArgumentError for a bad position or option; StoreIoError when a disk step fails
 *   (the previous checkpoints are then untouched).
 */
export async function writeCheckpoint(dir: string, checkpoint: CheckpointInput, options: WriteCheckpointOptions = {}): Promise<void> {
  assertJournalPosition(checkpoint.position, 'checkpoint position');
  if (!Buffer.isBuffer(checkpoint.payload) || checkpoint.payload.length > 0xffff_ffff) {
    throw new InvalidArgumentError('checkpoint payload must be a Buffer of at most 4 GiB - 1 bytes');
  }
  const maxCheckpoints = options.maxCheckpoints ?? DEFAULT_MAX_CHECKPOINTS;
  if (!Number.isSafeInteger(maxCheckpoints) || maxCheckpoints < 1) {
    throw new InvalidArgumentError(`maxCheckpoints must be a positive integer, got ${maxCheckpoints}`);
  }
  const log = options.logger ?? componentLogger('txlog', { dir });
  const key = resolve(dir);
  const previous = writeQueues.get(key) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => writeAndPrune(dir, checkpoint, maxCheckpoints, log));
  writeQueues.set(key, run);
  try {
    await run;
  } finally {
    if (writeQueues.get(key) === run) writeQueues.delete(key);
  }
}

async function writeAndPrune(dir: string, checkpoint: CheckpointInput, maxCheckpoints: number, log: Logger): Promise<void> {
  await step(`creating directory ${dir}`, () => ensureDurableDirectory(dir));
  const names = await step(`listing ${dir}`, () => fs.promises.readdir(dir));
  const existing = checkpointSequences(names);
  const sequence = (existing.at(-1) ?? 0) + 1;
  const path = join(dir, checkpointFileName(sequence));
  const temp = path + CHECKPOINT_TEMP_SUFFIX;

  // 'w' rather than 'wx': a temporary file of this name can only be a leftover of a crash.
  const fd = await step(`creating ${temp}`, () => openFd(temp, 'w'));
  try {
    await step(`writing ${temp}`, () => writevAll(fd, encodeCheckpoint({ sequence, ...checkpoint }), 0));
    await step(`fdatasync of ${temp}`, () => fdatasync(fd));
  } catch (error) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    await closeFd(fd);
  }
  await step(`renaming ${temp} to ${path}`, () => fs.promises.rename(temp, path));
  await step(`fsync of directory ${dir}`, () => fsyncDirectory(dir));
  log.info({ checkpoint: path, position: checkpoint.position, payloadBytes: checkpoint.payload.length }, 'wrote transaction checkpoint');

  // Pruning happens only once the new checkpoint is durable, so there is never a moment with
  // fewer valid checkpoints on disk than before.
  const doomed = [...existing, sequence].slice(0, -maxCheckpoints).map((s) => checkpointFileName(s));
  for (const name of names) if (isCheckpointTempFileName(name)) doomed.push(name);
  for (const name of doomed) await step(`deleting ${join(dir, name)}`, () => fs.promises.rm(join(dir, name), { force: true }));
  if (doomed.length > 0) await step(`fsync of directory ${dir}`, () => fsyncDirectory(dir));
}

/**
 * The newest checkpoint that validates (magic, version, length, CRC, sequence matching its
 * name). A newer one that does not is skipped with a warning, falling back to the one before.
 * @returns undefined when `dir` is missing or holds no valid checkpoint (an error is logged when
 *   checkpoints exist but none is valid).
 * @throws StoreIoError when a checkpoint cannot be read (an I/O error is not corruption: the
 *   broker must not silently fall back to an older state because a disk hiccupped).
 */
export async function loadNewestCheckpoint(dir: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint | undefined> {
  const log = options.logger ?? componentLogger('txlog', { dir });
  const sequences = await listCheckpoints(dir);
  for (const sequence of [...sequences].reverse()) {
    const loaded = await readCheckpoint(dir, sequence, log);
    if (loaded !== undefined) return loaded;
  }
  if (sequences.length > 0) {
    log.error({ dir, checkpoints: sequences.length }, 'no valid transaction checkpoint: every checkpoint file is corrupt; replay starts from the first journal file');
  }
  return undefined;
}

/**
 * The smallest journal position among the retained checkpoints that validate. Journal files
 * before it can be deleted without breaking the fall-back to an older checkpoint, so pass this,
 * not the newest checkpoint's position, to `TxJournal.deleteFilesBefore`.
 * @returns undefined when there is no valid checkpoint (then nothing may be deleted).
 */
export async function oldestCheckpointPosition(dir: string, options: LoadCheckpointOptions = {}): Promise<JournalPosition | undefined> {
  const log = options.logger ?? componentLogger('txlog', { dir });
  let oldest: JournalPosition | undefined;
  for (const sequence of await listCheckpoints(dir)) {
    const loaded = await readCheckpoint(dir, sequence, log);
    if (loaded !== undefined && (oldest === undefined || compareJournalPositions(loaded.position, oldest) < 0)) oldest = loaded.position;
  }
  return oldest;
}

/** Sequences of the checkpoint files in `dir`, ascending; none when `dir` does not exist. */
async function listCheckpoints(dir: string): Promise<number[]> {
  try {
    return checkpointSequences(await fs.promises.readdir(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new StoreIoError(`listing checkpoints in ${dir} failed`, error);
  }
}

function checkpointSequences(names: readonly string[]): number[] {
  return names
    .map((name) => parseCheckpointFileName(name))
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
}

/** Reads and validates one checkpoint; undefined (with a warning) when it is corrupt or vanished. */
async function readCheckpoint(dir: string, sequence: number, log: Logger): Promise<LoadedCheckpoint | undefined> {
  const path = join(dir, checkpointFileName(sequence));
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(path);
  } catch (error) {
    // Deleted between listing and reading (a concurrent prune): not there, not corrupt.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreIoError(`reading checkpoint ${path} failed`, error);
  }
  const decoded = decodeCheckpoint(bytes);
  const problem = typeof decoded === 'string' ? decoded : decoded.sequence !== sequence ? `it holds sequence ${decoded.sequence}` : undefined;
  if (problem !== undefined || typeof decoded === 'string') {
    log.warn({ checkpoint: path, reason: problem }, `skipping corrupt transaction checkpoint ${path}: ${problem ?? 'invalid'}`);
    return undefined;
  }
  return { position: decoded.position, payload: decoded.payload, sequence };
}

async function step<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof StoreIoError) throw error;
    throw new StoreIoError(`checkpoint: ${what} failed`, error);
  }
}
