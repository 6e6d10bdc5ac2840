/**
 * One request waiting for its answer, and the types a caller uses to shape the answer.
 *
 * Why an `interpret` function instead of returning the raw frame and letting callers `.then`
 * it: a producer sends up to hundreds of thousands of puts per second, and a `.then` per put
 * is one more closure and one more promise each. `interpret` is a plain module-level function
 * (no closure) that the connection calls with the answer; what it returns resolves the
 * caller's promise and what it throws rejects it.
 */
import type { QuitFrame, RequestFrame, ResponseFrame } from '../../protocol/frames.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A request frame without its opaque: the connection assigns one. */
export type OpaquelessRequest = DistributiveOmit<Exclude<RequestFrame, QuitFrame>, 'opaque'>;

/**
 * Turns the broker's answer into the caller's result, or throws the error to reject with.
 * `request` is the frame that was sent, `brokerUrl` the broker it went to.
 */
export type ResponseInterpreter<T> = (response: ResponseFrame, request: OpaquelessRequest, brokerUrl: string) => T;

/**
 * Told when each of its requests settles (answered, failed or timed out), e.g. so that a
 * producer's `close()` can wait for its sends. One object per owner, not per request.
 */
export interface RequestOwner {
  requestSettled(): void;
}

/** A request registered in a {@link RequestMap}. Internal to the transport. */
export interface PendingRequest {
  readonly opaque: number;
  readonly frame: OpaquelessRequest;
  /** When the request was made, on the monotonic clock (`performance.now()`). */
  readonly startedAt: number;
  readonly timeoutMs: number;
  /** `startedAt + timeoutMs`. */
  readonly deadline: number;
  readonly interpret: ResponseInterpreter<unknown>;
  readonly owner: RequestOwner | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /**
   * The encoded request until it is handed to a socket (`undefined` once written): a whole
   * frame, or a put's header line whose data is {@link body}.
   */
  head: string | Buffer | undefined;
  /** A put's data, written right after its header line. */
  body: Buffer | undefined;
  /** Bytes on the wire (head + body). */
  readonly size: number;
  /** Set once resolved or rejected; a settled request is skipped by the writer. */
  settled: boolean;
}

/** A short human description of a request for error messages: `put to 'test' partition 2`. */
export function describeRequest(frame: OpaquelessRequest): string {
  switch (frame.type) {
    case 'put':
      return `put to '${frame.topic}' partition ${frame.partition}`;
    case 'get':
      return `get from '${frame.topic}' partition ${frame.partition} offset ${frame.offset} (group '${frame.group}')`;
    case 'offset':
      return `offset of '${frame.topic}' partition ${frame.partition} at ${frame.offset} (group '${frame.group}')`;
    case 'stats':
      return frame.item === undefined || frame.item === '' ? 'stats' : `stats ${frame.item}`;
    case 'version':
      return 'version (heartbeat)';
    case 'transaction':
      return `transaction ${frame.transactionType}`;
    case 'sync':
      return `sync to '${frame.topic}' partition ${frame.partition}`;
  }
}
