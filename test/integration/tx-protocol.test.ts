/**
 * Broker transactions over the wire (issue "Broker transactions", item 10; metaq-reference §1.7,
 * transactions.md §5.5/§5.7), against ONE real `metaq-server` process driven with raw frames:
 *
 * - the decision table of src/transaction/transaction-state.ts checked cell by cell: for local
 *   (`TX:`) and XA (`XID:`) keys, every wire command (put, END, PREPARE, COMMIT_ONE_PHASE,
 *   COMMIT_TWO_PHASE, ROLLBACK, FORGET) and the admin heuristic routes, in every state a client
 *   can reach (ACTIVE, IN_USE, PREPARED, COMMITTING, COMMITTED, ROLLED_BACK, TIMED_OUT,
 *   HEURISTIC_*, FORGOTTEN): the exact answer text, and the state the branch is in afterwards;
 * - visibility (nothing before commit, committed messages once with their acknowledged ids),
 *   PREPARE votes, RECOVER filtering, duplicate commit/rollback, unknown XIDs, timeouts, the timer
 *   capacity, connection drops, heuristic decisions.
 *
 * A ledger records the fate of every message put; the last test reads every partition and
 * checks that each committed message is stored exactly once and nothing else is.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  localTransactionNotStartedBody,
  timerCapacityExceededBody,
  xaExceptionBody,
  xaTransactionNotStartedMessage,
  XaCode,
} from '../../src/protocol/transaction-bodies.js';
import { classifyLocalRefusal } from '../../src/client/transaction/xa-errors.js';
import {
  nextState,
  TransactionState,
  TransitionOutcome,
  XA_RBROLLBACK,
  type TransactionEventName,
  type TransactionKind,
  type TransactionStateName,
} from '../../src/transaction/transaction-state.js';
import { resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { PassThrough } from 'node:stream';
import { runTx } from '../../src/cli/commands/tx.js';
import {
  adminList,
  adminPost,
  adminStats,
  assertIds,
  assertMessages,
  assertOk,
  assertXa,
  beginWithMessages,
  eventually,
  localKey,
  payloadBytes,
  preparedBranch,
  readAll,
  readPartition,
  TxBrokerHome,
  TxClient,
  xaKey,
  type Answer,
  type PutAck,
  type TxBrokerRun,
} from '../helpers/tx-wire.js';

const S = TransactionState;

/** Wire command of each wire event. */
const WIRE: Partial<Record<TransactionEventName, 'END' | 'PREPARE' | 'COMMIT_ONE_PHASE' | 'COMMIT_TWO_PHASE' | 'ROLLBACK' | 'FORGET'>> = {
  end: 'END',
  prepare: 'PREPARE',
  commitOnePhase: 'COMMIT_ONE_PHASE',
  commitTwoPhase: 'COMMIT_TWO_PHASE',
  rollback: 'ROLLBACK',
  forget: 'FORGET',
};
const WIRE_EVENTS: readonly TransactionEventName[] = ['put', 'end', 'prepare', 'commitOnePhase', 'commitTwoPhase', 'rollback', 'forget'];
const HTTP_EVENTS: readonly TransactionEventName[] = ['heuristicCommit', 'heuristicRollback'];

/** "Reachable" states per kind, with UNKNOWN standing for FORGOTTEN and never-begun keys. */
const STATES: Record<TransactionKind, readonly TransactionStateName[]> = {
  xa: [S.ACTIVE, S.IN_USE, S.PREPARED, S.COMMITTING, S.COMMITTED, S.ROLLED_BACK, S.TIMED_OUT, S.HEURISTIC_COMMITTED, S.HEURISTIC_ROLLED_BACK, S.FORGOTTEN],
  local: [S.ACTIVE, S.IN_USE, S.COMMITTING, S.COMMITTED, S.ROLLED_BACK, S.TIMED_OUT],
};

/** States in which the broker still holds the branch (not a tombstone, not forgotten). */
const LIVE: ReadonlySet<TransactionStateName> = new Set([S.ACTIVE, S.IN_USE, S.PREPARED, S.COMMITTING, S.HEURISTIC_COMMITTED, S.HEURISTIC_ROLLED_BACK]);

/** What the broker must answer to a wire `event` on `key` in `state`, per the decision table. */
function expectedWire(kind: TransactionKind, key: string, state: TransactionStateName, event: TransactionEventName, partition: number): { code: number; text: string | RegExp } {
  // MetaQ's client sends END one-way; the engine answers it: always 200 for a local key (the
  // table's XAER_RMERR cell is not used), by the table for an XA branch (so END reports its fate).
  if (event === 'end' && kind === 'local') return { code: 200, text: '' };
  if (state === S.FORGOTTEN) {
    // FORGOTTEN is "indistinguishable from an unknown XID": the table's code, the not-started text.
    const cell = nextState(kind, state, event);
    assert.ok(!cell.ok);
    assert.equal(cell.xaCode, XaCode.XAER_NOTA);
    return { code: 500, text: kind === 'xa' ? xaExceptionBody(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(key)) : localTransactionNotStartedBody(key) };
  }
  const cell = nextState(kind, state, event);
  if (!cell.ok) return { code: 500, text: kind === 'xa' ? xaExceptionBody(cell.xaCode, cell.message) : cell.message };
  if (event === 'put') return { code: 200, text: new RegExp(`^\\d+ ${partition} -1$`) };
  if (event === 'prepare') return { code: 200, text: cell.outcome === TransitionOutcome.READ_ONLY ? '3' : '0' };
  return { code: 200, text: '' };
}

/** The state a branch is in once the broker answered `event` (commits answer after their batches are applied). */
function stateAfter(kind: TransactionKind, state: TransactionStateName, event: TransactionEventName): TransactionStateName {
  if (!LIVE.has(state)) return state; // tombstones and forgotten keys never change
  if (event === 'end') return state;
  const cell = nextState(kind, state, event);
  if (!cell.ok) return state;
  return cell.state === S.COMMITTING ? S.COMMITTED : cell.state;
}

function assertAnswer(answer: Answer, expected: { code: number; text: string | RegExp }, context: string): void {
  assert.equal(answer.code, expected.code, `${context}: ${answer.text}`);
  if (typeof expected.text === 'string') assert.equal(answer.text, expected.text, context);
  else assert.match(answer.text, expected.text, context);
}

describe('broker transactions over the wire (one metaq-server process, raw frames)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let home: TxBrokerHome;
  let run: TxBrokerRun;
  let client: TxClient;
  let http: number;
  /** Fate of every transactional message put by this file. */
  const committed = new Set<string>();
  const aborted = new Set<string>();
  let counter = 0;
  const unique = (prefix: string): string => `${prefix}${++counter}`;

  before(async () => {
    dir = await makeTempDir('metaq-tx-protocol-');
    home = await TxBrokerHome.create(join(dir.path, 'broker'), { maxTxTimeoutTimerCapacity: 3, maxTxTimeoutInSeconds: 60, flushTxLogAtCommit: 1 });
    run = await home.start();
    http = run.httpPort;
    client = await run.client();
  });
  after(async () => {
    client.close();
    if (home.current !== undefined) await run.stop();
    await dir.remove();
  });

  /** The state of `key` as the broker shows it: admin list for prepared/heuristic, else a FORGET probe (refused, names the state). */
  async function probe(key: string): Promise<TransactionStateName> {
    const listed = (await adminList(http)).find((b) => b.key === key);
    if (listed !== undefined) return listed.state as TransactionStateName;
    const answer = await client.tx(key, 'FORGET');
    assert.equal(answer.code, 500, `FORGET probe of ${key} must be refused: ${answer.text}`);
    if (answer.text.includes('has not been started')) return S.FORGOTTEN;
    const match = /in state ([A-Z_]+):/.exec(answer.text);
    assert.ok(match !== null, `cannot read the state from ${answer.text}`);
    return match[1] as TransactionStateName;
  }

  /** Puts one message in `key` and records its tag as pending under `pending`. */
  async function stage(key: string, tag: string, pending: string[], partition = 0): Promise<PutAck> {
    const ack = await client.put(key, 'test', partition, payloadBytes(tag));
    pending.push(tag);
    return ack;
  }

  /** A branch driven to `state`; `pending` are its staged tags, `committedSoFar` whether they are already committed. */
  interface Fixture {
    readonly key: string;
    readonly pending: string[];
    heuristicCommit: boolean;
  }

  async function reach(kind: TransactionKind, state: TransactionStateName, label: string): Promise<Fixture> {
    const key = kind === 'xa' ? xaKey(unique(`cell-${label}-`), 'rm-cells') : localKey(`cells-${label}`, ++counter);
    const f: Fixture = { key, pending: [], heuristicCommit: false };
    assertOk(await client.begin(key, state === S.TIMED_OUT ? 1 : undefined), `BEGIN ${key}`);
    if (state === S.ACTIVE) return f;
    await stage(key, unique(`${label}-staged-`), f.pending);
    if (state === S.IN_USE) return f;
    if (state === S.TIMED_OUT) {
      await eventually(async () => (await probe(key)) === S.TIMED_OUT, `${key} to time out`, 5000);
      return f;
    }
    if (state === S.ROLLED_BACK) {
      assertOk(await client.tx(key, 'ROLLBACK'));
      return f;
    }
    if (kind === 'local') {
      assert.equal(state, S.COMMITTED);
      assertOk(await client.tx(key, 'COMMIT_ONE_PHASE'));
      return f;
    }
    assertOk(await client.tx(key, 'END'));
    assertOk(await client.tx(key, 'PREPARE'), '', '0');
    if (state === S.PREPARED) return f;
    if (state === S.COMMITTED) {
      assertOk(await client.tx(key, 'COMMIT_TWO_PHASE'));
      return f;
    }
    if (state === S.HEURISTIC_COMMITTED || state === S.FORGOTTEN) {
      assert.deepEqual(await adminPost(http, key, 'commit', 'cells'), { status: 200, json: { ok: true, key, action: 'commit' } });
      f.heuristicCommit = true;
      if (state === S.FORGOTTEN) assertOk(await client.tx(key, 'FORGET'));
      return f;
    }
    assert.equal(state, S.HEURISTIC_ROLLED_BACK);
    assert.deepEqual(await adminPost(http, key, 'rollback', 'cells'), { status: 200, json: { ok: true, key, action: 'rollback' } });
    return f;
  }

  /** Ends a fixture whatever its state and files its messages as committed or aborted. */
  async function settle(f: Fixture, state: TransactionStateName): Promise<void> {
    let fate: 'committed' | 'aborted';
    switch (state) {
      case S.ACTIVE:
      case S.IN_USE:
      case S.PREPARED:
        assertOk(await client.tx(f.key, 'ROLLBACK'), `cleanup ROLLBACK ${f.key}`);
        fate = 'aborted';
        break;
      case S.HEURISTIC_COMMITTED:
      case S.HEURISTIC_ROLLED_BACK:
        assertOk(await client.tx(f.key, 'FORGET'), `cleanup FORGET ${f.key}`);
        fate = state === S.HEURISTIC_COMMITTED ? 'committed' : 'aborted';
        break;
      case S.COMMITTED:
        fate = 'committed';
        break;
      case S.FORGOTTEN:
        fate = f.heuristicCommit ? 'committed' : 'aborted';
        break;
      default:
        fate = 'aborted';
    }
    for (const tag of f.pending.splice(0)) (fate === 'committed' ? committed : aborted).add(tag);
  }

  it('transactional puts answer "<id> <partition> -1" and stay invisible until commit; then each is stored once under its acknowledged id', async () => {
    const key = xaKey('visibility', 'rm-vis');
    const tags = ['vis-a', 'vis-b', 'vis-c', 'vis-d'];
    assertOk(await client.begin(key));
    const acks = new Map<string, PutAck>();
    for (const [i, tag] of tags.entries()) acks.set(tag, await client.put(key, i < 2 ? 'test' : 'orders', i % 2, payloadBytes(tag)));
    const ids = [...acks.values()].map((a) => a.id);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    const invisible = async (when: string): Promise<void> => assertMessages(await readAll(run.port), { committed: [], aborted: tags }, when);
    await invisible('after the puts');
    assertOk(await client.tx(key, 'END'));
    await invisible('after END');
    assertOk(await client.tx(key, 'PREPARE'), '', '0');
    await invisible('after PREPARE');
    assertOk(await client.tx(key, 'COMMIT_TWO_PHASE'));
    const stored = await readAll(run.port);
    assertMessages(stored, { committed: tags, aborted: [] }, 'after COMMIT');
    assertIds(stored, acks, 'after COMMIT');
    // Within a partition, the batch is in put order.
    const test0 = stored.filter((m) => m.topic === 'test' && m.partition === 0 && tags.includes(m.tag)).map((m) => m.tag);
    assert.deepEqual(test0, ['vis-a']);
    for (const tag of tags) committed.add(tag);

    const local = localKey('vis-session', 1);
    assertOk(await client.begin(local));
    const localAcks = new Map<string, PutAck>();
    for (const tag of ['vis-l1', 'vis-l2', 'vis-l3']) localAcks.set(tag, await client.put(local, 'test', 1, payloadBytes(tag)));
    assertMessages(await readAll(run.port), { committed: [], aborted: [...localAcks.keys()] }, 'local, before commit');
    assertOk(await client.tx(local, 'COMMIT_ONE_PHASE'));
    const after = await readAll(run.port);
    assertMessages(after, { committed: [...localAcks.keys()], aborted: [] }, 'local, after commit');
    assertIds(after, localAcks);
    const test1 = after.filter((m) => m.topic === 'test' && m.partition === 1).map((m) => m.tag);
    assert.deepEqual(test1.slice(-3), ['vis-l1', 'vis-l2', 'vis-l3'], 'one contiguous batch, in put order');
    for (const tag of localAcks.keys()) committed.add(tag);
  });

  it('a refused put makes the transaction roll-back-only: a pipelined COMMIT or a PREPARE rolls it back and says why; nothing of it is ever visible', async () => {
    // Local, everything in ONE write as a pipelining client sends it: BEGIN, a good put, a put to
    // a partition that does not exist, COMMIT. The COMMIT must not publish the good message alone.
    const local = localKey('abort-only', 1);
    const [begun, good, bad, commit] = await client.pipeline([
      { header: TxClient.txHeader(local, 'BEGIN', { timeout: 30 }) },
      TxClient.putRequest(local, 'test', 0, payloadBytes('abort-only-local-good')),
      TxClient.putRequest(local, 'test', 9, payloadBytes('abort-only-local-bad')),
      { header: TxClient.txHeader(local, 'COMMIT_ONE_PHASE') },
    ]);
    aborted.add('abort-only-local-good').add('abort-only-local-bad');
    assertOk(begun as Answer);
    assert.equal(good?.code, 200);
    assert.equal(bad?.code, 500);
    assert.equal(commit?.code, 500);
    assert.match(commit?.text ?? '', /in state ROLLED_BACK: a put to test was refused .*rolled back/);
    assert.equal(classifyLocalRefusal(commit?.text ?? ''), 'rolled-back', 'clients read the answer as "rolled back"');
    assert.equal((await client.tx(local, 'COMMIT_ONE_PHASE')).code, 500, 'a repeated commit is refused too');
    assertOk(await client.tx(local, 'ROLLBACK'), 'a rollback of the rolled-back transaction is fine');

    // XA: a put with partition -1 refused, then END and PREPARE → XA_RBROLLBACK, and gone.
    const xa = xaKey('abort-only-xa', 'rm-misc');
    assertOk(await client.begin(xa));
    await client.put(xa, 'orders', 1, payloadBytes('abort-only-xa-good'));
    assert.equal((await client.putRaw(xa, 'orders', -1, payloadBytes('abort-only-xa-bad'))).code, 500);
    aborted.add('abort-only-xa-good').add('abort-only-xa-bad');
    assertOk(await client.tx(xa, 'END'));
    const prepared = await client.tx(xa, 'PREPARE');
    assertXa(prepared, XA_RBROLLBACK, 'PREPARE of a branch with a refused put');
    assert.match(prepared.text, /partition -1/);
    assert.ok(!(await client.recover('rm-misc')).includes(xa), 'not listed by RECOVER');
    assertXa(await client.tx(xa, 'COMMIT_TWO_PHASE'), XA_RBROLLBACK, 'a later commit learns the rollback');

    // A put refused for the transaction's state (not for the message) does not condemn it.
    const fine = localKey('abort-only', 2);
    assertOk(await client.begin(fine));
    const ack = await client.put(fine, 'test', 1, payloadBytes('abort-only-fine'));
    assertOk(await client.tx(fine, 'COMMIT_ONE_PHASE'));
    committed.add('abort-only-fine');
    assert.equal((await client.putRaw(fine, 'test', 1, payloadBytes('abort-only-late'))).code, 500, 'a put after the commit is refused');
    aborted.add('abort-only-late');
    assertIds(await readAll(run.port), new Map([['abort-only-fine', ack]]));
    assertMessages(await readAll(run.port), { committed: [...committed], aborted: [...aborted] }, 'after the roll-back-only cases');
  });

  it('the answers to BEGIN and the puts of a read that also carries COMMIT go out with the COMMIT answer, in one write; a read without one is answered at once', async () => {
    const chunks: Buffer[] = [];
    const record = (chunk: Buffer): void => void chunks.push(chunk);
    client.raw.socket.on('data', record);
    try {
      const local = localKey('one-write', 1);
      const answers = await client.pipeline([
        { header: TxClient.txHeader(local, 'BEGIN', { timeout: 30 }) },
        TxClient.putRequest(local, 'test', 0, payloadBytes('one-write-a')),
        TxClient.putRequest(local, 'test', 1, payloadBytes('one-write-b')),
        { header: TxClient.txHeader(local, 'COMMIT_ONE_PHASE') },
      ]);
      for (const answer of answers) assert.equal(answer.code, 200, answer.text);
      committed.add('one-write-a').add('one-write-b');
      // Held until the COMMIT record was forced, the four answers left in one write (one read
      // here: a single small loopback write is delivered whole). Answered one by one, the first
      // three would come a journal write earlier, in a read of their own.
      assert.equal(chunks.length, 1, `answers arrived in ${chunks.length} reads: ${chunks.map((c) => JSON.stringify(c.toString('latin1').slice(0, 60))).join(', ')}`);

      // Without a transaction-ending command the answers are not held: BEGIN and a put come
      // back while the transaction is still open.
      chunks.length = 0;
      const open = localKey('one-write', 2);
      const [begun, put] = await client.pipeline([{ header: TxClient.txHeader(open, 'BEGIN', { timeout: 30 }) }, TxClient.putRequest(open, 'test', 0, payloadBytes('one-write-c'))]);
      assertOk(begun as Answer);
      assert.equal(put?.code, 200);
      assertOk(await client.tx(open, 'COMMIT_ONE_PHASE'));
      committed.add('one-write-c');
    } finally {
      client.raw.socket.off('data', record);
    }
  });

  it("a read that carries one transaction's PREPARE and another's BEGIN and put: the other's answers do not wait for the PREPARE", async () => {
    // The PREPARE forces a record of ~3.6 MiB (milliseconds of disk), so an answer held behind it
    // arrives in the same socket read as its answer; one sent at once arrives well before it.
    const slow = xaKey(unique('held-slow'), 'rm-held');
    assertOk(await client.begin(slow));
    for (let i = 0; i < 4; i++) {
      const tag = unique('held-slow-');
      await client.put(slow, 'orders', 0, payloadBytes(tag, 900 * 1024));
      aborted.add(tag);
    }
    assertOk(await client.tx(slow, 'END'));
    let reads = 0;
    const count = (): void => void (reads += 1);
    client.raw.socket.on('data', count);
    const other = localKey(unique('held-other'), 1);
    const tag = unique('held-other-');
    try {
      // One write, one read at the broker; each answer notes the socket read that brought it (a
      // promise continuation runs after the 'data' listeners of its read, before the next read).
      const requests: { header: string; body?: Buffer }[] = [
        { header: TxClient.txHeader(slow, 'PREPARE') },
        { header: TxClient.txHeader(other, 'BEGIN', { timeout: 30 }) },
        TxClient.putRequest(other, 'test', 0, payloadBytes(tag)),
      ];
      const opaques = requests.map(() => client.nextOpaque());
      const arrivals = opaques.map((opaque) => client.raw.request(Buffer.alloc(0), opaque).then((frame) => ({ answer: resultText(frame), read: reads })));
      client.raw.write(Buffer.concat(requests.flatMap((r, i) => [Buffer.from(`${r.header} ${opaques[i]}\r\n`), ...(r.body === undefined ? [] : [r.body])])));
      const [prepared, begun, put] = await Promise.all(arrivals);
      assert.ok(prepared !== undefined && begun !== undefined && put !== undefined);
      assert.equal(prepared.answer.text, '0', `PREPARE answers XA_OK: ${prepared.answer.text}`);
      assertOk(begun.answer);
      assert.equal(put.answer.code, 200, put.answer.text);
      assert.ok(
        put.read < prepared.read && begun.read < prepared.read,
        `BEGIN and the put of another transaction were answered with the PREPARE (reads ${begun.read}, ${put.read}, ${prepared.read})`,
      );
    } finally {
      client.raw.socket.off('data', count);
    }
    assertOk(await client.tx(slow, 'ROLLBACK'));
    assertOk(await client.tx(other, 'COMMIT_ONE_PHASE'));
    committed.add(tag);
  });

  it('a local transaction belongs to its connection: a put or COMMIT from another one is refused (ROLLBACK is not); closing the owner rolls it back', async () => {
    const key = localKey('owned', 1);
    const owner = await TxClient.connect(run.port);
    const other = await TxClient.connect(run.port);
    try {
      assertOk(await owner.begin(key));
      await owner.put(key, 'test', 0, payloadBytes('owned-a'));
      aborted.add('owned-a').add('owned-b');
      const put = await other.putRaw(key, 'test', 0, payloadBytes('owned-b'));
      assert.equal(put.code, 500);
      assert.match(put.text, /cannot put into local transaction .* begun on another connection/);
      const commit = await other.tx(key, 'COMMIT_ONE_PHASE');
      assert.equal(commit.code, 500);
      assert.match(commit.text, /cannot commit local transaction .* begun on another connection/);
      assert.equal(classifyLocalRefusal(commit.text), 'other', 'a client does not read it as committed or rolled back');
      assertMessages(await readAll(run.port), { committed: [], aborted: ['owned-a', 'owned-b'] }, 'the refused commit published nothing');
    } finally {
      owner.close();
    }
    // The owner's connection closed: the broker rolls the transaction back.
    await eventually(async () => (await other.tx(key, 'COMMIT_ONE_PHASE')).text.includes('ROLLED_BACK'), 'the owner\'s close rolled it back');
    assertOk(await other.tx(key, 'ROLLBACK'), 'a rollback from any connection is fine');

    const mine = localKey('owned', 2);
    assertOk(await other.begin(mine));
    const ack = await other.put(mine, 'test', 1, payloadBytes('owned-c'));
    assertOk(await other.tx(mine, 'COMMIT_ONE_PHASE'));
    committed.add('owned-c');
    assertIds(await readAll(run.port), new Map([['owned-c', ack]]));
    other.close();
  });

  it('a transactional put must name its partition (-1 → 500); a put in an unknown transaction is refused', async () => {
    const key = xaKey('put-checks', 'rm-misc');
    assertOk(await client.begin(key));
    const random = await client.putRaw(key, 'test', -1, payloadBytes('never-random'));
    assert.equal(random.code, 500);
    assert.match(random.text, /must name its partition/);
    aborted.add('never-random');
    const unknownXa = xaKey('never-begun', 'rm-misc');
    assert.deepEqual(await client.putRaw(unknownXa, 'test', 0, payloadBytes('never-unknown-xa')), {
      code: 500,
      text: xaExceptionBody(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(unknownXa)),
    });
    const unknownLocal = localKey('never', 1);
    assert.deepEqual(await client.putRaw(unknownLocal, 'test', 0, payloadBytes('never-unknown-local')), { code: 500, text: localTransactionNotStartedBody(unknownLocal) });
    aborted.add('never-unknown-xa').add('never-unknown-local');
    assertOk(await client.tx(key, 'ROLLBACK'));
  });

  it('PREPARE votes 0 (XA_OK) with messages and 3 (XA_RDONLY) for an empty branch; END is answered 200 (XA_RBTIMEOUT once timed out); a local PREPARE is XAER_RMERR', async () => {
    const empty = xaKey('empty-branch', 'rm-vote');
    assertOk(await client.begin(empty));
    assertOk(await client.tx(empty, 'END'));
    assertOk(await client.tx(empty, 'PREPARE'), 'read-only vote', '3');
    assert.deepEqual(await client.recover('rm-vote'), [], 'a read-only branch is finished, not prepared');
    const full = xaKey('full-branch', 'rm-vote');
    await preparedBranch(client, full, [{ topic: 'test', partition: 0, tag: 'vote-1' }]);
    assert.deepEqual(await client.recover('rm-vote'), [full]);
    assertOk(await client.tx(full, 'COMMIT_TWO_PHASE'));
    committed.add('vote-1');
    const local = localKey('vote', 1);
    assertOk(await client.begin(local));
    const prepare = await client.tx(local, 'PREPARE');
    assert.equal(prepare.code, 500);
    assert.match(prepare.text, /^cannot prepare a local transaction in state ACTIVE/);
    assertOk(await client.tx(local, 'ROLLBACK'));
  });

  it('RECOVER lists the prepared XIDs of the asked unique qualifier, CRLF-joined (all of them without one), and an empty body when none', async () => {
    const a1 = xaKey('rec-a1', 'rmRecA');
    const a2 = xaKey('rec-a2', 'rmRecA');
    const b1 = xaKey('rec-b1', 'rmRecB');
    const activeA = xaKey('rec-active', 'rmRecA');
    await preparedBranch(client, a1, [{ topic: 'test', partition: 0, tag: 'rec-a1' }]);
    await preparedBranch(client, a2, [{ topic: 'orders', partition: 2, tag: 'rec-a2' }]);
    await preparedBranch(client, b1, [{ topic: 'test', partition: 1, tag: 'rec-b1' }]);
    await beginWithMessages(client, activeA, [{ topic: 'test', partition: 1, tag: 'rec-active' }]);

    const raw = await client.send('transaction null recover-session RECOVER rmRecA');
    assert.equal(raw.code, 200);
    assert.deepEqual(raw.text.split('\r\n').sort(), [a1, a2].sort(), 'only prepared branches of rmRecA, CRLF-joined');
    assert.deepEqual(await client.recover('rmRecB'), [b1]);
    assert.deepEqual(await client.send('transaction null recover-session RECOVER rmNobody'), { code: 200, text: '' });
    const all = await client.recover();
    for (const key of [a1, a2, b1]) assert.ok(all.includes(key), `RECOVER without a qualifier lists ${key}`);
    assert.ok(!all.includes(activeA), 'an unprepared branch is never listed');

    assertOk(await client.tx(a1, 'COMMIT_TWO_PHASE'));
    assertOk(await client.tx(a2, 'ROLLBACK'));
    assert.deepEqual(await client.recover('rmRecA'), [], 'resolved branches are no longer listed');
    assertOk(await client.tx(b1, 'COMMIT_TWO_PHASE'));
    assertOk(await client.tx(activeA, 'ROLLBACK'));
    committed.add('rec-a1').add('rec-b1');
    aborted.add('rec-a2').add('rec-active');
  });

  it('a duplicate commit and a duplicate rollback answer OK (XA two-phase, XA one-phase, local) and change nothing', async () => {
    const two = xaKey('dup-2pc', 'rm-dup');
    await preparedBranch(client, two, [{ topic: 'test', partition: 0, tag: 'dup-2pc' }]);
    assertOk(await client.tx(two, 'COMMIT_TWO_PHASE'));
    assertOk(await client.tx(two, 'COMMIT_TWO_PHASE'), 'duplicate two-phase commit');
    assertOk(await client.tx(two, 'COMMIT_TWO_PHASE'), 'third commit');
    const one = xaKey('dup-1pc', 'rm-dup');
    await beginWithMessages(client, one, [{ topic: 'test', partition: 1, tag: 'dup-1pc' }]);
    assertOk(await client.tx(one, 'COMMIT_ONE_PHASE'));
    assertOk(await client.tx(one, 'COMMIT_ONE_PHASE'), 'duplicate one-phase commit');
    const local = localKey('dup', 1);
    await beginWithMessages(client, local, [{ topic: 'orders', partition: 0, tag: 'dup-local' }]);
    assertOk(await client.tx(local, 'COMMIT_ONE_PHASE'));
    assertOk(await client.tx(local, 'COMMIT_ONE_PHASE'), 'duplicate local commit');
    committed.add('dup-2pc').add('dup-1pc').add('dup-local');

    const rbPrepared = xaKey('dup-rb-prepared', 'rm-dup');
    await preparedBranch(client, rbPrepared, [{ topic: 'test', partition: 0, tag: 'dup-rb-prepared' }]);
    assertOk(await client.tx(rbPrepared, 'ROLLBACK'));
    assertOk(await client.tx(rbPrepared, 'ROLLBACK'), 'duplicate rollback of a prepared branch');
    const rbActive = xaKey('dup-rb-active', 'rm-dup');
    await beginWithMessages(client, rbActive, [{ topic: 'test', partition: 1, tag: 'dup-rb-active' }]);
    assertOk(await client.tx(rbActive, 'ROLLBACK'));
    assertOk(await client.tx(rbActive, 'ROLLBACK'), 'duplicate rollback of an unprepared branch');
    const rbLocal = localKey('dup', 2);
    await beginWithMessages(client, rbLocal, [{ topic: 'test', partition: 1, tag: 'dup-rb-local' }]);
    assertOk(await client.tx(rbLocal, 'ROLLBACK'));
    assertOk(await client.tx(rbLocal, 'ROLLBACK'), 'duplicate local rollback');
    aborted.add('dup-rb-prepared').add('dup-rb-active').add('dup-rb-local');

    assertMessages(await readAll(run.port), { committed: ['dup-2pc', 'dup-1pc', 'dup-local'], aborted: ['dup-rb-prepared', 'dup-rb-active', 'dup-rb-local'] }, 'duplicates');
  });

  it('commit/rollback/prepare/forget of an unknown XID → XAER_NOTA (-4), and another prepared branch on the same connection still commits', async () => {
    const other = xaKey('nota-other', 'rm-nota');
    await preparedBranch(client, other, [
      { topic: 'test', partition: 0, tag: 'nota-other-1' },
      { topic: 'orders', partition: 1, tag: 'nota-other-2' },
    ]);
    const unknown = xaKey('nota-unknown', 'rm-nota');
    const notStarted = { code: 500, text: xaExceptionBody(XaCode.XAER_NOTA, xaTransactionNotStartedMessage(unknown)) };
    for (const type of ['COMMIT_TWO_PHASE', 'COMMIT_ONE_PHASE', 'ROLLBACK', 'PREPARE', 'FORGET'] as const) {
      assert.deepEqual(await client.tx(unknown, type), notStarted, `${type} of an unknown XID`);
    }
    assert.deepEqual(await client.recover('rm-nota'), [other], 'the other branch is untouched');
    assertOk(await client.tx(other, 'COMMIT_TWO_PHASE'), 'the other branch commits on the same connection');
    committed.add('nota-other-1').add('nota-other-2');
    // The unknown XID left no tombstone behind: it can still be begun (no XAER_DUPID).
    assertOk(await client.begin(unknown));
    assertOk(await client.tx(unknown, 'ROLLBACK'));
    assertMessages(await readAll(run.port), { committed: ['nota-other-1', 'nota-other-2'], aborted: [] }, 'unknown XID');
  });

  it('BEGIN is idempotent on a live branch; an ended XID cannot be begun again (XAER_DUPID)', async () => {
    const cases: [TransactionStateName, number | 'ok'][] = [
      [S.ACTIVE, 'ok'], [S.IN_USE, 'ok'], [S.PREPARED, 'ok'], [S.HEURISTIC_COMMITTED, 'ok'], [S.HEURISTIC_ROLLED_BACK, 'ok'],
      [S.COMMITTED, XaCode.XAER_DUPID], [S.ROLLED_BACK, XaCode.XAER_DUPID], [S.TIMED_OUT, XaCode.XAER_DUPID],
    ];
    for (const [state, expected] of cases) {
      const f = await reach('xa', state, `begin-${state}`);
      const answer = await client.begin(f.key);
      if (expected === 'ok') assertOk(answer, `BEGIN in ${state}`);
      else assertXa(answer, expected, `BEGIN in ${state}`);
      assert.equal(await probe(f.key), state, `BEGIN leaves ${state} alone`);
      await settle(f, state);
    }
    for (const state of [S.ACTIVE, S.IN_USE]) {
      const f = await reach('local', state, `begin-local-${state}`);
      assertOk(await client.begin(f.key), `local BEGIN in ${state}`);
      assert.equal(await probe(f.key), state);
      await settle(f, state);
    }
  });

  describe('the decision table (transaction-state.ts), cell by cell over the wire', () => {
    for (const kind of ['xa', 'local'] as const) {
      for (const state of STATES[kind]) {
        if (state === S.COMMITTING) continue; // below: needs pipelining
        it(`${kind} ${state}: ${[...WIRE_EVENTS, ...HTTP_EVENTS].join(', ')}`, async () => {
          const label = `${kind}-${state}`;
          if (!LIVE.has(state)) {
            // A tombstone (or a forgotten key) answers every event without changing: one branch serves all events.
            const f = await reach(kind, state, label);
            for (const event of WIRE_EVENTS) {
              const tag = unique(`${label}-${event}-`);
              const answer =
                event === 'put' ? await client.putRaw(f.key, 'test', 1, payloadBytes(tag)) : await client.tx(f.key, WIRE[event] ?? 'END');
              if (event === 'put') aborted.add(tag);
              assertAnswer(answer, expectedWire(kind, f.key, state, event, 1), `${label} ${event}`);
              assert.equal(await probe(f.key), state, `${label}: ${event} must not change the outcome`);
            }
            for (const event of HTTP_EVENTS) {
              const answer = await adminPost(http, f.key, event === 'heuristicCommit' ? 'commit' : 'rollback', 'table');
              assert.equal(answer.status, 404, `${label} ${event}: ${JSON.stringify(answer.json)}`);
              assert.equal(answer.json['xaCode'], XaCode.XAER_NOTA);
            }
            await settle(f, state);
            return;
          }
          // A live branch: a fresh one per event, since accepted events move it.
          for (const event of [...WIRE_EVENTS, ...HTTP_EVENTS]) {
            const f = await reach(kind, state, `${label}-${event}`);
            const context = `${label} ${event}`;
            if (event === 'heuristicCommit' || event === 'heuristicRollback') {
              const answer = await adminPost(http, f.key, event === 'heuristicCommit' ? 'commit' : 'rollback', 'table');
              const cell = nextState(kind, state, event);
              if (cell.ok) {
                assert.equal(answer.status, 200, `${context}: ${JSON.stringify(answer.json)}`);
                if (event === 'heuristicCommit') f.heuristicCommit = true;
              } else if (kind === 'xa') {
                assert.equal(answer.status, cell.xaCode === XaCode.XAER_NOTA ? 404 : 409, context);
                assert.equal(answer.json['xaCode'], cell.xaCode, context);
                assert.equal(answer.json['error'], cell.message, context);
              } else {
                // A local transaction's refusals are plain texts (no XAException), so no xaCode.
                assert.deepEqual(answer, { status: 409, json: { ok: false, key: f.key, action: event === 'heuristicCommit' ? 'commit' : 'rollback', error: cell.message } }, context);
              }
            } else {
              const tag = unique(`${label}-${event}-`);
              const answer = event === 'put' ? await client.putRaw(f.key, 'test', 1, payloadBytes(tag)) : await client.tx(f.key, WIRE[event] ?? 'END');
              assertAnswer(answer, expectedWire(kind, f.key, state, event, 1), context);
              if (event === 'put' && answer.code === 200) f.pending.push(tag);
              else if (event === 'put') aborted.add(tag);
            }
            const after = stateAfter(kind, state, event);
            assert.equal(await probe(f.key), after, `${context}: state afterwards`);
            if (event === 'commitOnePhase' || event === 'commitTwoPhase') {
              // Accepted commits are visible at once, refused ones not at all.
              const stored = await readAll(run.port);
              if (after === S.COMMITTED || f.heuristicCommit) assertMessages(stored, { committed: f.pending, aborted: [] }, context);
              else assertMessages(stored, { committed: [], aborted: f.pending }, context);
            }
            await settle(f, after);
          }
        });
      }
      it(`${kind} COMMITTING (each command pipelined behind the commit, in one write)`, async () => {
        for (const event of WIRE_EVENTS) {
          const label = `${kind}-COMMITTING-${event}`;
          const f = await reach(kind, kind === 'xa' ? S.PREPARED : S.IN_USE, label);
          const commit = TxClient.txHeader(f.key, kind === 'xa' ? 'COMMIT_TWO_PHASE' : 'COMMIT_ONE_PHASE');
          const tag = unique(`${label}-`);
          const second = event === 'put' ? TxClient.putRequest(f.key, 'test', 0, payloadBytes(tag)) : { header: TxClient.txHeader(f.key, WIRE[event] ?? 'END') };
          const [commitAnswer, answer] = await client.pipeline([{ header: commit }, second]);
          assert.ok(commitAnswer !== undefined && answer !== undefined);
          assertOk(commitAnswer, `${label}: the commit`);
          assertAnswer(answer, expectedWire(kind, f.key, S.COMMITTING, event, 0), label);
          if (event === 'put') aborted.add(tag);
          assert.equal(await probe(f.key), S.COMMITTED, `${label}: state afterwards`);
          await settle(f, S.COMMITTED);
        }
      });
    }
  });

  it('an unprepared branch with a 1 s timeout is rolled back: later PREPARE → XA_RBTIMEOUT (106), its messages never visible', async () => {
    const key = xaKey('timeout', 'rm-timeout');
    const started = Date.now();
    await beginWithMessages(client, key, [{ topic: 'test', partition: 0, tag: 'timeout-1' }, { topic: 'orders', partition: 2, tag: 'timeout-2' }], 1);
    aborted.add('timeout-1').add('timeout-2');
    await eventually(async () => (await probe(key)) === S.TIMED_OUT, 'the branch to time out', 5000);
    assert.ok(Date.now() - started >= 1000, 'not before its timeout');
    assertXa(await client.tx(key, 'END'), XaCode.XA_RBTIMEOUT, 'END reports the timeout');
    assertXa(await client.tx(key, 'PREPARE'), XaCode.XA_RBTIMEOUT);
    assertXa(await client.tx(key, 'COMMIT_ONE_PHASE'), XaCode.XA_RBTIMEOUT);
    assertXa(await client.putRaw(key, 'test', 0, payloadBytes('timeout-late')), XaCode.XA_RBTIMEOUT);
    aborted.add('timeout-late');
    assertOk(await client.tx(key, 'ROLLBACK'), "the TM's rollback after XA_RBTIMEOUT");
    assertMessages(await readAll(run.port), { committed: [], aborted: ['timeout-1', 'timeout-2', 'timeout-late'] }, 'timed out');

    const local = localKey('timeout', 1);
    await beginWithMessages(client, local, [{ topic: 'test', partition: 1, tag: 'timeout-local' }], 1);
    aborted.add('timeout-local');
    await eventually(async () => (await probe(local)) === S.TIMED_OUT, 'the local transaction to time out', 5000);
    const commit = await client.tx(local, 'COMMIT_ONE_PHASE');
    assert.equal(commit.code, 500);
    assert.match(commit.text, /in state TIMED_OUT: the branch was rolled back because it timed out/);
  });

  it('a PREPARED branch outlives its timeout: still listed after it, still committable, messages exactly once', async () => {
    const key = xaKey('outlives', 'rm-outlives');
    assertOk(await client.begin(key, 1));
    await client.put(key, 'test', 0, payloadBytes('outlives-1'));
    await client.put(key, 'test', 1, payloadBytes('outlives-2'));
    assertOk(await client.tx(key, 'END'));
    assertOk(await client.tx(key, 'PREPARE'), '', '0');
    await new Promise((r) => setTimeout(r, 2600));
    assert.deepEqual(await client.recover('rm-outlives'), [key]);
    const listed = (await adminList(http)).find((b) => b.key === key);
    assert.equal(listed?.state, S.PREPARED);
    assert.ok((listed?.preparedAgeSeconds ?? 0) >= 2, 'prepared age grows');
    assertOk(await client.tx(key, 'COMMIT_TWO_PHASE'));
    committed.add('outlives-1').add('outlives-2');
    assertMessages(await readAll(run.port), { committed: ['outlives-1', 'outlives-2'], aborted: [] }, 'outlived its timeout');
  });

  it('a local transaction is rolled back when its connection drops; its messages are never visible', async () => {
    const owner = await run.client();
    const key = localKey('dropped', 1);
    await beginWithMessages(owner, key, [{ topic: 'test', partition: 0, tag: 'dropped-1' }, { topic: 'orders', partition: 1, tag: 'dropped-2' }]);
    aborted.add('dropped-1').add('dropped-2');
    // An XA branch begun on the same connection is NOT owned by it (XA branches outlive connections).
    const xa = xaKey('survives-drop', 'rm-drop');
    await beginWithMessages(owner, xa, [{ topic: 'test', partition: 1, tag: 'survives-drop' }]);
    owner.close();
    await owner.raw.closed;
    // Probe without touching the outcome: FORGET is refused in every local state and names it.
    await eventually(async () => (await probe(key)) === S.ROLLED_BACK, 'the dropped connection to roll its transaction back', 5000);
    const commit = await client.tx(key, 'COMMIT_ONE_PHASE');
    assert.equal(commit.code, 500);
    assert.match(commit.text, /in state ROLLED_BACK: the branch was rolled back/);
    assert.equal(await probe(xa), S.IN_USE);
    assertOk(await client.tx(xa, 'END'));
    assertOk(await client.tx(xa, 'PREPARE'), '', '0');
    assertOk(await client.tx(xa, 'COMMIT_TWO_PHASE'));
    committed.add('survives-drop');
    assertMessages(await readAll(run.port), { committed: ['survives-drop'], aborted: ['dropped-1', 'dropped-2'] }, 'connection drop');
  });

  it('heuristic commit over HTTP (reason required): messages visible once; TM commit/rollback → XA_HEURCOM (7); RECOVER lists it; FORGET removes it', async () => {
    const key = xaKey('heur-commit', 'rm-heur');
    await preparedBranch(client, key, [
      { topic: 'test', partition: 0, tag: 'heurcom-1' },
      { topic: 'orders', partition: 0, tag: 'heurcom-2' },
    ]);
    const noReason = await adminPost(http, key, 'commit');
    assert.equal(noReason.status, 400);
    assert.match(String(noReason.json['error']), /reason/);
    assert.equal(await probe(key), S.PREPARED, 'a refused heuristic changes nothing');
    assert.deepEqual(await adminPost(http, key, 'commit', 'coordinator lost'), { status: 200, json: { ok: true, key, action: 'commit' } });
    assertMessages(await readAll(run.port), { committed: ['heurcom-1', 'heurcom-2'], aborted: [] }, 'heuristic commit applied');
    assert.equal((await adminList(http)).find((b) => b.key === key)?.state, S.HEURISTIC_COMMITTED);
    assert.deepEqual(await client.recover('rm-heur'), [key], 'RECOVER lists a heuristic branch');
    assertXa(await client.tx(key, 'COMMIT_TWO_PHASE'), XaCode.XA_HEURCOM);
    assertXa(await client.tx(key, 'ROLLBACK'), XaCode.XA_HEURCOM);
    assertXa(await client.tx(key, 'COMMIT_TWO_PHASE'), XaCode.XA_HEURCOM, 'until FORGET');
    assertOk(await client.tx(key, 'FORGET'));
    assert.deepEqual(await client.recover('rm-heur'), []);
    assertXa(await client.tx(key, 'COMMIT_TWO_PHASE'), XaCode.XAER_NOTA);
    assertXa(await client.tx(key, 'FORGET'), XaCode.XAER_NOTA);
    committed.add('heurcom-1').add('heurcom-2');
    assertMessages(await readAll(run.port), { committed: ['heurcom-1', 'heurcom-2'], aborted: [] }, 'heuristic commit, after TM commit and FORGET');
  });

  it('heuristic rollback over HTTP: TM commit/rollback → XA_HEURRB (6); RECOVER lists it; FORGET (over HTTP too) removes it; messages never visible', async () => {
    const key = xaKey('heur-rollback', 'rm-heur');
    await preparedBranch(client, key, [{ topic: 'test', partition: 1, tag: 'heurrb-1' }]);
    assert.equal((await adminPost(http, key, 'rollback')).status, 400);
    assert.deepEqual(await adminPost(http, key, 'rollback', 'operator decided'), { status: 200, json: { ok: true, key, action: 'rollback' } });
    assert.deepEqual(await client.recover('rm-heur'), [key]);
    assertXa(await client.tx(key, 'COMMIT_TWO_PHASE'), XaCode.XA_HEURRB);
    assertXa(await client.tx(key, 'ROLLBACK'), XaCode.XA_HEURRB);
    const again = await adminPost(http, key, 'commit', 'change of mind');
    assert.equal(again.status, 409);
    assert.equal(again.json['xaCode'], XaCode.XA_HEURRB, 'a heuristic decision is final');
    assert.deepEqual(await adminPost(http, key, 'forget'), { status: 200, json: { ok: true, key, action: 'forget' } });
    assert.deepEqual(await client.recover('rm-heur'), []);
    assert.equal((await adminPost(http, key, 'forget')).status, 404);
    aborted.add('heurrb-1');
    assertMessages(await readAll(run.port), { committed: [], aborted: ['heurrb-1'] }, 'heuristic rollback');
  });

  it('a put pipelined behind PREPARE (the prepare record is being forced) is not acknowledged into the prepared branch', async () => {
    const key = xaKey('put-during-prepare', 'rm-race');
    await beginWithMessages(client, key, [{ topic: 'test', partition: 0, tag: 'race-1' }]);
    const [prepare, put] = await client.pipeline([{ header: TxClient.txHeader(key, 'PREPARE') }, TxClient.putRequest(key, 'test', 0, payloadBytes('race-late'))]);
    assert.ok(prepare !== undefined && put !== undefined);
    assertOk(prepare, 'PREPARE', '0');
    // The PREPARE record is already on its way to disk without this message: acknowledging it
    // would promise a message that a crash before commit silently drops.
    assertXa(put, XaCode.XAER_PROTO, 'a put while the branch is being prepared');
    assert.equal((await adminList(http)).find((b) => b.key === key)?.messages, 1, 'the prepared branch holds exactly the messages of its PREPARE record');
    assertOk(await client.tx(key, 'COMMIT_TWO_PHASE'));
    committed.add('race-1');
    aborted.add('race-late');
    assertMessages(await readAll(run.port), { committed: ['race-1'], aborted: ['race-late'] }, 'put during prepare');
  });

  it('timer capacity (maxTxTimeoutTimerCapacity=3): the 4th BEGIN → 500 "Timer size 3 is great than maxTimerCapacity 3"; finished branches (read-only votes too) free their slot', async () => {
    // Read-only votes, commits, rollbacks and prepares must all give their timeout slot back.
    for (let i = 0; i < 3; i++) {
      const ro = xaKey(`cap-ro-${i}`, 'rm-cap');
      assertOk(await client.begin(ro));
      assertOk(await client.tx(ro, 'PREPARE'), 'read-only', '3');
    }
    const keys = [localKey('cap', 1), xaKey('cap-1', 'rm-cap'), localKey('cap', 2)];
    for (const key of keys) assertOk(await client.begin(key), `BEGIN ${key} within capacity`);
    const fourthXa = xaKey('cap-4', 'rm-cap');
    assert.deepEqual(await client.begin(fourthXa), { code: 500, text: xaExceptionBody(XaCode.XAER_RMERR, timerCapacityExceededBody(3, 3)) });
    const fourthLocal = localKey('cap', 4);
    assert.deepEqual(await client.begin(fourthLocal), { code: 500, text: timerCapacityExceededBody(3, 3) });
    assertXa(await client.tx(fourthXa, 'PREPARE'), XaCode.XAER_NOTA, 'a refused BEGIN creates nothing');
    // A begun branch is idempotent and does not take a second slot.
    assertOk(await client.begin(keys[1] ?? ''));
    assertOk(await client.tx(keys[0] ?? '', 'ROLLBACK'));
    assertOk(await client.begin(fourthXa), 'a rollback frees a slot');
    assertMessages(await readAll(run.port), { committed: [], aborted: [] }, 'capacity');
    const put = await client.put(fourthXa, 'test', 0, payloadBytes('cap-msg'));
    assert.equal(put.partition, 0);
    assertOk(await client.tx(fourthXa, 'PREPARE'), '', '0');
    assertOk(await client.begin(localKey('cap', 5)), 'a prepared branch frees its slot');
    for (const key of [keys[1] ?? '', keys[2] ?? '', localKey('cap', 5)]) assertOk(await client.tx(key, 'ROLLBACK'));
    assertOk(await client.tx(fourthXa, 'COMMIT_TWO_PHASE'));
    committed.add('cap-msg');
    for (let i = 0; i < 3; i++) assertOk(await client.begin(xaKey(`cap-free-${i}`, 'rm-cap')), 'every slot is free again');
    for (let i = 0; i < 3; i++) assertOk(await client.tx(xaKey(`cap-free-${i}`, 'rm-cap'), 'ROLLBACK'));
  });

  it("GET /api/transactions/stats and `metaq tx stats`: active and prepared branches, armed timeouts, the journal's forced writes", async () => {
    const before = await adminStats(http);
    assert.equal(before.flushTxLogAtCommit, 1);
    assert.equal(before.timeouts.capacity, 3);
    assert.equal(before.journal.failure, null);
    const local = localKey('stats-session', 1);
    await beginWithMessages(client, local, [{ topic: 'test', partition: 0, tag: 'stats-local' }]);
    const xa = xaKey('stats', 'rm-stats');
    await preparedBranch(client, xa, [{ topic: 'test', partition: 1, tag: 'stats-xa' }]);
    const during = await adminStats(http);
    assert.equal(during.active.local, before.active.local + 1, 'the local transaction is active');
    assert.equal(during.active.xa, before.active.xa, 'the XA branch is prepared, not active');
    assert.equal(during.prepared, before.prepared + 1);
    assert.ok(during.oldestPreparedAgeSeconds !== null && during.oldestPreparedAgeSeconds >= 0);
    assert.ok(during.timeouts.armed >= before.timeouts.armed + 1, "the local transaction's timeout is armed");
    assert.ok(during.journal.syncs > before.journal.syncs, 'the PREPARE record was forced');
    assert.ok(during.journal.records > before.journal.records);
    assert.ok(during.journal.bytesWritten > before.journal.bytesWritten);

    assertOk(await client.tx(local, 'COMMIT_ONE_PHASE'));
    assertOk(await client.tx(xa, 'COMMIT_TWO_PHASE'));
    committed.add('stats-local').add('stats-xa');
    const after = await adminStats(http);
    assert.equal(after.active.local, before.active.local);
    assert.equal(after.prepared, before.prepared);
    assert.ok(after.journal.syncs >= during.journal.syncs + 2, 'the local COMMIT (flushTxLogAtCommit=1) and the XA COMMIT were forced');
    assert.ok(after.journal.lastSyncMs !== null && after.journal.lastSyncMs >= 0);
    assert.ok(after.journal.forcedRecords >= before.journal.forcedRecords + 3, 'PREPARE, the local COMMIT and the XA COMMIT were forced records');
    assert.ok(after.journal.forcedRecordsPerSync !== null && after.journal.forcedRecordsPerSync > 0);
    assert.ok(after.journal.files >= 1);

    const stdout = new PassThrough();
    let printed = '';
    stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const ctx = { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: {}, onInterrupt: () => () => undefined };
    const code = await runTx({ action: 'stats', key: undefined, adminUrl: `http://127.0.0.1:${http}`, json: false, reason: undefined }, ctx);
    assert.equal(code, 0);
    assert.match(printed, /^prepared +\d+$/m);
    assert.match(printed, /^journal\.syncs +\d+$/m);
    assert.match(printed, /^journal\.failure +-$/m, 'null is shown as -');
    assert.match(printed, /^checkpoints\.written +\d+$/m);
  });

  it('finally: every committed message of this file is stored exactly once, and no aborted or uncommitted one is visible', async () => {
    const stored = await readAll(run.port);
    assertMessages(stored, { committed, aborted, exhaustive: true }, 'whole file');
    // Each partition can be read from 0 with raw gets until 404 (readAll did) and holds whole records.
    assert.ok((await readPartition(client, 'test', 0)).length > 0);
    for (const tag of aborted) assert.ok(!committed.has(tag), `${tag} is filed both ways`);
  });
});
