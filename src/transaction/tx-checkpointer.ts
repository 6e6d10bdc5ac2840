/**
 * Periodic checkpoints of the transaction engine (`checkpointInterval`, `maxCheckpoints`).
 *
 * A checkpoint is the engine's snapshot of live branches (prepared, committing, heuristic) and
 * XA tombstones, plus the journal position of a CHECKPOINT marker appended in the same turn of
 * the event loop as the snapshot: replay restores the snapshot and applies only the records
 * after the marker. Journal files older than the OLDEST kept checkpoint are deleted, so that a
 * corrupt newest checkpoint can still fall back to an older one with its records intact. A
 * long-lived prepared branch does not pin old files: it lives in every snapshot.
 */
import type { SystemConfig } from '../common/config/types.js';
import type { Logger } from '../common/logger.js';
import { crashPoint } from './crash-points.js';
import type { TxJournal } from './log/tx-journal.js';
import { oldestCheckpointPosition, writeCheckpoint } from './log/tx-checkpoint.js';
import { encodeSnapshot, TxRecordType, type EngineSnapshot } from './tx-records.js';
import type { TransactionCheckpointStats } from './engine-stats.js';

/** Writes checkpoints and prunes the journal. */
export class TransactionCheckpointer {
  readonly #dir: string;
  readonly #journal: TxJournal;
  readonly #system: SystemConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #written = 0;
  #lastWrittenAt: number | undefined;
  #lastFailure: string | undefined;

  constructor(dir: string, journal: TxJournal, system: SystemConfig, log: Logger, now: () => number = Date.now) {
    this.#dir = dir;
    this.#journal = journal;
    this.#system = system;
    this.#log = log;
    this.#now = now;
  }

  /** Checkpoints written, the age of the last one, the last failure (for operators). */
  stats(): TransactionCheckpointStats {
    return {
      written: this.#written,
      lastAgeSeconds: this.#lastWrittenAt === undefined ? null : Math.floor((this.#now() - this.#lastWrittenAt) / 1000),
      lastFailure: this.#lastFailure ?? null,
    };
  }

  /** Checkpoints every `checkpointInterval` ms with snapshots from `snapshot`. */
  start(snapshot: () => EngineSnapshot): void {
    this.#timer = setInterval(() => {
      this.checkpoint(snapshot()).catch((error: unknown) => this.#log.error({ err: error }, 'transaction checkpoint failed; will retry at the next interval'));
    }, this.#system.checkpointInterval);
    this.#timer.unref();
  }

  /** Stops the timer (a checkpoint in progress finishes). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /**
   * Writes one checkpoint of `snapshot`, which the caller must have taken in this same turn of
   * the event loop (the marker is appended before anything else can change the engine).
   */
  checkpoint(snapshot: EngineSnapshot): Promise<void> {
    const payload = encodeSnapshot(snapshot);
    // Forced: the checkpoint file is fsynced, so after a power loss it must not point past the
    // journal's durable end (replay would start beyond the surviving records). One fsync per interval.
    const marker = this.#journal.append(TxRecordType.CHECKPOINT, Buffer.alloc(0), 'sync');
    const previous = this.#running ?? Promise.resolve();
    const run = previous.then(async () => {
      try {
        const position = await marker;
        await writeCheckpoint(this.#dir, { position, payload }, { maxCheckpoints: this.#system.maxCheckpoints, logger: this.#log });
        crashPoint('checkpoint.after-write');
        const oldest = await oldestCheckpointPosition(this.#dir, { logger: this.#log });
        const deleted = oldest === undefined ? 0 : await this.#journal.deleteFilesBefore(oldest);
        this.#log.debug({ position, prepared: snapshot.prepared.length, deletedFiles: deleted }, 'transaction checkpoint written');
      } catch (error) {
        this.#lastFailure = error instanceof Error ? error.message : String(error);
        throw error;
      }
      this.#written += 1;
      this.#lastWrittenAt = this.#now();
      this.#lastFailure = undefined;
    });
    this.#running = run.catch(() => undefined);
    return run;
  }
}
