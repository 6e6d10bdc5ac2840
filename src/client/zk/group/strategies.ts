/**
 * MetaQ's two load-balance strategies (metaq-reference §4, `DefaultLoadBalanceStrategy` and
 * `ConsisHashStrategy`) as pure functions: given every partition of a topic, every member of the
 * group that subscribes to it, and one member, which partitions that member owns.
 *
 * Every member computes its own share from the same ZooKeeper data, with no coordinator, so the
 * functions must give the same answer in every member — including Java MetaQ 1.4 consumers in
 * the same group. Hence two quirks are kept on purpose:
 *
 * - Partition names `<brokerId>-<partition>` are sorted as **strings** (UTF-16 code units, like
 *   Java's `String.compareTo`), so `0-10` comes before `0-2`. A numeric order would be nicer, but
 *   a metaq member sorting numerically and a Java member sorting as strings would compute
 *   different ranges, and two members would both claim (or both skip) some partitions. The
 *   quirk costs nothing: it only decides which contiguous run of the sorted list a member gets;
 *   the sizes of the shares are the same either way.
 * - Member ids are sorted the same way (`<group>_<consumerId>` strings).
 */
import { createHash } from 'node:crypto';
import type { LoadBalanceStrategy } from '../../session/broker-discovery.js';

/** Java's `String.compareTo` order: UTF-16 code units, no locale. */
export function compareJavaStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Deduplicates and sorts in Java string order (MetaQ's partition list and member list). */
export function sortJavaStrings(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareJavaStrings);
}

/**
 * MetaQ's DEFAULT strategy: the sorted partitions are cut into contiguous ranges, one per
 * sorted member. With P partitions, C members and `me` at index i:
 * `per = floor(P / C)`, `extra = P mod C`, start `per·i + min(i, extra)`, count
 * `per + (i < extra ? 1 : 0)`. Members past P get nothing; a member not in `consumers` gets
 * nothing. Inputs need not be sorted or unique (they are normalised first).
 *
 * @returns `me`'s partitions, in sorted order.
 */
export function rangeAssignment(partitions: readonly string[], consumers: readonly string[], me: string): string[] {
  const parts = sortJavaStrings(partitions);
  const members = sortJavaStrings(consumers);
  const index = members.indexOf(me);
  if (index < 0 || parts.length === 0) return [];
  const per = Math.floor(parts.length / members.length);
  const extra = parts.length % members.length;
  const start = per * index + Math.min(index, extra);
  const count = per + (index < extra ? 1 : 0);
  return parts.slice(start, start + count);
}

/** Virtual nodes per member on the ring (MetaQ's `NUM_REPS`). */
export const KETAMA_POINTS_PER_MEMBER = 160;

function md5(text: string): Buffer {
  return createHash('md5').update(text, 'utf8').digest();
}

/** A ketama ring: sorted points and the member owning each. */
interface Ring {
  readonly points: Uint32Array;
  readonly owners: readonly string[];
}

/**
 * The ring of MetaQ's `ConsisHashStrategy`: for each member (in sorted order) and k in 0..39,
 * MD5 of `<member>-<k>` gives four points (bytes 4h..4h+3 read as an unsigned little-endian
 * 32-bit integer). A point two members share belongs to the later one in sorted order (Java's
 * `TreeMap.put` overwrites).
 */
function buildRing(members: readonly string[]): Ring {
  const byPoint = new Map<number, string>();
  for (const member of members) {
    for (let k = 0; k < KETAMA_POINTS_PER_MEMBER / 4; k++) {
      const digest = md5(`${member}-${k}`);
      for (let h = 0; h < 4; h++) byPoint.set(digest.readUInt32LE(h * 4), member);
    }
  }
  const points = Uint32Array.from(byPoint.keys()).sort();
  return { points, owners: Array.from(points, (point) => byPoint.get(point) ?? '') };
}

/** The owner of the first point at or after `hash`, wrapping to the first point. */
function ringOwner(ring: Ring, hash: number): string | undefined {
  const { points } = ring;
  if (points.length === 0) return undefined;
  let low = 0;
  let high = points.length; // first index with points[index] >= hash, in [low, high]
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((points[mid] ?? 0) < hash) low = mid + 1;
    else high = mid;
  }
  return ring.owners[low === points.length ? 0 : low];
}

/** A partition's position on the ring: the first 4 bytes of MD5(name), little-endian unsigned. */
export function ketamaHash(name: string): number {
  return md5(name).readUInt32LE(0);
}

/**
 * MetaQ's CONSIST strategy: each partition goes to the member owning the first ring point at or
 * after the partition's hash. Shares are uneven (MetaQ documents it as "not recommended"), but
 * a member joining or leaving moves only the partitions next to its points.
 *
 * @returns `me`'s partitions, in sorted order.
 */
export function consistentHashAssignment(partitions: readonly string[], consumers: readonly string[], me: string): string[] {
  const members = sortJavaStrings(consumers);
  if (!members.includes(me)) return [];
  const ring = buildRing(members);
  return sortJavaStrings(partitions).filter((name) => ringOwner(ring, ketamaHash(name)) === me);
}

/** The strategy function for a {@link LoadBalanceStrategy}. */
export function assignmentFunction(strategy: LoadBalanceStrategy): (partitions: readonly string[], consumers: readonly string[], me: string) => string[] {
  return strategy === 'consistent-hash' ? consistentHashAssignment : rangeAssignment;
}
