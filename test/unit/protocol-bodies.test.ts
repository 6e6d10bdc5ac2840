import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHECKSUM_FAILURE_DETAIL,
  encodeResult,
  encodeResultHeader,
  encodeValueHeader,
  getPartitionClosedBody,
  invalidMaxSizeBody,
  isKnownResultCode,
  localTransactionNotStartedBody,
  messageNotFoundBody,
  offsetBody,
  parseOffsetBody,
  parsePutResultBody,
  ProtocolError,
  putFailedBody,
  putPartitionClosedDetail,
  putResultBody,
  ResultCode,
  resultCodeName,
  statsBody,
  timerCapacityExceededBody,
  topicNotAcceptedDetail,
  topicPartitionNotFoundBody,
  wrongPartitionDetail,
  LONG_MAX_OFFSET,
} from '../../src/protocol/index.js';

describe('result codes (metaq-reference §1.3)', () => {
  it('has the nine codes with names', () => {
    assert.deepEqual(Object.values(ResultCode), [200, 301, 400, 401, 403, 404, 500, 503, 504]);
    assert.equal(resultCodeName(404), 'NotFound');
    assert.equal(resultCodeName(503), 'ServiceUnavailable');
    assert.equal(resultCodeName(418), undefined);
    assert.ok(isKnownResultCode(301));
    assert.ok(!isKnownResultCode(302));
  });
});

describe('result bodies shared by broker and client (metaq-reference §1.4)', () => {
  it('put success: "<msgId> <partition> <offset>", -1 offset inside a transaction', () => {
    assert.equal(putResultBody(1234567890123n, 1, 1024), '1234567890123 1 1024');
    assert.equal(putResultBody(-9223372036854775808n, 0, -1), '-9223372036854775808 0 -1');
    assert.deepEqual(parsePutResultBody(Buffer.from('-5 3 -1')), { messageId: -5n, partition: 3, offset: -1 });
    for (const bad of ['', '1 2', '1 2 3 4', 'a 2 3', '1 2 9007199254740992', '1  2 3']) {
      assert.throws(() => parsePutResultBody(bad), ProtocolError, bad);
    }
  });

  it('put failures', () => {
    assert.equal(
      putFailedBody('meta://10.0.0.1:8123', 'test', 7, wrongPartitionDetail(7)),
      "Put message to [broker 'meta://10.0.0.1:8123'] [partition 'test-7'] failed.Detail:wrong partition 7",
    );
    assert.equal(
      putFailedBody('meta://h:8123', 't', 0, putPartitionClosedDetail(3, 0)),
      "Put message to [broker 'meta://h:8123'] [partition 't-0'] failed.Detail:partition[3-0] has been closed",
    );
    assert.equal(topicNotAcceptedDetail('x'), 'The server do not accept topic x');
    assert.equal(CHECKSUM_FAILURE_DETAIL, 'Checksum failure,message may be corrupted when transfering on networking.');
  });

  it('get and offset texts', () => {
    assert.equal(getPartitionClosedBody(3, 1), 'Partition[3-1] has been closed');
    assert.equal(topicPartitionNotFoundBody('test', 1), 'The topic `test` in partition `1` is not exists');
    assert.equal(invalidMaxSizeBody(0), 'Bad request,invalid max size:0');
    assert.equal(messageNotFoundBody(1000), 'Could not find message at position 1000');
    assert.equal(messageNotFoundBody(LONG_MAX_OFFSET), 'Could not find message at position 9223372036854775807');
    assert.equal(offsetBody(4096), '4096');
    assert.equal(parseOffsetBody(Buffer.from('4096')), 4096);
    assert.throws(() => parseOffsetBody('12a'), /Malformed offset body "12a"/);
  });

  it('transaction error texts', () => {
    assert.equal(localTransactionNotStartedBody('TX:s:1'), "Local transaction 'TX:s:1' has not been started.");
    assert.equal(timerCapacityExceededBody(10, 5), 'Timer size 10 is great than maxTimerCapacity 5');
  });

  it('stats body framing', () => {
    assert.equal(statsBody(['pid 1', 'broker_id 0']), 'STATS\r\npid 1\r\nbroker_id 0\r\nEND\r\n');
    assert.equal(statsBody([]), 'STATS\r\nEND\r\n');
  });

  it('a result frame carries the UTF-8 byte length of its text', () => {
    const body = Buffer.from(topicPartitionNotFoundBody('主题', 0));
    assert.equal(encodeResult({ type: 'result', code: 404, body, opaque: 1 }).toString(), `result 404 ${body.length} 1\r\n${body.toString()}`);
  });

  it('header-only encoders for streamed bodies', () => {
    assert.equal(encodeValueHeader(1048576, -7).toString(), 'value 1048576 -7\r\n');
    assert.equal(encodeResultHeader(200, 1234, 5).toString(), 'result 200 1234 5\r\n');
    assert.throws(() => encodeValueHeader(-1, 1), /body length -1/);
    assert.throws(() => encodeResultHeader(200, 2 ** 31, 1), /body length/);
  });
});
