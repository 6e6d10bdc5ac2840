/**
 * How durable a journal append must be before its promise resolves. The engine picks one per
 * record: prepare and XA phase-2 commit records are always `'sync'` (transactions.md §0.3, §5.5);
 * local commit/rollback records follow `flushTxLogAtCommit` via {@link durabilityForFlushTxLogAtCommit}.
 */
import { InvalidArgumentError } from '../../common/errors.js';

/**
 * - `'sync'`: resolves after an fdatasync covering the record (shared with concurrent appends);
 * - `'none'`: resolves after the write reached the page cache; the OS decides when it hits disk;
 * - `'deferred'`: resolves after the write; a background fdatasync follows within the
 *   journal's `deferredSyncIntervalMs`.
 */
export type JournalDurability = 'none' | 'sync' | 'deferred';

/** Every {@link JournalDurability}, for validation. */
export const JOURNAL_DURABILITIES: readonly JournalDurability[] = ['none', 'sync', 'deferred'] as const;

/** True when `value` is a {@link JournalDurability}. */
export function isJournalDurability(value: unknown): value is JournalDurability {
  return typeof value === 'string' && (JOURNAL_DURABILITIES as readonly string[]).includes(value);
}

/**
 * MetaQ's `flushTxLogAtCommit` setting mapped to a durability: 0 → `'none'`, 1 → `'sync'`,
 * 2 → `'deferred'` (metaq-reference §3.1).
 * @throws InvalidArgumentError for any other value.
 */
export function durabilityForFlushTxLogAtCommit(flushTxLogAtCommit: number): JournalDurability {
  switch (flushTxLogAtCommit) {
    case 0:
      return 'none';
    case 1:
      return 'sync';
    case 2:
      return 'deferred';
    default:
      throw new InvalidArgumentError(`flushTxLogAtCommit must be 0, 1 or 2, got ${flushTxLogAtCommit}`);
  }
}
