/**
 * The `metaq-server` process: starts from a server.ini, stays up, stops cleanly on SIGTERM and
 * SIGINT, refuses a second broker on the same data directory, survives a SIGKILL'd predecessor,
 * and explains a bad configuration.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE_NAME } from '../../src/broker/data-dir-lock.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker } from '../helpers/broker-process.js';
import { makeTempDir } from '../helpers/temp-dir.js';

describe('metaq-server process', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let ini: string;
  before(async () => {
    dir = await makeTempDir('metaq-broker-');
    ini = join(dir.path, 'server.ini');
    fs.writeFileSync(ini, testBrokerIni(join(dir.path, 'data')));
  });
  after(async () => {
    await dir.remove();
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`starts, stays up, and exits 0 on ${signal} after closing the store`, async () => {
      const broker = spawnBroker(['start', '-c', ini]);
      const started = await broker.waitForLog('broker started');
      assert.equal(started['brokerId'], 7);
      assert.ok(fs.existsSync(join(dir.path, 'data', LOCK_FILE_NAME)), 'data directory locked');
      const stillUp = await Promise.race([broker.exited.then(() => false), new Promise((r) => setTimeout(() => r(true), 1000))]);
      assert.equal(stillUp, true, 'the broker stays up');
      broker.child.kill(signal);
      assert.equal(await broker.exited, 0);
      assert.ok(broker.logs.some((l) => l['msg'] === 'broker stopped'), 'store closed before exit');
      assert.ok(!fs.existsSync(join(dir.path, 'data', LOCK_FILE_NAME)), 'lock released');
    });
  }

  it('refuses a second broker on the same data directory, naming the first one', async () => {
    const first = spawnBroker(['start', '-c', ini]);
    await first.waitForLog('broker started');
    try {
      const second = spawnBroker(['start', '-c', ini]);
      assert.equal(await second.exited, 2);
      assert.match(second.stderr(), new RegExp(`in use by another broker \\(pid ${first.child.pid}\\)`));
    } finally {
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0);
    }
  });

  it('starts after a predecessor was killed with SIGKILL (stale lock)', async () => {
    const first = spawnBroker(['start', '-c', ini]);
    await first.waitForLog('broker started');
    first.child.kill('SIGKILL');
    await first.exited;
    const second = spawnBroker(['start', '-c', ini]);
    await second.waitForLog('broker started');
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  });

  it('explains an unknown key with file, line and the closest valid key, and exits 2', async () => {
    const bad = join(dir.path, 'bad.ini');
    fs.writeFileSync(bad, testBrokerIni(join(dir.path, 'data'), { system: { unflushThreshhold: 5 } }));
    const broker = spawnBroker(['start', '-c', bad]);
    assert.equal(await broker.exited, 2);
    assert.match(broker.stderr(), /bad\.ini:\d+: unknown key 'unflushThreshhold' in \[system\]; did you mean 'unflushThreshold'\?/);
    assert.match(broker.stderr(), /METAQ_ERR_CONFIG/);
  });

  it('explains a missing configuration file', async () => {
    const broker = spawnBroker(['start', '-c', join(dir.path, 'missing.ini')]);
    assert.equal(await broker.exited, 2);
    assert.match(broker.stderr(), /missing\.ini/);
  });

  it('explains an unknown command and option', async () => {
    const command = spawnBroker(['launch']);
    assert.equal(await command.exited, 2);
    assert.match(command.stderr(), /unknown command 'launch'/);
    const option = spawnBroker(['start', '--nope']);
    assert.equal(await option.exited, 2);
    assert.match(option.stderr(), /Unknown option '--nope'/);
  });
});
