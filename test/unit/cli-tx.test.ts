import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../../src/cli/commands/args.js';
import { DEFAULT_ADMIN_URL, flattenStats, parseTxArgs } from '../../src/cli/commands/tx.js';

describe('metaq tx arguments', () => {
  it('parses list with the default admin URL, $METAQ_ADMIN, and --http', () => {
    assert.deepEqual(parseTxArgs(['list'], {}), { action: 'list', key: undefined, adminUrl: DEFAULT_ADMIN_URL, json: false, reason: undefined });
    assert.equal((parseTxArgs(['list'], { METAQ_ADMIN: 'http://b:9/' }) as { adminUrl: string }).adminUrl, 'http://b:9');
    assert.equal((parseTxArgs(['list', '--http', 'http://c:1', '--json'], {}) as { json: boolean }).json, true);
  });

  it('needs a key and a reason for heuristic decisions', () => {
    assert.throws(() => parseTxArgs(['commit'], {}), (e: Error) => e instanceof UsageError && /needs the branch key/.test(e.message));
    assert.throws(() => parseTxArgs(['rollback', 'XID:1:01:02:q'], {}), /needs --reason/);
    const parsed = parseTxArgs(['rollback', 'XID:1:01:02:q', '--reason', 'gone'], {});
    assert.deepEqual(parsed, { action: 'rollback', key: 'XID:1:01:02:q', adminUrl: DEFAULT_ADMIN_URL, json: false, reason: 'gone' });
    assert.equal((parseTxArgs(['forget', 'XID:1:01:02:q'], {}) as { action: string }).action, 'forget');
  });

  it('refuses unknown actions, extra arguments and non-HTTP URLs', () => {
    assert.throws(() => parseTxArgs(['purge'], {}), /expected list, commit, rollback, forget or stats, got 'purge'/);
    assert.throws(() => parseTxArgs(['list', 'x'], {}), /takes no key/);
    assert.throws(() => parseTxArgs(['stats', 'x'], {}), /tx stats takes no key/);
    assert.throws(() => parseTxArgs(['list', '--http', 'meta://x:1'], {}), /must be an http:\/\/ URL/);
  });

  it('parses stats (no key, --json allowed)', () => {
    assert.deepEqual(parseTxArgs(['stats', '--json'], {}), { action: 'stats', key: undefined, adminUrl: DEFAULT_ADMIN_URL, json: true, reason: undefined });
    assert.throws(() => parseTxArgs(['stats', '--postgres', 'postgresql://x'], {}), /only apply to list/);
  });
});

describe('metaq tx stats output', () => {
  it('flattens nested counters with dots and shows null as -', () => {
    assert.deepEqual(flattenStats({ prepared: 2, journal: { syncs: 7, failure: null }, active: { local: 0, xa: 1 } }), [
      ['prepared', '2'],
      ['journal.syncs', '7'],
      ['journal.failure', '-'],
      ['active.local', '0'],
      ['active.xa', '1'],
    ]);
  });
});
