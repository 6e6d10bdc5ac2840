/**
 * The disk calls on the journal's write path, behind a seam so that tests can inject write and
 * fsync failures (transactions.md §5.7 asks for fault injection at every crash point).
 * Production code always uses {@link defaultJournalIo}.
 */
import { fdatasync, writevAll, writevAllSync } from '../../store/file-io.js';
import { journalIoFromEnvironment } from './journal-faults.js';

/** The journal's write-path I/O. */
export interface JournalIo {
  /** Writes all `buffers` at `position` of `fd` (see `writevAll`). */
  readonly writev: (fd: number, buffers: readonly Buffer[], position: number) => Promise<void>;
  /** Makes everything written to `fd` durable (see `fdatasync`). */
  readonly fdatasync: (fd: number) => Promise<void>;
  /**
   * Writes all `buffers` at `position` of `fd`, a descriptor of the same file opened with
   * `O_DSYNC`: the call returns once those bytes (and the metadata needed to read them back) are
   * on disk, i.e. write + fdatasync of that range in ONE call (one thread-pool hop instead of two).
   * A failure means the bytes may or may not have reached the disk, exactly as a failed write or
   * fdatasync does. Optional: without it the journal writes with `writev` and syncs with
   * `fdatasync` (see "Why O_DSYNC" in tx-journal.ts).
   */
  readonly writevDurable?: (fd: number, buffers: readonly Buffer[], position: number) => Promise<void>;
  /**
   * Writes all `buffers` at `position` of `fd` on the calling thread (see "Why a synchronous
   * write" in tx-journal.ts); throws what the failed call threw. Optional: without it every
   * write goes through `writev`.
   */
  readonly writevSync?: (fd: number, buffers: readonly Buffer[], position: number) => void;
}

/**
 * The real thing: `writevAll` and `fdatasync` from `src/store/file-io.ts`. The durable write is
 * `writevAll` too: the durability comes from the `O_DSYNC` descriptor the journal passes it.
 */
const realJournalIo: JournalIo = { writev: writevAll, fdatasync, writevDurable: writevAll, writevSync: writevAllSync } as const;

/**
 * What every journal uses unless a test passes its own `io`: {@link realJournalIo}, or — only
 * when the test-only `METAQ_FAULT` variable names a journal fault (journal-faults.ts) — a
 * wrapper that makes writes or fdatasyncs fail like a full or failing disk.
 *
 * Why decided here, once, at module load: without the variable this IS the real object, so the
 * hot path pays nothing for the seam (no per-call check of the environment or of a flag).
 */
export const defaultJournalIo: JournalIo = journalIoFromEnvironment(realJournalIo, process.env);

/**
 * The I/O of a journal opened with `override` (a test's replacement of some calls): the default
 * for the calls it does not replace, EXCEPT the durable write, used only when the override
 * provides it too, and likewise the synchronous write. A test that replaces `writev` or
 * `fdatasync` expects every write and every sync of the journal to go through its functions; a
 * durable or synchronous write from the default would bypass them.
 */
export function journalIoWith(override: Partial<JournalIo> | undefined): JournalIo {
  if (override === undefined) return defaultJournalIo;
  const { writev, fdatasync: sync } = defaultJournalIo;
  return { writev, fdatasync: sync, ...override };
}
