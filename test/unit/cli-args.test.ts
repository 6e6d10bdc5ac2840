/**
 * The `metaq` CLI's argument handling, without a broker: per-command parsing and validation,
 * server resolution, defaults from the environment, and top-level dispatch (help, version,
 * unknown commands and options) with exit statuses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import { UsageError, defaultOffsetsFile, defaultRecoverPath, parseInteger, resolveServer } from '../../src/cli/commands/args.js';
import type { CliContext, OutputStream } from '../../src/cli/commands/context.js';
import { COMMANDS, runCli } from '../../src/cli/commands/main.js';
import { describePartitions, fixedPartitionSelector, parsePubArgs, type PubOptions } from '../../src/cli/commands/pub.js';
import { parseStatsArgs, type StatsOptions } from '../../src/cli/commands/stats.js';
import { parseSubArgs, type SubOptions } from '../../src/cli/commands/sub.js';
import { metaqVersion } from '../../src/common/version.js';

const ENV: NodeJS.ProcessEnv = { METAQ_HOME: '/tmp/metaq-home' };

function usageError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${String(error)}`);
    assert.match(error.message, pattern);
    assert.match(error.usage, /^Usage: metaq/);
    return true;
  };
}

function pub(args: string[], env = ENV): PubOptions {
  const parsed = parsePubArgs(args, env);
  assert.notEqual(parsed, 'help');
  return parsed as PubOptions;
}

function sub(args: string[], env = ENV): SubOptions {
  const parsed = parseSubArgs(args, env);
  assert.notEqual(parsed, 'help');
  return parsed as SubOptions;
}

function stats(args: string[], env = ENV): StatsOptions {
  const parsed = parseStatsArgs(args, env);
  assert.notEqual(parsed, 'help');
  return parsed as StatsOptions;
}

describe('metaq: server address', () => {
  it('defaults to $METAQ_SERVER, then meta://127.0.0.1:8123', () => {
    assert.equal(resolveServer('pub', undefined, {}, 'u'), 'meta://127.0.0.1:8123');
    assert.equal(resolveServer('pub', undefined, { METAQ_SERVER: 'meta://10.0.0.5:9000' }, 'u'), 'meta://10.0.0.5:9000');
    assert.equal(resolveServer('pub', undefined, { METAQ_SERVER: '' }, 'u'), 'meta://127.0.0.1:8123');
    assert.equal(resolveServer('pub', 'meta://h:1', { METAQ_SERVER: 'meta://10.0.0.5:9000' }, 'u'), 'meta://h:1', '-s wins');
  });

  it('accepts host and host:port without the scheme, and canonicalises', () => {
    assert.equal(resolveServer('pub', 'localhost', {}, 'u'), 'meta://localhost:8123');
    assert.equal(resolveServer('pub', '127.0.0.1:18123', {}, 'u'), 'meta://127.0.0.1:18123');
    assert.equal(resolveServer('pub', 'meta://[::1]:5', {}, 'u'), 'meta://[::1]:5');
  });

  it('refuses other schemes and bad ports, naming where the value came from', () => {
    assert.throws(() => resolveServer('pub', 'http://x:1', {}, 'Usage: metaq pub'), usageError(/^pub: -s\/--server "http:\/\/x:1" is not a broker address/));
    assert.throws(() => resolveServer('sub', undefined, { METAQ_SERVER: 'x:99999' }, 'Usage: metaq sub'), usageError(/\$METAQ_SERVER "x:99999"/));
  });
});

describe('metaq pub: arguments', () => {
  it('parses topic, attribute, partition, key, json, timeout and the text', () => {
    assert.deepEqual(pub(['-t', 'test', '-a', 'greeting', '-p', '1', '--json', '--timeout', '500', '-s', 'h:1', 'hello world']), {
      server: 'meta://h:1',
      json: true,
      timeoutMs: 500,
      topic: 'test',
      attribute: 'greeting',
      partition: 1,
      key: undefined,
      text: 'hello world',
    });
    const keyed = pub(['--topic=test', '--key', 'user-1', 'x']);
    assert.equal(keyed.key, 'user-1');
    assert.equal(keyed.server, 'meta://127.0.0.1:8123');
    assert.equal(keyed.json, false);
    assert.equal(keyed.timeoutMs, undefined);
  });

  it('reads stdin for -, and takes text starting with a dash after --', () => {
    assert.equal(pub(['-t', 'test', '-']).text, undefined);
    assert.equal(pub(['-t', 'test', '--', '-5 degrees']).text, '-5 degrees');
    assert.equal(pub(['-t', 'test', '']).text, '', 'an empty message is a message');
  });

  it('--help wins over everything else', () => {
    assert.equal(parsePubArgs(['--help'], ENV), 'help');
    assert.equal(parsePubArgs(['-t', 'test', '-h'], ENV), 'help');
  });

  it('refuses missing or bad arguments with a UsageError', () => {
    assert.throws(() => pub(['hello']), usageError(/^pub: -t\/--topic is required$/));
    assert.throws(() => pub(['-t', 'test']), usageError(/give the message text, or -/));
    assert.throws(() => pub(['-t', 'test', 'a', 'b']), usageError(/expected one message argument, got 2; quote/));
    assert.throws(() => pub(['-t', 'a b', 'x']), usageError(/^pub: invalid topic "a b"/));
    assert.throws(() => pub(['-t', 'test', '-p', '1', '-k', 'k', 'x']), usageError(/mutually exclusive/));
    assert.throws(() => pub(['-t', 'test', '-p', 'one', 'x']), usageError(/^pub: -p\/--partition must be an integer from 0 to 2147483647, got "one"/));
    assert.throws(() => pub(['-t', 'test', '--partition=-1', 'x']), usageError(/-p\/--partition must be/));
    assert.throws(() => pub(['-t', 'test', '-p', '-1', 'x']), usageError(/^pub: option '-p' argument is ambiguous\. Did you forget/));
    assert.throws(() => pub(['-t', 'test', '--timeout', '0', 'x']), usageError(/^pub: --timeout must be an integer from 1/));
  });

  it('turns parseArgs errors into short usage errors, with a suggestion for typos', () => {
    assert.throws(() => pub(['-t', 'test', '--jsn', 'x']), usageError(/^pub: unknown option '--jsn'; did you mean '--json'\?$/));
    assert.throws(() => pub(['-t', 'test', '--frobnicate', 'x']), usageError(/^pub: unknown option '--frobnicate'$/));
    assert.throws(() => pub(['-t', 'test', '-z', 'x']), usageError(/^pub: unknown option '-z'$/));
    assert.throws(() => pub(['-t']), usageError(/^pub: option '-t, --topic <value>' argument missing$/));
  });

  it('a fixed partition is checked against the topic', () => {
    const refs = [0, 1, 2].map((partition) => ({ brokerId: 0, brokerUrl: 'meta://h:1', partition }));
    const selector = fixedPartitionSelector(2);
    assert.equal(selector.select('t', refs, { topic: 't', data: 'x' }).partition, 2);
    assert.throws(() => fixedPartitionSelector(5).select('t', refs, { topic: 't', data: 'x' }), /topic 't' has no partition 5/);
    assert.equal(describePartitions([2, 0, 1]), '0-2');
    assert.equal(describePartitions([0]), '0');
    assert.equal(describePartitions([0, 2, 5]), '0, 2, 5');
  });
});

describe('metaq sub: arguments', () => {
  it('parses topic, group and flags; offsets and recover store default under $METAQ_HOME', () => {
    assert.deepEqual(sub(['-t', 'test', '-g', 'readers', '--from-beginning', '--max', '10']), {
      server: 'meta://127.0.0.1:8123',
      json: false,
      timeoutMs: undefined,
      topic: 'test',
      group: 'readers',
      fromBeginning: true,
      max: 10,
      offsetsFile: join('/tmp/metaq-home', 'offsets', 'readers.json'),
      recoverPath: join('/tmp/metaq-home', 'recover'),
    });
    const defaults = sub(['-t', 'test', '-g', 'readers']);
    assert.equal(defaults.fromBeginning, false, 'a new group starts at the end unless --from-beginning');
    assert.equal(defaults.max, undefined);
  });

  it('--offsets-file and --recover-path override the defaults', () => {
    const options = sub(['-t', 'test', '-g', 'g', '--offsets-file', '/x/o.json', '--recover-path', '/x/r', '--json']);
    assert.equal(options.offsetsFile, '/x/o.json');
    assert.equal(options.recoverPath, '/x/r');
    assert.equal(options.json, true);
  });

  it('without $METAQ_HOME, files go under ~/.metaq', () => {
    assert.equal(defaultOffsetsFile({}, 'g'), join(os.homedir(), '.metaq', 'offsets', 'g.json'));
    assert.equal(defaultRecoverPath({}), join(os.homedir(), '.metaq', 'recover'));
  });

  it('refuses missing or bad arguments', () => {
    assert.throws(() => sub(['-g', 'g']), usageError(/^sub: -t\/--topic is required$/));
    assert.throws(() => sub(['-t', 'test']), usageError(/^sub: -g\/--group is required$/));
    assert.throws(() => sub(['-t', 'test', '-g', 'my.group']), usageError(/^sub: invalid group "my\.group": it contains "\."/));
    assert.throws(() => sub(['-t', 'test', '-g', 'g', '--max', '0']), usageError(/^sub: --max must be an integer >= 1, got "0"$/));
    assert.throws(() => sub(['-t', 'test', '-g', 'g', 'extra']), usageError(/^sub: unexpected argument "extra"$/));
    assert.throws(() => sub(['-t', 'test', '-g', 'g', '--from-begining']), usageError(/did you mean '--from-beginning'\?/));
  });
});

describe('metaq stats: arguments', () => {
  it('takes an optional item', () => {
    assert.equal(stats([]).item, undefined);
    assert.equal(stats(['offsets', '--json']).item, 'offsets');
    assert.equal(stats(['offsets', '--json']).json, true);
    assert.equal(stats(['config', '-s', 'meta://h:2']).server, 'meta://h:2');
    assert.throws(() => stats(['a', 'b']), usageError(/at most one item/));
  });
});

describe('parseInteger', () => {
  it('accepts integers in range only', () => {
    assert.equal(parseInteger('--n', '42', 'u', 1), 42);
    assert.equal(parseInteger('--n', ' 7 ', 'u', 1), 7);
    for (const bad of ['', '1.5', '1e3', '0x10', 'abc', '99999999999999999999']) {
      assert.throws(() => parseInteger('--n', bad, 'u', 1), UsageError, JSON.stringify(bad));
    }
  });
});

/** A CliContext whose streams collect what is written. */
function fakeContext(env: NodeJS.ProcessEnv = ENV): { ctx: CliContext; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stream = (append: (text: string) => void): OutputStream => ({
    write(chunk: string) {
      append(chunk);
      return true;
    },
    once: () => undefined,
    isTTY: false,
  });
  const ctx: CliContext = {
    stdout: stream((t) => (out += t)),
    stderr: stream((t) => (err += t)),
    stdin: new PassThrough(),
    env,
    onInterrupt: () => () => undefined,
  };
  return { ctx, out: () => out, err: () => err };
}

describe('metaq: top level', () => {
  it('--help lists every command and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const { ctx, out, err } = fakeContext();
      assert.equal(await runCli(args, ctx), 0);
      assert.match(out(), /^Usage: metaq <command> \[options\]/);
      for (const command of COMMANDS) assert.match(out(), new RegExp(`^  ${command.name} `, 'm'));
      assert.equal(err(), '');
    }
  });

  it('<command> --help and help <command> print the command usage', async () => {
    for (const args of [['pub', '--help'], ['help', 'pub']]) {
      const { ctx, out } = fakeContext();
      assert.equal(await runCli(args, ctx), 0);
      assert.match(out(), /^Usage: metaq pub -t <topic>/);
    }
    const { ctx, out } = fakeContext();
    assert.equal(await runCli(['sub', '-h'], ctx), 0);
    assert.match(out(), /--from-beginning/);
  });

  it('--version prints the package version', async () => {
    const { ctx, out } = fakeContext();
    assert.equal(await runCli(['--version'], ctx), 0);
    assert.equal(out(), `${metaqVersion()}\n`);
    assert.match(out(), /^\d+\.\d+\.\d+/);
  });

  it('an unknown or missing command prints a suggestion and the usage on stderr, exit 2', async () => {
    const typo = fakeContext();
    assert.equal(await runCli(['pbu', '-t', 'x'], typo.ctx), 2);
    assert.match(typo.err(), /^metaq: unknown command 'pbu'; did you mean 'pub'\?\n\nUsage: metaq <command>/);
    assert.equal(typo.out(), '');
    const none = fakeContext();
    assert.equal(await runCli([], none.ctx), 2);
    assert.match(none.err(), /^metaq: missing command/);
    const option = fakeContext();
    assert.equal(await runCli(['-s', 'x', 'pub'], option.ctx), 2);
    assert.match(option.err(), /^metaq: unknown option '-s' \(options go after the command/);
  });

  it('an unknown option of a command prints that command usage, exit 2', async () => {
    const { ctx, out, err } = fakeContext();
    assert.equal(await runCli(['stats', '--bogus'], ctx), 2);
    assert.match(err(), /^metaq: stats: unknown option '--bogus'\n\nUsage: metaq stats/);
    assert.equal(out(), '');
  });
});
