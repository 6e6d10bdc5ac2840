/**
 * Embeds a standalone broker in a Node.js process, appends a few messages to a partition log
 * and reads them back, straight through the message store.
 *
 *   npx tsx examples/embedded-broker.ts
 *
 * Over the network, producers and consumers talk to a broker instead: examples/producer.ts and
 * examples/consumer.ts (docs/client.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { decodeRecordAt, MetaqBroker, parseBrokerConfig, decodeMessageId } from '../src/server.js';

const dataPath = fs.mkdtempSync(join(os.tmpdir(), 'metaq-example-'));
const config = parseBrokerConfig(
  `
[system]
brokerId=1
numPartitions=2
dataPath=${dataPath}
; group commit: append() resolves only once the record is on disk
unflushThreshold=0

[zookeeper]
zk.zkEnable=false

[topic=greetings]
`,
  { file: 'inline.ini' },
);

const broker = await MetaqBroker.start(config);
try {
  const log = await broker.store.getOrCreate('greetings', 0);
  for (const text of ['hello', 'hallo', 'bonjour']) {
    const id = broker.ids.next();
    const offset = await log.append({ id, flag: 0, data: Buffer.from(text) });
    console.log(`stored '${text}' as id ${id} at offset ${offset}`);
  }

  // What a consumer's `get` would receive: raw records from an offset.
  const slice = await log.read(0, 1024 * 1024);
  if (slice.kind === 'data') {
    for (let pos = 0; ; ) {
      const record = decodeRecordAt(slice.data, pos, 1 << 20);
      if (typeof record === 'string') break;
      const { timestampMs, brokerId } = decodeMessageId(record.id);
      console.log(`offset ${pos}: '${record.data.toString()}' (broker ${brokerId}, ${new Date(timestampMs).toISOString()})`);
      pos += record.size;
    }
  }
} finally {
  await broker.stop();
  fs.rmSync(dataPath, { recursive: true, force: true });
}
