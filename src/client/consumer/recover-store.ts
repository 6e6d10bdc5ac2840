/**
 * The local recover store (MetaQ's `LocalRecoverPolicy`, metaq-reference §6.6): where a message
 * goes when the listener failed it on every retry, so that consumption can move on without
 * losing it. A background task re-delivers stored messages (recover-task.ts).
 *
 * Layout: `<recoverPath>/<topic>@<group>/<brokerId>-<partition>-<offset, 20 digits>.msg`, one
 * small file per message. Why one file per message instead of MetaQ's journal: messages leave
 * the store in any order (one that keeps failing must not hold back the others, MetaQ issues
 * 99/111), and deleting a file is the simplest way to remove one without compaction. Recovered
 * messages are rare, so the file count stays small.
 *
 * File format (all written at once):
 * ```
 * MQRECOV1\n
 * {"topic":"…","group":"…","brokerId":0,"partition":1,"offset":1234,"storedAt":"<ISO time>"}\n
 * <the stored record: int32 length, int32 CRC, int64 id, int32 flag, data> (as in a segment)
 * ```
 * The record's CRC covers the message data, so a damaged file is detected; it is renamed to
 * `….corrupt` and skipped.
 *
 * Crash safety: a file is written to a temporary name, fsynced, renamed into place, and the
 * directory fsynced (writeFileAtomic): after a crash a message is either fully in the store or
 * not at all, and in the latter case its offset was not committed either (the offset advances
 * only after the save), so it is fetched again. The same message saved twice (a redelivery
 * after a restart) lands in the same file name, so the store holds it once.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { componentLogger } from '../../common/logger.js';
import { DEFAULT_MAX_RECORD_DATA_LENGTH } from '../../protocol/limits.js';
import { decodeMessageData, encodeMessageData } from '../../protocol/message-data.js';
import { decodeRecordAt, encodeRecord } from '../../protocol/record.js';
import type { ConsumedMessage } from '../message.js';
import { isTempFileName, removeStaleTempFiles, writeFileAtomic } from '../util/atomic-file.js';

const MAGIC = Buffer.from('MQRECOV1\n', 'latin1');
const SUFFIX = '.msg';

/** A message read back from the store. */
export interface StoredMessage {
  /** The file name inside the store directory (the key for {@link RecoverStore.remove}). */
  readonly name: string;
  readonly brokerId: number;
  /** The message, with `recovered: true`. */
  readonly message: ConsumedMessage;
}

/** The recover store of one topic and group. */
export interface RecoverStore {
  /** `<recoverPath>/<topic>@<group>`. */
  readonly dir: string;
  /** Stores `message` durably; resolves once it is on disk. */
  save(brokerId: number, message: ConsumedMessage): Promise<void>;
  /** Names of the stored messages, by broker, partition and offset. */
  names(): Promise<string[]>;
  /** Reads one message; `undefined` when it is gone or damaged (a damaged file is set aside). */
  read(name: string): Promise<StoredMessage | undefined>;
  /** Deletes a message (after a successful delivery). */
  remove(name: string): Promise<void>;
}

/** The directory of the store of `topic` and `group` under `recoverPath`. */
export function recoverStoreDir(recoverPath: string, topic: string, group: string): string {
  return join(recoverPath, `${topic}@${group}`);
}

/** Opens (lazily creates) the recover store of `topic` and `group`. */
export function openRecoverStore(recoverPath: string, topic: string, group: string): RecoverStore {
  return new FileRecoverStore(recoverStoreDir(recoverPath, topic, group), topic, group);
}

/** `<brokerId>-<partition>-<offset padded to 20 digits>.msg`: sorts by partition and offset. */
export function recoverFileName(brokerId: number, partition: number, offset: number): string {
  return `${brokerId}-${partition}-${String(offset).padStart(20, '0')}${SUFFIX}`;
}

const log = componentLogger('client');

class FileRecoverStore implements RecoverStore {
  readonly dir: string;
  readonly #topic: string;
  readonly #group: string;
  #cleaned = false;

  constructor(dir: string, topic: string, group: string) {
    this.dir = dir;
    this.#topic = topic;
    this.#group = group;
  }

  async save(brokerId: number, message: ConsumedMessage): Promise<void> {
    const { data, flag } = encodeMessageData(message.data, message.attribute, message.flag);
    const meta = JSON.stringify({
      topic: this.#topic,
      group: this.#group,
      brokerId,
      partition: message.partition,
      offset: message.offset,
      storedAt: new Date().toISOString(),
    });
    const record = encodeRecord({ id: message.id, flag, data });
    const content = Buffer.concat([MAGIC, Buffer.from(`${meta}\n`, 'utf8'), record]);
    await writeFileAtomic(join(this.dir, recoverFileName(brokerId, message.partition, message.offset)), content);
  }

  async names(): Promise<string[]> {
    if (!this.#cleaned) {
      this.#cleaned = true;
      await removeStaleTempFiles(this.dir);
    }
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return names.filter((name) => name.endsWith(SUFFIX) && !isTempFileName(name)).sort();
  }

  async read(name: string): Promise<StoredMessage | undefined> {
    const file = join(this.dir, name);
    let content: Buffer;
    try {
      content = await fs.promises.readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = parseStoredMessage(name, content);
    if (parsed === undefined) {
      log.error({ file }, 'damaged recover-store file set aside as .corrupt');
      await fs.promises.rename(file, `${file}.corrupt`).catch(() => undefined);
    }
    return parsed;
  }

  async remove(name: string): Promise<void> {
    // No directory fsync: if the removal is lost in a crash the message is delivered once more,
    // which at-least-once delivery allows.
    await fs.promises.rm(join(this.dir, name), { force: true });
  }
}

/** Parses a store file; `undefined` when it is damaged. */
export function parseStoredMessage(name: string, content: Buffer): StoredMessage | undefined {
  if (content.length < MAGIC.length || !content.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const lineEnd = content.indexOf(0x0a, MAGIC.length);
  if (lineEnd === -1) return undefined;
  let meta: { topic?: unknown; brokerId?: unknown; partition?: unknown; offset?: unknown };
  try {
    meta = JSON.parse(content.toString('utf8', MAGIC.length, lineEnd)) as typeof meta;
  } catch {
    return undefined;
  }
  const { topic, brokerId, partition, offset } = meta;
  if (typeof topic !== 'string' || !Number.isInteger(brokerId) || !Number.isInteger(partition) || !Number.isSafeInteger(offset)) return undefined;
  const record = decodeRecordAt(content, lineEnd + 1, DEFAULT_MAX_RECORD_DATA_LENGTH);
  if (typeof record === 'string' || lineEnd + 1 + record.size !== content.length) return undefined;
  let decoded: ReturnType<typeof decodeMessageData>;
  try {
    decoded = decodeMessageData(record.data, record.flag);
  } catch {
    return undefined;
  }
  const message: ConsumedMessage = {
    id: record.id,
    topic,
    partition: partition as number,
    offset: offset as number,
    data: decoded.payload,
    flag: record.flag,
    recovered: true,
    ...(decoded.attribute === undefined ? {} : { attribute: decoded.attribute }),
  };
  return { name, brokerId: brokerId as number, message };
}
