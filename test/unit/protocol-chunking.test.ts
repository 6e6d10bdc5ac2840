import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder } from '../../src/protocol/index.js';
import { golden } from '../fixtures/protocol/golden-frames.js';
import { decodeByteByByte, decodeChunks, decodeSplitAt, randomChunks, seededRandom } from '../fixtures/protocol/feed.js';

const all = Buffer.concat(golden.map((fixture) => fixture.bytes));
const allFrames = golden.map((fixture) => fixture.frame);

describe('FrameDecoder accepts any chunking', () => {
  for (const fixture of golden) {
    it(`${fixture.name}: one byte at a time`, () => {
      assert.deepEqual(decodeByteByByte(fixture.bytes), [fixture.frame]);
    });

    it(`${fixture.name}: split into two chunks at every position`, () => {
      for (let at = 0; at <= fixture.bytes.length; at++) {
        assert.deepEqual(decodeSplitAt(fixture.bytes, at), [fixture.frame], `split at ${at}`);
      }
    });
  }

  it('all frames concatenated in one chunk', () => {
    assert.deepEqual(decodeChunks([all]), allFrames);
  });

  it('all frames concatenated, one byte at a time', () => {
    assert.deepEqual(decodeByteByByte(all), allFrames);
  });

  it('all frames concatenated, split into two chunks at every position', () => {
    for (let at = 0; at <= all.length; at++) {
      assert.deepEqual(decodeSplitAt(all, at), allFrames, `split at ${at}`);
    }
  });

  it('all frames concatenated, 200 random chunkings', () => {
    const random = seededRandom(20240601);
    for (let round = 0; round < 200; round++) {
      const chunks = randomChunks(all, random, 1 + (round % 40));
      assert.deepEqual(decodeChunks(chunks), allFrames, `round ${round}`);
    }
  });

  it('a split between CR and LF waits for the LF', () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.decode(Buffer.from('version 1\r')), []);
    assert.equal(decoder.bufferedBytes, 10);
    assert.deepEqual(decoder.decode(Buffer.from('\nversion 2\r\n')), [
      { type: 'version', opaque: 1 },
      { type: 'version', opaque: 2 },
    ]);
  });

  it('a body split across many chunks is joined once, and the bytes after it start the next frame', () => {
    const decoder = new FrameDecoder();
    const body = Buffer.alloc(100_000, 0x61);
    const bytes = Buffer.concat([Buffer.from(`value ${body.length} 7\r\n`), body, Buffer.from('result 200 0 8\r\n')]);
    const frames = [];
    for (let pos = 0; pos < bytes.length; pos += 4096) frames.push(...decoder.decode(bytes.subarray(pos, pos + 4096)));
    assert.deepEqual(frames, [
      { type: 'value', body, opaque: 7 },
      { type: 'result', code: 200, body: Buffer.alloc(0), opaque: 8 },
    ]);
    assert.equal(decoder.bufferedBytes, 0);
  });

  it('a header-only frame after a body in the same chunk is decoded', () => {
    assert.deepEqual(decodeChunks([Buffer.from('put t 0 2 0 -1 1\r\n'), Buffer.from('hiquit\r\n')]), [
      { type: 'put', topic: 't', partition: 0, data: Buffer.from('hi'), flag: 0, checksum: -1, transactionKey: undefined, opaque: 1, form: 7 },
      { type: 'quit' },
    ]);
  });

  it('an empty chunk is harmless', () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.decode(Buffer.alloc(0)), []);
    assert.deepEqual(decoder.decode(Buffer.from('quit\r\n')), [{ type: 'quit' }]);
  });

  it('iterating push() handles the frames before a malformed one, then throws', () => {
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    assert.throws(() => {
      for (const frame of decoder.push(Buffer.from('version 1\r\nversion 2\r\nbogus\r\nversion 3\r\n'))) seen.push(frame.type);
    }, /Unknown command "bogus"/);
    assert.deepEqual(seen, ['version', 'version']);
  });

  it('next() returns undefined until a frame is complete', () => {
    const decoder = new FrameDecoder();
    decoder.push(Buffer.from('value 5 1\r\nhel'));
    assert.equal(decoder.next(), undefined);
    assert.equal(decoder.bufferedBytes, 3);
    decoder.push(Buffer.from('lo'));
    assert.deepEqual(decoder.next(), { type: 'value', body: Buffer.from('hello'), opaque: 1 });
    assert.equal(decoder.next(), undefined);
  });
});
