/**
 * One segment file of a partition log: a run of records starting at absolute offset `start`.
 * Only the last segment of a partition is written to; the others are immutable.
 *
 * Readers take a reference while they read so that retention can remove a segment from the
 * log at once and close its descriptor only when the last read of it has finished.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { segmentFileName } from './segment-name.js';

/** An open segment file. */
export class Segment {
  /** Absolute offset of the first byte of this file. */
  readonly start: number;
  /** Full path of the file. */
  readonly path: string;
  /** Open descriptor (read-write for the active segment, read-only for older ones). */
  readonly fd: number;
  /** Bytes in the file. */
  size: number;
  #refs = 0;
  #retired = false;

  private constructor(start: number, path: string, fd: number, size: number) {
    this.start = start;
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  /** Opens an existing segment file. */
  static async open(dir: string, start: number, writable: boolean): Promise<Segment> {
    const path = join(dir, segmentFileName(start));
    // Raw descriptors, not FileHandles: the hot path uses the callback fs API (see file-io.ts),
    // and a FileHandle would be closed behind our back when garbage-collected.
    const fd = await openFd(path, writable ? 'r+' : 'r');
    const size = await new Promise<number>((resolve, reject) =>
      fs.fstat(fd, (error, stats) => (error === null ? resolve(stats.size) : reject(error))),
    );
    return new Segment(start, path, fd, size);
  }

  /** Creates a new, empty segment file; fails if it already exists. */
  static async create(dir: string, start: number): Promise<Segment> {
    const path = join(dir, segmentFileName(start));
    return new Segment(start, path, await openFd(path, 'wx+'), 0);
  }

  /** First offset after this segment's bytes. */
  get end(): number {
    return this.start + this.size;
  }

  /** Marks a read in progress; pair with {@link release}. */
  acquire(): void {
    this.#refs += 1;
  }

  /** Ends a read; closes the file if the segment was retired meanwhile. */
  release(): void {
    this.#refs -= 1;
    if (this.#retired && this.#refs === 0) this.#closeQuietly();
  }

  /** Takes the segment out of service: closes now, or after the last reader releases it. */
  retire(): void {
    this.#retired = true;
    if (this.#refs === 0) this.#closeQuietly();
  }

  /** Closes the descriptor at once (store shutdown). */
  async close(): Promise<void> {
    this.#retired = true;
    await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
  }

  #closeQuietly(): void {
    fs.close(this.fd, () => undefined);
  }
}

function openFd(path: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, (error, fd) => (error === null ? resolve(fd) : reject(error))));
}
