/**
 * The two disk calls on the journal's write path, behind a seam so that tests can inject write
 * and fsync failures (transactions.md §5.7 asks for fault injection at every crash point).
 * Production code always uses {@link defaultJournalIo}.
 */
import { fdatasync, writevAll } from '../../store/file-io.js';

/** The journal's write-path I/O. */
export interface JournalIo {
  /** Writes all `buffers` at `position` of `fd` (see `writevAll`). */
  readonly writev: (fd: number, buffers: readonly Buffer[], position: number) => Promise<void>;
  /** Makes everything written to `fd` durable (see `fdatasync`). */
  readonly fdatasync: (fd: number) => Promise<void>;
}

/** The real thing: `writevAll` and `fdatasync` from `src/store/file-io.ts`. */
export const defaultJournalIo: JournalIo = { writev: writevAll, fdatasync } as const;
