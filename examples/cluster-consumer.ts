/**
 * A consumer-group member of a metaq cluster (docs/cluster.md): it finds the brokers in
 * ZooKeeper, joins its group, prints every change of the partitions it is given and every
 * message, until Ctrl-C or SIGTERM; then it leaves gracefully (the listener call in progress
 * finishes, offsets are committed to ZooKeeper, its partitions are released at once).
 *
 *   # ZooKeeper on 127.0.0.1:2181 and the brokers of conf/cluster/ running (docs/cluster.md)
 *   npx tsx examples/cluster-consumer.ts                       # member 1 (run it in 2 or 3 terminals)
 *   npx tsx examples/cluster-consumer.ts --produce 100         # send 100 messages over every broker
 *
 * Options (or environment variables):
 *   --zk host:port[,host:port...][/chroot]   METAQ_ZK       default 127.0.0.1:2181
 *   --root /meta                             METAQ_ZK_ROOT  default /meta (the brokers' zk.zkRoot)
 *   --group example-group                    METAQ_GROUP
 *   --topic test                             METAQ_TOPIC
 *   --id <consumerId>                        default <hostname>-<pid>-<random>
 *   --strategy range|consistent-hash         default range
 *   --produce <count>                        producer mode: send <count> messages and exit
 */
import { parseArgs } from 'node:util';
import {
  connectZookeeper,
  createMessageSessionFactory,
  createZookeeperDiscovery,
  decodeMessageId,
  MetaPaths,
  MetaqError,
  type BrokerDiscovery,
  type PartitionRef,
  type ZookeeperDiscovery,
} from '../src/index.js';

const { values } = parseArgs({
  options: {
    zk: { type: 'string', default: process.env['METAQ_ZK'] ?? '127.0.0.1:2181' },
    root: { type: 'string', default: process.env['METAQ_ZK_ROOT'] ?? '/meta' },
    group: { type: 'string', default: process.env['METAQ_GROUP'] ?? 'example-group' },
    topic: { type: 'string', default: process.env['METAQ_TOPIC'] ?? 'test' },
    id: { type: 'string' },
    strategy: { type: 'string', default: 'range' },
    produce: { type: 'string' },
  },
});
const { zk: zkConnect, root: zkRoot, group, topic } = values;
const strategy = values.strategy === 'consistent-hash' ? 'consistent-hash' : 'range';

/** `<brokerId>-<partition>`: a partition's name in ZooKeeper and in the offset storage. */
const partitionName = (ref: PartitionRef): string => `${ref.brokerId}-${ref.partition}`;

if (values.produce !== undefined) {
  await produce(Number(values.produce));
} else {
  await consume();
}

/** Producer mode: round-robin over every partition of every broker that registered the topic. */
async function produce(count: number): Promise<void> {
  const factory = createMessageSessionFactory({ zkConnect, zkRoot });
  try {
    const producer = factory.createProducer();
    await producer.publish(topic); // finds the brokers of the topic in ZooKeeper
    const partitions = await factory.getPartitionsForTopic(topic);
    console.log(`${topic}: ${partitions.length} partitions on brokers ${[...new Set(partitions.map((p) => p.brokerId))].join(', ')}`);
    const results = await Promise.all(Array.from({ length: count }, (_, i) => producer.send({ topic, data: `hello ${i} from ${process.pid}` })));
    const perBroker = new Map<string, number>();
    for (const r of results) perBroker.set(r.brokerUrl, (perBroker.get(r.brokerUrl) ?? 0) + 1);
    for (const [url, n] of perBroker) console.log(`${n} messages stored on ${url}`);
  } catch (error) {
    if (error instanceof MetaqError) console.error(`send failed: ${error.code} (retriable: ${error.retriable}): ${error.message}`);
    else console.error(error);
    process.exitCode = 1;
  } finally {
    await factory.close();
  }
}

/**
 * An application passes `{ zkConnect, zkRoot }` to createMessageSessionFactory and is done. This
 * example builds the same ZooKeeper discovery itself and wraps it, only to print each assignment
 * the group gives this member (once the consumer has applied it).
 */
function printingAssignments(cluster: ZookeeperDiscovery): BrokerDiscovery {
  return {
    publishPartitions: (t) => cluster.publishPartitions(t),
    onPublishPartitionsChange: (t, listener) => cluster.onPublishPartitionsChange(t, listener),
    brokerUrls: () => cluster.brokerUrls(),
    ready: () => cluster.ready(),
    createOffsetStorage: () => cluster.createOffsetStorage(), // offsets in ZooKeeper, MetaQ's default
    close: () => cluster.close(),
    joinGroup: (subscription) =>
      cluster.joinGroup({
        ...subscription,
        onAssignment: async (t, partitions) => {
          await subscription.onAssignment(t, partitions); // resolves once fetching exactly these
          const names = partitions.map(partitionName).join(' ') || '(none)';
          console.log(`${new Date().toISOString()} assignment ${t}: ${names}`);
        },
      }),
  };
}

async function consume(): Promise<void> {
  const zk = connectZookeeper({ connectString: zkConnect });
  const cluster = createZookeeperDiscovery({ zk, paths: new MetaPaths(zkRoot), ownsClient: true });
  const factory = createMessageSessionFactory({ discovery: printingAssignments(cluster) });
  factory.on('connection.disconnect', ({ brokerUrl, error }) => console.warn(`lost ${brokerUrl} (${error?.message ?? 'closed'}); reconnecting`));

  const consumer = factory.createConsumer({
    group,
    ...(values.id === undefined ? {} : { consumerId: values.id }),
    loadBalanceStrategy: strategy,
    maxDelayFetchTimeInMills: 1000,
  });
  consumer.subscribe(topic, { maxSize: 1024 * 1024 }, async (message) => {
    // Throwing here makes the consumer retry the message, then keep it in the recover store.
    const { brokerId } = decodeMessageId(message.id);
    console.log(`${brokerId}-${message.partition} offset ${message.offset}: ${message.data.toString()}`);
  });
  console.log(`joining group ${group} as ${group}_${consumer.config.consumerId} (${strategy}) for topic ${topic} via ${zkConnect}${zkRoot}`);
  try {
    await consumer.completeSubscribe(); // resolves once the first assignment is applied
  } catch (error) {
    console.error(error);
    await factory.close();
    process.exit(1);
  }
  console.log('consuming; Ctrl-C to leave the group');

  // Graceful shutdown: the first signal closes everything; a second one exits at once.
  let closing = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) process.exit(130);
      closing = true;
      console.log(`${signal}: leaving the group (committing offsets, releasing partitions)...`);
      factory.close().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
    });
  }
}
