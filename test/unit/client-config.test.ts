/**
 * Client configuration: group names (metaq-reference §6.5), consumer and factory options,
 * broker URLs, stats bodies, and direct-mode partition discovery.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IllegalStateError, InvalidArgumentError } from '../../src/common/errors.js';
import { createMessageSessionFactory, groupNameError, parseBrokerUrl, parseStatsBody } from '../../src/index.js';
import { resolveConsumerConfig } from '../../src/client/consumer/consumer-config.js';
import { createDirectDiscovery } from '../../src/client/session/direct-discovery.js';
import type { BrokerDiscovery, PartitionRef } from '../../src/client/session/broker-discovery.js';
import { testBrokerIni } from '../helpers/broker-config.js';


/** The partitions a direct discovery assigns a consumer of `topic`. */
async function assignedIn(discovery: BrokerDiscovery, topic: string): Promise<readonly PartitionRef[]> {
  let assigned: readonly PartitionRef[] = [];
  await discovery.joinGroup({ group: 'g', consumerId: 'c', topics: [topic], strategy: 'range', onAssignment: async (_topic, partitions) => { assigned = partitions; } });
  return assigned;
}

describe('consumer group names', () => {
  it('accepts letters, digits, dashes, underscores, @ and non-ASCII', () => {
    for (const group of ['meta-example', 'group_1', 'A@b', 'grüppe', 'x']) assert.equal(groupNameError(group), undefined, group);
  });

  it("rejects MetaQ's forbidden characters, whitespace and emptiness", () => {
    for (const ch of "~!#$%^&*()+=`'\",;/?[]<>.: ") assert.ok(groupNameError(`a${ch}b`) !== undefined, JSON.stringify(ch));
    for (const group of ['', 'a\tb', 'a\nb', 'a\\b', 'x'.repeat(201)]) assert.ok(groupNameError(group) !== undefined, JSON.stringify(group));
    assert.match(groupNameError('my.group') ?? '', /contains "\."/);
  });

  it('createConsumer refuses a bad group with an InvalidArgumentError naming it', () => {
    assert.throws(() => resolveConsumerConfig({ group: 'bad group' }), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError);
      assert.match(error.message, /ConsumerConfig\.group "bad group" is invalid/);
      return true;
    });
  });
});

describe('consumer config', () => {
  it("applies MetaQ's defaults", () => {
    const config = resolveConsumerConfig({ group: 'g' });
    assert.equal(config.fetchTimeoutInMills, 10_000);
    assert.equal(config.maxDelayFetchTimeInMills, 5000);
    assert.equal(config.maxFetchRetries, 5);
    assert.equal(config.maxIncreaseFetchDataRetries, 5);
    assert.equal(config.commitOffsetPeriodInMills, 5000);
    assert.equal(config.recoverMessageIntervalInMills, 300_000);
    assert.equal(config.offset, 0);
    assert.equal(config.consumeFromMaxOffset, false);
    assert.match(config.recoverPath, /\.meta_recover$/);
    assert.ok(Object.isFrozen(config));
  });

  it('names the bad property', () => {
    assert.throws(() => resolveConsumerConfig({ group: 'g', maxFetchRetries: -1 }), /ConsumerConfig\.maxFetchRetries must be an integer >= 0/);
    assert.throws(() => resolveConsumerConfig({ group: 'g', commitOffsetPeriodInMills: 0 }), /commitOffsetPeriodInMills/);
    assert.throws(() => resolveConsumerConfig({ group: 'g', offset: 1.5 }), /ConsumerConfig\.offset/);
  });
});

describe('session factory options', () => {
  it('needs exactly one of serverUrl and discovery, and names bad values', () => {
    assert.throws(() => createMessageSessionFactory({}), /give serverUrl/);
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'http://h:1' }), /meta:\/\/ scheme/);
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'meta://h:1', requestTimeoutMs: 0 }), /requestTimeoutMs must be an integer >= 1/);
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'meta://h:1', partitions: { t: 0 } }), /partitions\['t'\]/);
    assert.throws(() => createMessageSessionFactory({ serverUrl: 'meta://h:1', reconnect: { jitter: 2 } }), /reconnect\.jitter/);
  });

  it('refuses to send before publish and after close', async () => {
    const factory = createMessageSessionFactory({ serverUrl: 'meta://127.0.0.1:1', partitions: { t: 2 } });
    const producer = factory.createProducer();
    await assert.rejects(producer.send({ topic: 't', data: 'x' }), (error: unknown) => {
      assert.ok(error instanceof IllegalStateError);
      assert.match(error.message, /publish\('t'\)/);
      return true;
    });
    await factory.close();
    await assert.rejects(producer.send({ topic: 't', data: 'x' }), /closed/);
    assert.throws(() => factory.createProducer(), /closed/);
  });
});

describe('broker URLs and stats bodies', () => {
  it('parses meta:// URLs with the default port', () => {
    assert.deepEqual(parseBrokerUrl('meta://127.0.0.1:8123'), { url: 'meta://127.0.0.1:8123', host: '127.0.0.1', port: 8123 });
    assert.deepEqual(parseBrokerUrl('meta://broker'), { url: 'meta://broker:8123', host: 'broker', port: 8123 });
    assert.deepEqual(parseBrokerUrl('meta://[::1]:9'), { url: 'meta://[::1]:9', host: '::1', port: 9 });
    assert.throws(() => parseBrokerUrl('meta://h:1/path'), InvalidArgumentError);
  });

  it('parses key value lines; repeated keys are joined with newlines', () => {
    const stats = parseStatsBody('STATS\r\npid 42\r\nversion 0.1.0\r\ntest part 0 min_offset 0\r\ntest part 1 min_offset 5\r\nlonely\r\nEND\r\n');
    assert.equal(stats['pid'], '42');
    assert.equal(stats['test'], 'part 0 min_offset 0\npart 1 min_offset 5');
    assert.equal(stats['lonely'], '');
    assert.equal(Object.getPrototypeOf(stats), null);
  });
});

describe('direct discovery', () => {
  const ini = testBrokerIni('/tmp/unused', { system: { brokerId: 9, numPartitions: 2 }, topics: '[topic=test]\n[topic=orders-*]\nnumPartitions=5' });

  it('takes partition counts from the option first, then the broker config (wildcards included)', async () => {
    const asked: (string | undefined)[] = [];
    const discovery = createDirectDiscovery({
      brokerUrl: 'meta://b:1',
      partitions: { pinned: 3 },
      stats: async (item) => {
        asked.push(item);
        return ini;
      },
    });
    assert.deepEqual((await discovery.publishPartitions('pinned')).map((p) => p.partition), [0, 1, 2]);
    assert.deepEqual(asked, []);
    assert.deepEqual((await discovery.publishPartitions('orders-eu')).map((p) => p.partition), [0, 1, 2, 3, 4]);
    assert.deepEqual((await assignedIn(discovery, 'test')).map((p) => [p.brokerId, p.partition]), [
      [9, 0],
      [9, 1],
    ]);
    assert.deepEqual(asked, ['config'], 'the configuration is fetched once');
  });

  it('falls back to partition -1 for producers and to the partitions with data for consumers', async () => {
    const discovery = createDirectDiscovery({
      brokerUrl: 'meta://b:1',
      stats: async (item) => {
        if (item === 'config') return '[javaOnly]\nunknownKey=1\n';
        if (item === 'offsets') return 'STATS\r\nx part 0 min_offset 0 max_offset 5\r\nx part 2 min_offset 0 max_offset 5\r\ny part 0 min_offset 0 max_offset 1\r\nEND\r\n';
        return 'STATS\r\nbroker_id 4\r\nEND\r\n';
      },
    });
    assert.deepEqual(await discovery.publishPartitions('x'), [{ brokerId: -1, brokerUrl: 'meta://b:1', partition: -1 }]);
    assert.deepEqual((await assignedIn(discovery, 'x')).map((p) => [p.brokerId, p.partition]), [
      [4, 0],
      [4, 2],
    ]);
    await assert.rejects(assignedIn(discovery, 'nothing'), /partitions: \{ 'nothing': <n> \}/);
  });

  it('asks again after a failed request', async () => {
    let calls = 0;
    const discovery = createDirectDiscovery({
      brokerUrl: 'meta://b:1',
      stats: async () => {
        calls++;
        if (calls === 1) throw new Error('down');
        return ini;
      },
    });
    await assert.rejects(discovery.publishPartitions('test'), /down/);
    assert.equal((await discovery.publishPartitions('test')).length, 2);
  });
});
