import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeTransaction,
  formatTransactionKey,
  parseRecoverResultBody,
  parseTransactionKey,
  parseXaExceptionBody,
  prepareResultBody,
  ProtocolError,
  recoverResultBody,
  TransactionType,
  XaCode,
  xaExceptionBody,
  type TransactionFrame,
} from '../../src/protocol/index.js';
import { decodeAll } from '../fixtures/protocol/feed.js';

const xid = {
  kind: 'xa',
  formatId: 1,
  globalTransactionId: Buffer.from([0x01, 0x02]),
  branchQualifier: Buffer.from([0xab]),
  uniqueQualifier: 'XAMessageProducer-host1',
} as const;

describe('transaction keys (metaq-reference §1.7)', () => {
  it('parses and formats local keys', () => {
    const key = parseTransactionKey('TX:10.0.0.1-1700000000000-1:42');
    assert.deepEqual(key, { kind: 'local', sessionId: '10.0.0.1-1700000000000-1', counter: 42 });
    assert.equal(formatTransactionKey(key), 'TX:10.0.0.1-1700000000000-1:42');
    assert.deepEqual(parseTransactionKey('TX:s:-5'), { kind: 'local', sessionId: 's', counter: -5 });
  });

  it('parses and formats XA keys with lowercase hex', () => {
    assert.deepEqual(parseTransactionKey('XID:1:0102:ab:XAMessageProducer-host1'), xid);
    assert.equal(formatTransactionKey(xid), 'XID:1:0102:ab:XAMessageProducer-host1');
    assert.equal(formatTransactionKey(parseTransactionKey('XID:1:0102:AB:XAMessageProducer-host1')), 'XID:1:0102:ab:XAMessageProducer-host1');
  });

  it('allows empty gtrid, bqual and unique qualifier, as MetaQ does', () => {
    const key = parseTransactionKey('XID:-1:::');
    assert.deepEqual(key, { kind: 'xa', formatId: -1, globalTransactionId: Buffer.alloc(0), branchQualifier: Buffer.alloc(0), uniqueQualifier: '' });
    assert.equal(formatTransactionKey(key), 'XID:-1:::');
  });

  it('maps the literal null to null both ways', () => {
    assert.equal(parseTransactionKey('null'), null);
    assert.equal(formatTransactionKey(null), 'null');
  });

  it('rejects malformed keys with a reason', () => {
    const cases: [string, RegExp][] = [
      ['TX:s', /exactly 3 parts/],
      ['TX:s:1:2', /exactly 3 parts/],
      ['TX::1', /empty session id/],
      ['TX:s:', /counter is not a 32-bit/],
      ['TX:s:2147483648', /counter is not a 32-bit/],
      ['TX:s:+1', /counter/],
      ['XID:1:01:02', /exactly 5 parts/],
      ['XID:1:01:02:uq:x', /exactly 5 parts/],
      ['XID:x:01:02:uq', /format id/],
      ['XID:1:012:02:uq', /global transaction id is not hex/],
      ['XID:1:01:zz:uq', /branch qualifier is not hex/],
      ['tx:s:1', /expected TX:…, XID:… or null/],
      ['NULL', /expected TX:…, XID:… or null/],
      ['', /expected TX/],
    ];
    for (const [text, pattern] of cases) {
      assert.throws(() => parseTransactionKey(text), (error: unknown) => error instanceof ProtocolError && pattern.test(error.message), text);
    }
  });

  it('refuses to format keys that would not parse back', () => {
    assert.throws(() => formatTransactionKey({ kind: 'local', sessionId: '', counter: 1 }), /session id/);
    assert.throws(() => formatTransactionKey({ kind: 'local', sessionId: 'fe80::1-1-1', counter: 1 }), /must be non-empty without ':'/);
    assert.throws(() => formatTransactionKey({ kind: 'local', sessionId: 's', counter: 2 ** 31 }), /counter/);
    assert.throws(() => formatTransactionKey({ ...xid, uniqueQualifier: 'a b' }), /unique qualifier/);
    assert.throws(() => formatTransactionKey({ ...xid, uniqueQualifier: 'a:b' }), /unique qualifier/);
    assert.throws(() => formatTransactionKey({ ...xid, formatId: 0.5 }), /format id/);
  });
});

describe('transaction frames', () => {
  function decodeTx(header: string): TransactionFrame {
    const [frame] = decodeAll(Buffer.from(`${header}\r\n`));
    assert.equal(frame?.type, 'transaction');
    return frame as TransactionFrame;
  }

  it('decodes all eight types', () => {
    for (const type of Object.values(TransactionType)) {
      assert.equal(decodeTx(`transaction TX:s:1 s ${type} 1`).transactionType, type);
    }
  });

  it('6 tokens: an all-digit 5th token is a timeout, anything else a unique qualifier (MetaQ quirk kept)', () => {
    assert.equal(decodeTx('transaction TX:s:1 s BEGIN 30 1').timeout, 30);
    const qualified = decodeTx('transaction TX:s:1 s BEGIN -30 1');
    assert.equal(qualified.timeout, 0);
    assert.equal(qualified.uniqueQualifier, '-30');
  });

  it('7 tokens: timeout and unique qualifier; the timeout must be a number', () => {
    const frame = decodeTx('transaction TX:s:1 s BEGIN 30 uq 1');
    assert.equal(frame.timeout, 30);
    assert.equal(frame.uniqueQualifier, 'uq');
    assert.throws(() => decodeTx('transaction TX:s:1 s BEGIN uq uq 1'), /transaction: timeout "uq" is not a 32-bit/);
    assert.throws(() => decodeTx('transaction TX:s:1 s BEGIN 99999999999 1'), /timeout "99999999999"/);
  });

  it('the key must be valid and the session id non-empty', () => {
    assert.throws(() => decodeTx('transaction TX:s s BEGIN 1'), /transaction: Invalid transaction key "TX:s"/);
    assert.throws(() => decodeTx('transaction TX:s:1  BEGIN 1 1'), /empty sessionId/);
  });

  it('encodes timeout only when > 0 and the qualifier only when non-empty', () => {
    const base = { type: 'transaction', transactionKey: xid, sessionId: 's', transactionType: 'BEGIN', opaque: 1 } as const;
    assert.equal(encodeTransaction({ ...base, timeout: 0, uniqueQualifier: undefined }).toString(), `transaction ${formatTransactionKey(xid)} s BEGIN 1\r\n`);
    assert.equal(encodeTransaction({ ...base, timeout: -1, uniqueQualifier: '' }).toString(), `transaction ${formatTransactionKey(xid)} s BEGIN 1\r\n`);
    assert.equal(encodeTransaction({ ...base, timeout: 5, uniqueQualifier: 'uq' }).toString(), `transaction ${formatTransactionKey(xid)} s BEGIN 5 uq 1\r\n`);
  });

  it('refuses an all-digit qualifier without timeout (MetaQ would read it as a timeout), allows it with one', () => {
    const base = { type: 'transaction', transactionKey: null, sessionId: 's', transactionType: 'RECOVER', opaque: 1 } as const;
    assert.throws(() => encodeTransaction({ ...base, timeout: 0, uniqueQualifier: '123' }), /would be read as a timeout/);
    const bytes = encodeTransaction({ ...base, timeout: 9, uniqueQualifier: '123' });
    assert.deepEqual(decodeAll(bytes), [{ ...base, timeout: 9, uniqueQualifier: '123' }]);
  });

  it('refuses an unknown type and bad tokens when encoding', () => {
    const base = { type: 'transaction', transactionKey: null, sessionId: 's', timeout: 0, uniqueQualifier: undefined, opaque: 1 } as const;
    assert.throws(() => encodeTransaction({ ...base, transactionType: 'begin' as 'BEGIN' }), /unknown transaction type "begin"/);
    assert.throws(() => encodeTransaction({ ...base, transactionType: 'END', sessionId: 'a b' }), /sessionId/);
    assert.throws(() => encodeTransaction({ ...base, transactionType: 'END', uniqueQualifier: 'a b' }), /uniqueQualifier/);
  });
});

describe('transaction result bodies', () => {
  it('PREPARE votes', () => {
    assert.equal(prepareResultBody(XaCode.XA_OK), '0');
    assert.equal(prepareResultBody(XaCode.XA_RDONLY), '3');
  });

  it('XAException bodies round-trip the code, as the Java client parses them', () => {
    const body = xaExceptionBody(XaCode.XAER_NOTA, "XA transaction 'XID:1:01:02:uq' has not been started.");
    assert.equal(body, "XAException:code=-4,msg=XA transaction 'XID:1:01:02:uq' has not been started.");
    assert.deepEqual(parseXaExceptionBody(Buffer.from(body)), { code: -4, message: "XA transaction 'XID:1:01:02:uq' has not been started." });
    assert.deepEqual(parseXaExceptionBody('XAException:code=-6,msg=line1\nline2'), { code: -6, message: 'line1\nline2' });
    assert.equal(parseXaExceptionBody('Local transaction x has not been started.'), undefined);
  });

  it('RECOVER bodies: keys joined by CRLF, empty when none', () => {
    const other = { ...xid, globalTransactionId: Buffer.from([0xff]) };
    const body = recoverResultBody([xid, other]);
    assert.equal(body, 'XID:1:0102:ab:XAMessageProducer-host1\r\nXID:1:ff:ab:XAMessageProducer-host1');
    assert.deepEqual(parseRecoverResultBody(Buffer.from(body)), [xid, other]);
    assert.equal(recoverResultBody([]), '');
    assert.deepEqual(parseRecoverResultBody(Buffer.alloc(0)), []);
    assert.throws(() => parseRecoverResultBody('null'), /null transaction key/);
    assert.throws(() => parseRecoverResultBody('garbage'), ProtocolError);
  });
});
