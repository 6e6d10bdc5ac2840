import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { readFrameBlock, scanFrames } from '../../src/transaction/log/tx-frame-reader.js';
import { encodeFrame, FRAME_HEADER_SIZE } from '../../src/transaction/log/tx-record-frame.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
let fd: number | undefined;
beforeEach(async () => {
  dir = await makeTempDir('metaq-txlog-');
});
afterEach(async () => {
  if (fd !== undefined) fs.closeSync(fd);
  fd = undefined;
  await dir.remove();
});

/** Writes frames of the given payload sizes to a file and opens it; returns the fd and the sizes on disk. */
function fileOf(sizes: readonly number[], extra = Buffer.alloc(0)): { fd: number; total: number } {
  const path = join(dir.path, 'frames.log');
  const bytes = Buffer.concat([...sizes.map((s, i) => encodeFrame(i % 256, Buffer.alloc(s, i))), extra]);
  fs.writeFileSync(path, bytes);
  fd = fs.openSync(path, 'r');
  return { fd, total: bytes.length };
}

describe('txlog frame reader', () => {
  it('reads records larger than a block, and blocks that end inside a record, with a 16-byte block', async () => {
    const sizes = [0, 3, 40, 7, 100, 1, 16];
    const file = fileOf(sizes);
    const seen: number[] = [];
    let offset = 0;
    let expectedOffset = 0;
    while (offset < file.total) {
      const block = await readFrameBlock(file.fd, offset, file.total, 16);
      assert.equal(block.problem, undefined);
      assert.ok(block.frames.length > 0, 'every call makes progress');
      for (const f of block.frames) {
        assert.equal(f.offset, expectedOffset);
        expectedOffset += FRAME_HEADER_SIZE + f.payload.length;
        seen.push(f.payload.length);
      }
      offset = block.end;
    }
    assert.deepEqual(seen, sizes);
    assert.deepEqual(await scanFrames(file.fd, file.total, 16), { validLength: file.total, records: sizes.length, problem: undefined });
  });

  it('reports a torn large record as incomplete at its start', async () => {
    const whole = fileOf([5, 200]);
    fs.closeSync(whole.fd);
    fd = undefined;
    const path = join(dir.path, 'frames.log');
    fs.truncateSync(path, whole.total - 10);
    fd = fs.openSync(path, 'r');
    const scan = await scanFrames(fd, whole.total - 10, 16);
    assert.deepEqual(scan, { validLength: FRAME_HEADER_SIZE + 5, records: 1, problem: 'incomplete' });
  });

  it('treats a file shorter than the announced limit as torn', async () => {
    const file = fileOf([5, 5]);
    const scan = await scanFrames(file.fd, file.total + 100);
    assert.deepEqual(scan, { validLength: file.total, records: 2, problem: 'incomplete' });
  });

  it('stops at a corrupt record after a block boundary', async () => {
    const file = fileOf([4, 4, 4], Buffer.alloc(13, 0xab));
    const scan = await scanFrames(file.fd, file.total, 16);
    assert.equal(scan.validLength, 3 * (FRAME_HEADER_SIZE + 4));
    assert.equal(scan.records, 3);
    assert.notEqual(scan.problem, undefined);
  });
});
