/**
 * What the XA order worker (xa-order-worker.ts) and the tests that drive it share: its
 * configuration, the JSON lines it prints, the orders table and the body of an order message.
 */
import type { RecoveryReport, TransactionManagerMetrics } from '../../src/xa/index.js';

/** Configuration of one worker process (passed as JSON in its first argument). */
export interface XaWorkerConfig {
  /** `run`: place orders; `recover`: recover until clean, then exit; `hold`: keep the manager until SIGTERM. */
  readonly mode: 'run' | 'recover' | 'hold';
  /** `meta://127.0.0.1:<port>` of the broker. */
  readonly brokerUrl: string;
  /** `postgresql://…` of the database. */
  readonly databaseUrl: string;
  /** Directory of the file coordinator log (one live manager per directory). */
  readonly logDir: string;
  /** The manager's node name (stable across the runs that share {@link logDir}). */
  readonly nodeName: string;
  /** The broker resource's unique qualifier. Default `xa-<nodeName>`. */
  readonly uniqueQualifier?: string;
  /** Name of the PostgreSQL resource (`postgres:<name>`). Default `orders`. */
  readonly resourceName?: string;
  /** Mode of the PostgreSQL resource: `xa` (PREPARE TRANSACTION) or `decision-row`. Default `xa`. */
  readonly postgresMode?: 'xa' | 'decision-row';
  /** The manager's `decisionRowRetentionMs` (decision-row mode housekeeping). Default the manager's (a day). */
  readonly decisionRowRetentionMs?: number;
  /** The manager's `phaseTwo`: `background` reports an order committed once its decision is durable. Default `await`. */
  readonly phaseTwo?: 'await' | 'background';
  /** The orders table. Default `xa_orders`. */
  readonly table?: string;
  /** Tag of the orders (column `run`, and in the message). Default the node name. */
  readonly run?: string;
  /** First order id. Default 0. */
  readonly first?: number;
  /** Orders to try; without it, orders are placed until SIGTERM. */
  readonly count?: number;
  /** Orders in flight at once. Default 1. */
  readonly concurrency?: number;
  /** The manager's `orphanSafetyIntervalMs` (default: the manager's own default). */
  readonly orphanSafetyIntervalMs?: number;
  /** The manager's `recoveryIntervalMs`. Default 0 (no background recovery). */
  readonly recoveryIntervalMs?: number;
  /** The manager's `phaseTwoWaitMs`. Default 2000. */
  readonly phaseTwoWaitMs?: number;
  /** Transaction timeout. Default 20 000 ms. */
  readonly transactionTimeoutMs?: number;
  /** How long `init()` of the PostgreSQL resource is retried (and the table created). Default 30 000 ms. */
  readonly initDeadlineMs?: number;
  /** `recover` mode gives up (exit 3) after this long. Default 60 000 ms. */
  readonly recoverDeadlineMs?: number;
  /** Pause of a lane after a failed order. Default 200 ms. */
  readonly pauseAfterFailureMs?: number;
}

/** One line of the worker's stdout. */
export type XaWorkerLine =
  | { readonly ready: number; readonly resources: readonly string[] }
  | { readonly committed: number; readonly run: string }
  | { readonly rolledBack: number; readonly run: string; readonly error: string }
  | { readonly heuristic: number; readonly run: string; readonly error: string }
  | { readonly failed: number; readonly run: string; readonly error: string }
  | { readonly initSkipped: string }
  | {
      readonly scan: RecoveryReport;
      readonly pending: readonly { readonly gtrid: string; readonly state: string; readonly inFlight: boolean }[];
      /** XIDs of this node listed per resource, or the error of a listing that failed. */
      readonly inDoubt: Readonly<Record<string, number>> | string;
    }
  | { readonly recovered: boolean; readonly metrics: TransactionManagerMetrics }
  | { readonly fatal: string; readonly name: string }
  | { readonly exit: number };

/** The worker's final line in `recover` mode: whether it converged, and its manager's metrics. */
export function isRecoveredLine(line: XaWorkerLine): line is { readonly recovered: boolean; readonly metrics: TransactionManagerMetrics } {
  return 'recovered' in line;
}

/** `CREATE TABLE IF NOT EXISTS` of the orders table `table` (a plain identifier). */
export function ORDER_TABLE_DDL(table: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a plain table name: ${table}`);
  return `CREATE TABLE IF NOT EXISTS ${table} (run text NOT NULL, id integer NOT NULL, item text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, id))`;
}

/** The body of the "order created" message of order `id` of `run` (JSON, no `|`: see tx-wire `tagOf`). */
export function orderMessageBody(run: string, id: number): string {
  return JSON.stringify({ type: 'order-created', run, id });
}

/** `<run>#<id>`: how rows and messages are matched. */
export function orderKey(run: string, id: number): string {
  return `${run}#${id}`;
}

/** The order key of a message body, or undefined for a message that is no order message. */
export function orderKeyOfBody(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { type?: unknown; run?: unknown; id?: unknown };
    if (parsed.type !== 'order-created' || typeof parsed.run !== 'string' || typeof parsed.id !== 'number') return undefined;
    return orderKey(parsed.run, parsed.id);
  } catch {
    return undefined;
  }
}
