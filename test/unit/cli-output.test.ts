/**
 * What the `metaq` CLI prints, without a broker: send results, consumed messages (text and JSON
 * lines, UTF-8 or base64), the stats table, colours only on terminals without NO_COLOR, and
 * errors as one friendly line with an exit status.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CliError, UsageError } from '../../src/cli/commands/args.js';
import { cannotConnectError, connectFailureReason, reportError } from '../../src/cli/output/errors.js';
import { formatMessage, formatSendResult, formatStatsJson, formatStatsTable, messageToJson, statsRows } from '../../src/cli/output/format.js';
import { colorEnabled, painterFor, plain, type Paint } from '../../src/cli/output/style.js';
import { BrokerError, ConnectionError, InvalidArgumentError } from '../../src/common/errors.js';
import { parseStatsBody } from '../../src/index.js';

const BIG_ID = 2061120925138448385n; // above 2^53: exact only as a string

describe('metaq pub output', () => {
  it('prints one line per message: text, or a JSON line with the id as a string', () => {
    const result = { id: BIG_ID, topic: 'test', partition: 1, offset: 4096, brokerUrl: 'meta://h:1' };
    assert.equal(formatSendResult(result, false), 'sent id=2061120925138448385 partition=1 offset=4096');
    const json = formatSendResult(result, true);
    assert.equal(json, '{"id":"2061120925138448385","topic":"test","partition":1,"offset":4096}');
    assert.equal(JSON.parse(json).id, '2061120925138448385');
  });
});

describe('metaq sub output', () => {
  const message = { topic: 'test', partition: 0, offset: 25, id: BIG_ID, data: Buffer.from('hi there') };

  it('text: <partition>:<offset> <id> [attribute] <text>', () => {
    assert.equal(formatMessage(message, false), '0:25 2061120925138448385 hi there');
    assert.equal(formatMessage({ ...message, attribute: 'greet' }, false), '0:25 2061120925138448385 [greet] hi there');
    assert.equal(formatMessage({ ...message, attribute: '' }, false), '0:25 2061120925138448385 [] hi there');
  });

  it('JSON: UTF-8 payloads as text, anything else as base64, with the encoding named', () => {
    assert.deepEqual(JSON.parse(formatMessage({ ...message, attribute: 'greet' }, true)), {
      topic: 'test',
      partition: 0,
      offset: 25,
      id: '2061120925138448385',
      attribute: 'greet',
      encoding: 'utf8',
      data: 'hi there',
    });
    const binary = Buffer.from([0xff, 0x00, 0xc3, 0x28]);
    const json = messageToJson({ ...message, data: binary });
    assert.equal(json.attribute, null);
    assert.equal(json.encoding, 'base64');
    assert.deepEqual(Buffer.from(json.data, 'base64'), binary);
    assert.equal(messageToJson({ ...message, data: Buffer.from('grüße ✓') }).data, 'grüße ✓');
    assert.equal(messageToJson({ ...message, data: Buffer.alloc(0) }).encoding, 'utf8');
  });

  it('colours only the position and the attribute', () => {
    const tags: Paint = (style, text) => `<${style}>${text}</${style}>`;
    assert.equal(formatMessage({ ...message, attribute: 'a' }, false, tags), '<dim>0:25 2061120925138448385</dim> <cyan>[a]</cyan> hi there');
    assert.ok(!formatMessage({ ...message, attribute: 'a' }, true, tags).includes('<'), 'never in JSON');
  });
});

describe('metaq stats output', () => {
  const info = parseStatsBody('STATS\r\npid 4242\r\nbroker_id 7\r\ncurr_connections 1\r\nEND\r\n');
  const offsets = parseStatsBody(
    ['STATS', 'test part 0 min_offset 0 max_offset 104', 'test part 1 min_offset 0 max_offset 89', 'orders part 0 min_offset 0 max_offset 0', 'END', ''].join('\r\n'),
  );

  it('an aligned two-column table', () => {
    assert.equal(formatStatsTable(info), ['pid               4242', 'broker_id         7', 'curr_connections  1'].join('\n'));
  });

  it('a repeated key gives one row per value', () => {
    assert.deepEqual(statsRows(offsets), [
      ['test', 'part 0 min_offset 0 max_offset 104'],
      ['test', 'part 1 min_offset 0 max_offset 89'],
      ['orders', 'part 0 min_offset 0 max_offset 0'],
    ]);
    assert.equal(formatStatsTable(offsets).split('\n')[2], 'orders  part 0 min_offset 0 max_offset 0');
  });

  it('a key without a value has no trailing spaces; an empty answer prints nothing', () => {
    assert.equal(formatStatsTable(parseStatsBody('STATS\r\ntest\r\nresultCode 0\r\nEND\r\n')), 'test\nresultCode  0');
    assert.equal(formatStatsTable({}), '');
  });

  it('JSON: the record as the client returns it', () => {
    assert.deepEqual(JSON.parse(formatStatsJson(info)), { pid: '4242', broker_id: '7', curr_connections: '1' });
    assert.equal(JSON.parse(formatStatsJson(offsets)).test, 'part 0 min_offset 0 max_offset 104\npart 1 min_offset 0 max_offset 89');
    assert.deepEqual(JSON.parse(formatStatsJson(parseStatsBody('STATS\r\n__proto__ x\r\nEND\r\n'))), JSON.parse('{"__proto__":"x"}'));
  });

  it('keys are bold on a terminal', () => {
    const tags: Paint = (style, text) => `<${style}>${text}</${style}>`;
    assert.equal(formatStatsTable({ ab: '1', c: '2' }, tags), '<bold>ab</bold>  1\n<bold>c</bold>   2');
  });
});

describe('metaq colours', () => {
  it('only on a terminal, and never with NO_COLOR', () => {
    assert.equal(colorEnabled({ isTTY: true }, {}), true);
    assert.equal(colorEnabled({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(colorEnabled({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
    assert.equal(colorEnabled({ isTTY: false }, {}), false);
    assert.equal(colorEnabled({}, {}), false);
    assert.equal(painterFor({ isTTY: false }, {}), plain);
    assert.equal(painterFor({ isTTY: true }, {})('red', 'x'), '\u001b[31mx\u001b[39m');
  });
});

describe('metaq errors', () => {
  it('a connection failure in a few words', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    assert.equal(connectFailureReason(refused), 'connection refused');
    assert.equal(connectFailureReason(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' })), 'host not found');
    assert.equal(connectFailureReason(new ConnectionError('connecting to meta://h:1 timed out after 3000 ms')), 'timed out');
    assert.equal(connectFailureReason(new Error('something else')), 'something else');
    assert.equal(connectFailureReason(undefined), 'connection failed');
  });

  it('cannot connect: one line naming the broker and the fix, exit 1', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.deepEqual(reportError(cannotConnectError('meta://127.0.0.1:8123', refused)), {
      text: 'metaq: cannot connect to meta://127.0.0.1:8123 (connection refused); is the broker running? (npm start) [METAQ_ERR_CONNECTION]',
      exitCode: 1,
    });
  });

  it('broker error answers show the status and text with the code, exit 1', () => {
    const error = new BrokerError(500, 'The server do not accept topic nosuch', { context: "put to 'nosuch' partition -1 on meta://h:1" });
    const report = reportError(error);
    assert.equal(
      report.text,
      "metaq: put to 'nosuch' partition -1 on meta://h:1: broker answered 500: The server do not accept topic nosuch [METAQ_ERR_BROKER]",
    );
    assert.equal(report.exitCode, 1);
  });

  it('usage errors print the usage after the message, exit 2; CliErrors choose their status', () => {
    assert.deepEqual(reportError(new UsageError('pub: -t/--topic is required', 'Usage: metaq pub')), {
      text: 'metaq: pub: -t/--topic is required\n\nUsage: metaq pub',
      exitCode: 2,
    });
    assert.deepEqual(reportError(new CliError("topic 't' has no partition 5", { exitCode: 2 })), { text: "metaq: topic 't' has no partition 5", exitCode: 2 });
    assert.equal(reportError(new InvalidArgumentError('bad')).text, 'metaq: bad [METAQ_ERR_INVALID_ARGUMENT]');
    assert.deepEqual(reportError(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })), {
      text: 'metaq: EACCES: permission denied [EACCES]',
      exitCode: 1,
    });
    assert.deepEqual(reportError('odd'), { text: 'metaq: odd', exitCode: 1 });
  });
});
