/**
 * Consumes a topic (default `test`) of the broker that `npm start` runs, as group
 * `example-group`, until Ctrl-C or SIGTERM; then closes gracefully (the listener call in progress
 * finishes, offsets are committed), so the next run resumes where this one stopped.
 *
 *   npm start                          # in another terminal
 *   npx tsx examples/consumer.ts [topic]
 *
 * Offsets go to ~/.meta_offsets and failed messages to ~/.meta_recover (MetaQ's defaults).
 * METAQ_URL=meta://host:port points it at another broker.
 */
import { createMessageSessionFactory } from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const topic = process.argv[2] ?? 'test';

const factory = createMessageSessionFactory({ serverUrl });
factory.on('connection.disconnect', ({ brokerUrl, error }) => console.warn(`lost ${brokerUrl} (${error?.message ?? 'closed'}); reconnecting`));

const consumer = factory.createConsumer({ group: 'example-group', maxDelayFetchTimeInMills: 1000 });
consumer.subscribe(topic, { maxSize: 1024 * 1024 }, async (message) => {
  // Throwing here makes the consumer retry the message, then keep it in the recover store.
  const attribute = message.attribute === undefined ? '' : ` [${message.attribute}]`;
  console.log(`partition ${message.partition} offset ${message.offset} id ${message.id}${attribute}: ${message.data.toString()}`);
});
await consumer.completeSubscribe();
console.log(`consuming '${topic}' from ${serverUrl}; Ctrl-C to stop`);

// Graceful shutdown: the first signal closes everything; a second one exits at once.
let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) process.exit(130);
    closing = true;
    console.log(`${signal}: closing (committing offsets)...`);
    factory.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
