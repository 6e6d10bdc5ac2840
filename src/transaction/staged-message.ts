/**
 * A message put inside a transaction: it has its id and partition from the moment of the put
 * (MetaQ answers `<id> <partition> -1`), but reaches the partition log only at commit.
 */

/** One staged message. */
export interface StagedMessage {
  readonly topic: string;
  readonly partition: number;
  readonly id: bigint;
  readonly flag: number;
  readonly data: Buffer;
  /** Verified checksum of `data`. */
  readonly checksum: number;
}

/**
 * The messages of one partition in a commit, with the partition's written offset when the
 * commit was decided: the batch lands at or after it, which bounds the search when a replay
 * must find out whether the batch is already there.
 */
export interface CommitBatch {
  readonly topic: string;
  readonly partition: number;
  readonly lowerBound: number;
  readonly messages: readonly StagedMessage[];
}

/** Groups staged messages by partition, in staging order within each partition. */
export function groupByPartition(messages: readonly StagedMessage[]): Map<string, StagedMessage[]> {
  const groups = new Map<string, StagedMessage[]>();
  for (const message of messages) {
    const key = `${message.topic}-${message.partition}`;
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [message]);
    else group.push(message);
  }
  return groups;
}
