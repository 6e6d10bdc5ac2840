/**
 * Partition ownership in ZooKeeper: the ephemeral node
 * `consumers/<group>/owners/<topic>/<brokerId>-<partition>` whose data is the owner's member id
 * (metaq-reference §4). Whoever created the node owns the partition; nobody else may fetch it
 * until the owner deletes the node (or its session ends).
 *
 * How a node is claimed, and why:
 * - `create(ephemeral)` first: atomic "create unless it exists", so two members can never both
 *   believe they created it — even two members of the same process sharing one ZooKeeper session
 *   (where `ownEphemeral` alone would "take over" the other member's node).
 * - then `ownEphemeral(path, id, { waitMs: 0 })` on the node now ours, so that the ZkClient
 *   re-creates it in its next session after an expiry (the `session` event reports the ones
 *   another member took meanwhile as conflicts; the group member re-reads them anyway).
 * - An existing node whose data is our own id is ours (a create whose answer was lost, or a
 *   re-created one); with another id it is not released yet: the claim is pending.
 *
 * A node is released only when its data is our id, so a member never deletes another's node.
 */
import { ZookeeperError } from '../../../common/errors.js';
import type { ZkClient } from '../../../zk/zk-client.js';
import { type MetaPaths, parsePartitionName } from '../../../zk/meta-paths.js';

/** The outcome of a claim. */
export type ClaimResult = 'owned' | 'pending';

/** What the owner node of a partition says about us. */
export type OwnerCheck = 'ours' | 'theirs' | 'missing';

/** Owner-node operations of one member. */
export class OwnerNodes {
  readonly #zk: ZkClient;
  readonly #paths: MetaPaths;
  readonly #group: string;
  readonly #memberId: string;

  constructor(zk: ZkClient, paths: MetaPaths, group: string, memberId: string) {
    this.#zk = zk;
    this.#paths = paths;
    this.#group = group;
    this.#memberId = memberId;
  }

  /** `owners/<topic>/<name>` for a partition name `<brokerId>-<partition>`. */
  path(topic: string, name: string): string {
    const parsed = parsePartitionName(name);
    if (parsed === undefined) return `${this.#paths.groupOwners(this.#group, topic)}/${name}`;
    return this.#paths.partitionOwner(this.#group, topic, parsed.brokerId, parsed.partition);
  }

  /**
   * Tries to own a partition: `'owned'` when the owner node is (now) ours, `'pending'` while
   * another member (or an older session with our id) still holds it. If the ZkClient fails
   * after the node was created, the node stays with our id: the next claim finds it ours, and
   * {@link releaseAllOf} finds it at leave.
   */
  async claim(topic: string, name: string): Promise<ClaimResult> {
    const path = this.path(topic, name);
    // Two tries: the node may vanish between our create and our read of it.
    let ours = false;
    for (let attempt = 0; attempt < 2 && !ours; attempt++) {
      if ((await this.#zk.create(path, this.#memberId, { mode: 'ephemeral', parents: true })) === 'created') {
        ours = true;
      } else {
        const node = await this.#zk.get(path);
        if (node === undefined) continue;
        if (node.data !== this.#memberId) return 'pending';
        ours = true;
      }
    }
    if (!ours) return 'pending';
    try {
      await this.#zk.ownEphemeral(path, this.#memberId, { waitMs: 0 });
    } catch (error) {
      // Our id, but another (older) session's node: a previous instance with the same consumer
      // id that has not expired yet. It goes away with that session.
      if (error instanceof ZookeeperError && error.zkCode === 'NODE_EXISTS') return 'pending';
      throw error;
    }
    return 'owned';
  }

  /** Whether the owner node of a partition is ours. */
  async check(topic: string, name: string): Promise<OwnerCheck> {
    const node = await this.#zk.get(this.path(topic, name));
    if (node === undefined) return 'missing';
    return node.data === this.#memberId ? 'ours' : 'theirs';
  }

  /**
   * Releases a partition: deletes its owner node if the node's data is our id (and stops the
   * ZkClient from re-creating it). A node of another member is left alone. A missing node is
   * only un-registered from re-creation when `registered` (we owned it), because in a session
   * shared by several members the node may be another member's by the time we act.
   */
  async release(topic: string, name: string, registered = true): Promise<void> {
    const path = this.path(topic, name);
    const node = await this.#zk.get(path);
    if (node === undefined) {
      if (registered) await this.#zk.releaseEphemeral(path);
      return;
    }
    if (node.data !== this.#memberId) return;
    await this.#zk.releaseEphemeral(path);
    // releaseEphemeral deletes only a node of the current session; a node with our id from an
    // older session (see claim) is ours too.
    if ((await this.#zk.get(path))?.data === this.#memberId) await this.#zk.remove(path);
  }

  /** Releases every owner node of `topic` whose data is our id (at leave: catches strays). */
  async releaseAllOf(topic: string): Promise<void> {
    const names = (await this.#zk.children(this.#paths.groupOwners(this.#group, topic))) ?? [];
    await Promise.all(names.map((name) => this.release(topic, name, false)));
  }
}
