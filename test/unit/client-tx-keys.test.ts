/**
 * Client transaction keys: session ids (sanitised, no ':'), the per-producer counter, XID keys
 * with the unique qualifier, unique-qualifier validation, XID validation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { XaError } from '../../src/common/errors.js';
import { parseTransactionKey } from '../../src/protocol/transaction-key.js';
import { encodeTransaction } from '../../src/protocol/encode.js';
import { LocalKeyGenerator, localHostToken, newSessionId } from '../../src/client/transaction/session-id.js';
import {
  checkXid,
  defaultUniqueQualifier,
  uniqueQualifierError,
  xaKeyText,
  xidEquals,
  xidOf,
  type Xid,
} from '../../src/client/transaction/xid.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';

const xid = (formatId: number, gtrid: string, bqual: string): Xid => ({
  formatId,
  globalTransactionId: Buffer.from(gtrid, 'hex'),
  branchQualifier: Buffer.from(bqual, 'hex'),
});

describe('client tx: session ids and local keys', () => {
  it('builds <host>-<epochMs>-<pid>.<seq> and replaces IPv6 colons', () => {
    const id = newSessionId('fe80::1%eth0', 1700000000000, 4242);
    assert.match(id, /^fe80__1_eth0-1700000000000-4242\.\d+$/);
    assert.ok(!id.includes(':'));
    const next = newSessionId('10.0.0.5', 1700000000000, 4242);
    assert.notEqual(next.split('.').pop(), id.split('.').pop(), 'the sequence increases');
  });

  it('prefers a non-internal IPv4 address, then IPv6, then the hostname', () => {
    const v4 = { address: '192.168.1.7', family: 'IPv4', internal: false } as const;
    const v6 = { address: '2001:db8::7', family: 'IPv6', internal: false } as const;
    const lo = { address: '127.0.0.1', family: 'IPv4', internal: true } as const;
    const info = (x: { address: string; family: 'IPv4' | 'IPv6'; internal: boolean }) => ({ ...x, netmask: '', mac: '', cidr: null, scopeid: 0 }) as never;
    assert.equal(localHostToken({ lo: [info(lo)], eth0: [info(v6), info(v4)] }, () => 'h'), '192.168.1.7');
    assert.equal(localHostToken({ eth0: [info(v6)] }, () => 'h'), '2001_db8__7');
    assert.equal(localHostToken({ lo: [info(lo)] }, () => 'my host:1'), 'my_host_1');
  });

  it('counts transactions per producer from 1 and parses back as TX:<sessionId>:<n>', () => {
    const keys = new LocalKeyGenerator(() => '10.0.0.5-1700000000000-1.1');
    const first = keys.next();
    const second = keys.next();
    assert.deepEqual(first, { kind: 'local', sessionId: '10.0.0.5-1700000000000-1.1', counter: 1 });
    assert.equal(second.counter, 2);
    assert.deepEqual(parseTransactionKey(`TX:${keys.sessionId}:2`), second);
    assert.equal(keys.sessionId, '10.0.0.5-1700000000000-1.1');
  });

  it('two generators never share a session id', () => {
    const a = new LocalKeyGenerator();
    const b = new LocalKeyGenerator();
    assert.notEqual(a.sessionId, b.sessionId);
    assert.ok(!a.sessionId.includes(':') && !/\s/.test(a.sessionId));
  });
});

describe('client tx: XID keys and unique qualifiers', () => {
  it('formats MetaQ XID keys with lowercase hex and the qualifier', () => {
    assert.equal(xaKeyText(xid(1, '0102', 'ab'), 'XAMessageProducer-host1'), 'XID:1:0102:ab:XAMessageProducer-host1');
    assert.equal(xaKeyText(xid(0x4d515453, 'DEADBEEF', ''), 'q'), 'XID:1297175635:deadbeef::q');
    const parsed = parseTransactionKey('XID:1:0102:ab:XAMessageProducer-host1');
    assert.ok(parsed !== null && parsed.kind === 'xa');
    assert.ok(xidEquals(xidOf(parsed), xid(1, '0102', 'ab')));
    assert.ok(!xidEquals(xid(1, '0102', 'ab'), xid(2, '0102', 'ab')));
  });

  it('defaults to XAMessageProducer-<hostname>, sanitised and stable', () => {
    assert.equal(defaultUniqueQualifier('host1'), 'XAMessageProducer-host1');
    assert.equal(defaultUniqueQualifier('my host:x'), 'XAMessageProducer-my_host_x');
    assert.equal(defaultUniqueQualifier(), defaultUniqueQualifier());
    assert.equal(uniqueQualifierError(defaultUniqueQualifier()), undefined);
  });

  it('refuses qualifiers with CR, LF, TAB, space or ":", empty, all digits or too long', () => {
    for (const bad of ['a\rb', 'a\nb', 'a\tb', 'a b', 'a:b', '', '12345', 'x'.repeat(129)]) {
      assert.notEqual(uniqueQualifierError(bad), undefined, JSON.stringify(bad));
    }
    assert.notEqual(uniqueQualifierError(42), undefined);
    for (const good of ['XAMessageProducer-host1', 'node-7', 'a.b_c-1', '1a']) assert.equal(uniqueQualifierError(good), undefined, good);
  });

  it('a valid qualifier always encodes in RECOVER and BEGIN frames', () => {
    const bytes = encodeTransaction({
      type: 'transaction',
      transactionKey: null,
      sessionId: 's',
      transactionType: 'RECOVER',
      timeout: 0,
      uniqueQualifier: 'XAMessageProducer-host1',
      opaque: 9,
    });
    assert.equal(bytes.toString(), 'transaction null s RECOVER XAMessageProducer-host1 9\r\n');
  });

  it('checks XIDs: format id, 1–64 byte gtrid, 0–64 byte bqual (XAER_INVAL)', () => {
    checkXid(xid(1, '01', ''));
    checkXid({ formatId: 0, globalTransactionId: Buffer.alloc(64), branchQualifier: Buffer.alloc(64) });
    const bad: unknown[] = [
      null,
      { formatId: -1, globalTransactionId: Buffer.from('01', 'hex'), branchQualifier: Buffer.alloc(0) },
      { formatId: 1.5, globalTransactionId: Buffer.from('01', 'hex'), branchQualifier: Buffer.alloc(0) },
      { formatId: 2 ** 31, globalTransactionId: Buffer.from('01', 'hex'), branchQualifier: Buffer.alloc(0) },
      { formatId: 1, globalTransactionId: Buffer.alloc(0), branchQualifier: Buffer.alloc(0) },
      { formatId: 1, globalTransactionId: Buffer.alloc(65), branchQualifier: Buffer.alloc(0) },
      { formatId: 1, globalTransactionId: Buffer.alloc(1), branchQualifier: Buffer.alloc(65) },
      { formatId: 1, globalTransactionId: 'abc', branchQualifier: Buffer.alloc(0) },
    ];
    for (const value of bad) {
      assert.throws(
        () => checkXid(value as Xid),
        (error: unknown) => error instanceof XaError && error.xaCode === XaCode.XAER_INVAL && !error.retriable,
      );
    }
  });
});
