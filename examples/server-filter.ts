/**
 * Server-side consumer filters: an embedded broker whose topic `orders` filters messages for
 * the group `even-orders` with examples/filters/even-orders.mjs, while the group `all-orders`
 * gets everything. The filtered group never receives the odd orders — they do not even cross
 * the network — and its offsets still advance past them.
 *
 *   npx tsx examples/server-filter.ts
 *
 * With a broker started from a file, the same is two lines of server.ini (a relative module
 * path resolves against `appClassPath`, or else the directory of the file):
 *
 *   [topic=orders]
 *   group.even-orders=filters/even-orders.mjs
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalOffsetStorage, createMessageSessionFactory, type ConsumedMessage } from '../src/index.js';
import { MetaqBroker, parseBrokerConfig } from '../src/server.js';

const filterModule = fileURLToPath(new URL('./filters/even-orders.mjs', import.meta.url));
const dir = fs.mkdtempSync(join(os.tmpdir(), 'metaq-filter-example-'));
const config = parseBrokerConfig(
  `
[system]
brokerId=1
serverPort=0
hostName=127.0.0.1
numPartitions=1
dataPath=${join(dir, 'data')}
unflushThreshold=0

[zookeeper]
zk.zkEnable=false

[topic=orders]
group.even-orders=${filterModule}
`,
  { file: 'inline.ini' },
);

const broker = await MetaqBroker.start(config);
const factory = createMessageSessionFactory({ serverUrl: broker.url });
try {
  const producer = factory.createProducer();
  await producer.publish('orders');
  for (let order = 1; order <= 10; order++) {
    await producer.send({ topic: 'orders', data: JSON.stringify({ order, item: `widget-${order}` }), attribute: String(order) });
  }

  const received = new Map<string, ConsumedMessage[]>([
    ['even-orders', []],
    ['all-orders', []],
  ]);
  const consumers = [...received].map(([group, list]) => {
    const consumer = factory.createConsumer(
      { group, recoverPath: join(dir, 'recover'), maxDelayFetchTimeInMills: 200 },
      createLocalOffsetStorage(join(dir, `${group}-offsets.json`)),
    );
    consumer.subscribe('orders', { maxSize: 64 * 1024 }, (message) => void list.push(message));
    return consumer;
  });
  for (const consumer of consumers) await consumer.completeSubscribe();

  const deadline = Date.now() + 10_000;
  while ((received.get('even-orders')?.length ?? 0) < 5 || (received.get('all-orders')?.length ?? 0) < 10) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the orders');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const consumer of consumers) await consumer.close();

  for (const [group, list] of received) {
    console.log(`${group}: ${list.map((m) => `#${m.attribute ?? '?'}@${m.offset}`).join(' ')}`);
  }
  // even-orders: #2@… #4@… #6@… #8@… #10@… — the same offsets as in all-orders.
} finally {
  await factory.close();
  await broker.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
