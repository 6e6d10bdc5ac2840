import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, StoreCorruptError } from '../../src/common/errors.js';
import { BinaryReader, BinaryReadError } from '../../src/transaction/log/binary-reader.js';
import { BinaryWriter } from '../../src/transaction/log/binary-writer.js';

describe('txlog binary writer and reader', () => {
  it('round-trips every field type, growing from a 1-byte buffer', () => {
    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    const payload = new BinaryWriter(1)
      .u8(0)
      .u8(255)
      .u16(65535)
      .u32(0xffff_ffff)
      .i32(-0x8000_0000)
      .i32(0x7fff_ffff)
      .u64((1n << 64n) - 1n)
      .i64(-(1n << 63n))
      .i64(1234567890123n)
      .f64(-0.5)
      .f64(Number.NaN)
      .string('')
      .string('xid-ünïcødé-😀')
      .bytes(bytes)
      .bytes(Buffer.alloc(0))
      .finish();
    const r = new BinaryReader(payload);
    assert.equal(r.u8(), 0);
    assert.equal(r.u8(), 255);
    assert.equal(r.u16(), 65535);
    assert.equal(r.u32(), 0xffff_ffff);
    assert.equal(r.i32(), -0x8000_0000);
    assert.equal(r.i32(), 0x7fff_ffff);
    assert.equal(r.u64(), (1n << 64n) - 1n);
    assert.equal(r.i64(), -(1n << 63n));
    assert.equal(r.i64(), 1234567890123n);
    assert.equal(r.f64(), -0.5);
    assert.ok(Number.isNaN(r.f64()));
    assert.equal(r.string(), '');
    assert.equal(r.string(), 'xid-ünïcødé-😀');
    assert.deepEqual(r.bytes(), bytes);
    assert.equal(r.bytes().length, 0);
    assert.equal(r.remaining, 0);
    r.assertEnd();
  });

  it('writes big-endian with u32 length prefixes', () => {
    const payload = new BinaryWriter().u16(0x0102).u32(0x03040506).string('hé').bytes(Buffer.from([9])).finish();
    assert.equal(payload.toString('hex'), '0102' + '03040506' + '00000003' + '68c3a9' + '00000001' + '09');
  });

  it('rejects out-of-range values with an InvalidArgumentError naming the type and range', () => {
    const w = new BinaryWriter();
    const cases: [() => unknown, RegExp][] = [
      [() => w.u8(256), /u8: 256 is not an integer in \[0, 255\]/],
      [() => w.u8(-1), /u8/],
      [() => w.u8(1.5), /u8/],
      [() => w.u16(65536), /u16/],
      [() => w.u32(2 ** 32), /u32/],
      [() => w.u32(-1), /u32/],
      [() => w.i32(2 ** 31), /i32/],
      [() => w.i32(-(2 ** 31) - 1), /i32/],
      [() => w.u64(-1n), /u64/],
      [() => w.u64(1n << 64n), /u64/],
      [() => w.i64(1n << 63n), /i64/],
      [() => w.i64(-(1n << 63n) - 1n), /i64/],
    ];
    for (const [write, message] of cases) assert.throws(write, (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message));
    assert.equal(w.length, 0, 'a rejected value writes nothing');
  });

  it('refuses writes after finish()', () => {
    const w = new BinaryWriter().u8(1);
    const first = w.finish();
    assert.throws(() => w.u8(2), InvalidArgumentError);
    assert.deepEqual(first, Buffer.from([1]));
  });

  it('throws a BinaryReadError saying what, where and how much when reading past the end', () => {
    const r = new BinaryReader(Buffer.from([1, 2, 3]));
    assert.equal(r.u8(), 1);
    assert.throws(
      () => r.u32(),
      (e: unknown) =>
        e instanceof BinaryReadError &&
        e instanceof StoreCorruptError &&
        e.offset === 1 &&
        e.wanted === 4 &&
        e.available === 2 &&
        /cannot read u32 at offset 1: it needs 4 bytes but only 2 remain/.test(e.message),
    );
  });

  it('bounds-checks string and bytes bodies against their length prefix', () => {
    const lying = new BinaryWriter().u32(1000).u8(65).finish();
    assert.throws(() => new BinaryReader(lying).string(), (e: unknown) => e instanceof BinaryReadError && /string body at offset 0/.test(e.message));
    assert.throws(() => new BinaryReader(lying).bytes(), (e: unknown) => e instanceof BinaryReadError && e.wanted === 1000 && e.available === 1);
    assert.throws(() => new BinaryReader(Buffer.alloc(7)).i64(), BinaryReadError);
    assert.throws(() => new BinaryReader(Buffer.alloc(0)).u8(), BinaryReadError);
  });

  it('assertEnd() reports trailing bytes', () => {
    const r = new BinaryReader(Buffer.from([1, 2]));
    r.u8();
    assert.throws(() => r.assertEnd(), /1 unexpected bytes after offset 1/);
  });
});
