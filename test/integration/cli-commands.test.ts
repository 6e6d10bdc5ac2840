/**
 * The `metaq` CLI against a real broker, run as a child process exactly as a user runs it
 * (`node --import tsx src/cli/metaq.ts …`): pub (argument and stdin), sub with --max (and a
 * second sub of the same group resuming after the committed offset), a new group starting at
 * the end, SIGTERM committing offsets, stats (table, --json, config), broker error answers and
 * an unreachable broker.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOffsetsFile } from '../../src/client/offsets/offsets-file.js';
import { startClientTestBroker, type ClientTestBroker } from '../helpers/client-test-broker.js';
import { freePort } from '../helpers/free-port.js';

const CLI = fileURLToPath(new URL('../../src/cli/metaq.ts', import.meta.url));
const TOPICS = ['[topic=test]', '[topic=lines]', '[topic=resume]', '[topic=latest]', '[topic=term]', ''].join('\n');
/** A CLI run that takes longer than this is stuck. */
const RUN_DEADLINE_MS = 20_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Started {
  readonly child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  readonly done: Promise<Run>;
}

describe('metaq CLI ↔ broker', () => {
  let broker: ClientTestBroker;
  let home: string;

  before(async () => {
    broker = await startClientTestBroker({ system: { numPartitions: 2 }, topics: TOPICS });
    home = join(broker.dir, 'metaq-home');
  });
  after(async () => {
    await broker?.cleanup();
  });

  /** Starts `metaq <args>` with this file's broker and METAQ_HOME; `input` is written to stdin. */
  function start(args: readonly string[], input?: string): Started {
    const env: NodeJS.ProcessEnv = { ...process.env, METAQ_SERVER: broker.url, METAQ_HOME: home };
    delete env['NODE_TEST_CONTEXT'];
    delete env['METAQ_LOG_LEVEL'];
    delete env['NO_COLOR'];
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (input === undefined) child.stdin?.end();
    else child.stdin?.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_DEADLINE_MS);
    const done = new Promise<Run>((resolve) => {
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    return { child, stdout: () => stdout, done };
  }

  function metaq(args: readonly string[], input?: string): Promise<Run> {
    return start(args, input).done;
  }

  function jsonLines(text: string): Record<string, unknown>[] {
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async function publish(topic: string, texts: readonly string[]): Promise<void> {
    const run = await metaq(['pub', '-t', topic, '-'], `${texts.join('\n')}\n`);
    assert.equal(run.code, 0, run.stderr);
  }

  it('pub <text> sends one message and prints its id, partition and offset', async () => {
    const run = await metaq(['pub', '-t', 'test', 'hello world']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^sent id=\d+ partition=[01] offset=\d+\n$/);
    assert.equal(run.stderr, '');
  });

  it('pub - sends one message per stdin line (empty lines skipped), in order, as JSON lines', async () => {
    const run = await metaq(['pub', '-t', 'lines', '-p', '1', '-a', 'csv', '--json', '-'], 'one\ntwo\n\nthree\r\nfour');
    assert.equal(run.code, 0, run.stderr);
    const sent = jsonLines(run.stdout);
    assert.equal(sent.length, 4);
    for (const line of sent) {
      assert.deepEqual(Object.keys(line), ['id', 'topic', 'partition', 'offset']);
      assert.equal(line['topic'], 'lines');
      assert.equal(line['partition'], 1);
      assert.match(line['id'] as string, /^\d+$/, 'ids are strings (64-bit)');
    }
    const offsets = sent.map((line) => line['offset'] as number);
    assert.deepEqual([...offsets].sort((a, b) => a - b), offsets, 'printed in input order = log order');
    // What a consumer sees: the four lines with the attribute, on partition 1.
    const got = await metaq(['sub', '-t', 'lines', '-g', 'lines-check', '--from-beginning', '--max', '4', '--json']);
    assert.equal(got.code, 0, got.stderr);
    const received = jsonLines(got.stdout);
    assert.deepEqual(
      received.map((m) => [m['data'], m['attribute'], m['partition'], m['encoding']]),
      ['one', 'two', 'three', 'four'].map((data) => [data, 'csv', 1, 'utf8']),
    );
    assert.deepEqual(
      received.map((m) => m['id']),
      sent.map((s) => s['id']),
    );
  });

  it('sub --max N prints N messages and commits; a second sub of the group resumes after them', async () => {
    const texts = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
    await publish('resume', texts);
    const first = await metaq(['sub', '-t', 'resume', '-g', 'resumers', '--from-beginning', '--max', '4']);
    assert.equal(first.code, 0, first.stderr);
    const firstLines = first.stdout.split('\n').filter((l) => l !== '');
    assert.equal(firstLines.length, 4, first.stdout);
    for (const line of firstLines) assert.match(line, /^[01]:\d+ \d+ m\d$/);
    const file = join(home, 'offsets', 'resumers.json');
    assert.ok(fs.existsSync(file), 'offsets committed to $METAQ_HOME/offsets/<group>.json');

    const second = await metaq(['sub', '-t', 'resume', '-g', 'resumers', '--from-beginning', '--max', '2']);
    assert.equal(second.code, 0, second.stderr);
    const secondLines = second.stdout.split('\n').filter((l) => l !== '');
    assert.equal(secondLines.length, 2, second.stdout);
    const seen = [...firstLines, ...secondLines].map((line) => line.split(' ')[2]);
    assert.deepEqual([...seen].sort(), texts, 'every message exactly once across the two runs');
  });

  it('a new group without --from-beginning starts at the end (only new messages)', async () => {
    await publish('latest', ['old-1', 'old-2']);
    const consumer = start(['sub', '-t', 'latest', '-g', 'latecomers', '--max', '1']);
    let exited = false;
    void consumer.done.then(() => (exited = true));
    // The consumer resolves "the end" on its first fetch; keep publishing until it sees one.
    for (let i = 0; !exited && i < 50; i++) {
      await publish('latest', [`late-${i}`]);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const run = await consumer.done;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^[01]:\d+ \d+ late-\d+\n$/);
  });

  it('SIGTERM commits the offsets and exits 0', async () => {
    await publish('term', ['t0', 't1', 't2']);
    const consumer = start(['sub', '-t', 'term', '-g', 'terminators', '--from-beginning']);
    const deadline = Date.now() + 15_000;
    while (consumer.stdout().split('\n').length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    consumer.child.kill('SIGTERM');
    const run = await consumer.done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.split('\n').filter((l) => l !== '').length, 3);
    const committed = parseOffsetsFile(fs.readFileSync(join(home, 'offsets', 'terminators.json'), 'utf8')).get('terminators') ?? [];
    const stats = JSON.parse((await metaq(['stats', 'offsets', '--json'])).stdout) as Record<string, string>;
    const maxOffsets = (stats['term'] ?? '').split('\n').map((line) => Number(/max_offset (\d+)/.exec(line)?.[1]));
    assert.deepEqual(
      committed.map((o) => o.offset).sort((a, b) => a - b),
      [...maxOffsets].sort((a, b) => a - b),
      'committed up to the end of each partition',
    );
  });

  it('stats prints an aligned two-column table; --json an object', async () => {
    const table = await metaq(['stats']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.ok(lines.length > 5);
    const valueColumn = (line: string): number => (/^\S+\s+/.exec(line) ?? [''])[0].length;
    assert.ok(lines.every((line) => valueColumn(line) === valueColumn(lines[0] as string)), 'values aligned');
    assert.match(table.stdout, /^broker_id\s+7$/m);
    assert.match(table.stdout, /^version\s+\d+\.\d+\.\d+$/m);
    assert.ok(!table.stdout.includes('\u001b['), 'no colours when stdout is not a terminal');

    const json = await metaq(['stats', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const object = JSON.parse(json.stdout) as Record<string, string>;
    assert.equal(object['broker_id'], '7');
    assert.equal(object['port'], String(broker.port));

    const topics = await metaq(['stats', 'topics']);
    assert.match(topics.stdout, /^test\s+partitions \d+ message_count \d+/m);
  });

  it('stats config prints the raw server.ini', async () => {
    const run = await metaq(['stats', 'config']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, fs.readFileSync(join(broker.dir, 'server.ini'), 'utf8'));
    const json = await metaq(['stats', 'config', '--json']);
    assert.equal((JSON.parse(json.stdout) as { config: string }).config, run.stdout);
  });

  it('broker error answers are one line with the status and text, exit 1', async () => {
    const run = await metaq(['pub', '-t', 'unconfigured', 'x']);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^metaq: put to 'unconfigured' .*broker answered 500: .*unconfigured.* \[METAQ_ERR_BROKER\]\n$/);
  });

  it('a partition the topic does not have is a usage problem, exit 2', async () => {
    const run = await metaq(['pub', '-t', 'test', '-p', '7', 'x']);
    assert.equal(run.code, 2);
    assert.equal(run.stderr, "metaq: topic 'test' has no partition 7 (its partitions: 0-1)\n");
  });

  it('an unreachable broker: one friendly line at once, exit 1', async () => {
    const port = await freePort();
    const url = `meta://127.0.0.1:${port}`;
    for (const args of [['stats'], ['pub', '-t', 'test', 'x'], ['sub', '-t', 'test', '-g', 'nobody']]) {
      const started = Date.now();
      // A long request timeout: only failing fast on the refused connection keeps this short.
      const run = await metaq([...args, '-s', url, '--timeout', '20000']);
      assert.equal(run.code, 1, args.join(' '));
      assert.equal(run.stdout, '');
      assert.equal(run.stderr, `metaq: cannot connect to ${url} (connection refused); is the broker running? (npm start) [METAQ_ERR_CONNECTION]\n`);
      assert.ok(Date.now() - started < 10_000, `fails fast, not after the request timeout (${Date.now() - started} ms)`);
    }
  });
});
