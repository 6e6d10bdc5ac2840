/**
 * The verdict of the XA end-to-end tests: the orders table and the `orders` topic must agree,
 * order by order — every row has exactly one "order created" message, every message has its row,
 * what a worker reported committed is in both, what it reported rolled back is in neither — and
 * nothing of a node may stay prepared in PostgreSQL or on the broker.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { belongsToNode, METAQ_TM_FORMAT_ID, nodeIdOf, parsePgGid } from '../../src/xa/index.js';
import { readAll, TxClient } from './tx-wire.js';
import { orderKey, orderKeyOfBody } from './xa-worker-protocol.js';

/** Rows and messages of the orders, keyed `<run>#<id>`. */
export interface OrderState {
  /** Order keys with a row. */
  readonly rows: ReadonlySet<string>;
  /** Order keys with their number of stored messages (over every partition of `orders`). */
  readonly messages: ReadonlyMap<string, number>;
}

/**
 * Reads every order row of `table` and every stored order message of the broker on `brokerPort`
 * (all partitions, with raw `get`s: committed messages only), keeping those whose run passes `runFilter`.
 */
export async function readOrderState(pool: pg.Pool, table: string, brokerPort: number, runFilter: (run: string) => boolean = () => true): Promise<OrderState> {
  const result = await pool.query<{ run: string; id: number }>(`SELECT run, id FROM ${table}`);
  const rows = new Set<string>();
  for (const row of result.rows) if (runFilter(row.run)) rows.add(orderKey(row.run, row.id));
  const messages = new Map<string, number>();
  for (const stored of await readAll(brokerPort)) {
    if (stored.topic !== 'orders') continue;
    const key = orderKeyOfBody(stored.tag);
    assert.ok(key !== undefined || !stored.tag.includes('order-created'), `unparsable order message ${stored.tag}`);
    if (key === undefined || !runFilter(key.slice(0, key.lastIndexOf('#')))) continue;
    messages.set(key, (messages.get(key) ?? 0) + 1);
  }
  return { rows, messages };
}

/** What must (not) exist, beyond "rows and messages agree". */
export interface AgreementExpectation {
  /** Orders reported committed: each must have its row and its message. */
  readonly committed?: Iterable<string>;
  /** Orders that must not exist at all (reported rolled back, or decided never to commit). */
  readonly absent?: Iterable<string>;
}

/**
 * Asserts that rows and messages agree one to one and that `expected` holds; `context` starts
 * every assertion message.
 */
export function assertAgreement(state: OrderState, expected: AgreementExpectation, context: string): void {
  const duplicated = [...state.messages].filter(([, n]) => n !== 1).map(([key, n]) => `${key}×${n}`);
  assert.deepEqual(duplicated, [], `${context}: every order must have exactly one message; duplicated: ${duplicated.join(', ')}`);
  const rowWithoutMessage = [...state.rows].filter((key) => !state.messages.has(key)).sort();
  assert.deepEqual(rowWithoutMessage, [], `${context}: order rows without their "order created" message`);
  const messageWithoutRow = [...state.messages.keys()].filter((key) => !state.rows.has(key)).sort();
  assert.deepEqual(messageWithoutRow, [], `${context}: "order created" messages without their order row`);
  const lostCommitted = [...(expected.committed ?? [])].filter((key) => !state.rows.has(key) || !state.messages.has(key)).sort();
  assert.deepEqual(lostCommitted, [], `${context}: orders reported committed but missing (row or message)`);
  const presentAbsent = [...(expected.absent ?? [])].filter((key) => state.rows.has(key) || state.messages.has(key)).sort();
  assert.deepEqual(presentAbsent, [], `${context}: orders that must not exist (rolled back / never decided) exist`);
}

/** Gids of `pg_prepared_xacts` (any database) made by the manager of `nodeName`. */
export async function preparedGidsOf(pool: pg.Pool, nodeName: string): Promise<string[]> {
  const nodeId = nodeIdOf(nodeName);
  const result = await pool.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts ORDER BY gid');
  return result.rows.map((row) => row.gid).filter((gid) => {
    const xid = parsePgGid(gid);
    return xid !== undefined && belongsToNode(xid, nodeId);
  });
}

/** Gids in the PostgreSQL marker table `metaq_xa_marker` made by the manager of `nodeName`. */
export async function markerGidsOf(pool: pg.Pool, nodeName: string): Promise<string[]> {
  const nodeId = nodeIdOf(nodeName);
  const result = await pool.query<{ gid: string }>('SELECT gid FROM metaq_xa_marker ORDER BY gid');
  return result.rows.map((row) => row.gid).filter((gid) => {
    const xid = parsePgGid(gid);
    return xid !== undefined && belongsToNode(xid, nodeId);
  });
}

/** The branch keys the broker lists (RECOVER) for `uniqueQualifier`: prepared or heuristic. */
export async function brokerBranchesOf(brokerPort: number, uniqueQualifier: string): Promise<string[]> {
  const client = await TxClient.connect(brokerPort);
  try {
    return await client.recover(uniqueQualifier);
  } finally {
    client.close();
  }
}

/** Asserts that neither PostgreSQL nor the broker holds a prepared branch of the node any more. */
export async function assertNothingInDoubt(pool: pg.Pool, brokerPort: number, node: { readonly nodeName: string; readonly uniqueQualifier: string }, context: string): Promise<void> {
  assert.deepEqual(await preparedGidsOf(pool, node.nodeName), [], `${context}: PostgreSQL still has prepared transactions of ${node.nodeName}`);
  assert.deepEqual(await brokerBranchesOf(brokerPort, node.uniqueQualifier), [], `${context}: the broker still lists branches of ${node.uniqueQualifier}`);
}

/** Decision rows (`metaq_xa_decision`, decision-row mode) of transactions of the manager of `nodeName`: gtrid hex → outcome `C` / `A`. */
export async function decisionRowsOf(pool: pg.Pool, nodeName: string): Promise<Map<string, string>> {
  const nodeId = nodeIdOf(nodeName);
  const rows = new Map<string, string>();
  const exists = await pool.query<{ oid: string | null }>("SELECT to_regclass('metaq_xa_decision')::text AS oid");
  if ((exists.rows[0]?.oid ?? null) === null) return rows; // no decision-row resource was ever initialised here
  const result = await pool.query<{ gtrid: string; outcome: string }>('SELECT gtrid, outcome FROM metaq_xa_decision ORDER BY gtrid');
  for (const row of result.rows) {
    const [formatId, encoded] = row.gtrid.split('_');
    if (encoded === undefined || Number(formatId) !== METAQ_TM_FORMAT_ID) continue;
    const gtrid = Buffer.from(encoded, 'base64');
    if (belongsToNode({ formatId: METAQ_TM_FORMAT_ID, globalTransactionId: gtrid, branchQualifier: Buffer.alloc(0) }, nodeId)) rows.set(gtrid.toString('hex'), row.outcome);
  }
  return rows;
}
