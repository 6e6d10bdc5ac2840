/**
 * MetaQ's `ZkOffsetStorage` (metaq-reference §6.7), the default storage of a consumer group in
 * ZooKeeper mode: one persistent znode per partition,
 *
 * ```
 * <root>/consumers/<group>/offsets/<topic>/<brokerId>-<partition>  =  "<msgId>-<offset>"
 * ```
 *
 * the format of MetaQ ≥ 1.4 (the id of the last consumed message, possibly negative, then the
 * next offset to fetch); the bare `<offset>` of older clients is read too (id `-1`). Java MetaQ
 * consumers of the same group read and write the same nodes, and the dashboard shows them.
 *
 * Rules:
 * - A commit writes each given partition (the consumer passes only the partitions that moved),
 *   in parallel; when one write fails the others are still made and the commit rejects.
 * - `init` creates the node (`-1-<offset>`) only when it is missing; an existing node is never
 *   overwritten by it. (Java MetaQ's `initOffset` writes nothing; a Java consumer reads our
 *   `-1-<offset>` fine.)
 * - Offsets are **not** forced forward-only: MetaQ's dashboard "skip" and operators reset a
 *   group by writing the node, and a forward-only rule would silently undo such a reset at the
 *   next commit. The consumer protocol itself never moves an offset back: a partition changes
 *   owner only after the previous owner committed (client/zk/group/group-member.ts), and a
 *   former owner whose session expired (a paused process) cannot write its stale positions:
 *   a commit with a fence is written only within the session that holds the partitions'
 *   owner nodes (`ZkClient.setInSession`; MetaQ's Java client has no such fence).
 * - A negative or non-integer offset is refused (InvalidArgumentError) and never written: a
 *   negative stored offset is what made MetaQ's dashboard show negative lag (issues 113/116/121).
 * - A node that cannot be parsed makes `load` fail (IllegalStateError naming the node) rather
 *   than silently restarting the partition from the configured offset.
 *
 * The ZkClient belongs to the caller; `close()` only waits for the operations in flight.
 */
import { ClientClosedError, IllegalStateError, InvalidArgumentError } from '../../common/errors.js';
import type { ZkClient } from '../../zk/zk-client.js';
import { decodeZkOffset, encodeZkOffset, type MetaPaths } from '../../zk/meta-paths.js';
import type { OffsetCommitFence, OffsetStorage, PartitionOffset, StoredPartition } from './offset-storage.js';

/** Options of {@link createZookeeperOffsetStorage}. */
export interface ZookeeperOffsetStorageOptions {
  /** The session to use; the storage never closes it. */
  readonly zk: ZkClient;
  /** The znode layout (its root, e.g. `/meta`). */
  readonly paths: MetaPaths;
}

/** An {@link OffsetStorage} in ZooKeeper; see {@link createZookeeperOffsetStorage}. */
export interface ZookeeperOffsetStorage extends OffsetStorage {
  /** The layout the nodes are written under. */
  readonly paths: MetaPaths;
  /** The node of one partition's offset. */
  nodePath(topic: string, group: string, partition: StoredPartition): string;
}

/**
 * Creates the ZooKeeper offset storage on `zk`.
 *
 * @throws {InvalidArgumentError} without `zk` or `paths`.
 */
export function createZookeeperOffsetStorage(options: ZookeeperOffsetStorageOptions): ZookeeperOffsetStorage {
  if (options === null || typeof options !== 'object' || typeof options.zk?.get !== 'function' || typeof options.paths?.partitionOffset !== 'function') {
    throw new InvalidArgumentError('createZookeeperOffsetStorage needs { zk, paths }: a ZkClient and the MetaPaths of the cluster');
  }
  return new ZkOffsetStorage(options.zk, options.paths);
}

function checkOffset(offset: number, where: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError(`Refusing to store offset ${String(offset)} for ${where}: an offset is a non-negative integer`);
  }
}

class ZkOffsetStorage implements ZookeeperOffsetStorage {
  readonly paths: MetaPaths;
  readonly #zk: ZkClient;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(zk: ZkClient, paths: MetaPaths) {
    this.#zk = zk;
    this.paths = paths;
  }

  nodePath(topic: string, group: string, partition: StoredPartition): string {
    return this.paths.partitionOffset(group, topic, partition.brokerId, partition.partition);
  }

  load(topic: string, group: string, partitions: readonly StoredPartition[]): Promise<PartitionOffset[]> {
    return this.#track(async () => {
      const found = await Promise.all(
        partitions.map(async ({ brokerId, partition }): Promise<PartitionOffset | undefined> => {
          const path = this.nodePath(topic, group, { brokerId, partition });
          const node = await this.#zk.get(path);
          if (node === undefined) return undefined;
          const parsed = decodeZkOffset(node.data);
          if (parsed === undefined) {
            throw new IllegalStateError(
              `The offset node ${path} holds ${JSON.stringify(node.data)}, not "<msgId>-<offset>" or "<offset>"; fix or delete it (deleting restarts the partition from the configured offset)`,
            );
          }
          return { topic, brokerId, partition, offset: parsed.offset, messageId: parsed.messageId };
        }),
      );
      return found.filter((offset): offset is PartitionOffset => offset !== undefined);
    });
  }

  commit(group: string, offsets: readonly PartitionOffset[], fence?: OffsetCommitFence): Promise<void> {
    return this.#track(async () => {
      for (const o of offsets) checkOffset(o.offset, `group '${group}' topic '${o.topic}' partition ${o.brokerId}-${o.partition}`);
      const write = (o: PartitionOffset): Promise<unknown> => {
        const path = this.nodePath(o.topic, group, o);
        const data = encodeZkOffset(o.messageId, o.offset);
        return fence === undefined ? this.#zk.set(path, data) : this.#zk.setInSession(path, data, fence.zkSessionId);
      };
      const results = await Promise.allSettled(offsets.map(write));
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    });
  }

  init(topic: string, group: string, partition: StoredPartition, offset: number): Promise<void> {
    return this.#track(async () => {
      checkOffset(offset, `group '${group}' topic '${topic}' partition ${partition.brokerId}-${partition.partition}`);
      await this.#zk.create(this.nodePath(topic, group, partition), encodeZkOffset(-1n, offset), { mode: 'persistent', parents: true });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ClientClosedError('The ZooKeeper offset storage'));
    const running = operation();
    this.#inFlight.add(running);
    const forget = (): void => {
      this.#inFlight.delete(running);
    };
    running.then(forget, forget);
    return running;
  }
}
