/**
 * Helpers of the broker transaction tests (test/integration/tx-*.test.ts): a broker process in
 * its own data directory that can be killed and restarted, a raw-wire transaction client (the
 * "foreign client that speaks only MetaQ's wire protocol"), the admin HTTP routes, and a reader
 * that walks whole partitions with `get` so that tests can check, message by message, that what
 * was committed is there exactly once and what was aborted never is.
 *
 * Every test message carries a unique text payload (`<tag>` or `<tag>|<padding>`), so counting
 * payloads over all partitions answers "exactly once" and "never" directly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { readMessageRecords } from '../../src/protocol/message-records.js';
import { parseXaExceptionBody } from '../../src/protocol/transaction-bodies.js';
import type { TransactionEngineStats } from '../../src/transaction/engine-stats.js';
import { testBrokerIni } from './broker-config.js';
import { spawnBroker, type BrokerProcess } from './broker-process.js';
import { freePort } from './free-port.js';
import { RawClient, resultText } from './raw-client.js';

/** Topics of the transaction tests: `test` with 2 partitions, `orders` with 3. */
export const TX_TOPICS = '[topic=test]\nnumPartitions=2\n[topic=orders]\nnumPartitions=3';

/** Every partition of {@link TX_TOPICS}. */
export const TX_PARTITIONS: readonly { topic: string; partition: number }[] = [
  { topic: 'test', partition: 0 },
  { topic: 'test', partition: 1 },
  { topic: 'orders', partition: 0 },
  { topic: 'orders', partition: 1 },
  { topic: 'orders', partition: 2 },
];

// ---------------------------------------------------------------------------------------------
// The broker process

/** A broker data directory with its server.ini; the process can be (re)started any number of times. */
export class TxBrokerHome {
  readonly root: string;
  readonly ini: string;
  readonly dataPath: string;
  readonly httpPort: number;
  /** The running process, if any. */
  current: TxBrokerRun | undefined;

  private constructor(root: string, httpPort: number) {
    this.root = root;
    this.ini = join(root, 'server.ini');
    this.dataPath = join(root, 'data');
    this.httpPort = httpPort;
  }

  /**
   * Creates `root` (which must not exist or be empty) with a server.ini for a standalone broker:
   * the HTTP gateway on a free loopback port, {@link TX_TOPICS}, and `system` on top.
   */
  static async create(root: string, system: Readonly<Record<string, string | number>> = {}): Promise<TxBrokerHome> {
    fs.mkdirSync(root, { recursive: true });
    const httpPort = await freePort();
    const home = new TxBrokerHome(root, httpPort);
    home.configure(system);
    return home;
  }

  /** (Re)writes server.ini with `system` on top of the defaults; takes effect at the next start. */
  configure(system: Readonly<Record<string, string | number>>): void {
    fs.writeFileSync(this.ini, testBrokerIni(this.dataPath, { topics: TX_TOPICS, system: { httpPort: this.httpPort, httpHost: '127.0.0.1', ...system } }));
  }

  /** `<data>/transactions`, where the journal and checkpoints live. */
  get txDir(): string {
    return join(this.dataPath, 'transactions');
  }

  /** Starts the broker (optionally with a crash point armed) and waits until it serves. */
  async start(env: NodeJS.ProcessEnv = {}): Promise<TxBrokerRun> {
    assert.equal(this.current, undefined, 'the broker of this home is already running');
    const proc = spawnBroker(['start', '-c', this.ini], env);
    const started = await proc.waitForLog('broker started');
    const run = new TxBrokerRun(this, proc, Number(started['port']), Number(started['httpPort']));
    this.current = run;
    void proc.exited.then(() => {
      if (this.current === run) this.current = undefined;
    });
    return run;
  }

  /** Stops whatever is still running (SIGKILL; for `after` hooks). */
  async kill(): Promise<void> {
    const run = this.current;
    if (run === undefined) return;
    run.proc.child.kill('SIGKILL');
    await run.proc.exited;
  }
}

/** One run of a broker process. */
export class TxBrokerRun {
  readonly home: TxBrokerHome;
  readonly proc: BrokerProcess;
  readonly port: number;
  readonly httpPort: number;

  constructor(home: TxBrokerHome, proc: BrokerProcess, port: number, httpPort: number) {
    this.home = home;
    this.proc = proc;
    this.port = port;
    this.httpPort = httpPort;
  }

  /** SIGKILL from the test (a crash at an arbitrary moment between requests). */
  async kill(): Promise<void> {
    this.proc.child.kill('SIGKILL');
    assert.equal(await this.proc.exited, 'SIGKILL');
  }

  /** Graceful stop; the broker must exit 0. */
  async stop(): Promise<void> {
    this.proc.child.kill('SIGTERM');
    assert.equal(await this.proc.exited, 0, `broker exit; stderr: ${this.proc.stderr()}`);
  }

  /** Waits for the broker to die by itself at its armed crash point. */
  async crashedAt(point: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const how = await Promise.race([this.proc.exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 15_000)))]);
    clearTimeout(timer);
    assert.equal(how, 'SIGKILL', `the broker should have killed itself at ${point}; stderr: ${this.proc.stderr()}`);
    assert.match(this.proc.stderr(), new RegExp(`crash point ${point.replace('.', '\\.')} reached`));
  }

  /** A new raw client connected to this broker. */
  client(): Promise<TxClient> {
    return TxClient.connect(this.port);
  }

  /** The first log line with this `msg`. */
  log(msg: string): Record<string, unknown> | undefined {
    return this.proc.logs.find((l) => l['msg'] === msg);
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

/** `XID:<formatId>:<hex(gtrid)>:<hex(bqual)>:<uq>`. */
export function xaKey(gtrid: string, uq: string, bqual = 'b1', formatId = 1): string {
  return `XID:${formatId}:${Buffer.from(gtrid).toString('hex')}:${Buffer.from(bqual).toString('hex')}:${uq}`;
}

/** `TX:<session>:<n>`. */
export function localKey(session: string, n: number): string {
  return `TX:${session}:${n}`;
}

/** True for an XA key. */
export function isXa(key: string): boolean {
  return key.startsWith('XID:');
}

/** The session id a client sends with the key (a local key's own session; any text for XA). */
export function sessionOf(key: string): string {
  return isXa(key) ? 'xa-session' : (key.split(':')[1] ?? 'session');
}

/** The unique qualifier of an XA key (last part). */
export function uqOf(key: string): string | undefined {
  return isXa(key) ? key.split(':')[4] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Replies

/** A `result` frame as code + text. */
export interface Answer {
  readonly code: number;
  readonly text: string;
}

/** The XA code of a 500 `XAException:code=…` answer (fails the test on anything else). */
export function xaCodeOf(answer: Answer): number {
  assert.equal(answer.code, 500, `expected an XA error, got ${answer.code} ${answer.text}`);
  const parsed = parseXaExceptionBody(answer.text);
  assert.ok(parsed !== undefined, `not an XAException body: ${answer.text}`);
  assert.ok(answer.text.startsWith('XAException:code='), answer.text);
  return parsed.code;
}

/** Asserts an XA error with `code`. */
export function assertXa(answer: Answer, code: number, context = ''): void {
  assert.equal(xaCodeOf(answer), code, `${context} ${answer.text}`);
}

/** Asserts `result 200` with `body` (default empty). */
export function assertOk(answer: Answer, context = '', body = ''): void {
  assert.deepEqual(answer, { code: 200, text: body }, context);
}

// ---------------------------------------------------------------------------------------------
// The raw transaction client

/** Payload bytes of a test message: the tag, optionally padded to `size` bytes with `|....`. */
export function payloadBytes(tag: string, size = 0): Buffer {
  assert.ok(!tag.includes('|'), 'tags must not contain |');
  if (size <= tag.length + 1) return Buffer.from(tag);
  const data = Buffer.alloc(size, 0x2e);
  data.write(`${tag}|`, 0);
  return data;
}

/** The tag of a test message's payload. */
export function tagOf(data: Buffer): string {
  const bar = data.indexOf(0x7c);
  return (bar === -1 ? data : data.subarray(0, bar)).toString('utf8');
}

/** An acknowledged transactional put. */
export interface PutAck {
  readonly id: bigint;
  readonly partition: number;
}

/** A raw connection that speaks the `transaction` and `put` frames of metaq-reference §1.4/§1.7. */
export class TxClient {
  readonly raw: RawClient;
  #opaque = 1;

  private constructor(raw: RawClient) {
    this.raw = raw;
  }

  static async connect(port: number): Promise<TxClient> {
    return new TxClient(await RawClient.connect(port));
  }

  /** Next opaque of this connection. */
  nextOpaque(): number {
    return this.#opaque++;
  }

  /** Sends `<header> <opaque>\r\n<body>` and returns the answer. */
  async send(header: string, body?: Buffer, timeoutMs?: number): Promise<Answer> {
    const opaque = this.nextOpaque();
    const head = Buffer.from(`${header} ${opaque}\r\n`);
    return resultText(await this.raw.request(body === undefined ? head : Buffer.concat([head, body]), opaque, timeoutMs));
  }

  /**
   * Writes several requests in ONE socket write (so that the broker handles them in one turn of its
   * event loop) and returns the answers in request order.
   */
  async pipeline(requests: readonly { header: string; body?: Buffer }[]): Promise<Answer[]> {
    const opaques = requests.map(() => this.nextOpaque());
    const bytes = Buffer.concat(
      requests.flatMap((r, i) => [Buffer.from(`${r.header} ${opaques[i]}\r\n`), ...(r.body === undefined ? [] : [r.body])]),
    );
    this.raw.write(bytes);
    const answers: Answer[] = [];
    for (const opaque of opaques) answers.push(resultText(await this.raw.request(Buffer.alloc(0), opaque)));
    return answers;
  }

  /** The header of `transaction <key> <session> <TYPE> [timeout] [uq]` (without opaque). */
  static txHeader(key: string, type: string, options: { timeout?: number; uq?: string } = {}): string {
    const parts = ['transaction', key, sessionOf(key), type];
    if (options.timeout !== undefined && options.timeout > 0) parts.push(String(options.timeout));
    const uq = options.uq ?? uqOf(key);
    if (uq !== undefined && uq !== '') parts.push(uq);
    return parts.join(' ');
  }

  /** The header + body of a transactional put (8-token form, checksum -1). */
  static putRequest(key: string, topic: string, partition: number, data: Buffer): { header: string; body: Buffer } {
    return { header: `put ${topic} ${partition} ${data.length} 0 -1 ${key}`, body: data };
  }

  /** `transaction <key> <session> BEGIN [timeout] [uq]`. */
  begin(key: string, timeoutSeconds?: number): Promise<Answer> {
    return this.send(TxClient.txHeader(key, 'BEGIN', timeoutSeconds === undefined ? {} : { timeout: timeoutSeconds }));
  }

  /** A `transaction` command of `type` on `key`. */
  tx(key: string, type: 'END' | 'PREPARE' | 'COMMIT_ONE_PHASE' | 'COMMIT_TWO_PHASE' | 'ROLLBACK' | 'FORGET' | 'BEGIN'): Promise<Answer> {
    return this.send(TxClient.txHeader(key, type));
  }

  /** A raw put carrying `key`. */
  putRaw(key: string, topic: string, partition: number, data: Buffer): Promise<Answer> {
    const { header, body } = TxClient.putRequest(key, topic, partition, data);
    return this.send(header, body);
  }

  /** A transactional put that must succeed: checks the `<id> <partition> -1` answer. */
  async put(key: string, topic: string, partition: number, data: Buffer): Promise<PutAck> {
    const answer = await this.putRaw(key, topic, partition, data);
    assert.equal(answer.code, 200, `put in ${key}: ${answer.text}`);
    const match = /^(-?\d+) (\d+) -1$/.exec(answer.text);
    assert.ok(match !== null, `a transactional put answers "<id> <partition> -1", got "${answer.text}"`);
    assert.equal(Number(match[2]), partition);
    return { id: BigInt(match[1] ?? ''), partition };
  }

  /** A plain (non-transactional) put that must succeed. */
  async plainPut(topic: string, partition: number, data: Buffer): Promise<PutAck & { offset: number }> {
    const answer = await this.send(`put ${topic} ${partition} ${data.length} 0 -1`, data);
    assert.equal(answer.code, 200, answer.text);
    const [id, p, offset] = answer.text.split(' ');
    return { id: BigInt(id ?? ''), partition: Number(p), offset: Number(offset) };
  }

  /** RECOVER (`transaction null <session> RECOVER [uq]`): the listed keys, in broker order. */
  async recover(uq?: string): Promise<string[]> {
    const answer = await this.send(`transaction null recover-session RECOVER${uq === undefined ? '' : ` ${uq}`}`);
    assert.equal(answer.code, 200, answer.text);
    return answer.text === '' ? [] : answer.text.split('\r\n');
  }

  close(): void {
    this.raw.close();
  }
}

/** Begins `key` and puts one message per `{ topic, partition, tag }`; returns the acks. */
export async function beginWithMessages(
  client: TxClient,
  key: string,
  messages: readonly { topic: string; partition: number; tag: string; size?: number }[],
  timeoutSeconds?: number,
): Promise<PutAck[]> {
  assertOk(await client.begin(key, timeoutSeconds), `BEGIN ${key}`);
  const acks: PutAck[] = [];
  for (const m of messages) acks.push(await client.put(key, m.topic, m.partition, payloadBytes(m.tag, m.size)));
  return acks;
}

/** BEGIN, puts, END, PREPARE (must vote XA_OK). */
export async function preparedBranch(client: TxClient, key: string, messages: readonly { topic: string; partition: number; tag: string; size?: number }[]): Promise<PutAck[]> {
  const acks = await beginWithMessages(client, key, messages);
  assertOk(await client.tx(key, 'END'), `END ${key}`);
  assertOk(await client.tx(key, 'PREPARE'), `PREPARE ${key}`, '0');
  return acks;
}

/** `count` messages spread over the partitions of `test`, tagged `<prefix>-<i>`. */
export function spread(prefix: string, count: number, size?: number): { topic: string; partition: number; tag: string; size?: number }[] {
  return Array.from({ length: count }, (_, i) => ({ topic: i % 3 === 2 ? 'orders' : 'test', partition: i % 2, tag: `${prefix}-${i}`, ...(size === undefined ? {} : { size }) }));
}

// ---------------------------------------------------------------------------------------------
// Admin HTTP routes

/** `POST /api/transactions/<key>/<action>[?reason=…]`. */
export async function adminPost(httpPort: number, key: string, action: 'commit' | 'rollback' | 'forget', reason?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const query = reason === undefined ? '' : `?reason=${encodeURIComponent(reason)}`;
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/transactions/${encodeURIComponent(key)}/${action}${query}`, { method: 'POST' });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** `GET /api/transactions`: the prepared and heuristic branches. */
export async function adminList(httpPort: number): Promise<{ key: string; uniqueQualifier?: string; state: string; messages: number; preparedAgeSeconds?: number }[]> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/transactions`);
  assert.equal(response.status, 200);
  const json = (await response.json()) as { branches: { key: string; state: string; messages: number }[] };
  return json.branches;
}

/** `GET /api/transactions/stats`: the transaction engine's counters. */
export async function adminStats(httpPort: number): Promise<TransactionEngineStats> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/transactions/stats`);
  assert.equal(response.status, 200);
  return (await response.json()) as TransactionEngineStats;
}

// ---------------------------------------------------------------------------------------------
// Reading partitions

/** A stored message as found by {@link readPartition}. */
export interface StoredMessage {
  readonly tag: string;
  readonly id: bigint;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** Reads a partition from offset 0 with raw `get` until 404 (an absent partition reads as empty). */
export async function readPartition(client: TxClient, topic: string, partition: number, maxSize = 1024 * 1024): Promise<StoredMessage[]> {
  const found: StoredMessage[] = [];
  let offset = 0;
  for (;;) {
    const opaque = client.nextOpaque();
    const frame = await client.raw.request(`get ${topic} tx-reader ${partition} ${offset} ${maxSize} ${opaque}\r\n`, opaque);
    if (frame.type === 'result') {
      assert.equal(frame.code, 404, `reading ${topic}-${partition} at ${offset}: ${frame.code} ${frame.body.toString()}`);
      return found;
    }
    const { records, consumed } = readMessageRecords(frame.body, { maxDataLength: 256 * 1024 * 1024 });
    assert.ok(records.length > 0, `no whole record at ${topic}-${partition}@${offset} (maxSize ${maxSize} too small?)`);
    for (const record of records) found.push({ tag: tagOf(record.data), id: record.id, topic, partition, offset: offset + record.position });
    offset += consumed;
  }
}

/** Reads every partition of {@link TX_PARTITIONS}; returns every stored message. */
export async function readAll(port: number, maxSize?: number): Promise<StoredMessage[]> {
  const client = await TxClient.connect(port);
  try {
    const all: StoredMessage[] = [];
    for (const { topic, partition } of TX_PARTITIONS) all.push(...(await readPartition(client, topic, partition, maxSize)));
    return all;
  } finally {
    client.close();
  }
}

/** How often each tag is stored. */
export function countTags(messages: readonly StoredMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(m.tag, (counts.get(m.tag) ?? 0) + 1);
  return counts;
}

/**
 * The crash tests' verdict: every `committed` tag is stored exactly once, no `aborted` tag is
 * stored at all, and (with `exhaustive`) nothing else is stored either.
 */
export function assertMessages(
  stored: readonly StoredMessage[],
  expected: { committed: Iterable<string>; aborted: Iterable<string>; exhaustive?: boolean },
  context = '',
): void {
  const counts = countTags(stored);
  const committed = new Set(expected.committed);
  for (const tag of committed) assert.equal(counts.get(tag) ?? 0, 1, `${context}: committed message ${tag} must be stored exactly once`);
  for (const tag of expected.aborted) assert.equal(counts.get(tag) ?? 0, 0, `${context}: aborted/uncommitted message ${tag} must never be visible`);
  if (expected.exhaustive === true) {
    const unexpected = [...counts.keys()].filter((tag) => !committed.has(tag));
    assert.deepEqual(unexpected, [], `${context}: messages nobody committed are stored`);
  }
}

/** Checks that acknowledged transactional puts are stored under the id and partition they were acknowledged with. */
export function assertIds(stored: readonly StoredMessage[], acks: ReadonlyMap<string, PutAck>, context = ''): void {
  const byTag = new Map(stored.map((m) => [m.tag, m]));
  for (const [tag, ack] of acks) {
    const m = byTag.get(tag);
    assert.ok(m !== undefined, `${context}: ${tag} not stored`);
    assert.equal(m.id, ack.id, `${context}: ${tag} stored with another id than acknowledged`);
    assert.equal(m.partition, ack.partition, `${context}: ${tag} stored in another partition than acknowledged`);
  }
}

/** Polls `check` every 100 ms until it returns true (fails after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
