/**
 * Checkpoints of the coordinator log: a snapshot of every pending entry plus the journal position
 * of a CHECKPOINT marker appended in the same turn of the event loop, so that replay restores the
 * snapshot and applies only the records after the marker. Written every `intervalMs` when
 * something was logged since the last one, and whenever the journal moved on to a new file.
 * Journal files older than the OLDEST kept checkpoint are then deleted, so that a corrupt newest
 * checkpoint can still fall back to an older one with its records intact (the broker's
 * tx-checkpointer does the same).
 *
 * Why the marker is forced ('sync'): the checkpoint file itself is fsynced, and if a machine crash
 * kept it but lost an unforced marker, its position would point past the end of the recovered
 * journal and the log could not open. One fsync per checkpoint costs nothing at this rate.
 */
import type { Logger } from '../../common/logger.js';
import type { PendingEntry } from '../coordinator-log.js';
import { formatJournalPosition } from '../../transaction/log/journal-position.js';
import { oldestCheckpointPosition, writeCheckpoint } from '../../transaction/log/tx-checkpoint.js';
import type { TxJournal } from '../../transaction/log/tx-journal.js';
import { encodeCoordinatorRecord } from './coordinator-records.js';
import { encodeCoordinatorSnapshot } from './coordinator-snapshot.js';

/** Settings of a {@link CoordinatorCheckpointer}. */
export interface CoordinatorCheckpointerSettings {
  readonly dir: string;
  readonly journal: TxJournal;
  /** Checkpoint files kept. */
  readonly maxCheckpoints: number;
  /** Period of the timer in ms; 0 disables it (checkpoints then happen on file rolls and on demand). */
  readonly intervalMs: number;
  /** The pending entries, taken synchronously. */
  readonly snapshot: () => readonly PendingEntry[];
  readonly now: () => number;
  readonly logger: Logger;
}

/** Writes the coordinator log's checkpoints and prunes its journal. */
export class CoordinatorCheckpointer {
  readonly #s: CoordinatorCheckpointerSettings;
  #timer: NodeJS.Timeout | undefined;
  /** Serialises checkpoints: each waits for the previous one. */
  #chain: Promise<void> = Promise.resolve();
  /** Background checkpoints queued and not finished: another one is not needed meanwhile. */
  #backgroundQueued = false;
  /** Something was logged since the last snapshot. */
  #dirty = false;
  /** Journal file of the last marker: a higher current file means the journal rolled since. */
  #markerFile: number;
  #written = 0;
  #stopped = false;

  constructor(settings: CoordinatorCheckpointerSettings) {
    this.#s = settings;
    this.#markerFile = settings.journal.endPosition.file;
    // Files left from before (a previous run that rolled without checkpointing): the first timer
    // tick checkpoints and prunes them even if nothing new is logged.
    this.#dirty = settings.journal.fileCount > 1;
  }

  /** Checkpoints written since open. */
  get written(): number {
    return this.#written;
  }

  /** Starts the timer. Unref'd: a pending checkpoint must not keep a process alive that is done. */
  start(): void {
    if (this.#s.intervalMs <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#dirty) this.#background('interval');
    }, this.#s.intervalMs);
    this.#timer.unref();
  }

  /** Notes that a record was logged; checkpoints in the background if the journal rolled to a new file. */
  noteAppend(): void {
    this.#dirty = true;
    if (this.#s.journal.endPosition.file > this.#markerFile) this.#background('journal rolled');
  }

  /**
   * Writes a checkpoint now. The snapshot and the marker are taken synchronously, in this call.
   * @throws (rejects) StoreIoError when the journal or a checkpoint write fails.
   */
  checkpoint(): Promise<void> {
    const entries = this.#s.snapshot();
    const payload = encodeCoordinatorSnapshot(entries);
    const marker = encodeCoordinatorRecord({ kind: 'checkpoint', atMs: this.#s.now() });
    const appended = this.#s.journal.append(marker.type, marker.payload, 'sync');
    // Observed now: the chain may only await it later, and Node would meanwhile report a
    // rejection (a failed journal) as unhandled.
    appended.catch(() => undefined);
    this.#dirty = false;
    // Set before the marker is written, so that noteAppend does not queue a second checkpoint for
    // the same roll; corrected to the marker's real file below.
    this.#markerFile = this.#s.journal.endPosition.file;
    const run = this.#chain.then(async () => {
      const position = await appended;
      this.#markerFile = Math.max(this.#markerFile, position.file);
      await writeCheckpoint(this.#s.dir, { position, payload }, { maxCheckpoints: this.#s.maxCheckpoints, logger: this.#s.logger });
      this.#written += 1;
      const oldest = await oldestCheckpointPosition(this.#s.dir, { logger: this.#s.logger });
      const deleted = oldest === undefined ? 0 : await this.#s.journal.deleteFilesBefore(oldest);
      this.#s.logger.debug({ position: formatJournalPosition(position), pending: entries.length, deletedFiles: deleted }, 'coordinator log checkpoint written');
    });
    // A marker that failed makes the chain's next link fail too; the journal is then failed
    // anyway and every later call reports that.
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and waits for the checkpoints in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#chain;
  }

  #background(reason: string): void {
    if (this.#backgroundQueued || this.#stopped || this.#s.journal.failure !== undefined) return;
    this.#backgroundQueued = true;
    let run: Promise<void>;
    try {
      run = this.checkpoint();
    } catch (error) {
      run = Promise.reject(error);
    }
    run
      .catch((error: unknown) => {
        this.#s.logger.error({ err: error, reason }, 'coordinator log checkpoint failed; older journal files are kept, the next checkpoint retries');
      })
      .finally(() => {
        this.#backgroundQueued = false;
      });
  }
}
