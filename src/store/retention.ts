/**
 * Retention: removes or archives a partition's oldest segments once they are older than the
 * policy allows (metaq-reference §2, `deletePolicy`). Age is the segment file's mtime, i.e. the
 * time of its last write. The active segment is never touched, and segments go strictly from
 * the oldest on, stopping at the first one that is still young, so the log stays contiguous.
 *
 * - `delete,N[h|m|s]`: unlink.
 * - `archive,N[h|m|s]`: rename to `<segment>.meta.arc`.
 * - `archive,N[h|m|s],true`: zip into `<segment>.meta.zip` (one entry named after the segment,
 *   readable by any unzip tool, as MetaQ did), then unlink the original.
 */
import fs from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { DeletePolicy } from '../common/config/delete-policy.js';
import type { Logger } from '../common/logger.js';
import { fsyncDirectory } from './file-io.js';
import type { PartitionLog } from './partition-log.js';
import { dirname } from 'node:path';

/** What one retention pass did to one partition. */
export interface RetentionOutcome {
  /** Start offsets of the segments removed from the log. */
  readonly removed: readonly number[];
  /** Bytes of log removed. */
  readonly bytes: number;
}

/** Applies `policy` to `log` as of time `now` (ms since the epoch). */
export async function applyRetention(log: PartitionLog, policy: DeletePolicy, now: number, logger: Logger): Promise<RetentionOutcome> {
  const removed: number[] = [];
  let bytes = 0;
  for (const segment of await log.immutableSegments()) {
    if (now - segment.mtimeMs < policy.maxAgeMs) break;
    const retired = await log.retireOldestSegment(segment.start, (path) => disposeSegment(path, policy));
    if (!retired) break;
    removed.push(segment.start);
    bytes += segment.size;
    logger.info(
      { segment: segment.path, policy: policy.kind, compress: policy.compress, ageMs: now - segment.mtimeMs },
      policy.kind === 'delete' ? 'retention: deleted segment' : 'retention: archived segment',
    );
  }
  if (removed.length > 0) await fsyncDirectory(log.dir);
  return { removed, bytes };
}

async function disposeSegment(path: string, policy: DeletePolicy): Promise<void> {
  if (policy.kind === 'delete') {
    await fs.promises.unlink(path);
  } else if (!policy.compress) {
    await fs.promises.rename(path, `${path}.arc`);
  } else {
    await zipSegment(path, `${path}.zip`);
    await fs.promises.unlink(path);
  }
}

/**
 * Streams `path` into a one-entry zip at `target`, written under a temporary name and renamed
 * when complete and synced, so a crash never leaves a half-written archive that looks whole.
 * yazl is used because it streams (segments are up to gigabytes) and writes ZIP64 when needed.
 */
async function zipSegment(path: string, target: string): Promise<void> {
  const temporary = `${target}.tmp`;
  const zip = new yazl.ZipFile();
  zip.addReadStream(fs.createReadStream(path), basename(path), { compress: true });
  zip.end();
  const out = fs.createWriteStream(temporary);
  await pipeline(zip.outputStream, out);
  const handle = await fs.promises.open(temporary, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temporary, target);
  await fsyncDirectory(dirname(target));
}
