import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecordAt, encodeRecord, messageChecksum, RECORD_HEADER_SIZE } from '../../src/protocol/record.js';

describe('stored record (metaq-reference §1.5)', () => {
  it('checksum of "hello" is CRC-32 masked with 0x7FFFFFFF', () => {
    assert.equal(messageChecksum(Buffer.from('hello')), 907060870);
  });

  it('checksum covers the attribute block too', () => {
    const data = Buffer.from('0000000161' + Buffer.from('hello').toString('hex'), 'hex');
    assert.equal(messageChecksum(data), 1986522790);
  });

  it('encodes the golden record: id 1234567890123, data "hello"', () => {
    const bytes = encodeRecord({ id: 1234567890123n, flag: 0, data: Buffer.from('hello') });
    assert.equal(bytes.toString('hex'), '00000005' + '3610a686' + '0000011f71fb04cb' + '00000000' + '68656c6c6f');
    assert.equal(bytes.length, 25);
  });

  it('decodes what it encodes, with flag and negative ids', () => {
    const bytes = encodeRecord({ id: -42n, flag: 1, data: Buffer.from('0000000161', 'hex') });
    const decoded = decodeRecordAt(bytes, 0, 1024);
    assert.notEqual(typeof decoded, 'string');
    if (typeof decoded === 'string') return;
    assert.equal(decoded.id, -42n);
    assert.equal(decoded.flag, 1);
    assert.equal(decoded.size, RECORD_HEADER_SIZE + 5);
  });

  it('reports incomplete, bad length and bad checksum', () => {
    const bytes = encodeRecord({ id: 1n, flag: 0, data: Buffer.from('hello') });
    assert.equal(decodeRecordAt(bytes.subarray(0, 19), 0, 1024), 'incomplete');
    assert.equal(decodeRecordAt(bytes.subarray(0, 24), 0, 1024), 'incomplete');
    assert.equal(decodeRecordAt(bytes, 0, 4), 'bad-length');
    const corrupt = Buffer.from(bytes);
    corrupt[22] = 0x00;
    assert.equal(decodeRecordAt(corrupt, 0, 1024), 'bad-checksum');
    const negative = Buffer.from(bytes);
    negative.writeInt32BE(-1, 0);
    assert.equal(decodeRecordAt(negative, 0, 1024), 'bad-length');
  });
});
