/**
 * The local recover store (one crash-safe file per message) and the task that re-delivers
 * from it: a message that keeps failing stays and does not hold back the others.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { componentLogger } from '../../src/common/logger.js';
import type { ConsumedMessage } from '../../src/index.js';
import { ClientEmitter } from '../../src/client/instrumentation.js';
import { openRecoverStore, recoverFileName, recoverStoreDir } from '../../src/client/consumer/recover-store.js';
import { RecoverTask } from '../../src/client/consumer/recover-task.js';
import { makeTempDir } from '../helpers/temp-dir.js';

function message(offset: number, text: string, attribute?: string): ConsumedMessage {
  return { id: BigInt(offset) * 1000n - 5n, topic: 'orders', partition: 2, offset, data: Buffer.from(text), flag: attribute === undefined ? 0 : 1, recovered: false, ...(attribute === undefined ? {} : { attribute }) };
}

describe('recover store', () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await makeTempDir('metaq-recover-');
  });
  after(async () => {
    await dir.remove();
  });

  it('stores messages as <topic>@<group>/<broker>-<partition>-<offset>.msg and reads them back', async () => {
    const store = openRecoverStore(dir.path, 'orders', 'billing');
    assert.equal(store.dir, recoverStoreDir(dir.path, 'orders', 'billing'));
    assert.equal(store.dir, join(dir.path, 'orders@billing'));
    assert.deepEqual(await store.names(), []);
    await store.save(3, message(2048, 'second', 'vip'));
    await store.save(3, message(100, 'first'));
    await store.save(3, message(100, 'first')); // saved again: still one file
    const names = await store.names();
    assert.deepEqual(names, [recoverFileName(3, 2, 100), recoverFileName(3, 2, 2048)]);
    assert.equal(names[0], '3-2-00000000000000000100.msg');
    const first = await store.read(names[0] as string);
    assert.equal(first?.brokerId, 3);
    assert.equal(first?.message.data.toString(), 'first');
    assert.equal(first?.message.id, 99995n);
    assert.equal(first?.message.recovered, true);
    assert.equal(first?.message.attribute, undefined);
    const second = await store.read(names[1] as string);
    assert.equal(second?.message.attribute, 'vip');
    assert.equal(second?.message.data.toString(), 'second');
    assert.equal(second?.message.offset, 2048);
    await store.remove(names[0] as string);
    assert.deepEqual(await store.names(), [names[1]]);
    assert.equal(await store.read(names[0] as string), undefined);
  });

  it('sets a damaged file aside and ignores temp files', async () => {
    const store = openRecoverStore(dir.path, 'damaged', 'g');
    await store.save(0, message(7, 'payload'));
    const [name] = await store.names();
    const file = join(store.dir, name as string);
    const bytes = fs.readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1); // flip payload bits: the CRC no longer matches
    fs.writeFileSync(file, bytes);
    fs.writeFileSync(join(store.dir, `0-0-00000000000000000001.msg.tmp-${process.pid}-5`), 'partial');
    assert.equal(await store.read(name as string), undefined);
    assert.deepEqual(await store.names(), []);
    assert.ok(fs.existsSync(`${file}.corrupt`));
  });

  it('re-delivers stored messages; one that keeps failing stays without blocking the others', async () => {
    const store = openRecoverStore(dir.path, 'orders', 'task');
    for (const offset of [10, 20, 30]) await store.save(0, message(offset, `m${offset}`));
    const emitter = new ClientEmitter();
    const redelivered: number[] = [];
    emitter.on('consumer.message_redelivered', (event) => redelivered.push(event.offset));
    const seen: number[] = [];
    const task = new RecoverTask({
      group: 'task',
      intervalMs: 60_000,
      targets: [
        {
          topic: 'orders',
          store,
          listener: (m) => {
            seen.push(m.offset);
            assert.equal(m.recovered, true);
            if (m.offset === 10) throw new Error('still broken');
          },
        },
      ],
      emitter,
      log: componentLogger('test'),
    });
    await task.runOnce();
    assert.deepEqual(seen, [10, 20, 30]);
    assert.deepEqual(redelivered, [20, 30]);
    assert.deepEqual(await store.names(), [recoverFileName(0, 2, 10)]);
    await task.runOnce();
    assert.deepEqual(seen, [10, 20, 30, 10]);
  });

  it('runs rounds periodically and stops promptly', async () => {
    const store = openRecoverStore(dir.path, 'periodic', 'g');
    await store.save(0, message(1, 'x'));
    let deliveries = 0;
    const task = new RecoverTask({
      group: 'g',
      intervalMs: 30,
      targets: [{ topic: 'periodic', store, listener: () => void deliveries++ }],
      emitter: new ClientEmitter(),
      log: componentLogger('test'),
    });
    task.start();
    try {
      const started = Date.now();
      // The file is removed after the listener returns: wait for the removal, not the delivery.
      while ((await store.names()).length > 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await store.names(), []);
      assert.equal(deliveries, 1);
    } finally {
      await task.stop();
    }
  });
});
