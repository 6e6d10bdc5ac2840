/**
 * transactions.md §5.7 row 24, end to end: the broker's transaction journal fails (fdatasync
 * error, or a disk that fills up in the middle of a write) exactly at the PREPARE of an XA
 * transaction that also holds a PostgreSQL row. Real PostgreSQL, a real broker process started
 * with the test-only fault armed (`METAQ_FAULT`, src/transaction/log/journal-faults.ts), and the
 * transaction manager in this process, used through its public API.
 *
 * Per variant:
 * 1. warm-up on the same broker run: two XA orders (row + message, two-phase), a local
 *    transaction, a plain send, and a local transaction left open;
 * 2. the fault is armed (its arm file created) and the next order runs: `run()` must reject with a
 *    rollback that names the journal failure; the PostgreSQL branch is rolled back at once (no
 *    row, nothing in pg_prepared_xacts); the broker says so on stderr;
 * 3. the broker is fail-stop: the fault fires once only (the disk "works again"), yet a later
 *    PREPARE (raw wire) answers XAER_RMERR asking for a restart, and the open local transaction
 *    cannot commit;
 * 4. restart WITHOUT the fault: with the fdatasync fault the PREPARE record reached the file, so
 *    the branch comes back prepared — and the manager's recovery (presumed abort: no COMMITTING)
 *    rolls it back; with the write fault only half a record reached the file, which the restart
 *    cuts off, so there is no branch at all;
 * 5. verdict: no row and no message of the failed order, ever; a COMMIT of its branch is refused;
 *    no heuristic; nothing prepared anywhere; everything committed before the fault is stored
 *    exactly once; the open local transaction and the probe never show.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createMessageSessionFactory, TransactionRolledBackError, type MessageSessionFactory } from '../../src/index.js';
import { XaCode } from '../../src/client/transaction/xa-codes.js';
import { createBrokerResource, createPostgresResource, createTransactionManager, type TransactionManager } from '../../src/xa/index.js';
import { freePort } from '../helpers/free-port.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { assertXa, countTags, eventually, payloadBytes, readAll, TxBrokerHome, TxClient, xaCodeOf, xaKey } from '../helpers/tx-wire.js';
import { assertAgreement, assertNothingInDoubt, brokerBranchesOf, preparedGidsOf, readOrderState } from '../helpers/xa-agreement.js';
import { ORDER_TABLE_DDL, orderKey, orderMessageBody } from '../helpers/xa-worker-protocol.js';

const TABLE = 'fault_orders';

interface Variant {
  readonly point: 'txlog.fdatasync' | 'txlog.write';
  /**
   * `METAQ_FAULT`: one failure only (`/once`): the disk "works again" afterwards, so whatever the
   * broker refuses later it refuses because it is fail-stop, not because the disk still fails.
   */
  readonly fault: string;
  /**
   * What the journal failure says (StoreIoError text, with the injected errno). A forced batch is
   * written either with write + fdatasync, or with one write on the file's O_DSYNC descriptor when
   * everything before it is already durable (tx-journal.ts, "Why O_DSYNC"): that one call is the
   * write and its fdatasync, so either fault can hit it, and it fails as the kernel reports it
   * (syscall `write`).
   */
  readonly failure: RegExp;
  /** Whether the PREPARE record is whole in the file after the fault (so the branch comes back prepared). */
  readonly prepareRecordSurvives: boolean;
}

const VARIANTS: readonly Variant[] = [
  { point: 'txlog.fdatasync', fault: 'txlog.fdatasync/once', failure: /fdatasync of transaction journal file .* failed.*EIO: i\/o error, fdatasync|writing to transaction journal file .* with O_DSYNC \(write and fdatasync in one call\) failed.*EIO: i\/o error, write/, prepareRecordSurvives: true },
  { point: 'txlog.write', fault: 'txlog.write/once', failure: /writing to transaction journal file .* failed.*ENOSPC: no space left on device, write/, prepareRecordSurvives: false },
];

describe('§5.7 row 24: the broker journal fails during prepare (real broker with METAQ_FAULT, real PostgreSQL)', () => {
  let root: { path: string; remove: () => Promise<void> };
  let pgServer: PostgresServer;
  let pool: pg.Pool;
  const homes: TxBrokerHome[] = [];

  before(async () => {
    root = await makeTempDir('metaq-tx-fault-');
    pgServer = await startPostgres({ maxPreparedTransactions: 8 });
    pool = new pg.Pool({ connectionString: pgServer.connectionString, max: 4, idleTimeoutMillis: 1000 });
    pool.on('error', () => undefined);
    await pool.query(ORDER_TABLE_DDL(TABLE));
  });

  after(async () => {
    await pool?.end().catch(() => undefined);
    for (const home of homes) await home.kill();
    await pgServer?.stop();
    await root?.remove();
  });

  for (const variant of VARIANTS) {
    it(`${variant.point}: prepare fails, the manager rolls back everywhere; after a restart nothing of it is left and nothing else is lost`, async (t) => {
      const name = variant.point.replace('txlog.', '');
      const node = `fault-${name}`;
      const uniqueQualifier = `xa-${node}`;
      const run = node;
      const armFile = join(root.path, `arm-${name}`);
      // A fixed port, so that the factory reconnects to the restarted broker; checkpoints off the
      // table (their forced marker would be a journal call of its own between arming and PREPARE).
      const serverPort = await freePort();
      const home = await TxBrokerHome.create(join(root.path, `broker-${name}`), { serverPort, checkpointInterval: 3_600_000 });
      homes.push(home);
      let broker = await home.start({ METAQ_FAULT: variant.fault, METAQ_FAULT_ARM_FILE: armFile });
      // stderr is another pipe than the log lines: wait for it rather than assume it came first.
      await eventually(() => /TEST-ONLY fault injection armed/.test(broker.proc.stderr()), 'the broker to report the armed fault');
      const brokerUrl = `meta://127.0.0.1:${serverPort}`;

      const factory: MessageSessionFactory = createMessageSessionFactory({ serverUrl: brokerUrl, partitions: { orders: 3, test: 2 }, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
      let tm: TransactionManager | undefined;
      try {
        const producer = factory.createProducer();
        await producer.publish('orders');
        await producer.publish('test');
        const postgres = createPostgresResource({ pool, name: 'orders' });
        await postgres.init();
        const brokerResource = createBrokerResource(producer, { brokerUrl, uniqueQualifier, requestTimeoutMs: 5000 });
        tm = await createTransactionManager({
          nodeName: node,
          logDir: join(root.path, `log-${name}`),
          resources: [brokerResource, postgres],
          recoveryIntervalMs: 0,
          orphanSafetyIntervalMs: 300,
          phaseTwoWaitMs: 10_000,
        });
        const manager = tm;
        const placeOrder = (id: number, seen?: (gtridHex: string) => void): Promise<void> =>
          manager.run(async (tx) => {
            seen?.(tx.gtridHex);
            const db = await tx.enlistPostgres(postgres);
            await db.query(`INSERT INTO ${TABLE} (run, id, item) VALUES ($1, $2, $3)`, [run, id, `item-${id}`]);
            await tx.send(producer, { topic: 'orders', data: orderMessageBody(run, id) });
          });

        // 1. Before the fault: committed work of every kind, and one local transaction left open.
        await placeOrder(1);
        await placeOrder(2);
        const local = producer.beginTransaction();
        await local.send({ topic: 'test', data: `${run}-local-0` });
        await local.send({ topic: 'test', data: `${run}-local-1` });
        await local.commit();
        await producer.send({ topic: 'test', data: `${run}-plain` });
        const open = producer.beginTransaction();
        await open.send({ topic: 'test', data: `${run}-open-0` });
        const committedTags = [`${run}-local-0`, `${run}-local-1`, `${run}-plain`];
        assert.doesNotMatch(broker.proc.stderr(), /injected fault/, 'nothing failed during the warm-up');

        // 2. Arm the fault; the next order's PREPARE is the next journal call that can fail.
        fs.writeFileSync(armFile, '');
        let failedGtrid = '';
        const failure = await placeOrder(3, (g) => (failedGtrid = g)).then(
          () => assert.fail('the order whose prepare hit the journal fault must not commit'),
          (error: unknown) => error,
        );
        assert.ok(failure instanceof TransactionRolledBackError, `run() rejects with a rollback, got ${String(failure)}`);
        assert.match(failure.message, /did not prepare/, 'the error says which step failed');
        assert.match(failure.message, variant.failure, 'and why: the broker journal failure with its errno');
        assert.match(failure.message, /restarted/, 'and what to do');
        const fired = new RegExp(`injected fault ${variant.point.replace('.', '\\.')} fired \\([A-Z]+\\) on armed call 1, once`);
        await eventually(() => fired.test(broker.proc.stderr()), 'the broker to report the fault firing on the first armed call');
        // The PostgreSQL branch was prepared in parallel and is rolled back at once.
        assert.deepEqual((await pool.query(`SELECT id FROM ${TABLE} WHERE run = $1 AND id = 3`, [run])).rows, [], 'no row of the failed order');
        assert.deepEqual(await preparedGidsOf(pool, node), [], 'nothing left in pg_prepared_xacts');

        // 3. Fail-stop: every later journaled step is refused until the broker is restarted.
        const probe = await TxClient.connect(serverPort);
        const probeKey = xaKey(`probe-${name}`, `${uniqueQualifier}-probe`);
        try {
          assert.equal((await probe.begin(probeKey)).code, 200, 'BEGIN needs no journal');
          assert.equal((await probe.putRaw(probeKey, 'test', 0, payloadBytes(`${run}-probe`))).code, 200, 'a put is only staged in memory');
          assert.equal((await probe.tx(probeKey, 'END')).code, 200);
          const prepare = await probe.tx(probeKey, 'PREPARE');
          assertXa(prepare, XaCode.XAER_RMERR, 'a later PREPARE');
          assert.match(prepare.text, /until the broker is restarted/, `the answer asks for a restart: ${prepare.text}`);
        } finally {
          probe.close();
        }
        const openCommit = await open.commit().then(
          () => assert.fail('the open local transaction cannot commit on a failed journal'),
          (error: unknown) => error,
        );
        assert.ok(openCommit instanceof Error);
        assert.match(openCommit.message, /restart/, 'its commit is refused, asking for a restart');
        t.diagnostic(`run(): ${failure.message}`);
        t.diagnostic(`open local commit: ${openCommit.name}: ${openCommit.message}`);

        // 4. Restart without the fault (the operator's answer to the fail-stop).
        await broker.stop();
        broker = await home.start();
        assert.doesNotMatch(broker.proc.stderr(), /fault/, 'restarted without the fault');
        const listed = await brokerBranchesOf(serverPort, uniqueQualifier);
        if (variant.prepareRecordSurvives) {
          assert.equal(listed.length, 1, `the PREPARE record reached the file: the branch is back, prepared (${listed.join(', ')})`);
          assert.equal(listed[0]?.split(':')[2]?.slice(0, failedGtrid.length), failedGtrid, 'and it is the failed order’s branch');
        } else {
          assert.deepEqual(listed, [], 'half a PREPARE record is no record: nothing is prepared');
          const cut = broker.proc.logs.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('transaction journal recovery: truncating'));
          t.diagnostic(cut === undefined ? 'no torn tail at restart' : `restart: ${String(cut['msg'])}`);
        }
        assert.deepEqual(await brokerBranchesOf(serverPort, `${uniqueQualifier}-probe`), [], 'the probe was never prepared: gone with the restart');

        // Recovery: presumed abort. An orphan is rolled back once older than the safety interval
        // and seen by two scans: scan until nothing of this node is prepared anywhere.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const report = await manager.recover();
          const left = (await brokerBranchesOf(serverPort, uniqueQualifier)).length + (await preparedGidsOf(pool, node)).length;
          if (left === 0 && report.resourcesFailed.length === 0) break;
          assert.ok(Date.now() < deadline, `recovery did not converge: ${JSON.stringify(report)}`);
          await sleep(100);
        }
        const metrics = manager.metrics();
        assert.equal(metrics.orphanRollbacks, variant.prepareRecordSurvives ? 1 : 0, 'recovery rolled back the prepared branch the fault left behind (and nothing else)');
        assert.equal(metrics.recoveredCommits, 0, 'no decision was ever logged: nothing to commit');
        assert.equal(metrics.heuristics, 0, 'no heuristic outcome');
        assert.deepEqual(manager.pendingTransactions(), [], 'nothing pending in the coordinator log');

        // 5. The verdict.
        if (variant.prepareRecordSurvives) {
          const verdict = await TxClient.connect(serverPort);
          try {
            const commit = await verdict.send(TxClient.txHeader(listed[0] ?? '', 'COMMIT_TWO_PHASE'));
            const code = xaCodeOf(commit);
            assert.ok(code === XaCode.XA_RBROLLBACK || code === XaCode.XAER_NOTA, `a late COMMIT of the failed branch is refused (${commit.text})`);
          } finally {
            verdict.close();
          }
        }
        const state = await readOrderState(pool, TABLE, serverPort, (r) => r === run);
        assertAgreement(state, { committed: [orderKey(run, 1), orderKey(run, 2)], absent: [orderKey(run, 3)] }, `${variant.point}: after restart and recovery`);
        assert.equal(state.rows.size, 2, 'no other order exists');
        const counts = countTags(await readAll(serverPort));
        for (const tag of committedTags) assert.equal(counts.get(tag), 1, `${tag}, committed before the fault, is stored exactly once`);
        assert.equal(counts.get(`${run}-open-0`), undefined, 'the local transaction left open never shows');
        assert.equal(counts.get(`${run}-probe`), undefined, 'the probe branch never shows');
        await assertNothingInDoubt(pool, serverPort, { nodeName: node, uniqueQualifier }, `${variant.point}: at the end`);
      } finally {
        await tm?.close();
        await factory.close();
        await home.kill();
      }
    });
  }
});
