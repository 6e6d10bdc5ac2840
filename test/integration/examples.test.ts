/**
 * The shipped examples do what their headers and docs/ promise, run the way a user runs them
 * (`node --import tsx examples/<name>.ts …` from the repository's root, configured by their
 * environment only), against a broker process started from the shipped conf/server.ini (only its
 * ports and data directories changed) and a private PostgreSQL with prepared transactions.
 *
 * Each run must end with exit code 0 — on its own, or after SIGTERM for the long-running
 * consumers, as Ctrl-C would stop them — and print what its header says; the effects are then
 * checked where they land (the topic, the tables). Not run here: examples/cluster-consumer.ts
 * (ZooKeeper and a cluster of brokers; the cluster tests drive the same client paths), and the
 * crash behaviour of examples/xa-postgres.ts, which xa-example-kill.test.ts covers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createMessageSessionFactory } from '../../src/index.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { exampleExit, ExampleRuns, REPO_ROOT, type ExampleRun } from '../helpers/example-process.js';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import { makeTempDir } from '../helpers/temp-dir.js';

/** conf/server.ini with its ports and data directories replaced; fails if a key it replaces is gone. */
function shippedIniWith(replacements: Readonly<Record<string, string>>): string {
  let text = fs.readFileSync(join(REPO_ROOT, 'conf', 'server.ini'), 'utf8');
  for (const [key, value] of Object.entries(replacements)) {
    const line = new RegExp(`^${key}=.*$`, 'm');
    assert.match(text, line, `conf/server.ini has no ${key}= line to replace`);
    text = text.replace(line, `${key}=${value}`);
  }
  return text;
}

describe('the shipped examples, run as their headers say (broker from conf/server.ini, PostgreSQL)', { timeout: 240_000 }, () => {
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  /** Where the consume-transform-produce example keeps its coordinator log (not the other examples'). */
  let transformLogDir: string;
  let broker: BrokerProcess | undefined;
  let postgres: PostgresServer | undefined;
  let pool: pg.Pool | undefined;
  let env: NodeJS.ProcessEnv;
  let serverUrl: string;
  const runs = new ExampleRuns();

  before(async () => {
    const root = await makeTempDir('metaq-examples-');
    dir = root;
    const [serverPort, httpPort, dashboardHttpPort] = [await freePort(), await freePort(), await freePort()];
    const ini = join(root.path, 'server.ini');
    const data = join(root.path, 'data');
    fs.writeFileSync(
      ini,
      shippedIniWith({ serverPort: String(serverPort), httpPort: String(httpPort), dashboardHttpPort: String(dashboardHttpPort), dataPath: data, dataLogPath: data }),
    );
    broker = spawnBroker(['start', '-c', ini]);
    [postgres] = await Promise.all([startPostgres({ maxPreparedTransactions: 16 }), broker.waitForLog('broker started')]);
    pool = new pg.Pool({ connectionString: postgres.connectionString, max: 2 });
    serverUrl = `meta://127.0.0.1:${serverPort}`;
    // HOME: consumer.ts keeps MetaQ's defaults (~/.meta_offsets, ~/.meta_recover); the XA examples
    // keep their coordinator logs where METAQ_XA_LOG_DIR says.
    env = { METAQ_URL: serverUrl, DATABASE_URL: postgres.connectionString, HOME: join(root.path, 'home'), METAQ_XA_LOG_DIR: join(root.path, 'xa-log') };
    fs.mkdirSync(join(root.path, 'home'));
    transformLogDir = join(root.path, 'xa-transform-log');
  });

  after(async () => {
    await runs.killAll();
    await pool?.end();
    if (broker !== undefined) {
      broker.child.kill('SIGTERM');
      await broker.exited;
    }
    await postgres?.stop();
    await dir?.remove();
  });

  /** Starts `file` with `args` (the suite's environment plus `extraEnv`) and remembers it for the cleanup. */
  function start(file: string, args: readonly string[] = [], extraEnv: NodeJS.ProcessEnv = {}): ExampleRun {
    return runs.start(file, args, { ...env, ...extraEnv });
  }

  /** Runs `file` to its end; asserts exit code 0 and returns its stdout lines. */
  async function runToEnd(file: string, args: readonly string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ lines: string[]; pid: number }> {
    const run = start(file, args, extraEnv);
    const exit = await exampleExit(run);
    assert.deepEqual(exit, { code: 0, signal: null }, `${file} ${args.join(' ')} failed\n${run.describe()}`);
    return { lines: run.lines, pid: run.pid };
  }

  /** Stops a long-running example with SIGTERM (Ctrl-C's graceful path); asserts it closed and exited 0. */
  async function stop(run: ExampleRun): Promise<void> {
    run.kill('SIGTERM');
    const exit = await exampleExit(run);
    assert.deepEqual(exit, { code: 0, signal: null }, `graceful stop failed\n${run.describe()}`);
    assert.ok(
      run.lines.some((line) => /^SIGTERM: closing/.test(line)),
      `no "SIGTERM: closing" line\n${run.describe()}`,
    );
  }

  it('embedded-broker.ts stores three messages and reads them back in order', async () => {
    const { lines } = await runToEnd('embedded-broker.ts');
    const stored = lines.filter((line) => /^stored '\w+' as id -?\d+ at offset \d+$/.test(line));
    assert.equal(stored.length, 3, lines.join('\n'));
    const read = lines.map((line) => /^offset (\d+): '(\w+)' \(broker 1, /.exec(line)?.[2]).filter((text) => text !== undefined);
    assert.deepEqual(read, ['hello', 'hallo', 'bonjour']);
  });

  it('server-filter.ts: the filtered group gets the even orders only, at the offsets the other group sees them', async () => {
    const { lines } = await runToEnd('server-filter.ts');
    const received = (group: string): Map<string, string> => {
      const line = lines.find((l) => l.startsWith(`${group}: `));
      assert.ok(line !== undefined, `no line for ${group}\n${lines.join('\n')}`);
      return new Map(line.slice(group.length + 2).split(' ').map((entry) => /^#(\d+)@(\d+)$/.exec(entry)?.slice(1, 3) as [string, string]));
    };
    const all = received('all-orders');
    const even = received('even-orders');
    assert.deepEqual([...all.keys()], ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    assert.deepEqual([...even.keys()], ['2', '4', '6', '8', '10']);
    for (const [order, offset] of even) assert.equal(offset, all.get(order), `order ${order}: offset ${offset} in even-orders, ${all.get(order)} in all-orders`);
  });

  it('producer.ts, transaction.ts commit and rollback, then consumer.ts: every stored and committed message once, nothing rolled back; a second run resumes after them', async () => {
    const produced = await runToEnd('producer.ts', ['4']);
    assert.equal(produced.lines.filter((line) => /^stored id -?\d+ in partition 0 at offset \d+$/.test(line)).length, 4, produced.lines.join('\n'));
    const committed = await runToEnd('transaction.ts', ['commit']);
    assert.ok(committed.lines.includes('committed: the three messages are visible together'), committed.lines.join('\n'));
    assert.equal(committed.lines.filter((line) => / → COMMITTED$/.test(line)).length, 1, committed.lines.join('\n'));
    const rolledBack = await runToEnd('transaction.ts', ['rollback']);
    assert.ok(rolledBack.lines.includes('rolled back: no consumer will ever see these messages'), rolledBack.lines.join('\n'));
    // Stored after the rolled-back transaction in the topic's one partition: once the consumer
    // has these, it has read past where the rolled-back messages would be.
    const later = await runToEnd('producer.ts', ['2']);

    const first = start('consumer.ts');
    const body = (line: string): string | undefined => /^partition 0 offset \d+ id -?\d+(?: \[\w+\])?: (.*)$/.exec(line)?.[1];
    await first.waitForLine(new RegExp(`: hello 1 from ${later.pid}$`));
    await stop(first);
    const bodies = first.lines.map(body).filter((b) => b !== undefined);
    const expected = [
      ...[0, 1, 2, 3].map((i) => `hello ${i} from ${produced.pid}`),
      ...[0, 1, 2].map((i) => `order ${i} of ${committed.pid}`),
      ...[0, 1].map((i) => `hello ${i} from ${later.pid}`),
    ];
    // Same key, same partition, in send order; the earlier tests of this file sent nothing to `test`.
    assert.deepEqual(bodies, expected, first.describe());
    assert.ok(!first.lines.some((line) => line.includes(`of ${rolledBack.pid}`)), `a rolled-back message was consumed\n${first.describe()}`);

    // The offsets were committed on SIGTERM (to $HOME/.meta_offsets): the next run starts after them.
    const more = await runToEnd('producer.ts', ['1']);
    const second = start('consumer.ts');
    await second.waitForLine(new RegExp(`: hello 0 from ${more.pid}$`));
    await stop(second);
    assert.deepEqual(second.lines.map(body).filter((b) => b !== undefined), [`hello 0 from ${more.pid}`], second.describe());
  });

  it('xa-resource.ts: a two-phase commit; then a branch left prepared, which the "recover" run finds and commits', async () => {
    const once = await runToEnd('xa-resource.ts');
    assert.ok(once.lines.includes('prepare voted XA_OK') && once.lines.includes('committed'), once.lines.join('\n'));
    const prepared = await runToEnd('xa-resource.ts', ['prepare']);
    assert.ok(prepared.lines.some((line) => line.startsWith('stopping after prepare')), prepared.lines.join('\n'));
    const recovered = await runToEnd('xa-resource.ts', ['recover']);
    assert.ok(recovered.lines.includes('1 prepared branch(es)'), recovered.lines.join('\n'));
    assert.equal(recovered.lines.filter((line) => /^committed \d+:[0-9a-f]+$/.test(line)).length, 1, recovered.lines.join('\n'));
    const again = await runToEnd('xa-resource.ts', ['recover']);
    assert.ok(again.lines.includes('0 prepared branch(es)'), again.lines.join('\n'));
  });

  it('exactly-once-consumer.ts: each message written to PostgreSQL with its offset; after a restart nothing is processed twice', async () => {
    const topic = 'meta-exactly-once';
    const group = 'examples-eo';
    const factory = createMessageSessionFactory({ serverUrl });
    const send = async (from: number, count: number): Promise<void> => {
      const producer = factory.createProducer();
      await producer.publish(topic);
      for (let i = from; i < from + count; i++) await producer.send({ topic, data: `eo ${i}` });
    };
    try {
      await send(0, 6);
      const first = start('exactly-once-consumer.ts', [topic, group]);
      await first.waitForLines(/: eo \d+$/, 6);
      await stop(first);
      const second = start('exactly-once-consumer.ts', [topic, group]);
      await second.waitForLine(/^consuming /);
      await send(6, 2);
      await second.waitForLines(/: eo \d+$/, 2);
      await sleep(500); // a message processed twice would show up behind the new ones
      await stop(second);
      assert.deepEqual(
        second.lines.filter((line) => /: eo \d+$/.test(line)).map((line) => line.replace(/^.*: /, '')).sort(),
        ['eo 6', 'eo 7'],
        second.describe(),
      );
    } finally {
      await factory.close();
    }
    const rows = await pool!.query<{ body: string }>('SELECT body FROM example_messages WHERE topic = $1 ORDER BY body', [topic]);
    assert.deepEqual(
      rows.rows.map((r) => r.body),
      Array.from({ length: 8 }, (_, i) => `eo ${i}`),
    );
    const counts = await pool!.query<{ n: string }>('SELECT n FROM example_counts WHERE topic = $1', [topic]);
    assert.equal(counts.rows[0]?.n, '8');
  });

  it('xa-postgres.ts, then xa-consume-transform-produce.ts, then consumer.ts on the output: one row and one message per order, one invoice row and one invoice message per order message', async () => {
    const orders = 'meta-example-orders';
    const invoices = 'meta-example-invoices';
    const written = await runToEnd('xa-postgres.ts', ['3', orders]);
    const orderIds = written.lines.map((line) => /^order (\d+) \(\w+\): row and message committed$/.exec(line)?.[1]).filter((id) => id !== undefined);
    assert.equal(orderIds.length, 3, written.lines.join('\n'));
    const rows = await pool!.query<{ id: string }>('SELECT id FROM example_orders ORDER BY id');
    assert.deepEqual(
      rows.rows.map((r) => r.id),
      orderIds,
    );

    const transform = start('xa-consume-transform-produce.ts', [orders, invoices, 'examples-transform'], { METAQ_XA_LOG_DIR: transformLogDir });
    await transform.waitForLines(/: invoice \d+$/, 3);
    await stop(transform);
    const invoiceRows = await pool!.query<{ order_body: string }>('SELECT order_body FROM example_invoices');
    assert.deepEqual(
      invoiceRows.rows.map((r) => (JSON.parse(r.order_body) as { orderId: unknown }).orderId).map(String).sort(),
      [...orderIds].sort(),
    );

    const reader = start('consumer.ts', [invoices]);
    const events = await reader.waitForLines(/"event":"invoice-created"/, 3);
    await sleep(300);
    await stop(reader);
    assert.equal(reader.lines.filter((line) => /"event":"invoice-created"/.test(line)).length, 3, reader.describe());
    const ordersOfInvoices = events.map((line) => (JSON.parse(JSON.parse(line.slice(line.indexOf('{'))).order as string) as { orderId: unknown }).orderId).map(String);
    assert.deepEqual(ordersOfInvoices.sort(), [...orderIds].sort());
  });
});
