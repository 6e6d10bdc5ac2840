/**
 * What a `metaq` command gets from the process: its streams, its environment and a way to hear
 * about Ctrl-C. Commands never touch `process` directly, so that the argument handling and the
 * output can be tested in-process with fake streams.
 */
import { once } from 'node:events';

/** A stream the CLI writes to (`process.stdout`, `process.stderr`, or a test double). */
export interface OutputStream {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** True for a terminal: colours and progress notices are only for terminals. */
  readonly isTTY?: boolean;
}

/** The process as a command sees it. */
export interface CliContext {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
  /**
   * Calls `onStop` on the first SIGINT or SIGTERM (or when stdout's reader went away); a second
   * signal ends the process at once with status 130. Returns the function that removes the
   * handler; without a handler, signals keep their default effect (the process ends).
   */
  onInterrupt(onStop: (reason: string) => void): () => void;
}

/** Writes `text`, waiting for the stream to drain when its buffer is full (back-pressure). */
export async function write(stream: OutputStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream as unknown as NodeJS.EventEmitter, 'drain');
}

/** A promise with its resolve function, for "wait until one of several things happens". */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Creates a {@link Deferred}. */
export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
