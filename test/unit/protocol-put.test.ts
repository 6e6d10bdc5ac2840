import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodePut, ProtocolError, type PutFrame } from '../../src/protocol/index.js';
import { decodeAll } from '../fixtures/protocol/feed.js';

const hello = Buffer.from('hello');
const base = { type: 'put', topic: 'test', partition: 1, data: hello, flag: 0, opaque: 0 } as const;

function decodePut(header: string): PutFrame {
  const [frame] = decodeAll(Buffer.concat([Buffer.from(`${header}\r\n`), hello]));
  assert.equal(frame?.type, 'put');
  return frame as PutFrame;
}

describe('put: the 6/7/8-token forms (metaq-reference §1.4)', () => {
  it('6 tokens: no checksum (-1), no key', () => {
    const frame = decodePut('put test 1 5 0 42');
    assert.equal(frame.form, 6);
    assert.equal(frame.checksum, -1);
    assert.equal(frame.transactionKey, undefined);
    assert.equal(frame.opaque, 42);
  });

  it('7 tokens: a 6th token starting with a digit is a checksum', () => {
    const frame = decodePut('put test 1 5 0 907060870 42');
    assert.equal(frame.checksum, 907060870);
    assert.equal(frame.transactionKey, undefined);
  });

  it("7 tokens: a 6th token starting with '-' is a checksum", () => {
    assert.equal(decodePut('put test 1 5 0 -1 42').checksum, -1);
    assert.equal(decodePut('put test 1 5 0 -7 42').checksum, -7);
  });

  it('7 tokens: any other 6th token is a transaction key', () => {
    const frame = decodePut('put test 1 5 0 TX:s-1:3 42');
    assert.deepEqual(frame.transactionKey, { kind: 'local', sessionId: 's-1', counter: 3 });
    assert.equal(frame.checksum, -1);
    assert.equal(frame.form, 7);
  });

  it('7 tokens: the literal null is "no transaction", distinct from an absent key', () => {
    const frame = decodePut('put test 1 5 0 null 42');
    assert.equal(frame.transactionKey, null);
    assert.equal(frame.checksum, -1);
  });

  it("7 tokens: a digit-or-minus 6th token that is not a number is an error, not a key", () => {
    assert.throws(() => decodePut('put test 1 5 0 1abc 42'), /put: checksum "1abc" is not a 32-bit decimal integer/);
    assert.throws(() => decodePut('put test 1 5 0 - 42'), /put: checksum "-" is not/);
    assert.throws(() => decodePut('put test 1 5 0 -TX:a:1 42'), /put: checksum/);
  });

  it('7 tokens: a 6th token that is neither a number nor a key is an error', () => {
    assert.throws(() => decodePut('put test 1 5 0 +5 42'), /put: Invalid transaction key "\+5": expected TX:…, XID:… or null/);
    assert.throws(() => decodePut('put test 1 5 0 abc 42'), /Invalid transaction key "abc"/);
  });

  it('8 tokens: checksum then key', () => {
    const frame = decodePut('put test 1 5 0 9999 XID:7::ff:uq 42');
    assert.equal(frame.checksum, 9999);
    assert.deepEqual(frame.transactionKey, {
      kind: 'xa',
      formatId: 7,
      globalTransactionId: Buffer.alloc(0),
      branchQualifier: Buffer.from([0xff]),
      uniqueQualifier: 'uq',
    });
  });

  it('8 tokens: the checksum must be a number and the key a key', () => {
    assert.throws(() => decodePut('put test 1 5 0 TX:a:1 TX:a:1 42'), /put: checksum "TX:a:1"/);
    assert.throws(() => decodePut('put test 1 5 0 -1 TX:a 42'), /Invalid transaction key "TX:a"/);
  });

  it('partition -1 (broker chooses) and negative flags decode', () => {
    const frame = decodePut('put test -1 5 -2147483648 -1 42');
    assert.equal(frame.partition, -1);
    assert.equal(frame.flag, -2147483648);
  });

  it('5 and 9 tokens are errors, refused before the body arrives', () => {
    assert.throws(() => decodeAll(Buffer.from('put test 1 5 0\r\n')), /put: expected 6, 7 or 8 tokens .* got 5/);
    assert.throws(() => decodeAll(Buffer.from('put test 1 5 0 -1 TX:a:1 0 9\r\n')), /got 9/);
  });
});

describe('encodePut', () => {
  it('without a form writes 7 tokens, or 8 when a key (even null) is present, like MetaQ ≥ 1.4.4', () => {
    assert.equal(encodePut({ ...base, checksum: 5, transactionKey: undefined }).toString(), 'put test 1 5 0 5 0\r\nhello');
    assert.equal(encodePut({ ...base, checksum: -1, transactionKey: null }).toString(), 'put test 1 5 0 -1 null 0\r\nhello');
    assert.equal(
      encodePut({ ...base, checksum: -1, transactionKey: { kind: 'local', sessionId: 's', counter: 2 } }).toString(),
      'put test 1 5 0 -1 TX:s:2 0\r\nhello',
    );
  });

  it('form 6 and form 7 with a key write the legacy layouts', () => {
    assert.equal(encodePut({ ...base, checksum: -1, transactionKey: undefined, form: 6 }).toString(), 'put test 1 5 0 0\r\nhello');
    assert.equal(encodePut({ ...base, checksum: -1, transactionKey: null, form: 7 }).toString(), 'put test 1 5 0 null 0\r\nhello');
  });

  it('refuses fields a form cannot carry', () => {
    assert.throws(() => encodePut({ ...base, checksum: 5, transactionKey: undefined, form: 6 }), ProtocolError);
    assert.throws(() => encodePut({ ...base, checksum: -1, transactionKey: null, form: 6 }), /6-token form/);
    assert.throws(() => encodePut({ ...base, checksum: 5, transactionKey: null, form: 7 }), /not both; use form 8/);
    assert.throws(() => encodePut({ ...base, checksum: 5, transactionKey: undefined, form: 8 }), /needs a transaction key/);
  });

  it('refuses tokens that would break the header, and numbers outside Java int', () => {
    assert.throws(() => encodePut({ ...base, topic: 'a b', checksum: -1, transactionKey: undefined }), /topic "a b" must be non-empty without spaces, CR or LF/);
    assert.throws(() => encodePut({ ...base, topic: '', checksum: -1, transactionKey: undefined }), /topic "" must be non-empty/);
    assert.throws(() => encodePut({ ...base, topic: 'a\r\n', checksum: -1, transactionKey: undefined }), ProtocolError);
    assert.throws(() => encodePut({ ...base, partition: 2 ** 31, checksum: -1, transactionKey: undefined }), /partition 2147483648 is not a 32-bit integer/);
    assert.throws(() => encodePut({ ...base, opaque: 1.5, checksum: -1, transactionKey: undefined }), /opaque 1.5/);
    assert.throws(() => encodePut({ ...base, checksum: 2 ** 32, transactionKey: undefined }), /checksum/);
    assert.throws(
      () => encodePut({ ...base, checksum: -1, transactionKey: { kind: 'local', sessionId: 'a:b', counter: 1 } }),
      /Invalid session id "a:b"/,
    );
  });
});
