/**
 * Test-only fault injection at the journal's I/O seam (journal-io.ts): with `METAQ_FAULT` in its
 * environment, a process's transaction journals see their writes or fdatasyncs fail the way a
 * full or failing disk makes them fail (transactions.md §5.7 row 24: "broker disk full / fsync
 * error during prepare"). Crash points (../crash-points.ts) kill the process at a step; these
 * faults let it live on with a journal that failed, which is what the fail-stop path needs.
 *
 * `METAQ_FAULT=<point>[@<after>][:<errno>][/once]`
 * - `<point>`: `txlog.fdatasync` (the data was written, making it durable fails: the record is in
 *   the file, in the page cache, but the journal cannot know it is on disk) or `txlog.write` (a
 *   short write: the first half of the bytes reaches the file, then the call fails, as a write
 *   that runs out of space midway does; the restart finds a torn tail). Every `writev` counts,
 *   including the journal's own preallocation writes.
 *   A synchronous write (`writevSync`) is a write like any other.
 *   A durable write (`writevDurable`: one write on an `O_DSYNC` descriptor, which the journal
 *   uses instead of write + fdatasync when a batch must be on disk) is both a write and a sync,
 *   so it counts as a call for either point. With `txlog.fdatasync` the bytes reach the file and
 *   the call then fails with the errno (syscall `write`: that is how the kernel reports an
 *   O_DSYNC write whose sync failed); with `txlog.write` half of them reach it, as above.
 * - `@<after>`: that many calls of the operation succeed first (default 0), e.g. so that a broker
 *   can start and serve a few transactions before its disk "fills up".
 * - `:<errno>`: `EIO` or `ENOSPC`; default `EIO` for fdatasync, `ENOSPC` for write.
 * - `/once`: only one call fails; later calls work again (a transient error, or space freed by
 *   someone else). This is the case fail-stop exists for: after a failed fdatasync the kernel may
 *   have dropped the dirty pages, so a later fdatasync that "succeeds" proves nothing (PostgreSQL's
 *   fsyncgate); a journal that went on using the disk would then acknowledge lost records.
 *
 * `METAQ_FAULT_ARM_FILE=<path>` (optional): calls neither count nor fail until this file exists.
 * A test does its warm-up on the same broker, creates the file, and knows that the next call
 * fails, without counting the calls the broker made on its own before.
 *
 * Without `/once`, the fault stays once it fired: every later call of that operation fails too (a
 * full disk stays full). Either way a line `metaq: injected fault <point> fired ...` goes to
 * stderr, so that a test can check the fault fired where it expected. Values of `METAQ_FAULT`
 * that do not start with `txlog.` belong to other seams and are ignored here; a malformed
 * `txlog.` value throws at start-up rather than let a test run without the fault it asked for.
 *
 * It applies to every journal of the process: the broker's transaction journal, and the XA
 * coordinator log (src/xa/log) when set in an application process. Unset (always, in
 * production), nothing of this module runs after start-up: journal-io.ts decides once, at load.
 */
import fs from 'node:fs';
import os from 'node:os';
import util from 'node:util';
import type { JournalIo } from './journal-io.js';

/** Environment variable naming the fault (see the module comment). */
export const JOURNAL_FAULT_ENV = 'METAQ_FAULT';

/** Environment variable naming the file whose existence arms the fault. */
export const JOURNAL_FAULT_ARM_FILE_ENV = 'METAQ_FAULT_ARM_FILE';

/** The operations a fault can hit. */
export const JOURNAL_FAULT_POINTS = ['txlog.write', 'txlog.fdatasync'] as const;

/** One of {@link JOURNAL_FAULT_POINTS}. */
export type JournalFaultPoint = (typeof JOURNAL_FAULT_POINTS)[number];

/** The error codes a fault can raise. */
export type JournalFaultErrno = 'EIO' | 'ENOSPC';

/** A parsed `METAQ_FAULT` value. */
export interface JournalFault {
  readonly point: JournalFaultPoint;
  /** Calls of the operation that succeed before the first failure. */
  readonly after: number;
  readonly errno: JournalFaultErrno;
  /** Only one call fails (`/once`); otherwise every call from the first failure on. */
  readonly once: boolean;
}

const FAULT_SYNTAX = /^(txlog\.(?:write|fdatasync))(?:@(\d{1,9}))?(?::(EIO|ENOSPC))?(\/once)?$/;

/**
 * Parses a `METAQ_FAULT` value.
 * @returns the fault, or undefined when `text` is empty or names another seam's fault (not `txlog.`).
 * @throws Error for a malformed `txlog.` value.
 */
export function parseJournalFault(text: string | undefined): JournalFault | undefined {
  const value = text?.trim() ?? '';
  if (!value.startsWith('txlog.')) return undefined;
  const match = FAULT_SYNTAX.exec(value);
  if (match === null) {
    throw new Error(`${JOURNAL_FAULT_ENV}=${JSON.stringify(value)} is not a journal fault; expected txlog.write or txlog.fdatasync, optionally followed by @<calls to let through>, :EIO or :ENOSPC, and /once`);
  }
  const point = match[1] as JournalFaultPoint;
  return {
    point,
    after: Number(match[2] ?? '0'),
    errno: (match[3] as JournalFaultErrno | undefined) ?? (point === 'txlog.write' ? 'ENOSPC' : 'EIO'),
    once: match[4] !== undefined,
  };
}

/**
 * An error shaped exactly like the one `fs` gives for a failed system call (`code`, negative
 * `errno`, `syscall`, and the message `EIO: i/o error, fdatasync`), so that the code under test
 * cannot tell it from a real one.
 */
export function systemCallError(errno: JournalFaultErrno, syscall: string): NodeJS.ErrnoException {
  const number = os.constants.errno[errno];
  const description = util.getSystemErrorMap().get(-number)?.[1] ?? errno;
  const error: NodeJS.ErrnoException = new Error(`${errno}: ${description}, ${syscall}`);
  error.errno = -number;
  error.code = errno;
  error.syscall = syscall;
  return error;
}

/** The first half of the bytes of `buffers` (what a write that ran out of space midway wrote). */
function firstHalf(buffers: readonly Buffer[]): Buffer {
  const all = Buffer.concat(buffers as Buffer[]);
  return all.subarray(0, Math.floor(all.length / 2));
}

/** Options of {@link faultyJournalIo}. */
export interface FaultyJournalIoOptions {
  /** Whether the fault is armed now; calls made while it is not neither count nor fail. Default: always armed. */
  readonly armed?: () => boolean;
  /** Told once, when the fault first fires. Default: a line on stderr. */
  readonly report?: (line: string) => void;
}

/**
 * Wraps `real` so that the operation of `fault` fails from its `after + 1`-th armed call on (that
 * call only, with `once`). The other operation, and any member the journal's I/O may gain later, pass through unchanged.
 */
export function faultyJournalIo(real: JournalIo, fault: JournalFault, options: FaultyJournalIoOptions = {}): JournalIo {
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  let armed = options.armed === undefined;
  let calls = 0;
  let fired = false;
  /** True when this call must fail (counting it, once armed). */
  const hit = (): boolean => {
    // Why the arm check stays until it first succeeds and never after: once armed, the fault
    // must not depend on the file any more (a test may delete its temporary directory).
    if (!armed) armed = options.armed?.() ?? true;
    if (!armed) return false;
    calls += 1;
    if (calls <= fault.after) return false;
    if (fired) return !fault.once;
    fired = true;
    report(`metaq: injected fault ${fault.point} fired (${fault.errno}) on armed call ${calls}${fault.once ? ', once' : ''}`);
    return true;
  };
  const durable = real.writevDurable;
  const writeSync = real.writevSync;
  if (fault.point === 'txlog.fdatasync') {
    return {
      ...real,
      fdatasync: (fd) => (hit() ? Promise.reject(systemCallError(fault.errno, 'fdatasync')) : real.fdatasync(fd)),
      ...(durable === undefined
        ? {}
        : {
            writevDurable: async (fd: number, buffers: readonly Buffer[], position: number) => {
              if (!hit()) return durable(fd, buffers, position);
              // The bytes are in the file, making them durable "failed".
              await durable(fd, buffers, position);
              throw systemCallError(fault.errno, 'write');
            },
          }),
    };
  }
  /** A write that runs out of space midway: the first half is in the file, the call fails. */
  const shortWrite = async (write: NonNullable<JournalIo['writevDurable']>, fd: number, buffers: readonly Buffer[], position: number): Promise<never> => {
    const prefix = firstHalf(buffers);
    if (prefix.length > 0) await write(fd, [prefix], position);
    throw systemCallError(fault.errno, 'write');
  };
  /** The same short write, on the calling thread. */
  const shortWriteSync = (write: NonNullable<JournalIo['writevSync']>, fd: number, buffers: readonly Buffer[], position: number): never => {
    const prefix = firstHalf(buffers);
    if (prefix.length > 0) write(fd, [prefix], position);
    throw systemCallError(fault.errno, 'write');
  };
  return {
    ...real,
    writev: (fd, buffers, position) => (hit() ? shortWrite(real.writev, fd, buffers, position) : real.writev(fd, buffers, position)),
    ...(durable === undefined
      ? {}
      : { writevDurable: (fd: number, buffers: readonly Buffer[], position: number) => (hit() ? shortWrite(durable, fd, buffers, position) : durable(fd, buffers, position)) }),
    ...(writeSync === undefined
      ? {}
      : {
          writevSync: (fd: number, buffers: readonly Buffer[], position: number) => {
            if (hit()) shortWriteSync(writeSync, fd, buffers, position);
            writeSync(fd, buffers, position);
          },
        }),
  };
}

/**
 * The journal I/O a process uses: `real`, or `real` with the fault `env` names (see the module
 * comment). Reads `env` once; called once, when journal-io.ts is loaded.
 * @throws Error for a malformed `txlog.` fault.
 */
export function journalIoFromEnvironment(real: JournalIo, env: NodeJS.ProcessEnv): JournalIo {
  const fault = parseJournalFault(env[JOURNAL_FAULT_ENV]);
  if (fault === undefined) return real;
  const armFile = env[JOURNAL_FAULT_ARM_FILE_ENV];
  const armed = armFile === undefined || armFile === '' ? undefined : () => fs.existsSync(armFile);
  process.stderr.write(
    `metaq: TEST-ONLY fault injection armed: ${JOURNAL_FAULT_ENV}=${env[JOURNAL_FAULT_ENV] ?? ''}` +
      `${armed === undefined ? '' : ` once ${armFile} exists`}; never set this in production\n`,
  );
  return faultyJournalIo(real, fault, armed === undefined ? {} : { armed });
}
