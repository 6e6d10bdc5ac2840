/**
 * A transaction manager in the test process itself, on a real broker and a real PostgreSQL (the
 * rig of xa-rig.ts): a session factory and producer (topic `orders` published), a pg pool of its
 * own, the broker and PostgreSQL resources, and the manager. For end-to-end tests that need the
 * manager's public API directly — to hammer `tm.recover()`, read `tm.metrics()`, or inspect an
 * in-memory coordinator log — rather than through a worker process.
 */
import pg from 'pg';
import { createMessageSessionFactory, type MessageProducer, type MessageSessionFactory } from '../../src/index.js';
import {
  createBrokerResource,
  createPostgresResource,
  createTransactionManager,
  type BrokerResource,
  type PostgresResource,
  type TransactionManager,
  type TransactionManagerOptions,
} from '../../src/xa/index.js';

/** Options of {@link startLocalXa}. */
export interface LocalXaOptions {
  readonly brokerUrl: string;
  readonly databaseUrl: string;
  readonly nodeName: string;
  /** The broker resource's unique qualifier. Default `xa-<nodeName>`. */
  readonly uniqueQualifier?: string;
  /** Size of the manager's pool (one client per transaction in its work phase, plus phase two and recovery). Default 8. */
  readonly poolSize?: number;
  /** Manager options on top of the defaults here (no background recovery, fast phase-two retries). */
  readonly manager: Omit<TransactionManagerOptions, 'nodeName' | 'resources'>;
}

/** What {@link startLocalXa} started. */
export interface LocalXa {
  readonly pool: pg.Pool;
  readonly factory: MessageSessionFactory;
  readonly producer: MessageProducer;
  readonly postgres: PostgresResource;
  readonly broker: BrokerResource;
  readonly tm: TransactionManager;
  /** The broker resource's unique qualifier (what the broker's RECOVER is asked for). */
  readonly uniqueQualifier: string;
  /** Closes the manager, then the factory and the pool. Idempotent. */
  close(): Promise<void>;
}

/** Starts the parts; the PostgreSQL resource is `init()`ed (marker table created). */
export async function startLocalXa(options: LocalXaOptions): Promise<LocalXa> {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 8, connectionTimeoutMillis: 5000 });
  pool.on('error', () => undefined);
  const factory = createMessageSessionFactory({ serverUrl: options.brokerUrl, partitions: { orders: 3 }, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
  try {
    const postgres = createPostgresResource({ pool, name: 'orders' });
    await postgres.init();
    const producer = factory.createProducer();
    await producer.publish('orders');
    const uniqueQualifier = options.uniqueQualifier ?? `xa-${options.nodeName}`;
    const broker = createBrokerResource(producer, { brokerUrl: options.brokerUrl, uniqueQualifier, requestTimeoutMs: 5000 });
    const tm = await createTransactionManager({
      nodeName: options.nodeName,
      resources: [broker, postgres],
      recoveryIntervalMs: 0,
      phaseTwoRetry: { initialDelayMs: 20, maxDelayMs: 500 },
      ...options.manager,
    });
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        try {
          await tm.close();
        } finally {
          await factory.close().catch(() => undefined);
          await pool.end().catch(() => undefined);
        }
      })();
      return closing;
    };
    return { pool, factory, producer, postgres, broker, tm, uniqueQualifier, close };
  } catch (error) {
    await factory.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw error;
  }
}
