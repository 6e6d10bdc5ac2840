/**
 * Sends messages to topic `test` of the broker that `npm start` runs.
 *
 *   npm start                          # in another terminal: a broker on meta://127.0.0.1:8123
 *   npx tsx examples/producer.ts [count]
 *
 * METAQ_URL=meta://host:port points it at another broker.
 */
import { createMessageSessionFactory, keyHashSelector, MetaqError } from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const count = Number(process.argv[2] ?? 10);

const factory = createMessageSessionFactory({ serverUrl });
// Same key → same partition; sends from one producer are stored in the order they were made.
const producer = factory.createProducer({ selector: keyHashSelector() });
try {
  await producer.publish('test'); // MetaQ requires it before sending to a topic
  // All sends are in flight at once (pipelined on one connection); each resolves when stored.
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      producer.send({
        topic: 'test',
        data: `hello ${i} from ${process.pid}`,
        attribute: i % 2 === 0 ? 'even' : 'odd', // consumers can filter on it
        key: `user-${i % 3}`,
      }),
    ),
  );
  for (const result of results) console.log(`stored id ${result.id} in partition ${result.partition} at offset ${result.offset}`);
} catch (error) {
  if (error instanceof MetaqError) console.error(`send failed: ${error.code} (retriable: ${error.retriable}): ${error.message}`);
  else console.error(error);
  process.exitCode = 1;
} finally {
  await factory.close();
}
