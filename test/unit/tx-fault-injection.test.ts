/**
 * The test-only journal fault injection (src/transaction/log/journal-faults.ts, `METAQ_FAULT`):
 * parsing, the errors it raises (shaped like real `fs` errors), counting and arming, the short
 * write, the journal's fail-stop on an injected failure, and the decision at module load (a child
 * process with and without the variable).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StoreIoError } from '../../src/common/errors.js';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import { faultyJournalIo, journalIoFromEnvironment, parseJournalFault, systemCallError } from '../../src/transaction/log/journal-faults.js';
import { defaultJournalIo, type JournalIo } from '../../src/transaction/log/journal-io.js';
import { TxJournal } from '../../src/transaction/log/tx-journal.js';
import { makeTempDir } from '../helpers/temp-dir.js';

/** A JournalIo that records calls and does nothing else. */
function recordingIo(): { io: JournalIo; calls: string[]; written: Buffer[] } {
  const calls: string[] = [];
  const written: Buffer[] = [];
  return {
    calls,
    written,
    io: {
      writev: (_fd, buffers) => {
        calls.push('writev');
        written.push(Buffer.concat(buffers as Buffer[]));
        return Promise.resolve();
      },
      fdatasync: () => {
        calls.push('fdatasync');
        return Promise.resolve();
      },
    },
  };
}

describe('journal fault injection: METAQ_FAULT', () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await makeTempDir('metaq-fault-unit-');
  });
  after(() => dir.remove());

  it('parses point, calls to let through and errno; ignores other seams; refuses malformed journal faults', () => {
    assert.deepEqual(parseJournalFault('txlog.fdatasync'), { point: 'txlog.fdatasync', after: 0, errno: 'EIO', once: false });
    assert.deepEqual(parseJournalFault('txlog.write'), { point: 'txlog.write', after: 0, errno: 'ENOSPC', once: false });
    assert.deepEqual(parseJournalFault('txlog.fdatasync@3:ENOSPC'), { point: 'txlog.fdatasync', after: 3, errno: 'ENOSPC', once: false });
    assert.deepEqual(parseJournalFault(' txlog.write@12:EIO '), { point: 'txlog.write', after: 12, errno: 'EIO', once: false });
    assert.deepEqual(parseJournalFault('txlog.fdatasync/once'), { point: 'txlog.fdatasync', after: 0, errno: 'EIO', once: true });
    assert.deepEqual(parseJournalFault('txlog.write@2:EIO/once'), { point: 'txlog.write', after: 2, errno: 'EIO', once: true });
    assert.equal(parseJournalFault(undefined), undefined);
    assert.equal(parseJournalFault(''), undefined);
    assert.equal(parseJournalFault('store.fdatasync'), undefined, 'another seam’s fault is not the journal’s business');
    for (const bad of ['txlog.fsync', 'txlog.write@', 'txlog.write@-1', 'txlog.write:EPERM', 'txlog.fdatasync@1:eio', 'txlog.', 'txlog.write/twice', 'txlog.write/once@1']) {
      assert.throws(() => parseJournalFault(bad), /METAQ_FAULT=.* is not a journal fault/, bad);
    }
  });

  it('raises errors shaped like real fs errors', async () => {
    const real = await new Promise<NodeJS.ErrnoException>((resolve) => fs.fdatasync(2_000_000, (error) => resolve(error as NodeJS.ErrnoException)));
    const injected = systemCallError('EIO', 'fdatasync');
    assert.equal(injected.message, 'EIO: i/o error, fdatasync');
    assert.equal(injected.code, 'EIO');
    assert.equal(injected.errno, -5);
    assert.equal(injected.syscall, 'fdatasync');
    assert.deepEqual(Object.keys(injected).sort(), Object.keys(real).sort(), 'the same own properties as a real fs error');
    assert.match(real.message, /^[A-Z]+: [^,]+, fdatasync$/, 'and the same message shape');
    assert.equal(systemCallError('ENOSPC', 'write').message, 'ENOSPC: no space left on device, write');
  });

  it('lets `after` calls through, then fails every later call of that operation only; the other one is untouched', async () => {
    const { io, calls } = recordingIo();
    const reports: string[] = [];
    const faulty = faultyJournalIo(io, { point: 'txlog.fdatasync', after: 2, errno: 'EIO', once: false }, { report: (line) => reports.push(line) });
    await faulty.fdatasync(1);
    await faulty.writev(1, [Buffer.from('x')], 0);
    await faulty.fdatasync(1);
    await assert.rejects(faulty.fdatasync(1), (error: NodeJS.ErrnoException) => error.code === 'EIO' && error.syscall === 'fdatasync');
    await assert.rejects(faulty.fdatasync(1), { code: 'EIO' }, 'a failed disk stays failed');
    await faulty.writev(1, [Buffer.from('y')], 1);
    assert.deepEqual(calls, ['fdatasync', 'writev', 'fdatasync', 'writev'], 'failed calls never reach the real fdatasync');
    assert.deepEqual(reports, ['metaq: injected fault txlog.fdatasync fired (EIO) on armed call 3'], 'reported once, when it first fires');
  });

  it('with /once only one call fails: the disk "works again" afterwards', async () => {
    const { io, calls } = recordingIo();
    const reports: string[] = [];
    const faulty = faultyJournalIo(io, { point: 'txlog.fdatasync', after: 1, errno: 'EIO', once: true }, { report: (line) => reports.push(line) });
    await faulty.fdatasync(1);
    await assert.rejects(faulty.fdatasync(1), { code: 'EIO' });
    await faulty.fdatasync(1);
    await faulty.fdatasync(1);
    assert.deepEqual(calls, ['fdatasync', 'fdatasync', 'fdatasync']);
    assert.deepEqual(reports, ['metaq: injected fault txlog.fdatasync fired (EIO) on armed call 2, once']);
  });

  it('counts nothing before it is armed, and stays armed once it was', async () => {
    const { io, calls } = recordingIo();
    let armed = false;
    let checks = 0;
    const faulty = faultyJournalIo(io, { point: 'txlog.fdatasync', after: 1, errno: 'EIO', once: false }, {
      armed: () => {
        checks += 1;
        return armed;
      },
      report: () => undefined,
    });
    for (let i = 0; i < 5; i++) await faulty.fdatasync(1);
    armed = true;
    await faulty.fdatasync(1); // armed call 1: let through
    await assert.rejects(faulty.fdatasync(1), { code: 'EIO' });
    armed = false;
    await assert.rejects(faulty.fdatasync(1), { code: 'EIO' }, 'disarming is not a thing');
    assert.equal(calls.length, 6);
    assert.equal(checks, 6, 'the arm condition is no longer asked once it held');
  });

  it('a write fault writes the first half of the bytes, then fails with ENOSPC', async () => {
    const { io, written } = recordingIo();
    const faulty = faultyJournalIo(io, { point: 'txlog.write', after: 0, errno: 'ENOSPC', once: false }, { report: () => undefined });
    await assert.rejects(faulty.writev(1, [Buffer.from('abcd'), Buffer.from('efghij')], 0), (error: NodeJS.ErrnoException) => {
      assert.equal(error.message, 'ENOSPC: no space left on device, write');
      return true;
    });
    assert.deepEqual(written.map((b) => b.toString()), ['abcde']);
  });

  it('without the variable the default I/O is the real one (nothing to pay); with it, a wrapper', () => {
    assert.equal(process.env['METAQ_FAULT'], undefined, 'this test process runs without METAQ_FAULT');
    assert.equal(defaultJournalIo.writev, writevAll);
    assert.equal(defaultJournalIo.fdatasync, fdatasync);
    const real: JournalIo = { writev: writevAll, fdatasync };
    assert.equal(journalIoFromEnvironment(real, {}), real);
    assert.equal(journalIoFromEnvironment(real, { METAQ_FAULT: 'store.write' }), real);
    assert.notEqual(journalIoFromEnvironment(real, { METAQ_FAULT: 'txlog.write@1000000' }), real);
  });

  it('the journal fails stop on an injected fdatasync error, although the disk works again: the append and every later one reject asking for a restart; the record is in the file', async () => {
    const journalDir = join(dir.path, 'fdatasync');
    const faulty = faultyJournalIo({ writev: writevAll, fdatasync }, { point: 'txlog.fdatasync', after: 1, errno: 'EIO', once: true }, { report: () => undefined });
    const journal = await TxJournal.open(journalDir, { io: faulty });
    await journal.append(1, Buffer.from('before'), 'sync');
    const failed = await journal.append(2, Buffer.from('prepare'), 'sync').then(
      () => assert.fail('the append must reject'),
      (error: unknown) => error,
    );
    assert.ok(failed instanceof StoreIoError);
    assert.match(failed.message, /fdatasync of transaction journal file .* failed; .*until the broker is restarted.*: EIO: i\/o error, fdatasync$/);
    assert.equal(journal.failure, failed);
    await assert.rejects(journal.append(3, Buffer.from('later'), 'none'), (error: unknown) => error === failed, 'fail-stop: the same error for every later append');
    await assert.rejects(journal.append(4, Buffer.from('later'), 'sync'), (error: unknown) => error === failed, 'although fdatasync would succeed again (fsyncgate)');
    await journal.close();
    // The write went through before the fdatasync failed: after a restart the record is read back.
    const reopened = await TxJournal.open(journalDir);
    const payloads: string[] = [];
    for await (const record of reopened.readFrom()) payloads.push(record.payload.toString());
    await reopened.close();
    assert.deepEqual(payloads, ['before', 'prepare']);
  });

  it('the journal fails stop on an injected short write (then space is freed); reopening cuts the torn record', async () => {
    const journalDir = join(dir.path, 'write');
    // One write per sync append here (the first may also be the journal's own preallocation write:
    // that one is let through so that the fault hits the record).
    const probe = recordingIo();
    const probeJournal = await TxJournal.open(join(dir.path, 'probe'), { io: probe.io });
    await probeJournal.append(1, Buffer.from('before'), 'sync');
    const writesForFirstAppend = probe.calls.filter((c) => c === 'writev').length;
    await probeJournal.close();

    const faulty = faultyJournalIo({ writev: writevAll, fdatasync }, { point: 'txlog.write', after: writesForFirstAppend, errno: 'ENOSPC', once: true }, { report: () => undefined });
    const journal = await TxJournal.open(journalDir, { io: faulty });
    await journal.append(1, Buffer.from('before'), 'sync');
    await assert.rejects(journal.append(2, Buffer.alloc(400, 0x41), 'sync'), (error: unknown) => {
      assert.ok(error instanceof StoreIoError);
      assert.match(error.message, /writing to transaction journal file .*: ENOSPC: no space left on device, write$/);
      return true;
    });
    await assert.rejects(journal.append(3, Buffer.from('after'), 'sync'), StoreIoError, 'fail-stop: nothing is written after the torn record');
    await journal.close();
    const reopened = await TxJournal.open(journalDir);
    assert.ok(reopened.truncatedBytesAtOpen > 0, 'the half-written record is cut at open');
    const payloads: string[] = [];
    for await (const record of reopened.readFrom()) payloads.push(record.payload.toString());
    await reopened.close();
    assert.deepEqual(payloads, ['before']);
  });

  it('is decided at module load from the environment (a broker-like child process)', async () => {
    const script = [
      "import { TxJournal } from './src/transaction/log/tx-journal.ts';",
      'const journal = await TxJournal.open(process.argv[1]);',
      "await journal.append(1, Buffer.from('a'), 'sync');",
      "try { await journal.append(2, Buffer.from('b'), 'sync'); console.log('ok'); } catch (error) { console.log('failed', error.message); }",
      'await journal.close();',
    ].join('\n');
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const run = (name: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, join(dir.path, name)], { cwd: root, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : (child.exitCode ?? 1), stdout, stderr }),
        );
      });
    const [clean, faulted, malformed] = await Promise.all([
      run('child-clean', {}),
      run('child-fault', { METAQ_FAULT: 'txlog.fdatasync@1' }),
      run('child-bad', { METAQ_FAULT: 'txlog.fsync' }),
    ]);
    assert.equal(clean.stdout.trim(), 'ok', clean.stderr);
    assert.doesNotMatch(clean.stderr, /fault/);
    // The second append is a forced write on the O_DSYNC descriptor (tx-journal.ts, "Why O_DSYNC"):
    // one call that is the write and its fdatasync, failing the way the kernel reports it.
    assert.match(faulted.stdout, /^failed writing to transaction journal file .* with O_DSYNC \(write and fdatasync in one call\) failed.*EIO: i\/o error, write$/m, faulted.stderr);
    assert.match(faulted.stderr, /TEST-ONLY fault injection armed: METAQ_FAULT=txlog\.fdatasync@1/);
    assert.match(faulted.stderr, /injected fault txlog\.fdatasync fired \(EIO\) on armed call 2/);
    assert.notEqual(malformed.code, 0, 'a malformed journal fault refuses to start');
    assert.match(malformed.stderr, /METAQ_FAULT="txlog\.fsync" is not a journal fault/);
  });
});
