/**
 * Coalescing queued requests into few writes: requests made in one turn of the event loop are
 * copied into buffers of up to {@link WRITE_CHUNK_BYTES} (one syscall per chunk instead of one
 * per request); a request larger than a chunk is written on its own without copying its data.
 */
import type { PendingRequest } from './request.js';
import type { Transport } from './transport.js';

/** Largest coalesced write: big enough for few syscalls, small enough not to hold memory twice for long. */
export const WRITE_CHUNK_BYTES = 256 * 1024;

/** Copies the requests of `batch` (`bytes` in all) into one buffer and writes it; marks them written. */
function writeBatch(transport: Transport, batch: readonly PendingRequest[], bytes: number): void {
  if (batch.length === 0) return;
  const out = Buffer.allocUnsafe(bytes);
  let position = 0;
  for (const request of batch) {
    const head = request.head as string | Buffer;
    position += typeof head === 'string' ? out.write(head, position, 'utf8') : head.copy(out, position);
    if (request.body !== undefined) position += request.body.copy(out, position);
    request.head = undefined;
    request.body = undefined;
  }
  transport.write(out);
}

/** Writes one large request without copying its data; marks it written. */
function writeLarge(transport: Transport, request: PendingRequest): void {
  const head = request.head as string | Buffer;
  transport.write(typeof head === 'string' ? Buffer.from(head, 'utf8') : head);
  if (request.body !== undefined) transport.write(request.body);
  request.head = undefined;
  request.body = undefined;
}

/** Writes the unsettled, unwritten requests of `queued` in order, coalesced; marks them written. */
export function writeCoalesced(transport: Transport, queued: readonly PendingRequest[]): void {
  let batch: PendingRequest[] = [];
  let batchBytes = 0;
  for (const request of queued) {
    if (request.settled || request.head === undefined) continue;
    if (request.size > WRITE_CHUNK_BYTES) {
      writeBatch(transport, batch, batchBytes);
      batch = [];
      batchBytes = 0;
      writeLarge(transport, request);
      continue;
    }
    if (batchBytes + request.size > WRITE_CHUNK_BYTES) {
      writeBatch(transport, batch, batchBytes);
      batch = [];
      batchBytes = 0;
    }
    batch.push(request);
    batchBytes += request.size;
  }
  writeBatch(transport, batch, batchBytes);
}
