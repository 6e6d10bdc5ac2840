/**
 * Segment and partition-directory naming, as MetaQ lays them out (metaq-reference §2):
 * `<dataPath>/<topic>-<partition>/<20-digit zero-padded start offset>.meta`.
 */

/** File extension of a live segment. */
export const SEGMENT_SUFFIX = '.meta';
const SEGMENT_NAME = /^(\d{20})\.meta$/;

/** `00000000000000001024.meta` for start offset 1024. */
export function segmentFileName(startOffset: number): string {
  return `${String(startOffset).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The start offset a segment file name encodes, or undefined if the name is not a segment. */
export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return undefined;
  const value = Number(match[1]);
  // Offsets beyond 2^53 cannot be represented exactly; no real log gets there (8 PiB).
  return Number.isSafeInteger(value) ? value : undefined;
}

/** `<topic>-<partition>`. */
export function partitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/**
 * Splits a partition directory name at its last `-` (topics may contain dashes), or returns
 * undefined when the name is not of that form.
 */
export function parsePartitionDirName(name: string): { topic: string; partition: number } | undefined {
  const dash = name.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const partText = name.slice(dash + 1);
  if (!/^\d+$/.test(partText)) return undefined;
  return { topic: name.slice(0, dash), partition: Number(partText) };
}
