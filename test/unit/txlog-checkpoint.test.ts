import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../src/common/errors.js';
import { BinaryReader } from '../../src/transaction/log/binary-reader.js';
import { BinaryWriter } from '../../src/transaction/log/binary-writer.js';
import type { JournalPosition } from '../../src/transaction/log/journal-position.js';
import { CHECKPOINT_HEADER_SIZE } from '../../src/transaction/log/tx-checkpoint-format.js';
import { loadNewestCheckpoint, oldestCheckpointPosition, writeCheckpoint } from '../../src/transaction/log/tx-checkpoint.js';
import { checkpointFileName } from '../../src/transaction/log/tx-file-names.js';
import { captureLogger, collect, flipByte, type JournalFixture, journalFixturePerTest, payload } from '../helpers/txlog-fixtures.js';

const fx = journalFixturePerTest();

const ckp = (sequence: number): string => join(fx.dir, checkpointFileName(sequence));
const listing = (): string[] => fs.readdirSync(fx.dir).sort();

async function writeN(n: number, maxCheckpoints?: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await writeCheckpoint(fx.dir, { position: { file: i, offset: i * 10 }, payload: payload(i, 100) }, maxCheckpoints === undefined ? {} : { maxCheckpoints });
  }
}

describe('txlog checkpoints', () => {
  it('writes checkpoint-<20 digits>.ckp (creating the directory) and loads it back', async () => {
    const snapshot = new BinaryWriter().u32(2).string('xid-1').string('xid-2').finish();
    await writeCheckpoint(fx.dir, { position: { file: 3, offset: 4096 }, payload: snapshot });
    assert.deepEqual(listing(), ['checkpoint-00000000000000000001.ckp']);
    const bytes = fs.readFileSync(ckp(1));
    assert.equal(bytes.subarray(0, 4).toString('latin1'), 'MQCK');
    assert.equal(bytes.length, CHECKPOINT_HEADER_SIZE + snapshot.length);
    const loaded = await loadNewestCheckpoint(fx.dir);
    assert.ok(loaded !== undefined);
    assert.deepEqual(loaded.position, { file: 3, offset: 4096 });
    assert.equal(loaded.sequence, 1);
    const r = new BinaryReader(loaded.payload);
    assert.deepEqual([r.u32(), r.string(), r.string()], [2, 'xid-1', 'xid-2']);
  });

  it('returns undefined for a missing directory or one without checkpoints', async () => {
    assert.equal(await loadNewestCheckpoint(fx.dir), undefined);
    fs.mkdirSync(fx.dir, { recursive: true });
    assert.equal(await loadNewestCheckpoint(fx.dir), undefined);
    assert.equal(await oldestCheckpointPosition(fx.dir), undefined);
  });

  it('the newest checkpoint wins', async () => {
    await writeN(3);
    const loaded = await loadNewestCheckpoint(fx.dir);
    assert.equal(loaded?.sequence, 3);
    assert.deepEqual(loaded?.position, { file: 3, offset: 30 });
    assert.deepEqual(loaded?.payload, payload(3, 100));
  });

  it('falls back to the previous checkpoint when the newest is corrupt, with a warning', async () => {
    await writeN(3);
    for (const damage of ['flip payload', 'flip header', 'truncate', 'empty'] as const) {
      const path = ckp(3);
      const original = fs.readFileSync(path);
      if (damage === 'flip payload') flipByte(path, CHECKPOINT_HEADER_SIZE + 50);
      else if (damage === 'flip header') flipByte(path, 20);
      else if (damage === 'truncate') fs.truncateSync(path, original.length - 1);
      else fs.writeFileSync(path, '');
      const { logger, lines } = captureLogger();
      const loaded = await loadNewestCheckpoint(fx.dir, { logger });
      assert.equal(loaded?.sequence, 2, damage);
      assert.deepEqual(loaded?.position, { file: 2, offset: 20 }, damage);
      const warning = lines.find((l) => l['level'] === 40);
      assert.ok(warning !== undefined && String(warning['msg']).includes(path), damage);
      fs.writeFileSync(path, original);
    }
  });

  it('skips a checkpoint whose content is another sequence than its name (copied by hand)', async () => {
    await writeN(2);
    fs.copyFileSync(ckp(1), ckp(5));
    assert.equal((await loadNewestCheckpoint(fx.dir))?.sequence, 2);
  });

  it('returns undefined (logging an error) when every checkpoint is corrupt', async () => {
    await writeN(2);
    flipByte(ckp(1), 0);
    flipByte(ckp(2), 0);
    const { logger, lines } = captureLogger();
    assert.equal(await loadNewestCheckpoint(fx.dir, { logger }), undefined);
    assert.ok(lines.some((l) => l['level'] === 50));
  });

  it('keeps only the newest maxCheckpoints files', async () => {
    await writeN(5, 2);
    assert.deepEqual(listing(), [checkpointFileName(4), checkpointFileName(5)]);
    await writeN(1); // default: 3
    assert.deepEqual(listing(), [checkpointFileName(4), checkpointFileName(5), checkpointFileName(6)]);
  });

  it('is atomic: a checkpoint torn by a crash before its rename is never loaded, and is cleaned up later', async () => {
    await writeN(1);
    // What a crash during the write of checkpoint 2 leaves behind.
    const torn = `${ckp(2)}.tmp`;
    fs.writeFileSync(torn, fs.readFileSync(ckp(1)).subarray(0, 30));
    assert.equal((await loadNewestCheckpoint(fx.dir))?.sequence, 1);
    await writeCheckpoint(fx.dir, { position: { file: 9, offset: 0 }, payload: Buffer.alloc(0) });
    assert.deepEqual(listing(), [checkpointFileName(1), checkpointFileName(2)]);
    assert.deepEqual((await loadNewestCheckpoint(fx.dir))?.position, { file: 9, offset: 0 });
  });

  it('gives concurrent writes distinct sequences', async () => {
    await Promise.all(Array.from({ length: 5 }, (_, i) => writeCheckpoint(fx.dir, { position: { file: 1, offset: i }, payload: payload(i, 8) }, { maxCheckpoints: 10 })));
    assert.equal(listing().length, 5);
    assert.equal((await loadNewestCheckpoint(fx.dir))?.sequence, 5);
  });

  it('oldestCheckpointPosition is the smallest position among the valid retained checkpoints', async () => {
    await writeN(3);
    assert.deepEqual(await oldestCheckpointPosition(fx.dir), { file: 1, offset: 10 });
    flipByte(ckp(1), CHECKPOINT_HEADER_SIZE);
    assert.deepEqual(await oldestCheckpointPosition(fx.dir), { file: 2, offset: 20 });
  });

  it('rejects bad arguments', async () => {
    await assert.rejects(writeCheckpoint(fx.dir, { position: { file: -1, offset: 0 }, payload: Buffer.alloc(0) }), InvalidArgumentError);
    await assert.rejects(writeCheckpoint(fx.dir, { position: { file: 1, offset: 0.5 }, payload: Buffer.alloc(0) }), InvalidArgumentError);
    await assert.rejects(writeCheckpoint(fx.dir, { position: { file: 1, offset: 0 }, payload: Buffer.alloc(0) }, { maxCheckpoints: 0 }), InvalidArgumentError);
  });

  it('end to end: checkpoint, delete old journal files, restart, replay from the checkpoint', async () => {
    let journal = await fx.open({ maxFileSize: 256 });
    const positions: JournalPosition[] = [];
    for (let i = 0; i < 10; i++) positions.push(await journal.append(1, payload(i), 'sync'));
    await writeCheckpoint(fx.dir, { position: positions[3] as JournalPosition, payload: Buffer.from('snapshot A') });
    for (let i = 10; i < 20; i++) positions.push(await journal.append(1, payload(i), 'sync'));
    await writeCheckpoint(fx.dir, { position: positions[14] as JournalPosition, payload: Buffer.from('snapshot B') });
    // Delete only before the OLDEST retained checkpoint, so a fallback to snapshot A still works.
    const floor = await oldestCheckpointPosition(fx.dir);
    assert.deepEqual(floor, positions[3]);
    assert.equal(await journal.deleteFilesBefore(floor as JournalPosition), 0, 'record 3 is in file 1');
    await writeCheckpoint(fx.dir, { position: positions[14] as JournalPosition, payload: Buffer.from('snapshot C') }, { maxCheckpoints: 2 });
    assert.equal(await journal.deleteFilesBefore((await oldestCheckpointPosition(fx.dir)) as JournalPosition), 3);
    await journal.close();

    journal = await fx.open({ maxFileSize: 256 });
    const checkpoint = await loadNewestCheckpoint(fx.dir);
    assert.equal(checkpoint?.payload.toString(), 'snapshot C');
    const replay = await collect(journal.readFrom(checkpoint?.position));
    assert.deepEqual(
      replay.map((r) => r.payload.readUInt32BE(0)),
      [14, 15, 16, 17, 18, 19],
    );
  });
});
