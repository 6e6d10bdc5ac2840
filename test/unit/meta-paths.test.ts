/**
 * MetaQ's znode layout and data formats (metaq-reference §4): what the Java client reads must
 * come out byte for byte.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/common/errors.js';
import {
  consumerIdString,
  decodeTopicBrokerData,
  decodeZkOffset,
  DEFAULT_ZK_ROOT,
  encodeTopicBrokerData,
  encodeZkOffset,
  MetaPaths,
  normalizeZkRoot,
  parsePartitionName,
  parseTopicBrokerName,
  partitionName,
  topicBrokerName,
} from '../../src/zk/meta-paths.js';

describe('normalizeZkRoot', () => {
  it('adds a leading slash and strips trailing ones, like MetaQ', () => {
    assert.equal(normalizeZkRoot('meta/'), '/meta');
    assert.equal(normalizeZkRoot('/meta'), '/meta');
    assert.equal(normalizeZkRoot('/a/b//'), '/a/b');
    assert.equal(normalizeZkRoot('  custom  '), '/custom');
  });

  it('uses the default for a missing or empty root and the ZooKeeper root for "/"', () => {
    assert.equal(DEFAULT_ZK_ROOT, '/meta');
    assert.equal(normalizeZkRoot(undefined), '/meta');
    assert.equal(normalizeZkRoot(''), '/meta');
    assert.equal(normalizeZkRoot('/'), '');
    assert.equal(new MetaPaths('/').brokerIds, '/brokers/ids');
  });
});

describe('topic broker names and data', () => {
  it('names masters <id>-m and slaves <id>-s<n>, and parses them back', () => {
    assert.equal(topicBrokerName(3), '3-m');
    assert.equal(topicBrokerName(3, { kind: 'slave', slaveId: 2 }), '3-s2');
    assert.deepEqual(parseTopicBrokerName('3-m'), { brokerId: 3, role: { kind: 'master' } });
    assert.deepEqual(parseTopicBrokerName('12-s0'), { brokerId: 12, role: { kind: 'slave', slaveId: 0 } });
    for (const bad of ['3', '3-', '3-x', 'a-m', '3-s', '-1-m', '3-m ']) assert.equal(parseTopicBrokerName(bad), undefined, bad);
  });

  it('encodes exactly MetaQ\'s JSON, keys in its order', () => {
    assert.equal(encodeTopicBrokerData({ numParts: 4, broker: '3-m' }), '{"numParts":4,"broker":"3-m"}');
    // Key order comes from the encoder, not from the object handed in.
    const reordered = JSON.parse('{"broker":"3-m","numParts":4}') as { numParts: number; broker: string };
    assert.equal(encodeTopicBrokerData(reordered), '{"numParts":4,"broker":"3-m"}');
  });

  it('decodes valid JSON and rejects anything else', () => {
    assert.deepEqual(decodeTopicBrokerData('{"numParts":4,"broker":"3-m"}'), { numParts: 4, broker: '3-m' });
    assert.deepEqual(decodeTopicBrokerData('{"broker":"1-s1","numParts":0,"extra":true}'), { numParts: 0, broker: '1-s1' });
    for (const bad of ['', '4', 'null', '[]', '{"numParts":"4","broker":"3-m"}', '{"numParts":-1,"broker":"3-m"}', '{"numParts":1.5,"broker":"3-m"}', '{"numParts":4}', '{not json']) {
      assert.equal(decodeTopicBrokerData(bad), undefined, bad);
    }
  });
});

describe('partition names', () => {
  it('is <brokerId>-<partition> both ways', () => {
    assert.equal(partitionName(0, 10), '0-10');
    assert.deepEqual(parsePartitionName('0-10'), { brokerId: 0, partition: 10 });
    for (const bad of ['0', '0-', '-1-2', '0-1-2', 'a-1', '0-m']) assert.equal(parsePartitionName(bad), undefined, bad);
  });
});

describe('ZooKeeper offsets', () => {
  it('encodes <msgId>-<offset>, negative ids included', () => {
    assert.equal(encodeZkOffset(123n, 456), '123-456');
    assert.equal(encodeZkOffset(-1n, 0), '-1-0');
    assert.equal(encodeZkOffset(-9223372036854775808n, 7), '-9223372036854775808-7');
  });

  it('splits at the last "-", so negative message ids survive', () => {
    assert.deepEqual(decodeZkOffset('123-456'), { messageId: 123n, offset: 456 });
    assert.deepEqual(decodeZkOffset('-1-0'), { messageId: -1n, offset: 0 });
    assert.deepEqual(decodeZkOffset('-5-10'), { messageId: -5n, offset: 10 });
    assert.deepEqual(decodeZkOffset('9223372036854775807-1'), { messageId: 9223372036854775807n, offset: 1 });
    assert.deepEqual(decodeZkOffset(' 7-8\n'), { messageId: 7n, offset: 8 });
  });

  it('reads the legacy bare offset with message id -1', () => {
    assert.deepEqual(decodeZkOffset('42'), { messageId: -1n, offset: 42 });
    assert.deepEqual(decodeZkOffset('0'), { messageId: -1n, offset: 0 });
  });

  it('round-trips and rejects unreadable data', () => {
    for (const [id, offset] of [[0n, 0], [-1n, 99], [1234567890123n, 2 ** 40]] as const) assert.deepEqual(decodeZkOffset(encodeZkOffset(id, offset)), { messageId: id, offset });
    for (const bad of ['', '-', 'abc', '1-x', 'x-1', '1--5', '-5', '1-2.5', '1-99999999999999999999']) assert.equal(decodeZkOffset(bad), undefined, bad);
  });
});

describe('MetaPaths', () => {
  const paths = new MetaPaths('meta/');

  it('builds the broker paths', () => {
    assert.equal(paths.root, '/meta');
    assert.equal(paths.brokerIds, '/meta/brokers/ids');
    assert.equal(paths.brokerIdNode(1), '/meta/brokers/ids/1');
    assert.equal(paths.brokerMaster(1), '/meta/brokers/ids/1/master');
    assert.equal(paths.brokerSlave(1, 2), '/meta/brokers/ids/1/slave2');
    assert.equal(paths.brokerConfigChecksum(1), '/meta/brokers/ids/1/master_config_checksum');
  });

  it('builds the topic paths', () => {
    assert.equal(paths.legacyTopicBroker('orders', 1), '/meta/brokers/topics/orders/1-m');
    assert.equal(paths.legacyTopicBroker('orders', 1, { kind: 'slave', slaveId: 3 }), '/meta/brokers/topics/orders/1-s3');
    assert.equal(paths.brokerTopicsPub, '/meta/brokers/topics-pub');
    assert.equal(paths.topicPub('orders'), '/meta/brokers/topics-pub/orders');
    assert.equal(paths.topicSub('orders'), '/meta/brokers/topics-sub/orders');
  });

  it('builds the consumer paths', () => {
    assert.equal(consumerIdString('g', 'host-1-uuid'), 'g_host-1-uuid');
    assert.equal(paths.groupIds('g'), '/meta/consumers/g/ids');
    assert.equal(paths.groupMember('g', 'c1'), '/meta/consumers/g/ids/g_c1');
    assert.equal(paths.partitionOwner('g', 'orders', 1, 10), '/meta/consumers/g/owners/orders/1-10');
    assert.equal(paths.partitionOffset('g', 'orders', 1, 10), '/meta/consumers/g/offsets/orders/1-10');
  });

  it('refuses names that would break the path', () => {
    assert.throws(() => paths.topicPub('a/b'), InvalidArgumentError);
    assert.throws(() => paths.topicSub(''), InvalidArgumentError);
    assert.throws(() => paths.group('x/y'), InvalidArgumentError);
    assert.throws(() => paths.groupMember('g', 'bad/id'), InvalidArgumentError);
  });
});
