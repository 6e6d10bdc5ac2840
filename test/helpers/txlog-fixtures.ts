/** Shared fixtures of the transaction log tests: temp journals, payloads, byte surgery, log capture. */
import fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/common/logger.js';
import { TxJournal, type JournalRecord, type TxJournalOptions } from '../../src/transaction/log/tx-journal.js';
import { journalFileName } from '../../src/transaction/log/tx-file-names.js';
import { makeTempDir } from './temp-dir.js';

/** A temporary journal directory whose journals are closed and files removed by `cleanup()`. */
export interface JournalFixture {
  /** The journal directory (a child of the temp dir, not yet created, so open() must create it). */
  readonly dir: string;
  /** Opens a journal in {@link dir}, tracked for cleanup. */
  open(options?: TxJournalOptions): Promise<TxJournal>;
  /** Path of journal file `sequence`. */
  file(sequence: number): string;
  /** Closes every journal opened and removes the temp dir. */
  cleanup(): Promise<void>;
}

/** Creates a {@link JournalFixture}. */
export async function makeJournalFixture(): Promise<JournalFixture> {
  const temp = await makeTempDir('metaq-txlog-');
  const dir = join(temp.path, 'data', 'transactions');
  const opened: TxJournal[] = [];
  return {
    dir,
    async open(options = {}) {
      const journal = await TxJournal.open(dir, options);
      opened.push(journal);
      return journal;
    },
    file: (sequence) => join(dir, journalFileName(sequence)),
    async cleanup() {
      await Promise.all(opened.splice(0).map((j) => j.close()));
      await temp.remove();
    },
  };
}

/**
 * A {@link JournalFixture} made afresh for every test of the calling file (hooks registered with
 * `beforeEach` / `afterEach`, which clean it up). Use it at the top level of a test file.
 */
export function journalFixturePerTest(): JournalFixture {
  let current: JournalFixture | undefined;
  beforeEach(async () => {
    current = await makeJournalFixture();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  const now = (): JournalFixture => {
    if (current === undefined) throw new Error('the journal fixture is only available inside a test');
    return current;
  };
  return {
    get dir() {
      return now().dir;
    },
    open: (options) => now().open(options),
    file: (sequence) => now().file(sequence),
    cleanup: () => now().cleanup(),
  };
}

/** A recognisable payload: `size` bytes starting with `i` as u32. */
export function payload(i: number, size = 50): Buffer {
  const data = Buffer.alloc(size, i % 251);
  if (size >= 4) data.writeUInt32BE(i, 0);
  return data;
}

/** Reads a whole async iterable into an array. */
export async function collect(records: AsyncIterable<JournalRecord>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

/** Inverts the byte at `offset` of `path`. */
export function flipByte(path: string, offset: number): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** A logger that records every line as a parsed object. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

/** Waits until `condition()` holds, polling every 5 ms; fails after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
