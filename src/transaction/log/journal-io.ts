/**
 * The two disk calls on the journal's write path, behind a seam so that tests can inject write
 * and fsync failures (transactions.md §5.7 asks for fault injection at every crash point).
 * Production code always uses {@link defaultJournalIo}.
 */
import { fdatasync, writevAll } from '../../store/file-io.js';
import { journalIoFromEnvironment } from './journal-faults.js';

/** The journal's write-path I/O. */
export interface JournalIo {
  /** Writes all `buffers` at `position` of `fd` (see `writevAll`). */
  readonly writev: (fd: number, buffers: readonly Buffer[], position: number) => Promise<void>;
  /** Makes everything written to `fd` durable (see `fdatasync`). */
  readonly fdatasync: (fd: number) => Promise<void>;
}

/** The real thing: `writevAll` and `fdatasync` from `src/store/file-io.ts`. */
const realJournalIo: JournalIo = { writev: writevAll, fdatasync } as const;

/**
 * What every journal uses unless a test passes its own `io`: {@link realJournalIo}, or — only
 * when the test-only `METAQ_FAULT` variable names a journal fault (journal-faults.ts) — a
 * wrapper that makes writes or fdatasyncs fail like a full or failing disk.
 *
 * Why decided here, once, at module load: without the variable this IS the real object, so the
 * hot path pays nothing for the seam (no per-call check of the environment or of a flag).
 */
export const defaultJournalIo: JournalIo = journalIoFromEnvironment(realJournalIo, process.env);
