/**
 * A raw MetaQ protocol client for broker tests: writes bytes exactly as given and decodes the
 * broker's answers, so tests speak the wire format directly (no client library involved).
 */
import net from 'node:net';
import { FrameDecoder } from '../../src/protocol/frame-decoder.js';
import type { ResponseFrame } from '../../src/protocol/frames.js';

/** A connection to a broker that collects every frame it receives. */
export class RawClient {
  readonly socket: net.Socket;
  readonly frames: ResponseFrame[] = [];
  readonly #decoder = new FrameDecoder({ accept: 'responses', maxValueBodySize: 64 * 1024 * 1024 });
  readonly #waiters: (() => void)[] = [];
  #closed = false;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) this.frames.push(frame as ResponseFrame);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#closed = true;
        this.#wake();
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  /** Connects to `port` on 127.0.0.1. */
  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Writes raw bytes (a string is sent as UTF-8). */
  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits until `count` frames in total have arrived (or the connection closed). */
  async waitFrames(count: number, timeoutMs = 10_000): Promise<ResponseFrame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count && !this.#closed) {
      if (Date.now() > deadline) throw new Error(`expected ${count} frames, got ${this.frames.length}: ${JSON.stringify(this.frames.map(describe))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.frames.slice(0, count);
  }

  /** Sends one request and returns the frame answering `opaque`. */
  async request(bytes: string | Buffer, opaque: number, timeoutMs = 10_000): Promise<ResponseFrame> {
    this.write(bytes);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find((f) => f.opaque === opaque);
      if (found !== undefined) {
        this.frames.splice(this.frames.indexOf(found), 1);
        return found;
      }
      if (this.#closed) throw new Error(`connection closed before the answer to opaque ${opaque}`);
      if (Date.now() > deadline) throw new Error(`no answer to opaque ${opaque} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** True once the broker closed the connection. */
  get isClosed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A frame as short text, for assertion messages. */
export function describe(frame: ResponseFrame): string {
  return frame.type === 'result' ? `result ${frame.code} ${frame.opaque} ${frame.body.toString()}` : `value ${frame.body.length} ${frame.opaque}`;
}

/** The body of a result frame as text (fails the test on a value frame). */
export function resultText(frame: ResponseFrame): { code: number; text: string } {
  if (frame.type !== 'result') throw new Error(`expected a result frame, got ${describe(frame)}`);
  return { code: frame.code, text: frame.body.toString('utf8') };
}
