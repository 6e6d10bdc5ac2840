/**
 * LocalOffsetStorage: MetaQ's JSON format with lossless 64-bit message ids, atomic rewrites
 * (a reader never sees a torn file), crash leftovers, and refusing a damaged file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { IllegalStateError } from '../../src/common/errors.js';
import { createLocalOffsetStorage } from '../../src/index.js';
import { formatOffsetsFile, parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const BIG_ID = -6402851124219904123n;

describe('LocalOffsetStorage', () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await makeTempDir('metaq-offsets-');
  });
  after(async () => {
    await dir.remove();
  });

  it("writes MetaQ's JSON format and reads it back, ids exact", async () => {
    const file = join(dir.path, 'format', '.meta_offsets');
    const storage = createLocalOffsetStorage(file);
    assert.equal(storage.file, file);
    await storage.commit('g1', [
      { topic: 'test', brokerId: 0, partition: 1, offset: 1024, messageId: BIG_ID },
      { topic: 'test', brokerId: 0, partition: 0, offset: 0, messageId: -1n },
    ]);
    await storage.close();
    const text = fs.readFileSync(file, 'utf8');
    const json = JSON.parse(text) as Record<string, unknown[]>;
    assert.deepEqual(json['g1']?.[0], {
      topic: 'test',
      partition: { brokerId: 0, partition: 1 },
      offset: 1024,
      messageId: Number(BIG_ID),
      modified: false,
    });
    assert.match(text, new RegExp(`"messageId":${BIG_ID}`), 'the id is written as an exact JSON number');
    const reread = createLocalOffsetStorage(file);
    const loaded = await reread.load('test', 'g1', [
      { brokerId: 0, partition: 1 },
      { brokerId: 0, partition: 0 },
      { brokerId: 0, partition: 7 },
    ]);
    assert.deepEqual(loaded, [
      { topic: 'test', brokerId: 0, partition: 1, offset: 1024, messageId: BIG_ID },
      { topic: 'test', brokerId: 0, partition: 0, offset: 0, messageId: -1n },
    ]);
    assert.deepEqual(await reread.load('test', 'other-group', [{ brokerId: 0, partition: 1 }]), []);
  });

  it('keeps other groups and topics when one group commits; init does not overwrite', async () => {
    const file = join(dir.path, 'groups.json');
    const storage = createLocalOffsetStorage(file);
    await storage.init('t', 'a', { brokerId: 1, partition: 0 }, 5);
    await storage.commit('b', [{ topic: 't', brokerId: 1, partition: 0, offset: 100, messageId: 9n }]);
    await storage.commit('a', [{ topic: 'u', brokerId: 1, partition: 0, offset: 7, messageId: 3n }]);
    await storage.init('t', 'a', { brokerId: 1, partition: 0 }, 999);
    const groups = parseOffsetsFile(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(
      groups.get('a')?.map((o) => [o.topic, o.offset]),
      [
        ['t', 5],
        ['u', 7],
      ],
    );
    assert.deepEqual(groups.get('b')?.map((o) => o.offset), [100]);
  });

  it('never exposes a torn file to a concurrent reader and leaves no temp files', async () => {
    const file = join(dir.path, 'atomic.json');
    const storage = createLocalOffsetStorage(file);
    await storage.commit('g', [{ topic: 't', brokerId: 0, partition: 0, offset: 0, messageId: 0n }]);
    let reads = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const text = fs.readFileSync(file, 'utf8');
        parseOffsetsFile(text); // throws on a partial file
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const commits: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) {
      const offsets = Array.from({ length: 50 }, (_, p) => ({ topic: 'topic-with-a-long-name', brokerId: 0, partition: p, offset: i * 1000 + p, messageId: BigInt(i) }));
      commits.push(storage.commit('g', offsets));
      if (i % 20 === 0) await Promise.all(commits.splice(0));
    }
    await Promise.all(commits);
    stop = true;
    await reader;
    assert.ok(reads > 0);
    const last = parseOffsetsFile(fs.readFileSync(file, 'utf8')).get('g');
    assert.equal(last?.find((o) => o.partition === 49)?.offset, 200_049, 'the last commit wins');
    assert.deepEqual(
      fs.readdirSync(dir.path).filter((n) => n.includes('.tmp-')),
      [],
    );
  });

  it('removes temp files left by a crashed process, keeps those of live ones', async () => {
    const sub = join(dir.path, 'stale');
    fs.mkdirSync(sub);
    const file = join(sub, 'offsets.json');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    fs.writeFileSync(`${file}.tmp-${dead}-1`, '{"half":');
    fs.writeFileSync(`${file}.tmp-${process.pid}-999999`, 'mine');
    assert.deepEqual(await createLocalOffsetStorage(file).load('t', 'g', [{ brokerId: 0, partition: 0 }]), []);
    assert.deepEqual(fs.readdirSync(sub).sort(), [`offsets.json.tmp-${process.pid}-999999`]);
  });

  it('refuses a damaged file instead of starting over', async () => {
    const file = join(dir.path, 'damaged.json');
    fs.writeFileSync(file, '{"g":[{"topic":"t","partition":{"brokerId":0,"partition":0},"offset":1');
    await assert.rejects(createLocalOffsetStorage(file).load('t', 'g', [{ brokerId: 0, partition: 0 }]), (error: unknown) => {
      assert.ok(error instanceof IllegalStateError);
      assert.match(error.message, /damaged\.json is not valid/);
      return true;
    });
  });

  it('reads ids losslessly even when a topic name contains the key text', () => {
    const text = formatOffsetsFile(new Map([['g', [{ topic: 'x"messageId":1', brokerId: 0, partition: 0, offset: 3, messageId: 9007199254740993n }]]]));
    const parsed = parseOffsetsFile(text).get('g')?.[0];
    assert.equal(parsed?.topic, 'x"messageId":1');
    assert.equal(parsed?.messageId, 9007199254740993n);
  });
});
