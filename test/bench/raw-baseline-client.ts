/**
 * The raw-socket side of `npm run bench`'s baselines: hand-built MetaQ frames over one socket,
 * minimal response parsing, no client library. Paired with raw-baseline-server.ts.
 */
import net from 'node:net';

const CRLF = 0x0a;

/** A raw connection that counts and times `result`/`value` answers by opaque. */
export class RawBenchConnection {
  readonly #socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #waiting = new Map<number, (bodyLength: number) => void>();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  static connect(port: number): Promise<RawBenchConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawBenchConnection(socket)));
      socket.once('error', reject);
    });
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let pos = 0;
    for (;;) {
      const eol = this.#buffer.indexOf(CRLF, pos);
      if (eol < 0) break;
      const tokens = this.#buffer.toString('latin1', pos, eol - 1).split(' ');
      const bodyLength = Number(tokens[tokens[0] === 'value' ? 1 : 2]);
      if (eol + 1 + bodyLength > this.#buffer.length) break;
      pos = eol + 1 + bodyLength;
      const opaque = Number(tokens[tokens.length - 1]);
      const waiter = this.#waiting.get(opaque);
      this.#waiting.delete(opaque);
      waiter?.(bodyLength);
    }
    this.#buffer = this.#buffer.subarray(pos);
  }

  /** Sends `frame` (already encoded with `opaque`) and resolves with the answer's body length. */
  request(frame: Buffer, opaque: number): Promise<number> {
    return new Promise((resolve) => {
      this.#waiting.set(opaque, resolve);
      this.#socket.write(frame);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A `put` frame for `data` with `opaque`. */
export function rawPutFrame(topic: string, partition: number, data: Buffer, opaque: number): Buffer {
  return Buffer.concat([Buffer.from(`put ${topic} ${partition} ${data.length} 0 -1 ${opaque}\r\n`, 'latin1'), data]);
}

/** Sends `count` puts with `inFlight` outstanding; returns messages per second. */
export async function rawProduceRate(port: number, data: Buffer, count: number, inFlight: number): Promise<number> {
  const connection = await RawBenchConnection.connect(port);
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const opaque = next++;
      await connection.request(rawPutFrame('bench', 0, data, opaque), opaque);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  connection.close();
  return count / seconds;
}

/** Fetches `messages` records of `recordSize` bytes with 1 MiB gets; returns records per second. */
export async function rawConsumeRate(port: number, messages: number, recordSize: number): Promise<number> {
  const connection = await RawBenchConnection.connect(port);
  let received = 0;
  let opaque = 0;
  const start = process.hrtime.bigint();
  while (received < messages) {
    opaque += 1;
    const bytes = await connection.request(Buffer.from(`get bench g 0 0 1048576 ${opaque}\r\n`, 'latin1'), opaque);
    received += Math.floor(bytes / recordSize);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  connection.close();
  return received / seconds;
}

/** Sends at a steady `rate` for `seconds`, one put at a time per tick; returns latencies in ms. */
export async function steadyLatencies(send: () => Promise<unknown>, rate: number, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sentAt = performance.now();
    inflight.push(
      send().then(() => {
        latencies.push(performance.now() - sentAt);
      }),
    );
  }
  await Promise.all(inflight);
  return latencies;
}

/** The `p`-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
