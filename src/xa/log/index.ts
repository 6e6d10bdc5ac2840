/**
 * The coordinator log of the XA transaction manager (transactions.md §5.3): the durable
 * file-based implementation, an in-memory one for tests, and the record codecs (for tools that
 * dump a log). The contract itself is `CoordinatorLog` in ../coordinator-log.ts.
 */
export {
  openCoordinatorLog,
  FileCoordinatorLog,
  DEFAULT_COORDINATOR_CHECKPOINT_INTERVAL_MS,
  DEFAULT_COORDINATOR_LOG_MAX_FILE_SIZE,
  type FileCoordinatorLogOptions,
} from './file-coordinator-log.js';
export { MemoryCoordinatorLog, type MemoryCoordinatorLogOptions, type WrittenCoordinatorRecord } from './memory-coordinator-log.js';
export type { CoordinatorLogMetrics } from './coordinator-log-metrics.js';
export type { CoordinatorReplayStats } from './coordinator-log-replay.js';
export { readCoordinatorLog } from './read-coordinator-log.js';
export { COORDINATOR_LOCK_FILE_NAME, type CoordinatorLockOwner } from './coordinator-log-lock.js';
export {
  CoordinatorRecordType,
  encodeCoordinatorRecord,
  decodeCoordinatorRecord,
  type CoordinatorRecord,
  type CoordinatorRecordTypeValue,
  type CommittingRecord,
  type PresumedAbortingRecord,
  type HeuristicRecord,
  type EndRecord,
  type CheckpointMarkerRecord,
  type EncodedCoordinatorRecord,
} from './coordinator-records.js';
export { encodeCoordinatorSnapshot, decodeCoordinatorSnapshot, COORDINATOR_SNAPSHOT_VERSION } from './coordinator-snapshot.js';
