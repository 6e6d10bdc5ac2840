import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { MessageStoreManager } from '../../src/store/message-store-manager.js';
import { decodeMessageId } from '../../src/store/message-id.js';
import { segmentFileName } from '../../src/store/segment-name.js';
import { testBrokerConfig } from '../helpers/broker-config.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let dir: { path: string; remove: () => Promise<void> };
let manager: MessageStoreManager | undefined;

beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await manager?.close();
  manager = undefined;
  await dir.remove();
});

const record = (i: number) => ({ id: BigInt(i), flag: 0, data: Buffer.from(`message ${i}`) });

describe('message store manager', () => {
  it('creates partition directories <topic>-<partition> on first use', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    const log = await manager.getOrCreate('orders-eu', 2);
    await log.append(record(1));
    assert.ok(fs.existsSync(join(dir.path, 'orders-eu-2', segmentFileName(0))));
    assert.equal(manager.get('orders-eu', 2), log);
    assert.equal(await manager.getOrCreate('orders-eu', 2), log, 'one log per partition');
  });

  it('opens the same log once under concurrent first use', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    const logs = await Promise.all([manager.getOrCreate('test', 0), manager.getOrCreate('test', 0), manager.getOrCreate('test', 0)]);
    assert.equal(new Set(logs).size, 1);
  });

  it('refuses unconfigured topics and partitions out of range, saying what to do', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    await assert.rejects(manager.getOrCreate('nope', 0), /topic 'nope' is not configured; add a \[topic=nope\] section/);
    await assert.rejects(manager.getOrCreate('test', 2), /partition 2 of topic 'test' is out of range 0\.\.1/);
    await assert.rejects(manager.getOrCreate('orders-x', -1), /out of range 0\.\.2/);
  });

  it('loads every partition directory at start-up, topics with dashes included, even unconfigured ones', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    await (await manager.getOrCreate('orders-eu-west', 1)).append(record(1));
    await (await manager.getOrCreate('test', 0)).append(record(2));
    await manager.close();
    fs.mkdirSync(join(dir.path, 'legacy-topic-0'));
    fs.mkdirSync(join(dir.path, 'not a partition dir'));
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    const names = manager.logs().map((l) => `${l.topic}/${l.partition}`).sort();
    assert.deepEqual(names, ['legacy-topic/0', 'orders-eu-west/1', 'test/0']);
    assert.equal(manager.get('orders-eu-west', 1)?.maxOffset, 20 + 'message 1'.length);
  });

  it('gives a message id floor at or above every stored id', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    const big = (1n << 60n) + 5n;
    await (await manager.getOrCreate('test', 1)).append({ id: big, flag: 0, data: Buffer.from('x') });
    await manager.close();
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path));
    assert.ok((await manager.messageIdFloor()) >= big);
  });

  it('floors ids by the last write time when the active segment is empty after a roll', async () => {
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path, { system: { maxSegmentSize: 100 } }));
    const log = await manager.getOrCreate('test', 0);
    await log.append({ id: 1n, flag: 0, data: Buffer.alloc(200) });
    // The roll follows the ack; close() waits for it.
    const writtenAt = Date.now();
    await manager.close();
    assert.equal(fs.readdirSync(join(dir.path, 'test-0')).length, 2, 'rolled; the new active segment is empty');
    manager = await MessageStoreManager.open(testBrokerConfig(dir.path, { system: { maxSegmentSize: 100 } }));
    const floor = await manager.messageIdFloor();
    assert.ok(decodeMessageId(floor).timestampMs >= writtenAt - 1000);
  });

  it('runs retention on the deleteWhen schedule (every second here)', async () => {
    const config = testBrokerConfig(dir.path, {
      system: { maxSegmentSize: 100, deletePolicy: 'delete,1s', deleteWhen: '* * * * * ?' },
    });
    manager = await MessageStoreManager.open(config);
    const log = await manager.getOrCreate('test', 0);
    for (let i = 0; i < 3; i++) await log.append({ id: BigInt(i + 1), flag: 0, data: Buffer.alloc(100) });
    // Each append rolls the segment right after its ack.
    while (log.segmentCount < 4) await new Promise((r) => setTimeout(r, 5));
    const old = new Date(Date.now() - 10_000);
    for (const start of [0, 120, 240]) fs.utimesSync(join(dir.path, 'test-0', segmentFileName(start)), old, old);
    manager.startRetentionSchedule();
    const deadline = Date.now() + 10_000;
    while (log.segmentCount > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(log.segmentCount, 1, 'the three old segments were deleted by the scheduled job');
    assert.deepEqual(fs.readdirSync(join(dir.path, 'test-0')).sort(), [segmentFileName(360)]);
  });
});
