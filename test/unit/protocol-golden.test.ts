import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder } from '../../src/protocol/index.js';
import { decodeOnly, golden } from '../fixtures/protocol/golden-frames.js';
import { decodeAll } from '../fixtures/protocol/feed.js';

describe('protocol golden frames (metaq-reference §1.2–1.7)', () => {
  for (const fixture of golden) {
    it(`encodes ${fixture.name} byte for byte`, () => {
      assert.equal(encodeFrame(fixture.frame).toString('latin1'), fixture.bytes.toString('latin1'));
    });

    it(`decodes ${fixture.name}`, () => {
      assert.deepEqual(decodeAll(fixture.bytes), [fixture.frame]);
    });
  }

  for (const fixture of decodeOnly) {
    it(`decodes the alternative spelling: ${fixture.name}`, () => {
      assert.deepEqual(decodeAll(fixture.bytes), [fixture.frame]);
    });
  }

  it('leaves nothing buffered after a complete frame', () => {
    const decoder = new FrameDecoder();
    for (const fixture of golden) {
      assert.equal(decoder.decode(fixture.bytes).length, 1);
      assert.equal(decoder.bufferedBytes, 0);
    }
  });

  it('re-encoding a decoded frame gives the same bytes', () => {
    for (const fixture of golden) {
      const [frame] = decodeAll(fixture.bytes);
      assert.ok(frame);
      assert.deepEqual(encodeFrame(frame), fixture.bytes, fixture.name);
    }
  });
});
