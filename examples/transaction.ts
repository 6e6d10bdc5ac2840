/**
 * A local transaction against the broker that `npm start` runs: three messages to topic `test`
 * become visible together on commit, or not at all on rollback.
 *
 *   npm start                          # in another terminal: a broker on meta://127.0.0.1:8123
 *   npx tsx examples/transaction.ts [commit|rollback]
 *   npx tsx examples/consumer.ts       # shows the committed messages
 *
 * METAQ_URL=meta://host:port points it at another broker.
 */
import {
  createMessageSessionFactory,
  MetaqError,
  TransactionOutcomeUnknownError,
  TransactionRolledBackError,
} from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const outcome = process.argv[2] === 'rollback' ? 'rollback' : 'commit';

const factory = createMessageSessionFactory({ serverUrl });
const producer = factory.createProducer();
try {
  await producer.publish('test');
  // Nothing goes to the broker yet; BEGIN is sent with the first message. The broker rolls the
  // transaction back by itself if it is not finished within timeoutSeconds.
  const tx = producer.beginTransaction({ timeoutSeconds: 30 });
  tx.onTransition(({ from, to }) => console.log(`${tx.transactionKey}: ${from} → ${to}`));
  for (let i = 0; i < 3; i++) {
    const result = await tx.send({ topic: 'test', data: `order ${i} of ${process.pid}`, attribute: 'tx' });
    // Staged, not stored: the offset is -1 until the commit.
    console.log(`staged id ${result.id} for partition ${result.partition} on ${result.brokerUrl}`);
  }
  if (outcome === 'rollback') {
    await tx.rollback();
    console.log('rolled back: no consumer will ever see these messages');
  } else {
    try {
      await tx.commit();
    } catch (error) {
      // No answer: the commit may or may not have happened. Ask again; the broker remembers.
      if (!(error instanceof TransactionOutcomeUnknownError && error.retriable)) throw error;
      console.warn(`${error.message}; retrying the commit`);
      await tx.commit();
    }
    console.log('committed: the three messages are visible together');
  }
} catch (error) {
  if (error instanceof TransactionRolledBackError) console.error(`the broker rolled the transaction back: ${error.message}`);
  else if (error instanceof MetaqError) console.error(`failed: ${error.code} (retriable: ${error.retriable}): ${error.message}`);
  else console.error(error);
  process.exitCode = 1;
} finally {
  await factory.close();
}
