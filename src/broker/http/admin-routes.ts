/**
 * The broker's JSON admin routes on the HTTP gateway, for operators and `metaq tx`:
 *
 * - `GET  /api/transactions` → `{ branches: [{ key, uniqueQualifier, state, messages, preparedAgeSeconds }] }`
 *   (prepared and heuristic XA branches, oldest first);
 * - `POST /api/transactions/<key>/commit?reason=<why>` → heuristic commit of a prepared branch;
 * - `POST /api/transactions/<key>/rollback?reason=<why>` → heuristic rollback;
 * - `POST /api/transactions/<key>/forget` → forget a heuristic branch;
 * - `GET  /api/transactions/stats` → the engine's counters: active, prepared and heuristic
 *   branches, the oldest prepared branch's age, timeouts, journal syncs and forced records per sync,
 *   the last sync's duration, checkpoints (src/transaction/engine-stats.ts).
 *
 * Heuristic decisions are journaled (forced) before the answer, survive restarts, and make the
 * coordinator's later commit/rollback answer XA_HEURCOM / XA_HEURRB until FORGET.
 */
import type { Reply } from '../commands/reply.js';
import { parseXaExceptionBody } from '../../protocol/transaction-bodies.js';
import type { TransactionEngineStats } from '../../transaction/engine-stats.js';

/** What the admin routes need from the transaction engine. */
export interface TransactionAdmin {
  listBranches(): readonly { key: string; uniqueQualifier: string | undefined; state: string; messages: number; preparedAgeSeconds: number | undefined }[];
  heuristicCommit(key: string, reason: string): Promise<Reply>;
  heuristicRollback(key: string, reason: string): Promise<Reply>;
  forget(key: string): Promise<Reply>;
  stats(): TransactionEngineStats;
}

/** A JSON answer. */
export interface JsonAnswer {
  readonly status: number;
  readonly json: unknown;
}

const ACTIONS = new Set(['commit', 'rollback', 'forget']);

/** Routes `/api/transactions...`; undefined when the path is not an admin route. */
export async function routeAdmin(admin: TransactionAdmin, method: string, pathname: string, params: URLSearchParams): Promise<JsonAnswer | undefined> {
  if (pathname === '/api/transactions') {
    if (method !== 'GET') return { status: 405, json: { error: 'use GET' } };
    return { status: 200, json: { branches: admin.listBranches() } };
  }
  if (pathname === '/api/transactions/stats') {
    if (method !== 'GET') return { status: 405, json: { error: 'use GET' } };
    return { status: 200, json: admin.stats() };
  }
  const match = /^\/api\/transactions\/([^/]+)\/([a-z]+)$/.exec(pathname);
  if (match === null) return undefined;
  const [, encodedKey = '', action = ''] = match;
  if (!ACTIONS.has(action)) return { status: 404, json: { error: `unknown action '${action}'; use commit, rollback or forget` } };
  if (method !== 'POST') return { status: 405, json: { error: 'use POST' } };
  const key = decodeURIComponent(encodedKey);
  const reason = params.get('reason') ?? '';
  if (action !== 'forget' && reason.trim() === '') {
    return { status: 400, json: { ok: false, key, action, error: "a heuristic decision needs ?reason=<why> (it is written to the broker's log)" } };
  }
  const reply = action === 'commit' ? await admin.heuristicCommit(key, reason) : action === 'rollback' ? await admin.heuristicRollback(key, reason) : await admin.forget(key);
  if (reply.kind === 'result' && reply.code === 200) return { status: 200, json: { ok: true, key, action } };
  const body = reply.kind === 'result' ? reply.body.toString() : '';
  const xa = parseXaExceptionBody(body);
  return { status: xa?.code === -4 ? 404 : 409, json: { ok: false, key, action, error: xa?.message ?? body, xaCode: xa?.code } };
}
