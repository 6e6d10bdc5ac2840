import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import {
  decodeFrameAt,
  decodeFrames,
  encodeFrame,
  encodeFrameHeader,
  FRAME_HEADER_SIZE,
} from '../../src/transaction/log/tx-record-frame.js';

function frames(...payloads: [number, Buffer][]): Buffer {
  return Buffer.concat(payloads.map(([type, payload]) => encodeFrame(type, payload)));
}

describe('txlog record framing', () => {
  it('lays out [u32 length][u32 crc32(type + payload)][u8 type][payload] big-endian', () => {
    const payload = Buffer.from('hello');
    const frame = encodeFrame(7, payload);
    assert.equal(frame.length, FRAME_HEADER_SIZE + 5);
    assert.equal(frame.readUInt32BE(0), 5);
    assert.equal(frame.readUInt32BE(4), crc32(Buffer.concat([Buffer.from([7]), payload])));
    assert.equal(frame.readUInt8(8), 7);
    assert.deepEqual(frame.subarray(9), payload);
    assert.deepEqual(encodeFrameHeader(7, payload), frame.subarray(0, 9));
  });

  it('round-trips records of every type, empty payloads included', () => {
    const input: [number, Buffer][] = [
      [0, Buffer.alloc(0)],
      [1, Buffer.from('a')],
      [255, Buffer.alloc(10_000, 3)],
    ];
    const walk = decodeFrames(frames(...input));
    assert.equal(walk.problem, undefined);
    assert.equal(walk.validLength, 3 * FRAME_HEADER_SIZE + 1 + 10_000);
    assert.deepEqual(
      walk.frames.map((f) => [f.type, f.payload]),
      input,
    );
    assert.deepEqual(
      walk.frames.map((f) => f.offset),
      [0, 9, 19],
    );
  });

  it('stops at a record cut in its payload or in its header', () => {
    const whole = frames([1, Buffer.alloc(20)], [2, Buffer.alloc(20)], [3, Buffer.alloc(20)]);
    const second = FRAME_HEADER_SIZE + 20;
    for (const cut of [second + 3, second + FRAME_HEADER_SIZE + 5, whole.length - 1]) {
      const expectedValid = cut < 2 * second ? second : 2 * second;
      const walk = decodeFrames(whole.subarray(0, cut));
      assert.equal(walk.problem, 'incomplete', `cut at ${cut}`);
      assert.equal(walk.validLength, expectedValid, `cut at ${cut}`);
    }
  });

  it('stops at exactly the record whose bytes were flipped', () => {
    const whole = frames([1, Buffer.alloc(20, 1)], [2, Buffer.alloc(20, 2)], [3, Buffer.alloc(20, 3)]);
    const second = FRAME_HEADER_SIZE + 20;
    for (const at of [second + 4, second + 8, second + FRAME_HEADER_SIZE + 10]) {
      const damaged = Buffer.from(whole);
      damaged[at] = (damaged[at] ?? 0) ^ 0xff;
      const walk = decodeFrames(damaged);
      assert.equal(walk.problem, 'bad-checksum', `flip at ${at}`);
      assert.equal(walk.validLength, second);
      assert.equal(walk.frames.length, 1);
    }
  });

  it('treats zero bytes as damage, not as empty records', () => {
    assert.equal(decodeFrameAt(Buffer.alloc(64), 0), 'bad-checksum');
  });

  it('reports a length above the maximum as bad-length', () => {
    const frame = encodeFrame(1, Buffer.alloc(100));
    assert.equal(decodeFrameAt(frame, 0, 99), 'bad-length');
    assert.notEqual(typeof decodeFrameAt(frame, 0, 100), 'string');
  });
});
