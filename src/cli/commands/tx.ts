/**
 * `metaq tx list|commit|rollback|forget [key]`: operator tooling for XA branches that wait for
 * their coordinator, over the broker's HTTP admin routes (`httpPort`); `metaq tx stats`: the
 * transaction engine's counters (branches, timeouts, journal syncs, checkpoints).
 *
 * A heuristic decision is the operator's promise that the coordinator will never decide
 * otherwise; the coordinator's later commit or rollback then answers XA_HEURCOM / XA_HEURRB
 * until it (or `metaq tx forget`) forgets the branch.
 */
import { formatOptionsHelp, parseCommandLine, UsageError, CliError } from './args.js';
import { write, type CliContext } from './context.js';
import { formatStatsTable } from '../output/format.js';
import type { PendingEntry } from '../../xa/coordinator-log.js';
import { DEFAULT_DECISION_TABLE, decisionTableSql, parseDecisionKey, recordedDecisionOf } from '../../xa/postgres/decision-table.js';
import { joinTransactions, type DecisionRowInfo, type JoinedTransaction, type PgPreparedInfo } from './tx-join.js';

/** The broker's HTTP gateway, unless `--http` or `$METAQ_ADMIN` says otherwise. */
export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8080';

const OPTIONS = {
  http: { type: 'string' },
  json: { type: 'boolean' },
  reason: { type: 'string' },
  'coordinator-log': { type: 'string' },
  postgres: { type: 'string' },
  'decision-table': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const TX_USAGE = `Usage: metaq tx <list | commit <key> | rollback <key> | forget <key> | stats> [options]

Operator tools for XA transaction branches on a broker (through its HTTP gateway, httpPort):
  list              prepared and heuristic branches, oldest first, with their age
  commit <key>      heuristic commit of a prepared branch (its messages become visible)
  rollback <key>    heuristic rollback of a prepared branch (its messages are dropped)
  forget <key>      forget a heuristic branch (the coordinator normally does this)
  stats             the transaction engine's counters: active, prepared and heuristic branches,
                    the oldest prepared branch's age, timeouts, journal syncs, forced records per sync,
                    the last sync's duration in ms, checkpoints (since the broker started)

A heuristic decision is journaled before the answer and survives restarts; the coordinator's
later commit/rollback then answers XA_HEURCOM / XA_HEURRB until the branch is forgotten.

Options:
${formatOptionsHelp([
  ['--http <url>', `the broker's HTTP gateway (default: $METAQ_ADMIN or ${DEFAULT_ADMIN_URL})`],
  ['--coordinator-log <dir>', 'list: join the XA coordinator log in <dir> (read from a copy; safe while it runs)'],
  ['--postgres <url>', 'list: join pg_prepared_xacts and the decision rows of this database (postgresql://...)'],
  ['--decision-table <name>', `list: the decision table read with --postgres (default: ${DEFAULT_DECISION_TABLE}; a missing table is read as empty)`],
  ['--reason <text>', 'why (required for commit and rollback; written to the broker log)'],
  ['--json', 'print JSON'],
  ['-h, --help', 'show this help'],
])}

With --coordinator-log and/or --postgres, list joins the coordinator's decisions, the broker's
branches and PostgreSQL's prepared transactions into one row per global transaction, with the
resolution recovery will apply (commit, rollback, or an operator's check after a heuristic).
--postgres also reads the decision table of decision-row mode (column DECISION: commit, rollback
or none), which is the commit decision of a transaction that has no coordinator-log entry.

Examples:
  metaq tx list
  metaq tx stats
  metaq tx list --coordinator-log /var/lib/app/xa-log --postgres postgresql://app@db/orders
  metaq tx rollback 'XID:1:0102:ab:XAMessageProducer-app1' --reason "coordinator lost, order 17 cancelled"`;

/** `metaq tx`'s options, resolved. */
export interface TxOptions {
  readonly action: 'list' | 'commit' | 'rollback' | 'forget' | 'stats';
  readonly key: string | undefined;
  readonly adminUrl: string;
  readonly json: boolean;
  readonly reason: string | undefined;
  /** `list`: the coordinator log directory to join. */
  readonly coordinatorLog?: string | undefined;
  /** `list`: the PostgreSQL whose `pg_prepared_xacts` and decision rows to join. */
  readonly postgres?: string | undefined;
  /** `list` with `postgres`: the decision table to read (validated; default `metaq_xa_decision`). */
  readonly decisionTable?: string | undefined;
}

/** Parses `metaq tx`'s arguments; `'help'` for `--help`. */
export function parseTxArgs(args: readonly string[], env: NodeJS.ProcessEnv): TxOptions | 'help' {
  const { values, positionals } = parseCommandLine('tx', { args: [...args], options: OPTIONS }, TX_USAGE);
  if (values.help === true) return 'help';
  const [action, key, ...extra] = positionals;
  if (action !== 'list' && action !== 'commit' && action !== 'rollback' && action !== 'forget' && action !== 'stats') {
    throw new UsageError(`tx: expected list, commit, rollback, forget or stats, got ${action === undefined ? 'nothing' : `'${action}'`}`, TX_USAGE);
  }
  if ((action === 'list' || action === 'stats') && key !== undefined) throw new UsageError(`tx ${action} takes no key`, TX_USAGE);
  if (action !== 'list' && action !== 'stats' && key === undefined) throw new UsageError(`tx ${action} needs the branch key (see metaq tx list)`, TX_USAGE);
  if (extra.length > 0) throw new UsageError(`tx: unexpected ${extra.join(' ')}`, TX_USAGE);
  if ((action === 'commit' || action === 'rollback') && (values.reason === undefined || values.reason.trim() === '')) {
    throw new UsageError(`tx ${action} needs --reason "<why>": a heuristic decision overrides the coordinator`, TX_USAGE);
  }
  const adminUrl = (values.http ?? env['METAQ_ADMIN'] ?? DEFAULT_ADMIN_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(adminUrl)) throw new UsageError(`tx: --http must be an http:// URL, got '${adminUrl}'`, TX_USAGE);
  if (action !== 'list' && (values['coordinator-log'] !== undefined || values.postgres !== undefined)) {
    throw new UsageError('tx: --coordinator-log and --postgres only apply to list', TX_USAGE);
  }
  const decisionTable = values['decision-table'];
  if (decisionTable !== undefined) {
    if (values.postgres === undefined) throw new UsageError('tx: --decision-table only applies with list --postgres', TX_USAGE);
    try {
      decisionTableSql(decisionTable);
    } catch (error) {
      throw new UsageError(`tx: --decision-table: ${error instanceof Error ? error.message : String(error)}`, TX_USAGE);
    }
  }
  return {
    action,
    key,
    adminUrl,
    json: values.json === true,
    reason: values.reason,
    ...(values['coordinator-log'] === undefined ? {} : { coordinatorLog: values['coordinator-log'] }),
    ...(values.postgres === undefined ? {} : { postgres: values.postgres, decisionTable: decisionTable ?? DEFAULT_DECISION_TABLE }),
  };
}

interface Branch {
  key: string;
  uniqueQualifier?: string;
  state: string;
  messages: number;
  preparedAgeSeconds?: number;
}

async function call(url: string, method: string): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(url, { method });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new CliError(`cannot reach the broker's HTTP gateway at ${url} (${cause}); is httpPort set in server.ini?`, { code: 'METAQ_ERR_CONNECTION' });
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new CliError(`unexpected answer from ${url}: ${response.status} ${text.slice(0, 200)}`);
  }
}

/**
 * `{ journal: { syncs: 3 } }` → `[['journal.syncs', '3']]`: the stats answer as rows, nested
 * objects flattened with dots, null shown as `-`.
 */
export function flattenStats(value: Record<string, unknown>, prefix = ''): [string, string][] {
  const rows: [string, string][] = [];
  for (const [name, item] of Object.entries(value)) {
    const key = `${prefix}${name}`;
    if (item !== null && typeof item === 'object') rows.push(...flattenStats(item as Record<string, unknown>, `${key}.`));
    else rows.push([key, item === null || item === undefined ? '-' : String(item)]);
  }
  return rows;
}

/** Runs `metaq tx`. */
export async function runTx(options: TxOptions, ctx: CliContext): Promise<number> {
  if (options.action === 'stats') {
    const { status, body } = await call(`${options.adminUrl}/api/transactions/stats`, 'GET');
    if (status !== 200) throw new CliError(`the broker answered ${status}: ${JSON.stringify(body)}`);
    if (options.json) {
      await write(ctx.stdout, `${JSON.stringify(body)}\n`);
    } else {
      await write(ctx.stdout, `${formatStatsTable(Object.fromEntries(flattenStats(body)))}\n`);
    }
    return 0;
  }
  if (options.action === 'list') {
    const { status, body } = await call(`${options.adminUrl}/api/transactions`, 'GET');
    if (status !== 200) throw new CliError(`the broker answered ${status}: ${JSON.stringify(body)}`);
    const branches = (body['branches'] ?? []) as Branch[];
    if (options.coordinatorLog !== undefined || options.postgres !== undefined) return listJoined(options, branches, ctx);
    if (options.json) {
      await write(ctx.stdout, `${JSON.stringify(branches)}\n`);
    } else if (branches.length === 0) {
      await write(ctx.stdout, 'no prepared or heuristic branches\n');
    } else {
      const rows = branches.map((b) => [b.state, b.preparedAgeSeconds === undefined ? '-' : `${b.preparedAgeSeconds}s`, String(b.messages), b.key]);
      const widths = [0, 1, 2].map((i) => Math.max(...[['STATE', 'AGE', 'MESSAGES'][i] ?? '', ...rows.map((r) => r[i] ?? '')].map((t) => t.length)));
      const line = (r: readonly string[]): string => `${r.slice(0, 3).map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}  ${r[3] ?? ''}`;
      await write(ctx.stdout, `${[line(['STATE', 'AGE', 'MESSAGES', 'KEY']), ...rows.map(line)].join('\n')}\n`);
    }
    return 0;
  }
  const key = options.key ?? '';
  const reasonQuery = options.reason === undefined ? '' : `?reason=${encodeURIComponent(options.reason)}`;
  const { status, body } = await call(`${options.adminUrl}/api/transactions/${encodeURIComponent(key)}/${options.action}${reasonQuery}`, 'POST');
  if (options.json) await write(ctx.stdout, `${JSON.stringify(body)}\n`);
  if (status !== 200) throw new CliError(`tx ${options.action} ${key}: ${String(body['error'] ?? status)}${body['xaCode'] === undefined ? '' : ` (XA code ${String(body['xaCode'])})`}`);
  if (!options.json) await write(ctx.stdout, `${options.action} ${key}: done\n`);
  return 0;
}

async function listJoined(options: TxOptions, branches: readonly Branch[], ctx: CliContext): Promise<number> {
  const coordinator = options.coordinatorLog === undefined ? undefined : await readLog(options.coordinatorLog);
  const fromPostgres = options.postgres === undefined ? undefined : await readPostgres(options.postgres, options.decisionTable ?? DEFAULT_DECISION_TABLE);
  const rows = joinTransactions({ coordinator, broker: branches, postgres: fromPostgres?.prepared, decisions: fromPostgres?.decisions, nowMs: Date.now() });
  if (options.json) {
    await write(ctx.stdout, `${JSON.stringify(rows)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    await write(ctx.stdout, 'no global transaction waits for resolution\n');
    return 0;
  }
  const cells = rows.map((r: JoinedTransaction) => [
    r.gtrid,
    r.ageSeconds === undefined ? '-' : `${r.ageSeconds}s`,
    r.coordinator,
    r.brokerBranches.length === 0 ? '-' : r.brokerBranches.map((b) => b.state).join(','),
    r.postgresBranches.length === 0 ? '-' : `prepared${r.postgresBranches.length > 1 ? ` x${r.postgresBranches.length}` : ''}`,
    r.decisionRow === 'unknown' ? '-' : r.decisionRow,
    r.resolution,
  ]);
  const header = ['GTRID', 'AGE', 'COORDINATOR', 'BROKER', 'POSTGRES', 'DECISION', 'RESOLUTION'];
  const last = header.length - 1;
  const widths = header.slice(0, last).map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: readonly string[]): string => `${c.slice(0, last).map((t, i) => t.padEnd(widths[i] ?? 0)).join('  ')}  ${c[last] ?? ''}`;
  await write(ctx.stdout, `${[line(header), ...cells.map(line)].join('\n')}\n`);
  return 0;
}

async function readLog(dir: string): Promise<PendingEntry[]> {
  const { readCoordinatorLog } = await import('../../xa/log/read-coordinator-log.js');
  try {
    return await readCoordinatorLog(dir);
  } catch (error) {
    throw new CliError(`cannot read the coordinator log in ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * `pg_prepared_xacts` of the database and the rows of its decision table, in one connection. A
 * decision table that does not exist (`to_regclass` null: decision-row mode never used) reads as
 * no rows; rows whose key or outcome is not this manager's are left out.
 */
async function readPostgres(connectionString: string, decisionTable: string): Promise<{ prepared: PgPreparedInfo[]; decisions: DecisionRowInfo[] }> {
  const sql = decisionTableSql(decisionTable); // validated by parseTxArgs already
  // Loaded on demand: the other metaq commands do not need the pg driver.
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString });
  let reading = 'pg_prepared_xacts';
  try {
    await client.connect();
    const result = await client.query<{ gid: string; prepared: Date }>('SELECT gid, prepared FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared');
    reading = `the decision table ${decisionTable}`;
    const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [sql.qualifiedName]);
    const decisions: DecisionRowInfo[] = [];
    if (exists.rows[0]?.oid !== null && exists.rows[0]?.oid !== undefined) {
      const rows = await client.query<{ gtrid: string; outcome: string }>(`SELECT gtrid, outcome FROM ${sql.qualifiedName} ORDER BY gtrid`);
      for (const row of rows.rows) {
        const gtrid = parseDecisionKey(row.gtrid);
        const outcome = recordedDecisionOf(row.outcome);
        if (gtrid !== undefined && outcome !== undefined) decisions.push({ gtrid, outcome });
      }
    }
    return { prepared: result.rows, decisions };
  } catch (error) {
    throw new CliError(`cannot list ${reading} of ${connectionString.replace(/:[^:@/]*@/, ':***@')}: ${error instanceof Error ? error.message : String(error)}`, { code: 'METAQ_ERR_CONNECTION' });
  } finally {
    await client.end().catch(() => undefined);
  }
}
