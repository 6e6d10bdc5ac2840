/**
 * A put's answer → SendResult or a typed error (403 → METAQ_ERR_PARTITION_CLOSED, checksum,
 * unconfigured topic), and the fast answer parser agreeing with the protocol's parser.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError, ErrorCode } from '../../src/common/errors.js';
import { parsePutResultBody, ProtocolError, putFailedBody, CHECKSUM_FAILURE_DETAIL, topicNotAcceptedDetail, type ResponseFrame } from '../../src/protocol/index.js';
import { interpretPut, parsePutAnswerFast } from '../../src/client/producer/put-response.js';
import type { OpaquelessRequest } from '../../src/client/transport/request.js';

const put: OpaquelessRequest = { type: 'put', topic: 'orders', partition: 2, data: Buffer.from('x'), flag: 0, checksum: -1, transactionKey: undefined };
const url = 'meta://b:8123';
const result = (code: number, body: string): ResponseFrame => ({ type: 'result', code, body: Buffer.from(body), opaque: 1 });

describe('put answers', () => {
  it('200 becomes a SendResult with the 64-bit id', () => {
    assert.deepEqual(interpretPut(result(200, '-9223372036854775808 2 1048576'), put, url), {
      id: -9223372036854775808n,
      topic: 'orders',
      partition: 2,
      offset: 1048576,
      brokerUrl: url,
    });
  });

  it('403 is a retriable METAQ_ERR_PARTITION_CLOSED BrokerError with the broker text', () => {
    const text = putFailedBody(url, 'orders', 2, 'partition[0-2] has been closed');
    assert.throws(
      () => interpretPut(result(403, text), put, url),
      (error: unknown) => {
        assert.ok(error instanceof BrokerError);
        assert.equal(error.status, 403);
        assert.equal(error.code, ErrorCode.PartitionClosed);
        assert.equal(error.retriable, true);
        assert.equal(error.detail, text);
        assert.match(error.message, /^put to 'orders' partition 2 on meta:\/\/b:8123: broker answered 403: Put message to/);
        return true;
      },
    );
  });

  it('a checksum failure is a retriable METAQ_ERR_CHECKSUM; an unconfigured topic is not retriable', () => {
    assert.throws(
      () => interpretPut(result(500, putFailedBody(url, 'orders', 2, CHECKSUM_FAILURE_DETAIL)), put, url),
      (error: unknown) => error instanceof BrokerError && error.code === ErrorCode.Checksum && error.retriable,
    );
    assert.throws(
      () => interpretPut(result(500, putFailedBody(url, 'orders', 2, topicNotAcceptedDetail('orders'))), put, url),
      (error: unknown) => error instanceof BrokerError && error.code === ErrorCode.Broker && !error.retriable,
    );
    assert.throws(
      () => interpretPut(result(503, 'busy'), put, url),
      (error: unknown) => error instanceof BrokerError && error.retriable,
    );
    assert.throws(
      () => interpretPut(result(400, 'too big'), put, url),
      (error: unknown) => error instanceof BrokerError && !error.retriable,
    );
  });

  it('a value frame or a malformed body is a ProtocolError', () => {
    assert.throws(() => interpretPut({ type: 'value', body: Buffer.alloc(0), opaque: 1 }, put, url), ProtocolError);
    assert.throws(() => interpretPut(result(200, '1 2'), put, url), ProtocolError);
    assert.throws(() => interpretPut(result(200, '1 2 x'), put, url), ProtocolError);
  });

  it('the fast parser agrees with parsePutResultBody, or defers to it', () => {
    for (const text of ['1 0 0', '2061117656215351296 1 92', '-5 -1 -1', '9223372036854775807 2147483647 999999999999999', '007 01 00']) {
      assert.deepEqual(parsePutAnswerFast(Buffer.from(text)), parsePutResultBody(text), text);
    }
    // Valid, but offsets of 16+ digits take the careful path.
    assert.equal(parsePutAnswerFast(Buffer.from('1 1 9007199254740991')), undefined);
    assert.equal(interpretPut(result(200, '1 1 9007199254740991'), put, url).offset, 9007199254740991);
    for (const text of ['', ' 1 2', '1  2', '1 2 3 4', '9223372036854775808 1 1', '1 2147483648 1', '1 2 9007199254740993', 'a 1 1', '1 1 +1', '- 1 1']) {
      assert.equal(parsePutAnswerFast(Buffer.from(text)), undefined, JSON.stringify(text));
    }
  });
});
