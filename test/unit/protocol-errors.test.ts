import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_MAX_HEADER_LENGTH,
  FrameDecoder,
  ProtocolError,
  type FrameDecoderOptions,
} from '../../src/protocol/index.js';
import { MetaqError } from '../../src/common/errors.js';

/** Decodes `text` and returns the ProtocolError it raises. */
function errorOf(text: string | Buffer, options?: FrameDecoderOptions): ProtocolError {
  const decoder = new FrameDecoder(options);
  try {
    decoder.decode(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `expected a ProtocolError, got ${String(error)}`);
    return error;
  }
  assert.fail(`no error for ${JSON.stringify(String(text))}`);
}

describe('FrameDecoder limits', () => {
  it(`refuses a header line longer than ${DEFAULT_MAX_HEADER_LENGTH} bytes without waiting for its CRLF`, () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.decode(Buffer.alloc(DEFAULT_MAX_HEADER_LENGTH, 0x61)), []);
    assert.throws(() => decoder.decode(Buffer.from('a')), /No CRLF within 4096 bytes \(maxHeaderLength\)/);
  });

  it('accepts a header of exactly maxHeaderLength bytes, even when its CR and LF arrive separately', () => {
    const decoder = new FrameDecoder({ maxHeaderLength: 16 });
    const header = 'version 12345678'; // 16 bytes
    assert.deepEqual(decoder.decode(Buffer.from(header)), []);
    assert.deepEqual(decoder.decode(Buffer.from('\r')), []);
    assert.deepEqual(decoder.decode(Buffer.from('\n')), [{ type: 'version', opaque: 12345678 }]);
  });

  it('refuses a complete header line one byte over the limit', () => {
    assert.match(errorOf('version 123456789\r\n', { maxHeaderLength: 16 }).message, /Header line longer than 16 bytes/);
  });

  it('refuses an oversized put body from its header, before any body byte arrives', () => {
    const decoder = new FrameDecoder();
    const length = DEFAULT_MAX_BODY_SIZE + 1;
    assert.throws(
      () => decoder.decode(Buffer.from(`put test 0 ${length} 0 -1 77\r\n`)),
      (error: unknown) =>
        error instanceof ProtocolError &&
        error.message.includes(`put: body of ${length} bytes exceeds the limit of ${DEFAULT_MAX_BODY_SIZE} bytes (maxBodySize)`) &&
        error.opaque === 77,
    );
  });

  it('accepts a put body of exactly maxBodySize', () => {
    const decoder = new FrameDecoder({ maxBodySize: 3 });
    assert.equal(decoder.decode(Buffer.from('put t 0 3 0 -1 1\r\nabc'))[0]?.type, 'put');
    assert.match(errorOf('put t 0 4 0 -1 1\r\n', { maxBodySize: 3 }).message, /body of 4 bytes exceeds the limit of 3 bytes/);
  });

  it('applies maxBodySize to sync, maxValueBodySize to value, maxResultBodySize to result', () => {
    assert.match(errorOf('sync t 0 4 0 1 -1 1\r\n', { maxBodySize: 3 }).message, /sync: body of 4 bytes .* \(maxBodySize\)/);
    assert.match(errorOf('value 11 1\r\n', { maxValueBodySize: 10 }).message, /value: body of 11 bytes exceeds the limit of 10 bytes \(maxValueBodySize\)/);
    assert.match(errorOf('result 200 11 1\r\n', { maxResultBodySize: 10 }).message, /\(maxResultBodySize\)/);
    // the put limit does not apply to value bodies and vice versa
    assert.equal(new FrameDecoder({ maxBodySize: 1 }).decode(Buffer.from('value 2 1\r\nab')).length, 1);
  });

  it('refuses absurd body lengths', () => {
    for (const length of ['-1', '-0x1', 'abc', '', '+5', '5.0', '1e3', '2147483648', '99999999999999999999', ' 5']) {
      const error = errorOf(`value ${length} 1\r\n`);
      assert.match(error.message, /value: (body length .* is not a decimal integer from 0 to 2147483647|expected 3 tokens)/, length);
    }
  });

  it('refuses absurd put lengths before any body byte', () => {
    assert.match(errorOf('put t 0 -1 0 -1 1\r\n').message, /put: body length "-1" is not a decimal integer from 0 to 2147483647/);
    assert.match(errorOf('put t 0 five 0 -1 1\r\n').message, /put: body length "five"/);
    assert.match(errorOf('put t 0 2147483648 0 -1 1\r\n').message, /put: body length "2147483648"/);
    assert.match(errorOf('put t 0 2147483647 0 -1 1\r\n').message, /put: body of 2147483647 bytes exceeds the limit/);
    assert.match(errorOf('sync t 0 -5 0 1 -1 1\r\n').message, /sync: body length "-5"/);
  });

  it('rejects negative or non-integer options', () => {
    assert.throws(() => new FrameDecoder({ maxBodySize: -1 }), /maxBodySize must be a non-negative integer/);
    assert.throws(() => new FrameDecoder({ maxHeaderLength: 1.5 }), /maxHeaderLength/);
  });
});

describe('FrameDecoder malformed headers', () => {
  const wrongCounts: [string, RegExp][] = [
    ['get test g 1 0 100\r\n', /get: expected 7 tokens .* got 6/],
    ['get test g 1 0 100 1 2\r\n', /get: expected 7 tokens .* got 8/],
    ['offset test g 1 0\r\n', /offset: expected 6 tokens .* got 5/],
    ['offset test g 1 0 1 2\r\n', /offset: expected 6 tokens .* got 7/],
    ['stats a 1 2\r\n', /stats: expected 1, 2 or 3 tokens .* got 4/],
    ['version 1 2\r\n', /version: expected 1 or 2 tokens .* got 3/],
    ['transaction TX:s:1 s BEGIN\r\n', /transaction: expected 5, 6 or 7 tokens .* got 4/],
    ['transaction TX:s:1 s BEGIN 1 uq 2 3\r\n', /transaction: expected 5, 6 or 7 tokens .* got 8/],
    ['sync t 0 5 0 1\r\n', /sync: expected 7 or 8 tokens .* got 6/],
    ['sync t 0 5 0 1 2 3 4\r\n', /sync: expected 7 or 8 tokens .* got 9/],
    ['result 200 0\r\n', /result: expected 4 tokens .* got 3/],
    ['result 200 0 1 2\r\n', /result: expected 4 tokens .* got 5/],
    ['value 0\r\n', /value: expected 3 tokens .* got 2/],
    ['value 0 1 2\r\n', /value: expected 3 tokens .* got 4/],
  ];
  for (const [header, pattern] of wrongCounts) {
    it(`wrong token count: ${JSON.stringify(header)}`, () => {
      assert.match(errorOf(header).message, pattern);
    });
  }

  it('non-numeric or lax numbers where a number is needed', () => {
    assert.match(errorOf('get test g one 0 100 1\r\n').message, /get: partition "one" is not a 32-bit decimal integer/);
    assert.match(errorOf('get test g 1 +0 100 1\r\n').message, /get: offset "\+0" is not a decimal integer/);
    assert.match(errorOf('get test g 1 0 100 0x1\r\n').message, /get: opaque "0x1"/);
    assert.match(errorOf('offset test g 1 1.5 1\r\n').message, /offset: offset "1.5"/);
    assert.match(errorOf('version 2147483648\r\n').message, /version: opaque "2147483648" is not a 32-bit/);
    assert.match(errorOf('result OK 0 1\r\n').message, /result: code "OK"/);
    assert.match(errorOf('sync t 0 1 0 9223372036854775808 1\r\n').message, /sync: msgId "9223372036854775808" is not a 64-bit/);
  });

  it('offsets beyond ±(2^53-1) are refused, except Long.MAX_VALUE on get', () => {
    assert.match(errorOf('get t g 0 9007199254740992 1 1\r\n').message, /get: offset "9007199254740992" is not a decimal integer within ±\(2\^53-1\)/);
    assert.match(errorOf('get t g 0 9223372036854775806 1 1\r\n').message, /offset "9223372036854775806"/);
    assert.match(errorOf('get t g 0 9223372036854775808 1 1\r\n').message, /offset "9223372036854775808"/);
    assert.match(errorOf('offset t g 0 9223372036854775807 1\r\n').message, /offset: offset "9223372036854775807"/);
  });

  it('two spaces in a row give an empty token, which no field accepts', () => {
    assert.match(errorOf('get  g 1 0 100 1\r\n').message, /get: empty topic \(two spaces in a row\?\)/);
    assert.match(errorOf('get t g  0 100 1\r\n').message, /get: partition "" is not/);
    assert.match(errorOf('put t 1 5 0  1\r\n').message, /put: empty transaction key/);
  });

  it('unknown commands, including near-misses of real ones', () => {
    for (const word of ['just', 'puts', 'Put', 'GET', 'versions', 'v', 'statistics', 'x']) {
      assert.match(errorOf(`${word} for test\r\n`).message, new RegExp(`Unknown command "${word}"`), word);
    }
  });

  it('empty and blank lines, and a leading space', () => {
    assert.match(errorOf('\r\n').message, /Empty header line in header ""/);
    assert.match(errorOf('   \r\n').message, /Empty header line/);
    assert.match(errorOf(' quit\r\n').message, /Header line starts with a space/);
  });

  it('a bare LF or CR inside the header line', () => {
    assert.match(errorOf('version\n1\r\n').message, /Bare CR or LF inside the header line/);
    assert.match(errorOf('version\r1\r\n').message, /Bare CR or LF/);
  });

  it('garbage bytes', () => {
    const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x13, 0x37, 0x0d, 0x0a]);
    assert.match(errorOf(garbage).message, /^Unknown command "\\u0000\ufffd\ufffd\\u00137" in header /);
    const noCrlf = Buffer.alloc(10_000, 0xff);
    assert.match(errorOf(noCrlf).message, /No CRLF within 4096 bytes/);
  });

  it('unknown transaction types', () => {
    assert.match(errorOf('transaction TX:s:1 s begin 1\r\n').message, /transaction: unknown transaction type "begin"/);
    assert.match(errorOf('transaction TX:s:1 s PUT 1\r\n').message, /unknown transaction type "PUT"/);
  });

  it('the message quotes the header, truncated to 200 characters', () => {
    const topic = 'x'.repeat(500);
    const error = errorOf(`get ${topic} g 1 0 100 nope\r\n`);
    assert.equal(error.header, `get ${topic}`.slice(0, 200));
    assert.ok(error.message.endsWith(`in header ${JSON.stringify(`get ${topic}`.slice(0, 200))}…`), error.message);
    assert.ok(error.message.length < 400);
  });

  it('the error carries the opaque when the last token is one, for the broker’s 400 reply', () => {
    assert.equal(errorOf('get t g x 0 100 -5\r\n').opaque, -5);
    assert.equal(errorOf('get t g x 0 100 nope\r\n').opaque, undefined);
  });

  it('is a MetaqError with the METAQ_ERR_PROTOCOL code', () => {
    const error = errorOf('bogus\r\n');
    assert.ok(error instanceof MetaqError);
    assert.equal(error.code, 'METAQ_ERR_PROTOCOL');
    assert.equal(error.name, 'ProtocolError');
    assert.equal(error.retriable, false);
  });
});

describe('FrameDecoder sides and failure state', () => {
  it('a request decoder refuses responses, a response decoder refuses requests', () => {
    assert.match(errorOf('result 200 0 1\r\n', { accept: 'requests' }).message, /Response frame "result" where a request was expected/);
    assert.match(errorOf('value 0 1\r\n', { accept: 'requests' }).message, /Response frame "value"/);
    assert.match(errorOf('put t 0 0 0 -1 1\r\n', { accept: 'responses' }).message, /Frame "put" where a response \(result or value\) was expected/);
    assert.match(errorOf('quit\r\n', { accept: 'responses' }).message, /Frame "quit"/);
    assert.equal(new FrameDecoder({ accept: 'requests' }).decode(Buffer.from('quit\r\n')).length, 1);
    assert.equal(new FrameDecoder({ accept: 'responses' }).decode(Buffer.from('result 200 0 1\r\n')).length, 1);
  });

  it('stays failed after an error: later pushes and reads throw the same error', () => {
    const decoder = new FrameDecoder();
    let first: unknown;
    try {
      decoder.decode(Buffer.from('bogus\r\n'));
    } catch (error) {
      first = error;
    }
    assert.ok(first instanceof ProtocolError);
    assert.equal(decoder.error, first);
    assert.throws(() => decoder.decode(Buffer.from('version 1\r\n')), (error) => error === first);
    assert.throws(() => decoder.next(), (error) => error === first);
    assert.throws(() => decoder.push(Buffer.alloc(0)), (error) => error === first);
    assert.equal(decoder.bufferedBytes, 0);
  });

  it('an error in the middle of a body-less header sequence fails even one-byte feeding', () => {
    const decoder = new FrameDecoder();
    const bytes = Buffer.from('version 1\r\nhello\r\n');
    const frames = [];
    let failed = false;
    for (let i = 0; i < bytes.length && !failed; i++) {
      try {
        frames.push(...decoder.decode(bytes.subarray(i, i + 1)));
      } catch {
        failed = true;
      }
    }
    assert.ok(failed);
    assert.deepEqual(frames, [{ type: 'version', opaque: 1 }]);
  });
});
