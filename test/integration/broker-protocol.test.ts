/**
 * The broker's MetaQ protocol front, driven with raw bytes against a real `metaq-server`
 * process: every command and status code of metaq-reference §1.4, pipelining with answers
 * matched by opaque, malformed frames on one connection while another keeps working.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { decodeMessageId } from '../../src/store/message-id.js';
import { encodeRecord, messageChecksum } from '../../src/protocol/record.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { RawClient, resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const TOPICS = '[topic=test]\n[topic=orders-*]\nnumPartitions=3\n[topic=readonly]\nacceptPublish=false';

describe('broker protocol (raw sockets against a metaq-server process)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let ini: string;
  let broker: BrokerProcess;
  let port: number;
  let client: RawClient;

  before(async () => {
    dir = await makeTempDir('metaq-protocol-');
    ini = join(dir.path, 'server.ini');
    fs.writeFileSync(ini, testBrokerIni(join(dir.path, 'data'), { topics: TOPICS, system: { maxMessageSize: 4096 } }));
    broker = spawnBroker(['start', '-c', ini]);
    port = Number((await broker.waitForLog('broker started'))['port']);
    client = await RawClient.connect(port);
  });
  after(async () => {
    client.close();
    broker.child.kill('SIGTERM');
    await broker.exited;
    await dir.remove();
  });

  it('put (7-token form with checksum) stores the message and answers "<id> <partition> <offset>"', async () => {
    const reply = resultText(await client.request(`put test 0 5 0 ${messageChecksum(Buffer.from('hello'))} 1\r\nhello`, 1));
    assert.equal(reply.code, 200);
    const [id, partition, offset] = reply.text.split(' ');
    assert.equal(partition, '0');
    assert.equal(offset, '0');
    assert.equal(decodeMessageId(BigInt(id ?? '')).brokerId, 7);
  });

  it('put in the legacy 6-token form (Python/Ruby/PHP clients) and with partition -1', async () => {
    const legacy = resultText(await client.request('put test 1 3 0 2\r\nabc', 2));
    assert.equal(legacy.code, 200);
    assert.match(legacy.text, /^\d+ 1 0$/);
    const random = resultText(await client.request('put orders-eu -1 1 0 -1 3\r\nx', 3));
    assert.equal(random.code, 200);
    assert.match(random.text, /^\d+ [012] \d+$/);
  });

  it('get returns the stored record bytes exactly, as a value frame', async () => {
    const putReply = resultText(await client.request('put test 0 5 0 -1 10\r\nworld', 10));
    const [id, , offset] = putReply.text.split(' ');
    const frame = await client.request(`get test g 0 ${offset} 1048576 11\r\n`, 11);
    assert.equal(frame.type, 'value');
    assert.deepEqual(frame.body, encodeRecord({ id: BigInt(id ?? ''), flag: 0, data: Buffer.from('world') }));
  });

  it('get answers 400 for maxSize <= 0, 404 for a missing store and past the end, 301 for Long.MAX_VALUE', async () => {
    assert.deepEqual(resultText(await client.request('get test g 0 0 0 20\r\n', 20)), { code: 400, text: 'Bad request,invalid max size:0' });
    assert.deepEqual(resultText(await client.request('get test g 1 0 -5 21\r\n', 21)), { code: 400, text: 'Bad request,invalid max size:-5' });
    assert.deepEqual(resultText(await client.request('get nothing g 0 0 100 22\r\n', 22)), {
      code: 404,
      text: 'The topic `nothing` in partition `0` is not exists',
    });
    assert.deepEqual(resultText(await client.request('get test g 0 999999 100 23\r\n', 23)), { code: 404, text: 'Could not find message at position 999999' });
    const moved = resultText(await client.request('get test g 0 9223372036854775807 100 24\r\n', 24));
    assert.equal(moved.code, 301);
    assert.ok(Number(moved.text) > 0, 'body is the max offset');
  });

  it('offset answers the start of the segment holding the offset, the max offset past the end, 404 without a store', async () => {
    assert.deepEqual(resultText(await client.request('offset test g 0 7 30\r\n', 30)), { code: 200, text: '0' });
    const max = resultText(await client.request('offset test g 0 123456789 31\r\n', 31));
    assert.equal(max.code, 200);
    assert.ok(Number(max.text) > 0 && Number(max.text) < 1000);
    assert.equal(resultText(await client.request('offset nothing g 0 0 32\r\n', 32)).code, 404);
  });

  it('put refuses an unconfigured topic, a wrong partition, a bad checksum and a closed-for-publish topic', async () => {
    const unknown = resultText(await client.request('put nope 0 1 0 -1 40\r\nx', 40));
    assert.equal(unknown.code, 500);
    assert.equal(unknown.text, `Put message to [broker 'meta://127.0.0.1:${port}'] [partition 'nope-0'] failed.Detail:The server do not accept topic nope`);
    const wrong = resultText(await client.request('put test 9 1 0 -1 41\r\nx', 41));
    assert.equal(wrong.code, 500);
    assert.match(wrong.text, /failed\.Detail:wrong partition 9$/);
    const crc = resultText(await client.request('put test 0 5 0 12345 42\r\nhello', 42));
    assert.equal(crc.code, 500);
    assert.match(crc.text, /Checksum failure,message may be corrupted when transfering on networking\.$/);
    const readonly = resultText(await client.request('put readonly 0 1 0 -1 43\r\nx', 43));
    assert.equal(readonly.code, 403);
    assert.match(readonly.text, /acceptPublish=false/);
  });

  it('put refuses a payload over maxMessageSize (attribute not counted) with 400, and the connection stays usable', async () => {
    const payload = Buffer.alloc(4097, 1);
    const big = resultText(await client.request(Buffer.concat([Buffer.from(`put test 0 ${payload.length} 0 -1 50\r\n`), payload]), 50));
    assert.equal(big.code, 400);
    assert.match(big.text, /message payload of 4097 bytes exceeds maxMessageSize \(4096 bytes\)/);
    const attribute = Buffer.alloc(100, 0x61);
    const data = Buffer.concat([Buffer.alloc(4), attribute, Buffer.alloc(4096, 2)]);
    data.writeInt32BE(attribute.length, 0);
    const withAttribute = resultText(await client.request(Buffer.concat([Buffer.from(`put test 0 ${data.length} 1 -1 51\r\n`), data]), 51));
    assert.equal(withAttribute.code, 200, 'a full-size payload plus an attribute fits');
  });

  it('version answers the broker version; stats answers every item', async () => {
    const version = resultText(await client.request('version 60\r\n', 60));
    assert.equal(version.code, 200);
    assert.match(version.text, /^\d+\.\d+\.\d+/);

    const info = resultText(await client.request('stats  61\r\n', 61));
    const keys = info.text.split('\r\n').slice(1, -2).map((line) => line.split(' ')[0]);
    assert.deepEqual(keys, [
      'pid', 'broker_id', 'port', 'uptime', 'version', 'slave', 'curr_connections', 'threads', 'cmd_put', 'cmd_get', 'cmd_offset',
      'tx_begin', 'tx_xa_begin', 'tx_commit', 'tx_rollback', 'get_miss', 'put_failed', 'total_messages', 'topics', 'config_checksum',
    ]);
    assert.ok(info.text.startsWith('STATS\r\n') && info.text.endsWith('END\r\n'));
    assert.match(info.text, new RegExp(`\r\npid ${broker.child.pid}\r\nbroker_id 7\r\nport ${port}\r\n`));

    const topics = resultText(await client.request('stats topics 62\r\n', 62)).text;
    assert.match(topics, /\r\ntest partitions 2 message_count \d+ message_bytes \d+ accept_publish true accept_subscribe true\r\n/);
    assert.match(topics, /\r\nreadonly \*Empty\*\r\n/);
    const offsets = resultText(await client.request('stats offsets 63\r\n', 63)).text;
    assert.match(offsets, /\r\ntest part 0 min_offset 0 max_offset \d+\r\n/);
    const realtime = resultText(await client.request('stats realtime 64\r\n', 64)).text;
    assert.match(realtime, /\r\nrealtime_put Count=\d+,Value=\d+,Value\/Count=[\d.]+,Count\/Duration=([\d.]+|invalid),Duration=\d+\r\n/);
    assert.match(resultText(await client.request('stats help 65\r\n', 65)).text, /\r\ntopics\r\n/);
    assert.equal(resultText(await client.request('stats reset 66\r\n', 66)).text, 'STATS\r\nreset ok\r\nEND\r\n');
    assert.match(resultText(await client.request('stats realtime 67\r\n', 67)).text, /realtime_put null/);
    assert.equal(resultText(await client.request('stats config 68\r\n', 68)).text, fs.readFileSync(ini, 'utf8'));
    const topic = resultText(await client.request('stats test 69\r\n', 69)).text;
    assert.match(topic, /^STATS\r\ntest\r\nresultCode 0\r\npartitions 2\r\n/);
    assert.match(resultText(await client.request('stats unknown-topic 70\r\n', 70)).text, /resultCode 1/);
  });

  it('sync is refused with 503 (only a sync-replication slave takes it); a commit of an unknown local transaction is a 500', async () => {
    assert.equal(resultText(await client.request('sync test 0 5 0 99 -1 81\r\nhello', 81)).code, 503);
    assert.deepEqual(resultText(await client.request('transaction TX:s:1 s COMMIT_ONE_PHASE 80\r\n', 80)), {
      code: 500,
      text: "Local transaction 'TX:s:1' has not been started.",
    });
  });

  it('answers pipelined requests by opaque', async () => {
    const parts: string[] = [];
    for (let i = 0; i < 200; i++) parts.push(i % 2 === 0 ? `put test ${i % 4 === 0 ? 0 : 1} 4 0 -1 ${1000 + i}\r\nm${String(i).padStart(3, '0')}` : `version ${1000 + i}\r\n`);
    const pipelined = await RawClient.connect(port);
    try {
      pipelined.write(parts.join(''));
      const frames = await pipelined.waitFrames(200);
      assert.deepEqual(
        frames.map((f) => f.opaque).sort((a, b) => a - b),
        Array.from({ length: 200 }, (_, i) => 1000 + i),
      );
      for (const frame of frames) assert.equal(resultText(frame).code, 200);
    } finally {
      pipelined.close();
    }
  });

  it('quit closes the connection without an answer', async () => {
    const quitter = await RawClient.connect(port);
    quitter.write('quit\r\n');
    await quitter.closed;
    assert.equal(quitter.frames.length, 0);
  });

  for (const [name, bytes, reason] of [
    ['an unknown command', 'hello world 1\r\n', /Unknown command/i],
    ['a wrong token count', 'get test g 0 0 1\r\n', /token/i],
    ['a non-numeric number', 'get test g zero 0 100 1\r\n', /partition|number|integer/i],
    ['an absurd length', 'put test 0 99999999999 0 -1 1\r\n', /length|size/i],
    ['a body over the limit', 'put test 0 2000000 0 -1 1\r\n', /2000000|exceeds|limit|large/i],
    ['an endless header', 'x'.repeat(10_000), /header|line|long/i],
  ] as const) {
    it(`answers ${name} with 400 naming the problem, closes that connection only, and keeps the data`, async () => {
      const bad = await RawClient.connect(port);
      const good = await RawClient.connect(port);
      try {
        const before = resultText(await good.request('stats offsets 1\r\n', 1)).text;
        bad.write(bytes);
        await bad.closed;
        const answer = bad.frames[0];
        assert.ok(answer !== undefined, 'the broker said why before closing');
        const { code, text } = resultText(answer);
        assert.equal(code, 400);
        assert.match(text, reason);
        assert.equal(resultText(await good.request('put test 0 2 0 -1 2\r\nok', 2)).code, 200, 'the other connection works');
        const after = resultText(await good.request('stats offsets 3\r\n', 3)).text;
        assert.notEqual(after, before, 'the put went in');
        assert.equal((await good.request('get test g 0 0 1048576 4\r\n', 4)).type, 'value', 'stored data still readable');
      } finally {
        bad.close();
        good.close();
      }
    });
  }
});
