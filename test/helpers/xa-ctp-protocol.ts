/**
 * What the consume-transform-produce worker (xa-ctp-worker.ts) and the test that drives it
 * (test/integration/xa-consume-transform-produce.test.ts) share: the configuration, the JSON
 * lines on its stdout, the tables and the body of an output message.
 */

/** Configuration of one worker process (passed as JSON in its first argument). */
export interface CtpWorkerConfig {
  /** `meta://127.0.0.1:<port>`. */
  readonly brokerUrl: string;
  /** `postgresql://…`. */
  readonly databaseUrl: string;
  /** The coordinator log directory (the same for every run: recovery reads it). */
  readonly logDir: string;
  /** The manager's node name (the same for every run). */
  readonly nodeName: string;
  /** The broker resource's unique qualifier (the same for every run). */
  readonly uniqueQualifier: string;
  /** Consumer group. */
  readonly group: string;
  /** Topic consumed (the input). */
  readonly input: string;
  /** Topic the transformed messages go to (the output). */
  readonly output: string;
  /** Partitions of {@link output} (so publish needs no broker round trip). */
  readonly outputPartitions: number;
  /** Offsets table (its recover table is `<offsetsTable>_recover`). */
  readonly offsetsTable: string;
  /** Rows table: one row per processed input message, no unique key (a duplicate shows). */
  readonly rowsTable: string;
  /**
   * Start the manager without recovery and run recovery only after the consumer loaded its
   * offsets: a transaction decided before a crash is then completed *after* the consumer read
   * the old offset, so the message comes again and must be skipped inside the transaction.
   */
  readonly recoverAfterSubscribe: boolean;
  /** The manager's `orphanSafetyIntervalMs`. */
  readonly orphanSafetyIntervalMs: number;
  /** Period of recovery scans (the manager's timer, or the worker's own loop). */
  readonly recoveryIntervalMs: number;
}

/** One line of the worker's stdout. */
export type CtpWorkerLine = { readonly ready: number } | { readonly fatal: string } | { readonly exit: number };

/** Messages with `seq % POISON_EVERY === 0` fail every fetch-path attempt (they go through the recover table). */
export const CTP_POISON_EVERY = 97;
/** Messages with `seq % FLAKY_EVERY === 0` fail their first attempt in each process, after writing and sending. */
export const CTP_FLAKY_EVERY = 13;

/** The log message of a skipped (already consumed) message, counted in the workers' stderr. */
export const SKIPPED_LOG = 'message already consumed in a committed transaction; skipped';

/** The body of the output message of input `seq` (no `|`: see tx-wire `tagOf`). */
export function outputBody(seq: number): string {
  return `ctp-out-${seq}`;
}

/** The input seq of an output body, or undefined for another message. */
export function seqOfOutput(body: string): number | undefined {
  const match = /^ctp-out-(\d+)$/.exec(body);
  return match === null ? undefined : Number(match[1]);
}

/** `CREATE TABLE IF NOT EXISTS` of the rows table `table` (a plain identifier). */
export function rowsTableDdl(table: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a plain table name: ${table}`);
  return `CREATE TABLE IF NOT EXISTS ${table} (seq integer NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, recovered boolean NOT NULL, pid integer NOT NULL)`;
}
