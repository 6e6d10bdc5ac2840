import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { parseDeletePolicy } from '../../src/common/config/delete-policy.js';
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog } from '../../src/store/partition-log.js';
import { applyRetention } from '../../src/store/retention.js';
import { segmentFileName } from '../../src/store/segment-name.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const HOUR = 3_600_000;
const logger = componentLogger('test');
let dir: { path: string; remove: () => Promise<void> };
let log: PartitionLog;

/** The log under test: 1000-byte segments, group commit. */
function openLog(): Promise<PartitionLog> {
  return PartitionLog.open({
    topic: 't',
    partition: 0,
    dir: dir.path,
    maxSegmentSize: 1000,
    maxRecordDataLength: 1 << 20,
    unflushThreshold: 0,
    unflushInterval: 1000,
    logger,
  });
}

beforeEach(async () => {
  dir = await makeTempDir();
  log = await openLog();
  // 120-byte records, roll every 9: segments at 0, 1080, 2160, 3240 (active).
  for (let i = 0; i < 30; i++) await log.append({ id: BigInt(i + 1), flag: 0, data: Buffer.alloc(100, i) });
});
afterEach(async () => {
  await log.close();
  await dir.remove();
});

/** Sets a segment's mtime to `hoursAgo` before `now`. */
function age(start: number, now: number, hoursAgo: number): void {
  const when = new Date(now - hoursAgo * HOUR);
  fs.utimesSync(join(dir.path, segmentFileName(start)), when, when);
}

function files(): string[] {
  return fs.readdirSync(dir.path).sort();
}

describe('retention', () => {
  it('delete,N: removes segments older than N hours, oldest first, never the active one', async () => {
    const now = Date.now();
    age(0, now, 200);
    age(1080, now, 170);
    age(2160, now, 100);
    age(3240, now, 1000); // active: old, but never deleted
    const outcome = await applyRetention(log, parseDeletePolicy('delete,168'), now, logger);
    assert.deepEqual(outcome.removed, [0, 1080]);
    assert.deepEqual(files(), [segmentFileName(2160), segmentFileName(3240)]);
    assert.equal(log.minOffset, 2160);
    assert.deepEqual(await log.read(100, 10), { kind: 'before-start', minOffset: 2160 });
  });

  it('stops at the first young segment so the log stays contiguous', async () => {
    const now = Date.now();
    age(0, now, 2);
    age(1080, now, 1);
    age(2160, now, 5);
    const outcome = await applyRetention(log, parseDeletePolicy('delete,90m'), now, logger);
    assert.deepEqual(outcome.removed, [0]);
    assert.equal(log.minOffset, 1080);
  });

  it('understands minutes and seconds', async () => {
    const now = Date.now();
    for (const start of [0, 1080, 2160]) age(start, now, 0);
    const later = now + 31_000;
    assert.deepEqual((await applyRetention(log, parseDeletePolicy('delete,1m'), later, logger)).removed, []);
    assert.deepEqual((await applyRetention(log, parseDeletePolicy('delete,30s'), later, logger)).removed, [0, 1080, 2160]);
  });

  it('archive,N: renames old segments to .meta.arc', async () => {
    const now = Date.now();
    age(0, now, 200);
    age(1080, now, 1);
    await applyRetention(log, parseDeletePolicy('archive,168'), now, logger);
    assert.deepEqual(files(), [`${segmentFileName(0)}.arc`, segmentFileName(1080), segmentFileName(2160), segmentFileName(3240)]);
  });

  it('archive,N,true: zips old segments into .meta.zip with the original bytes', async () => {
    const now = Date.now();
    const original = fs.readFileSync(join(dir.path, segmentFileName(0)));
    age(0, now, 200);
    age(1080, now, 1);
    await applyRetention(log, parseDeletePolicy('archive,168,true'), now, logger);
    assert.deepEqual(files(), [`${segmentFileName(0)}.zip`, segmentFileName(1080), segmentFileName(2160), segmentFileName(3240)]);
    const entries = await readZip(join(dir.path, `${segmentFileName(0)}.zip`));
    assert.deepEqual([...entries.keys()], [segmentFileName(0)]);
    assert.deepEqual(entries.get(segmentFileName(0)), original);
  });

  it('a reopened log skips archived files and starts at the first live segment', async () => {
    const now = Date.now();
    age(0, now, 200);
    age(1080, now, 1);
    await applyRetention(log, parseDeletePolicy('archive,168'), now, logger);
    await log.close();
    log = await openLog();
    assert.equal(log.minOffset, 1080);
    assert.equal(log.maxOffset, 3600);
  });
});

function readZip(path: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true }, (error, zip) => {
      if (error !== null || zip === undefined) return reject(error ?? new Error('no zip'));
      const entries = new Map<string, Buffer>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError !== null || stream === undefined) return reject(streamError ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            entries.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(entries));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}
