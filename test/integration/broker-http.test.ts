/**
 * The HTTP gateway (metaq-reference §8) of a real `metaq-server` process, and the 403 answers
 * of closed partitions (in-process broker, since closing partitions has no remote API yet).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { MetaqBroker } from '../../src/broker/broker.js';
import { encodeRecord, messageChecksum } from '../../src/protocol/record.js';
import { testBrokerConfig, testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { freePort } from '../helpers/free-port.js';
import { RawClient, resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';

describe('HTTP gateway', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let broker: BrokerProcess;
  let base: string;

  before(async () => {
    dir = await makeTempDir('metaq-http-');
    const ini = join(dir.path, 'server.ini');
    const httpPort = await freePort();
    fs.writeFileSync(ini, testBrokerIni(join(dir.path, 'data'), { system: { httpPort, httpHost: '127.0.0.1' } }));
    broker = spawnBroker(['start', '-c', ini]);
    const started = await broker.waitForLog('broker started');
    assert.equal(started['httpPort'], httpPort);
    base = `http://127.0.0.1:${httpPort}`;
  });
  after(async () => {
    broker.child.kill('SIGTERM');
    await broker.exited;
    await dir.remove();
  });

  it('answers /healthz and /readyz', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'ready\n');
  });

  it('POST /put stores a message; GET /get returns the record; GET /offset the segment start', async () => {
    const data = Buffer.from('over http');
    const put = await fetch(`${base}/put/7?topic=test&partition=1&flag=0&length=${data.length}&checksum=${messageChecksum(data)}`, { method: 'POST', body: data });
    assert.equal(put.status, 200);
    const [id, partition, offset] = (await put.text()).split(' ');
    assert.equal(partition, '1');
    const get = await fetch(`${base}/get/7?topic=test&partition=1&group=g&offset=${offset}&maxsize=1048576`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), encodeRecord({ id: BigInt(id ?? ''), flag: 0, data }));
    const off = await fetch(`${base}/offset/7?topic=test&partition=1&group=g&offset=3`);
    assert.equal(off.status, 200);
    assert.equal(await off.text(), '0');
  });

  it('passes the broker status codes through: 404 past the end, 301 for Long.MAX_VALUE, 500 for a bad checksum', async () => {
    const missing = await fetch(`${base}/get/7?topic=test&partition=1&group=g&offset=1000000&maxsize=100`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), 'Could not find message at position 1000000');
    const moved = await fetch(`${base}/get/7?topic=test&partition=1&group=g&offset=9223372036854775807&maxsize=100`);
    assert.equal(moved.status, 301);
    const crc = await fetch(`${base}/put/7?topic=test&partition=0&length=2&checksum=1`, { method: 'POST', body: 'ab' });
    assert.equal(crc.status, 500);
    assert.match(await crc.text(), /Checksum failure/);
  });

  it('answers bad parameters with 400 naming the parameter', async () => {
    const noTopic = await fetch(`${base}/put/7?partition=0&length=1`, { method: 'POST', body: 'x' });
    assert.equal(noTopic.status, 400);
    assert.equal(await noTopic.text(), "missing query parameter 'topic'");
    const badPartition = await fetch(`${base}/get/7?topic=test&partition=x&group=g&offset=0&maxsize=10`);
    assert.equal(badPartition.status, 400);
    assert.match(await badPartition.text(), /'partition' must be a 32-bit integer, got 'x'/);
    const lengthMismatch = await fetch(`${base}/put/7?topic=test&partition=0&length=5`, { method: 'POST', body: 'abc' });
    assert.equal(lengthMismatch.status, 400);
    assert.match(await lengthMismatch.text(), /says 5 bytes but the body has 3/);
    const unknown = await fetch(`${base}/nothing`);
    assert.equal(unknown.status, 400);
    assert.equal(await unknown.text(), 'Invalid request');
  });
});

describe('closed partitions', () => {
  it('answer put and get with 403 until reopened', async () => {
    const dir = await makeTempDir('metaq-closed-');
    const broker = await MetaqBroker.start(testBrokerConfig(dir.path));
    const client = await RawClient.connect(broker.port);
    try {
      assert.equal(resultText(await client.request('put test 0 1 0 -1 1\r\nx', 1)).code, 200);
      broker.partitions.close('test', 0, 0);
      const put = resultText(await client.request('put test 0 1 0 -1 2\r\nx', 2));
      assert.equal(put.code, 403);
      assert.match(put.text, /failed\.Detail:partition\[7-0\] has been closed$/);
      assert.deepEqual(resultText(await client.request('get test g 0 0 100 3\r\n', 3)), { code: 403, text: 'Partition[7-0] has been closed' });
      for (let i = 0; i < 20; i++) {
        const chosen = resultText(await client.request(`put test -1 1 0 -1 ${100 + i}\r\nx`, 100 + i));
        assert.match(chosen.text, /^\d+ 1 \d+$/, 'partition -1 avoids the closed partition');
      }
      broker.partitions.open('test');
      assert.equal(resultText(await client.request('put test 0 1 0 -1 4\r\nx', 4)).code, 200);
    } finally {
      client.close();
      await broker.stop();
      await dir.remove();
    }
  });
});
