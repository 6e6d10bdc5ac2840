/**
 * The real parts the XA end-to-end tests run against (the crash tests and the soak): a private
 * PostgreSQL, a broker process on a fixed free port (so restarts keep its address), a pg pool
 * and the orders table.
 */
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import { startPostgres, type PostgresOptions, type PostgresServer } from './postgres-server.js';
import { makeTempDir } from './temp-dir.js';
import { TxBrokerHome, type TxBrokerRun } from './tx-wire.js';
import { killAllXaWorkers } from './xa-worker-process.js';
import { ORDER_TABLE_DDL } from './xa-worker-protocol.js';

/** A started rig; see {@link startXaRig}. */
export interface XaRig {
  readonly root: { path: string; remove: () => Promise<void> };
  readonly pgServer: PostgresServer;
  readonly home: TxBrokerHome;
  readonly broker: TxBrokerRun;
  /** `meta://127.0.0.1:<port>`; stays valid across broker restarts. */
  readonly brokerUrl: string;
  readonly pool: pg.Pool;
}

/** Starts PostgreSQL and a broker, opens a small pool and creates the orders `table`. */
export async function startXaRig(prefix: string, table: string, postgres: PostgresOptions): Promise<XaRig> {
  const root = await makeTempDir(prefix);
  const brokerPort = await freePort();
  const [pgServer, home] = await Promise.all([startPostgres(postgres), TxBrokerHome.create(join(root.path, 'broker'), { serverPort: brokerPort })]);
  const broker = await home.start();
  if (broker.port !== brokerPort) throw new Error(`the broker listens on ${broker.port}, not on the configured ${brokerPort}`);
  const pool = new pg.Pool({ connectionString: pgServer.connectionString, max: 4, idleTimeoutMillis: 1000 });
  pool.on('error', () => undefined);
  await pool.query(ORDER_TABLE_DDL(table));
  return { root, pgServer, home, broker, brokerUrl: `meta://127.0.0.1:${broker.port}`, pool };
}

/** Kills the workers and stops everything {@link startXaRig} started (each part optional: `before` may have failed). */
export async function stopXaRig(rig: Partial<Pick<XaRig, 'root' | 'pgServer' | 'home' | 'pool'>>): Promise<void> {
  await killAllXaWorkers();
  await rig.pool?.end().catch(() => undefined);
  await rig.home?.kill();
  await rig.pgServer?.stop();
  await rig.root?.remove();
}
