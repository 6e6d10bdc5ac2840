/**
 * MetaQ's `LocalOffsetStorage`: every group's offsets in one JSON file on this machine
 * (default `~/.meta_offsets`), the format of offsets-file.ts.
 *
 * Each commit rewrites the whole file atomically (temporary file + fsync + rename + directory
 * fsync), so a crash at any moment leaves the previous commit or the new one, never a torn
 * file. Commits are serialised; a commit that arrives while one is being written is merged
 * into the next write, so a burst of commits costs at most two writes.
 *
 * One process per file: two processes committing to the same file overwrite each other's
 * groups (as in MetaQ). Give each process its own file, or use a shared storage.
 */
import fs from 'node:fs';
import os from 'node:os';
import { basename, dirname, join } from 'node:path';
import { IllegalStateError } from '../../common/errors.js';
import { removeStaleTempFiles, writeFileAtomic } from '../util/atomic-file.js';
import type { OffsetStorage, PartitionOffset, StoredPartition } from './offset-storage.js';
import { formatOffsetsFile, parseOffsetsFile, type OffsetsByGroup } from './offsets-file.js';

/** MetaQ's default file, `${user.home}/.meta_offsets`. */
export function defaultLocalOffsetsFile(): string {
  return join(os.homedir(), '.meta_offsets');
}

/** An {@link OffsetStorage} backed by one local JSON file. */
export interface LocalOffsetStorage extends OffsetStorage {
  /** The file, absolute or as given. */
  readonly file: string;
}

/** Creates a local offset storage on `file` (default `~/.meta_offsets`); the file is read on first use. */
export function createLocalOffsetStorage(file: string = defaultLocalOffsetsFile()): LocalOffsetStorage {
  return new FileOffsetStorage(file);
}

/** group → partition key → offset. */
type GroupOffsets = Map<string, Map<string, PartitionOffset>>;

function key(topic: string, brokerId: number, partition: number): string {
  return `${topic}\u0000${brokerId}\u0000${partition}`;
}

class FileOffsetStorage implements LocalOffsetStorage {
  readonly file: string;
  #groups: GroupOffsets | undefined;
  #loading: Promise<GroupOffsets> | undefined;
  /** The write in progress, if any. */
  #writing: Promise<void> | undefined;
  /** A write requested while one was in progress. */
  #writeAgain: Promise<void> | undefined;

  constructor(file: string) {
    this.file = file;
  }

  async load(topic: string, group: string, partitions: readonly StoredPartition[]): Promise<PartitionOffset[]> {
    const groups = await this.#state();
    const stored = groups.get(group);
    if (stored === undefined) return [];
    const found: PartitionOffset[] = [];
    for (const p of partitions) {
      const offset = stored.get(key(topic, p.brokerId, p.partition));
      if (offset !== undefined) found.push(offset);
    }
    return found;
  }

  async commit(group: string, offsets: readonly PartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    const groups = await this.#state();
    const stored = groups.get(group) ?? new Map<string, PartitionOffset>();
    groups.set(group, stored);
    for (const o of offsets) stored.set(key(o.topic, o.brokerId, o.partition), { ...o });
    await this.#write();
  }

  async init(topic: string, group: string, partition: StoredPartition, offset: number): Promise<void> {
    const groups = await this.#state();
    const stored = groups.get(group) ?? new Map<string, PartitionOffset>();
    groups.set(group, stored);
    const k = key(topic, partition.brokerId, partition.partition);
    if (stored.has(k)) return;
    stored.set(k, { topic, brokerId: partition.brokerId, partition: partition.partition, offset, messageId: -1n });
    await this.#write();
  }

  async close(): Promise<void> {
    await this.#writeAgain;
    await this.#writing;
  }

  #state(): Promise<GroupOffsets> {
    if (this.#groups !== undefined) return Promise.resolve(this.#groups);
    this.#loading ??= this.#read();
    return this.#loading;
  }

  async #read(): Promise<GroupOffsets> {
    await removeStaleTempFiles(dirname(this.file), `${basename(this.file)}.tmp-`);
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#loading = undefined;
        throw error;
      }
      this.#groups = new Map();
      return this.#groups;
    }
    let parsed: OffsetsByGroup;
    try {
      parsed = text.trim() === '' ? new Map() : parseOffsetsFile(text);
    } catch (error) {
      this.#loading = undefined;
      // Never start over silently: that would re-consume (or skip) everything.
      throw new IllegalStateError(
        `The offsets file ${this.file} is not valid (${error instanceof Error ? error.message : String(error)}); fix it or move it away to start from the configured offsets`,
      );
    }
    this.#groups = new Map([...parsed].map(([group, list]) => [group, new Map(list.map((o) => [key(o.topic, o.brokerId, o.partition), o]))]));
    return this.#groups;
  }

  /** Writes the current state; coalesces with a write in progress. */
  #write(): Promise<void> {
    if (this.#writing === undefined) {
      const writing = this.#writeNow().finally(() => {
        if (this.#writing === writing) this.#writing = undefined;
      });
      this.#writing = writing;
      return writing;
    }
    // One more write after the current one covers every commit made meanwhile.
    this.#writeAgain ??= this.#writing
      .catch(() => undefined)
      .then(() => {
        this.#writeAgain = undefined;
        return this.#write();
      });
    return this.#writeAgain;
  }

  #writeNow(): Promise<void> {
    const groups: OffsetsByGroup = new Map();
    for (const [group, offsets] of this.#groups ?? new Map()) groups.set(group, [...offsets.values()]);
    return writeFileAtomic(this.file, formatOffsetsFile(groups));
  }
}
