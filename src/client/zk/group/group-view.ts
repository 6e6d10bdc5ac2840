/**
 * Reading a consumer group's members from ZooKeeper (metaq-reference §4): the children of
 * `consumers/<group>/ids` are the member ids (`<group>_<consumerId>`), each node's data the
 * comma-separated topics that member subscribes to.
 */
import type { ZkClient } from '../../../zk/zk-client.js';
import type { MetaPaths } from '../../../zk/meta-paths.js';
import { sortJavaStrings } from './strategies.js';

/** The topics CSV a member registers (MetaQ's `getTopicsString`). */
export function encodeMemberTopics(topics: readonly string[]): string {
  return topics.join(',');
}

/** Parses a member node's data like MetaQ (`split(",")`, blank → none); empty items dropped. */
export function decodeMemberTopics(data: string): string[] {
  if (data.trim() === '') return [];
  return data.split(',').filter((topic) => topic !== '');
}

/** The members of a group at one moment. */
export interface GroupView {
  /** Every member id found. */
  readonly members: ReadonlySet<string>;
  /** topic → ids of the members subscribing to it, sorted in Java string order. */
  readonly membersByTopic: ReadonlyMap<string, readonly string[]>;
}

/**
 * Reads the members of `group` and their topics. A member that disappears while being read is
 * left out (its departure is another children event, which triggers another rebalance).
 */
export async function readGroupView(zk: ZkClient, paths: MetaPaths, group: string): Promise<GroupView> {
  const idsPath = paths.groupIds(group);
  const children = (await zk.children(idsPath)) ?? [];
  const nodes = await Promise.all(children.map(async (id) => ({ id, node: await zk.get(`${idsPath}/${id}`) })));
  const byTopic = new Map<string, string[]>();
  const members = new Set<string>();
  for (const { id, node } of nodes) {
    if (node === undefined) continue;
    members.add(id);
    for (const topic of new Set(decodeMemberTopics(node.data))) {
      const list = byTopic.get(topic) ?? [];
      list.push(id);
      byTopic.set(topic, list);
    }
  }
  return { members, membersByTopic: new Map([...byTopic].map(([topic, ids]) => [topic, sortJavaStrings(ids)])) };
}
