import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTRIBUTE_FLAG,
  decodeMessageData,
  encodeMessageData,
  InvalidRecordError,
  MessageRecordIterator,
  ProtocolError,
  readMessageRecords,
} from '../../src/protocol/index.js';
import { encodeRecord, messageChecksum } from '../../src/protocol/record.js';
import { ATTRIBUTE_A_HELLO, GOLDEN_RECORD } from '../fixtures/protocol/golden-frames.js';

const hello = Buffer.from('hello');

describe('message data (metaq-reference §1.5)', () => {
  it('without attribute: the payload itself, flag bit 0 cleared', () => {
    const encoded = encodeMessageData(hello);
    assert.equal(encoded.data, hello);
    assert.equal(encoded.flag, 0);
    assert.equal(encodeMessageData(hello, undefined, 0b111).flag, 0b110);
    assert.deepEqual(decodeMessageData(hello, 0), { payload: hello });
    assert.deepEqual(decodeMessageData(hello, 0b110), { payload: hello });
  });

  it('with attribute "a": the golden bytes and checksum 1986522790', () => {
    const encoded = encodeMessageData(hello, 'a');
    assert.deepEqual(encoded, { data: ATTRIBUTE_A_HELLO, flag: ATTRIBUTE_FLAG });
    assert.equal(messageChecksum(encoded.data), 1986522790);
    assert.deepEqual(decodeMessageData(encoded.data, encoded.flag), { attribute: 'a', payload: hello });
  });

  it('keeps the other flag bits', () => {
    assert.equal(encodeMessageData(hello, 'a', 0b100).flag, 0b101);
    assert.equal(encodeMessageData(hello, 'a', -2).flag, -1);
  });

  it('an empty attribute still sets bit 0 and a zero length (Java: only null means none)', () => {
    const encoded = encodeMessageData(hello, '');
    assert.equal(encoded.data.toString('hex'), '00000000' + hello.toString('hex'));
    assert.equal(encoded.flag, 1);
    assert.deepEqual(decodeMessageData(encoded.data, encoded.flag), { attribute: '', payload: hello });
  });

  it('a non-ASCII attribute is length-prefixed in UTF-8 bytes, not characters', () => {
    const encoded = encodeMessageData(Buffer.from([1, 2, 3]), 'größe=☃');
    assert.equal(encoded.data.readInt32BE(0), Buffer.byteLength('größe=☃'));
    assert.equal(encoded.data.readInt32BE(0), 11); // g r ö(2) ß(2) e = ☃(3)
    assert.deepEqual(decodeMessageData(encoded.data, encoded.flag), { attribute: 'größe=☃', payload: Buffer.from([1, 2, 3]) });
  });

  it('an empty payload with an attribute', () => {
    const encoded = encodeMessageData(Buffer.alloc(0), 'tag');
    assert.deepEqual(decodeMessageData(encoded.data, encoded.flag), { attribute: 'tag', payload: Buffer.alloc(0) });
  });

  it('rejects an attribute block that does not fit', () => {
    assert.throws(() => decodeMessageData(Buffer.from([0, 0, 1]), 1), /too short/);
    assert.throws(() => decodeMessageData(Buffer.from('0000000661', 'hex'), 1), /Attribute length 6 does not fit in message data of 5 bytes/);
    assert.throws(() => decodeMessageData(Buffer.from('ffffffff61', 'hex'), 1), (error) => error instanceof ProtocolError && /Attribute length -1/.test(error.message));
  });
});

describe('value bodies: stored records (metaq-reference §1.5–1.6)', () => {
  const golden = Buffer.from(GOLDEN_RECORD.hex, 'hex');
  const second = encodeRecord({ id: -42n, ...encodeMessageData(Buffer.from('world'), 'a') });

  it('reads the golden record', () => {
    const { records, consumed } = readMessageRecords(golden);
    assert.equal(consumed, 25);
    assert.equal(records.length, 1);
    const [record] = records;
    assert.equal(record?.id, GOLDEN_RECORD.id);
    assert.equal(record?.checksum, GOLDEN_RECORD.checksum);
    assert.equal(record?.flag, 0);
    assert.equal(record?.position, 0);
    assert.deepEqual(record?.data, hello);
  });

  it('reads concatenated records, with their positions and attributes', () => {
    const { records, consumed } = readMessageRecords(Buffer.concat([golden, second]));
    assert.equal(consumed, golden.length + second.length);
    assert.deepEqual(records.map((r) => [r.position, r.id]), [[0, GOLDEN_RECORD.id], [25, -42n]]);
    const last = records[1];
    assert.ok(last);
    assert.deepEqual(decodeMessageData(last.data, last.flag), { attribute: 'a', payload: Buffer.from('world') });
  });

  it('ignores an incomplete tail at every cut, reporting only complete records as consumed', () => {
    const body = Buffer.concat([golden, second]);
    for (let cut = 0; cut <= body.length; cut++) {
      const { records, consumed } = readMessageRecords(body.subarray(0, cut));
      const expected = cut === body.length ? 2 : cut >= golden.length ? 1 : 0;
      assert.equal(records.length, expected, `cut ${cut}`);
      assert.equal(consumed, expected === 2 ? body.length : expected === 1 ? golden.length : 0, `cut ${cut}`);
    }
  });

  it('an empty body has no records', () => {
    assert.deepEqual(readMessageRecords(Buffer.alloc(0)), { records: [], consumed: 0 });
  });

  it('detects a CRC mismatch and says where', () => {
    const corrupt = Buffer.concat([golden, second]);
    corrupt[corrupt.length - 1] = 0x00;
    const iterator = new MessageRecordIterator(corrupt);
    assert.equal(iterator.next().done, false);
    assert.throws(
      () => iterator.next(),
      (error: unknown) => error instanceof InvalidRecordError && error.reason === 'bad-checksum' && error.position === 25 && /byte 25/.test(error.message),
    );
    assert.equal(iterator.consumed, 25);
  });

  it('detects a negative or oversized record length', () => {
    const negative = Buffer.from(golden);
    negative.writeInt32BE(-1, 0);
    assert.throws(() => readMessageRecords(negative), (error: unknown) => error instanceof InvalidRecordError && error.reason === 'bad-length');
    assert.throws(() => readMessageRecords(golden, { maxDataLength: 4 }), /announces 5 data bytes \(allowed: 0 to 4\)/);
  });

  it('a misaligned offset (garbage header) is caught by the CRC', () => {
    const misaligned = Buffer.concat([golden, golden]).subarray(3);
    assert.throws(() => readMessageRecords(misaligned), InvalidRecordError);
  });
});
