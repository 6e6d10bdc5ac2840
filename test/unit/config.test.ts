/**
 * Unit tests of src/common/config: INI reading, value validation, defaults, topic inheritance
 * and lookup, freezing, the delete policy parser, the expression evaluator and the shipped
 * conf/server.ini.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, ErrorCode, InvalidArgumentError } from '../../src/common/errors.js';
import {
  closestMatch,
  configuredTopicNames,
  evaluateIntegerExpression,
  isValidTopicName,
  levenshtein,
  loadBrokerConfig,
  parseBrokerConfig,
  parseDeletePolicy,
  parseIni,
  topicConfigFor,
  topicPatternMatches,
  type BrokerConfig,
  type ParseBrokerConfigOptions,
} from '../../src/common/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILE = 'conf/server.ini';
const MACHINE = { hostName: '10.1.2.3', cpuCount: 4, homeDir: '/home/meta' } as const;

/** Parses `lines` as conf/server.ini with pinned machine defaults and base directory. */
function parse(lines: readonly string[], options: ParseBrokerConfigOptions = {}): BrokerConfig {
  return parseBrokerConfig(lines.join('\n'), { file: FILE, baseDir: '/srv/metaq', machine: MACHINE, ...options });
}

/** The smallest valid standalone file, with `extra` lines appended to [system]. */
function minimal(extra: readonly string[] = [], topics: readonly string[] = ['[topic=test]']): string[] {
  return ['[system]', 'brokerId=1', ...extra, '[zookeeper]', 'zk.zkEnable=false', ...topics];
}

/** Asserts that `fn` throws a ConfigError at `line` (or without a line) whose message matches `pattern`. */
function assertConfigError(fn: () => unknown, pattern: RegExp, line?: number): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.code, ErrorCode.Config);
  assert.match(caught.message, pattern);
  assert.equal(caught.line, line, `line of: ${caught.message}`);
  if (line !== undefined) assert.ok(caught.message.startsWith(`${FILE}:${line}: `), caught.message);
  return caught;
}

describe('parseIni', () => {
  it('reads sections, keys, raw values and line numbers; skips comments and blank lines', () => {
    const doc = parseIni('; comment\n# another\n\n[system]\n  brokerId = 1*2 \nname=a=b\n[topic=order-*.x]\nblank=\r\n', 'f.ini');
    assert.deepEqual(doc.sections, [
      { name: 'system', line: 4, entries: [{ key: 'brokerId', value: '1*2', line: 5 }, { key: 'name', value: 'a=b', line: 6 }] },
      { name: 'topic=order-*.x', line: 7, entries: [{ key: 'blank', value: '', line: 8 }] },
    ]);
  });

  it('keeps ; and # after a value (cron expressions may contain #)', () => {
    const doc = parseIni('[system]\ndeleteWhen=0 0 6 ? * 6#3 ; not a comment\n', 'f.ini');
    assert.equal(doc.sections[0]?.entries[0]?.value, '0 0 6 ? * 6#3 ; not a comment');
  });
});

describe('parseBrokerConfig: structural errors', () => {
  it('rejects a duplicate key naming both lines', () => {
    const error = assertConfigError(() => parse(['[system]', 'brokerId=1', 'serverPort=1', 'brokerId=2']), /duplicate key 'brokerId' in \[system\]/, 4);
    assert.match(error.message, /line 2/);
    assert.match(error.message, /line 4/);
  });

  it('rejects a duplicate section naming the first line', () => {
    assertConfigError(() => parse([...minimal(), '[topic=a]', '[topic=a]']), /duplicate section \[topic=a\].*line 6/, 7);
  });

  it('rejects a line that is neither a section, a key=value nor a comment', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=1', 'this is garbage']), /cannot parse line 'this is garbage'/, 3);
  });

  it('rejects an unterminated section header and a key outside any section', () => {
    assertConfigError(() => parse(['[system', 'brokerId=1']), /missing the closing '\]'/, 1);
    assertConfigError(() => parse(['brokerId=1', '[system]']), /before any section/, 1);
  });

  it('rejects an unknown section, naming it and the valid forms', () => {
    const error = assertConfigError(() => parse([...minimal(), '[topics]']), /unknown section \[topics\]/, 6);
    assert.match(error.message, /\[system\], \[zookeeper\] and \[topic=<name or pattern>\]/);
    assertConfigError(() => parse([...minimal(), '[systen]']), /did you mean \[system\]\?/, 6);
    assertConfigError(() => parse([...minimal(), '[topic]']), /needs a name/, 6);
  });

  it('rejects an unknown key with the closest valid key of that section and its line', () => {
    const lines = ['; header', '[system]', 'brokerId=0', 'serverPort=8123', 'numPartitions=1', 'dataPath=./data', 'unflushThreshhold=0'];
    assertConfigError(
      () => parse([...lines, '[zookeeper]', 'zk.zkEnable=false', '[topic=t]']),
      /^conf\/server\.ini:7: unknown key 'unflushThreshhold' in \[system\]; did you mean 'unflushThreshold'\?$/,
      7,
    );
    assertConfigError(() => parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkConect=x:1']), /did you mean 'zk\.zkConnect'\?/, 4);
    assertConfigError(() => parse([...minimal(), 'numPartition=3']), /unknown key 'numPartition' in a \[topic=\.\.\.\] section; did you mean 'numPartitions'\?/, 6);
  });

  it('lists the valid keys when nothing is close, and says where a misplaced key belongs', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=1', 'frobnicate=1']), /unknown key 'frobnicate' in \[system\]; valid keys: brokerId, hostName/, 3);
    assertConfigError(() => parse(['[system]', 'brokerId=1', 'zk.zkConnect=a:1']), /belongs in \[zookeeper\], not \[system\]/, 3);
    assertConfigError(() => parse([...minimal(), 'brokerId=3']), /'brokerId' cannot be set per topic; it belongs in \[system\]/, 6);
  });

  it('rejects invalid topic names and patterns', () => {
    assertConfigError(() => parse(minimal([], ['[topic=]'])), /invalid topic section.*empty/, 5);
    assertConfigError(() => parse(minimal([], ['[topic=a/b]'])), /'\/'/, 5);
    assertConfigError(() => parse(minimal([], ['[topic=a b]'])), /whitespace/, 5);
    assertConfigError(() => parse(minimal([], ['[topic=a\0b]'])), /control character/, 5);
    assertConfigError(() => parse(minimal([], ['[topic=..]'])), /not a usable directory name/, 5);
    assertConfigError(() => parse(minimal([], ['[topic=a]', '[topic= a]'])), /duplicate topic section for 'a' \(first defined at line 5\)/, 6);
  });
});

describe('parseBrokerConfig: required keys and sections', () => {
  it('requires brokerId, naming the fix', () => {
    assertConfigError(
      () => parse(['[system]', 'serverPort=8123', '[zookeeper]', 'zk.zkEnable=false', '[topic=t]']),
      /missing required key 'brokerId' in \[system\]; add brokerId=<0-1023>/,
      1,
    );
  });

  it('rejects a blank required value', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=', '[zookeeper]', 'zk.zkEnable=false', '[topic=t]']), /blank value for brokerId/, 2);
  });

  it('requires a [system] section', () => {
    assertConfigError(() => parse(['[zookeeper]', 'zk.zkEnable=false', '[topic=t]']), /no \[system\] section/);
  });

  it('requires at least one topic section', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkEnable=false']), /no topic section; add at least one \[topic=<name>\]/);
  });

  it('requires zk.zkConnect only when zk.zkEnable=true', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkEnable=true', '[topic=t]']), /missing zk\.zkConnect.*zk\.zkEnable=true/, 4);
    assertConfigError(
      () => parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkEnable=true', 'zk.zkConnect=', '[topic=t]']),
      /blank value for zk\.zkConnect/,
      5,
    );
    // zkEnable defaults to true, as in MetaQ.
    assertConfigError(() => parse(['[system]', 'brokerId=1', '[topic=t]']), /zk\.zkEnable is true by default.*zk\.zkEnable=false/);
    const standalone = parse(minimal());
    assert.equal(standalone.zookeeper.zkEnable, false);
    assert.equal(standalone.zookeeper.zkConnect, '');
    const clustered = parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkConnect=zk1:2181,zk2:2181/metaq', '[topic=t]']);
    assert.equal(clustered.zookeeper.zkEnable, true);
    assert.equal(clustered.zookeeper.zkConnect, 'zk1:2181,zk2:2181/metaq');
  });
});

describe('parseBrokerConfig: values', () => {
  it('evaluates arithmetic values', () => {
    const config = parse(minimal(['maxSegmentSize=1024*1024*1024', 'unflushInterval=10 * 60 * 1000', 'maxTransferSize=(1 + 1) * 512 * 1024', 'unflushThreshold=-1']));
    assert.equal(config.system.maxSegmentSize, 1_073_741_824);
    assert.equal(config.system.unflushInterval, 600_000);
    assert.equal(config.system.maxTransferSize, 1_048_576);
    assert.equal(config.system.unflushThreshold, -1);
  });

  it('rejects out-of-range values with key, value and allowed range', () => {
    assertConfigError(() => parse(['[system]', 'brokerId=1024']), /brokerId=1024 is out of range; allowed: 0 to 1023/, 2);
    assertConfigError(() => parse(['[system]', 'brokerId=-1']), /brokerId=-1 is out of range; allowed: 0 to 1023/, 2);
    assertConfigError(() => parse(minimal(['flushTxLogAtCommit=3'])), /flushTxLogAtCommit=3 is not allowed; allowed values: 0, 1, 2/, 3);
    assertConfigError(() => parse(minimal(['maxSegmentSize=0'])), /maxSegmentSize=0 is out of range; allowed: 1 to 2147483647/, 3);
    assertConfigError(() => parse(minimal(['maxTransferSize=1024*0'])), /maxTransferSize=1024\*0 \(= 0\) is out of range/, 3);
    assertConfigError(() => parse(minimal(['numPartitions=0'])), /numPartitions=0 is out of range; allowed: >= 1/, 3);
    assertConfigError(() => parse(minimal(['unflushInterval=0'])), /unflushInterval=0 is out of range/, 3);
    assertConfigError(() => parse(minimal(['checkpointInterval=0'])), /checkpointInterval=0/, 3);
    assertConfigError(() => parse(minimal(['maxCheckpoints=0'])), /maxCheckpoints=0/, 3);
    assertConfigError(() => parse(minimal(['getProcessThreadCount=0'])), /getProcessThreadCount=0/, 3);
    assertConfigError(() => parse(minimal(['maxTxTimeoutInSeconds=0'])), /maxTxTimeoutInSeconds=0/, 3);
    assertConfigError(() => parse(minimal(['maxTxTimeoutTimerCapacity=0'])), /maxTxTimeoutTimerCapacity=0/, 3);
    assertConfigError(() => parse(minimal(['serverPort=65536'])), /serverPort=65536 is out of range; allowed: 0 to 65535/, 3);
    assertConfigError(() => parse(minimal(['maxMessageSize=0'])), /maxMessageSize=0 is out of range/, 3);
    assertConfigError(() => parse(minimal(['httpPort=-1'])), /httpPort=-1 is out of range; allowed: 0 to 65535/, 3);
    assertConfigError(() => parse(minimal(['dashboardHttpPort=65536'])), /dashboardHttpPort=65536 is out of range; allowed: 0 to 65535/, 3);
    assertConfigError(() => parse(minimal([], ['[topic=t]', 'numPartitions=0'])), /numPartitions=0 is out of range/, 6);
  });

  it('accepts any unflushThreshold, boundary values and all flushTxLogAtCommit values', () => {
    assert.equal(parse(minimal(['unflushThreshold=-5'])).system.unflushThreshold, -5);
    assert.equal(parse(['[system]', 'brokerId=1023', '[zookeeper]', 'zk.zkEnable=false', '[topic=t]']).system.brokerId, 1023);
    for (const level of [0, 1, 2] as const) assert.equal(parse(minimal([`flushTxLogAtCommit=${level}`])).system.flushTxLogAtCommit, level);
  });

  it('rejects a non-integer where an integer is needed', () => {
    assertConfigError(() => parse(minimal(['serverPort=abc'])), /invalid value for 'serverPort': 'abc' is not an integer/, 3);
    assertConfigError(() => parse(minimal(['maxSegmentSize=1.5'])), /not an integer.*only integers/, 3);
    assertConfigError(() => parse(minimal(['maxSegmentSize=1024*'])), /not an integer/, 3);
    assertConfigError(() => parse(minimal(['numPartitions=true'])), /not an integer/, 3);
  });

  it('reads booleans case-insensitively and rejects anything else', () => {
    const config = parse(minimal(['stat=TRUE', 'acceptPublish=False']));
    assert.equal(config.system.stat, true);
    assert.equal(config.system.acceptPublish, false);
    assertConfigError(() => parse(minimal(['stat=yes'])), /invalid boolean for 'stat': 'yes'; use true or false/, 3);
    assertConfigError(() => parse(minimal(['stat=1'])), /invalid boolean/, 3);
  });

  it('validates deletePolicy', () => {
    assertConfigError(() => parse(minimal(['deletePolicy=remove,10'])), /deletePolicy.*unknown policy 'remove'/, 3);
    assertConfigError(() => parse(minimal(['deletePolicy=delete'])), /maximum age is missing/, 3);
    assertConfigError(() => parse(minimal(['deletePolicy=delete,10d'])), /'10d' is not a positive integer/, 3);
    assertConfigError(() => parse(minimal([], ['[topic=t]', 'deletePolicy=archive,1h,maybe'])), /compress flag must be true or false/, 6);
    assert.equal(parse(minimal(['deletePolicy=archive,30m,true'])).system.deletePolicy, 'archive,30m,true');
  });

  it('validates deleteWhen with croner', () => {
    const error = assertConfigError(() => parse(minimal(['deleteWhen=every day'])), /invalid deleteWhen 'every day'.*Quartz cron/, 3);
    assert.ok(error.cause instanceof Error);
    assertConfigError(() => parse(minimal(['deleteWhen=0 0 25 * * ?'])), /invalid deleteWhen/, 3);
    assertConfigError(() => parse(minimal([], ['[topic=t]', 'deleteWhen=nope'])), /invalid deleteWhen/, 6);
    assert.equal(parse(minimal(['deleteWhen=0 30 2 ? * MON-FRI'])).system.deleteWhen, '0 30 2 ? * MON-FRI');
  });

  it('validates zookeeper strings', () => {
    const zk = (line: string): string[] => ['[system]', 'brokerId=1', '[zookeeper]', line, '[topic=t]'];
    assertConfigError(() => parse(zk('zk.zkConnect=host:99999')), /bad port '99999'/, 4);
    assertConfigError(() => parse(zk('zk.zkConnect=a:1,,b:2')), /empty host/, 4);
    assertConfigError(() => parse(['[system]', 'brokerId=1', '[zookeeper]', 'zk.zkEnable=false', 'zk.zkRoot=meta', '[topic=t]']), /invalid zk\.zkRoot 'meta'/, 5);
  });
});

describe('parseBrokerConfig: defaults and inheritance', () => {
  it('applies MetaQ defaults, including the machine-dependent ones', () => {
    const config = parse(['[system]', 'brokerId=7', '[zookeeper]', 'zk.zkEnable=false', '[topic=t]']);
    assert.deepEqual(config.system, {
      brokerId: 7,
      hostName: '10.1.2.3',
      serverPort: 8123,
      serverHost: '0.0.0.0',
      httpPort: 0,
      httpHost: '0.0.0.0',
      maxMessageSize: 1_048_576,
      dashboardHttpPort: 8120,
      numPartitions: 1,
      dataPath: '/home/meta/meta',
      dataLogPath: '/home/meta/meta',
      appClassPath: undefined,
      unflushThreshold: 1000,
      unflushInterval: 10_000,
      maxSegmentSize: 1_073_741_824,
      maxTransferSize: 1_048_576,
      getProcessThreadCount: 40,
      putProcessThreadCount: 40,
      deletePolicy: 'delete,168',
      deleteWhen: '0 0 6,18 * * ?',
      quartzThreadCount: 5,
      maxCheckpoints: 3,
      checkpointInterval: 3_600_000,
      maxTxTimeoutTimerCapacity: 30_000,
      maxTxTimeoutInSeconds: 60,
      flushTxLogAtCommit: 1,
      acceptPublish: true,
      acceptSubscribe: true,
      stat: false,
      updateConsumerOffsets: false,
      loadMessageStoresInParallel: false,
    });
    assert.deepEqual(config.zookeeper, {
      zkEnable: false,
      zkConnect: '',
      zkSessionTimeoutMs: 30_000,
      zkConnectionTimeoutMs: 30_000,
      zkSyncTimeMs: 5_000,
      zkRoot: '/meta',
    });
    assert.equal(config.file, path.resolve(FILE));
  });

  it('detects the host name and CPU count when not pinned', () => {
    const config = parseBrokerConfig(minimal().join('\n'));
    assert.match(config.system.hostName, /^\d+\.\d+\.\d+\.\d+$/);
    assert.ok(config.system.getProcessThreadCount >= 10 && config.system.getProcessThreadCount % 10 === 0);
    assert.equal(config.file, undefined);
  });

  it('treats a blank optional value as not set', () => {
    const config = parse(minimal(['serverPort=', 'hostName=', 'deletePolicy=']));
    assert.equal(config.system.serverPort, 8123);
    assert.equal(config.system.hostName, '10.1.2.3');
    assert.equal(config.system.deletePolicy, 'delete,168');
  });

  it('resolves relative paths against baseDir (default: the working directory); dataLogPath follows dataPath', () => {
    const config = parse(minimal(['dataPath=./data', 'appClassPath=provided']));
    assert.equal(config.system.dataPath, '/srv/metaq/data');
    assert.equal(config.system.dataLogPath, '/srv/metaq/data');
    assert.equal(config.system.appClassPath, '/srv/metaq/provided');
    const fromCwd = parseBrokerConfig(minimal(['dataPath=data', 'dataLogPath=/var/log/metaq']).join('\n'));
    assert.equal(fromCwd.system.dataPath, path.resolve(process.cwd(), 'data'));
    assert.equal(fromCwd.system.dataLogPath, '/var/log/metaq');
  });

  it('lets topic sections override some keys and inherits the rest from [system]', () => {
    const config = parse(
      minimal(
        ['numPartitions=2', 'unflushThreshold=0', 'dataPath=/data', 'stat=true'],
        ['[topic=plain]', '[topic=custom]', 'numPartitions=8', 'deletePolicy=archive,7,true', 'dataPath=fast', 'acceptPublish=false', 'stat=', 'unflushThreshold=100'],
      ),
    );
    const [plain, custom] = config.topics;
    assert.deepEqual(plain, {
      pattern: 'plain',
      numPartitions: 2,
      stat: true,
      deletePolicy: 'delete,168',
      deleteWhen: '0 0 6,18 * * ?',
      dataPath: '/data',
      unflushInterval: 10_000,
      unflushThreshold: 0,
      acceptSubscribe: true,
      acceptPublish: true,
      groupFilters: {},
    });
    assert.equal(custom?.numPartitions, 8);
    assert.equal(custom?.deletePolicy, 'archive,7,true');
    assert.equal(custom?.dataPath, '/srv/metaq/fast');
    assert.equal(custom?.acceptPublish, false);
    assert.equal(custom?.stat, true, 'a blank topic value inherits');
    assert.equal(custom?.unflushThreshold, 100);
  });

  it('keeps group.<consumerGroup> filter entries', () => {
    const config = parse(minimal([], ['[topic=t]', 'group.billing=com.example.BillingFilter', 'group.audit=com.example.AuditFilter', 'group.none=']));
    assert.deepEqual(config.topics[0]?.groupFilters, { billing: 'com.example.BillingFilter', audit: 'com.example.AuditFilter' });
    assertConfigError(() => parse(minimal([], ['[topic=t]', 'group.=x'])), /invalid consumer group/, 6);
  });
});

describe('topic lookup', () => {
  const config = parse(minimal([], ['[topic=order-*]', 'numPartitions=2', '[topic=*]', 'numPartitions=3', '[topic=order-eu]', 'numPartitions=4', '[topic=order-*-x]']));

  it('prefers the exact section, then the first matching wildcard in file order', () => {
    assert.equal(topicConfigFor(config, 'order-eu')?.numPartitions, 4);
    assert.equal(topicConfigFor(config, 'order-us')?.pattern, 'order-*');
    // order-*-x comes after order-* and *, so it never wins.
    assert.equal(topicConfigFor(config, 'order-a-x')?.pattern, 'order-*');
    assert.equal(topicConfigFor(config, 'anything')?.pattern, '*');
    assert.equal(topicConfigFor(config, 'bad/name'), undefined);
  });

  it('returns undefined for an unconfigured topic', () => {
    const only = parse(minimal([], ['[topic=meta-*]', '[topic=test]']));
    assert.equal(topicConfigFor(only, 'other'), undefined);
    assert.equal(topicConfigFor(only, 'meta-'), only.topics[0]);
    assert.equal(topicConfigFor(only, 'test'), only.topics[1]);
    assert.deepEqual(configuredTopicNames(only), ['test']);
  });

  it('matches * against any run of characters and everything else literally', () => {
    assert.equal(topicPatternMatches('a.b*', 'a.bcd'), true);
    assert.equal(topicPatternMatches('a.b*', 'axbcd'), false, "'.' is literal");
    assert.equal(topicPatternMatches('*-log', 'app-log'), true);
    assert.equal(topicPatternMatches('a*b*c', 'abc'), true);
    assert.equal(topicPatternMatches('test', 'test2'), false);
  });

  it('validates topic names', () => {
    for (const good of ['test', 'meta-orders', 'a.b_c-1', 'Ünïcode']) assert.equal(isValidTopicName(good), true, good);
    for (const bad of ['', 'a/b', 'a\\b', 'a b', 'a\tb', 'a\0b', 'a*', '.', '..', 'x'.repeat(201)]) assert.equal(isValidTopicName(bad), false, JSON.stringify(bad));
  });
});

describe('freezing', () => {
  it('freezes the configuration deeply', () => {
    const config = parse(minimal([], ['[topic=t]', 'group.g=F']));
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.system));
    assert.ok(Object.isFrozen(config.zookeeper));
    assert.ok(Object.isFrozen(config.topics));
    assert.ok(Object.isFrozen(config.topics[0]));
    assert.ok(Object.isFrozen(config.topics[0]?.groupFilters));
    assert.throws(() => {
      (config.system as { brokerId: number }).brokerId = 5;
    }, TypeError);
    assert.throws(() => {
      (config.topics as unknown[]).push({});
    }, TypeError);
  });
});

describe('parseDeletePolicy', () => {
  it('parses delete and archive policies with units', () => {
    assert.deepEqual(parseDeletePolicy('delete,168'), { kind: 'delete', maxAgeMs: 168 * 3_600_000, compress: false });
    assert.deepEqual(parseDeletePolicy('delete,10s'), { kind: 'delete', maxAgeMs: 10_000, compress: false });
    assert.deepEqual(parseDeletePolicy('delete, 5M'), { kind: 'delete', maxAgeMs: 300_000, compress: false });
    assert.deepEqual(parseDeletePolicy('archive,2h'), { kind: 'archive', maxAgeMs: 7_200_000, compress: false });
    assert.deepEqual(parseDeletePolicy('archive,30m,true'), { kind: 'archive', maxAgeMs: 1_800_000, compress: true });
    assert.deepEqual(parseDeletePolicy('archive,1,FALSE'), { kind: 'archive', maxAgeMs: 3_600_000, compress: false });
  });

  it('rejects malformed policies', () => {
    for (const bad of ['', 'delete', 'delete,', 'delete,0', 'delete,-1', 'delete,1.5', 'delete,10d', 'delete,10,true', 'archive,1,yes', 'archive,1,true,x', 'purge,1']) {
      assert.throws(() => parseDeletePolicy(bad), InvalidArgumentError, bad);
    }
  });
});

describe('evaluateIntegerExpression', () => {
  it('evaluates integer arithmetic with precedence, parentheses and unary signs', () => {
    assert.equal(evaluateIntegerExpression('1024*1024*1024'), 1_073_741_824);
    assert.equal(evaluateIntegerExpression(' 10 * 60 * 1000 '), 600_000);
    assert.equal(evaluateIntegerExpression('2+3*4'), 14);
    assert.equal(evaluateIntegerExpression('(2+3)*4'), 20);
    assert.equal(evaluateIntegerExpression('-7/2'), -3, 'truncates toward zero like Java');
    assert.equal(evaluateIntegerExpression('-7%3'), -1, 'remainder takes the sign of the dividend');
    assert.equal(evaluateIntegerExpression('--3'), 3);
    assert.equal(evaluateIntegerExpression('10-2-3'), 5, 'left-associative');
    assert.equal(evaluateIntegerExpression('100/10/5'), 2);
  });

  it('rejects garbage without evaluating it', () => {
    for (const bad of ['', '1024*', '*2', '(1+2', '1+2)', '1 2', 'process.exit()', 'eval("1")', '1.5', '0x10', '1e3', '2/0', '5%0', '9007199254740991+1', '99999999999999999999', '('.repeat(40) + '1' + ')'.repeat(40)]) {
      assert.throws(() => evaluateIntegerExpression(bad), InvalidArgumentError, JSON.stringify(bad));
    }
  });
});

describe('levenshtein', () => {
  it('computes edit distances and suggestions', () => {
    assert.equal(levenshtein('kitten', 'sitting'), 3);
    assert.equal(levenshtein('', 'abc'), 3);
    assert.equal(levenshtein('same', 'same'), 0);
    assert.equal(closestMatch('unflushThreshhold', ['unflushInterval', 'unflushThreshold']), 'unflushThreshold');
    assert.equal(closestMatch('brokerid', ['brokerId', 'hostName']), 'brokerId');
    assert.equal(closestMatch('zzzzzzzz', ['brokerId', 'hostName']), undefined);
  });
});

describe('the shipped conf/server.ini', () => {
  it('parses into a standalone broker configuration', async () => {
    const config = await loadBrokerConfig(path.join(ROOT, 'conf', 'server.ini'), { baseDir: ROOT });
    assert.equal(config.file, path.join(ROOT, 'conf', 'server.ini'));
    assert.equal(config.system.brokerId, 0);
    assert.equal(config.system.serverPort, 8123);
    assert.equal(config.zookeeper.zkEnable, false);
    assert.equal(config.system.dataPath, path.join(ROOT, 'data'));
    assert.equal(config.system.dataLogPath, path.join(ROOT, 'data'));
    assert.equal(config.system.unflushThreshold, 0);
    assert.equal(config.system.unflushInterval, 1000);
    assert.equal(config.system.maxSegmentSize, 1024 * 1024 * 1024);
    assert.equal(config.system.maxTransferSize, 1024 * 1024);
    assert.equal(config.system.numPartitions, 1);
    assert.equal(config.system.deletePolicy, 'delete,168');
    assert.equal(config.system.deleteWhen, '0 0 6,18 * * ?');
    assert.equal(config.system.flushTxLogAtCommit, 1);
    assert.ok(config.topics.length >= 2);
    assert.equal(topicConfigFor(config, 'test')?.pattern, 'test');
    assert.ok(config.topics.some((topic) => topic.pattern.includes('*')), 'has a wildcard example');
    assert.ok(config.rawText.includes('brokerId=0'));
  });

  it('reports an unreadable file as a ConfigError naming it', async () => {
    await assert.rejects(loadBrokerConfig('/nonexistent/server.ini'), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /^\/nonexistent\/server\.ini: cannot read the configuration file/);
      return true;
    });
  });
});
