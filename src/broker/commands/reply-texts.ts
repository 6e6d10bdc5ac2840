/**
 * The exact texts MetaQ puts in error bodies (metaq-reference §1.4), in one place so that the
 * TCP front, the HTTP gateway and the tests agree byte for byte. MetaQ's spelling and
 * punctuation are kept on purpose: existing clients and monitoring match on them.
 */

/** 404 of get/offset when the partition has no store. The backquotes are literal. */
export function noStoreText(topic: string, partition: number): string {
  return `The topic \`${topic}\` in partition \`${partition}\` is not exists`;
}

/** 404 of a get at or after the end of the log. */
export function notFoundAtText(offset: number | bigint): string {
  return `Could not find message at position ${offset}`;
}

/** 400 of a get with maxSize <= 0. */
export function invalidMaxSizeText(maxSize: number): string {
  return `Bad request,invalid max size:${maxSize}`;
}

/** Detail of a 403 when a partition is closed. */
export function partitionClosedText(brokerId: number, partition: number): string {
  return `Partition[${brokerId}-${partition}] has been closed`;
}

/** 500 detail of a put whose data does not match its checksum. */
export const CHECKSUM_FAILURE_TEXT = 'Checksum failure,message may be corrupted when transfering on networking.';

/** Body of a failed put: `Put message to [broker '<url>'] [partition '<topic>-<p>'] failed.Detail:<detail>`. */
export function putFailedText(brokerUrl: string, topic: string, partition: number, detail: string): string {
  return `Put message to [broker '${brokerUrl}'] [partition '${topic}-${partition}'] failed.Detail:${detail}`;
}
