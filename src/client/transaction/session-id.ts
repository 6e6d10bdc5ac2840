/**
 * Producer session ids and local transaction keys (metaq-reference §1.7):
 * `TX:<sessionId>:<counter>`, with `sessionId = <host>-<epochMs>-<seq>`.
 *
 * Two fixes over MetaQ:
 * - `<host>` is the first non-internal IPv4 address (else IPv6, else the hostname) with every
 *   character other than letters, digits, `.`, `_` and `-` replaced by `_`, so an IPv6 address no
 *   longer puts `:` into the key (MetaQ's key parser then failed);
 * - `<seq>` is `<pid>.<n>` instead of `<n>`: two processes on one host that create their first
 *   producer in the same millisecond would otherwise share session ids, and the broker would merge
 *   their transactions (BEGIN of an existing key is accepted as a no-op).
 */
import os from 'node:os';
import type { LocalTransactionKey } from '../../protocol/transaction-key.js';
import { INT32_MAX } from '../../protocol/numbers.js';
import { sanitizeToken } from './xid.js';

let sequence = 0;

/** The local address MetaQ puts in session ids (first non-internal IPv4, else IPv6, else the hostname). */
export function localHostToken(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces(), hostname: () => string = os.hostname): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((info) => !info.internal);
  const address = all.find((info) => info.family === 'IPv4')?.address ?? all.find((info) => info.family === 'IPv6')?.address;
  return sanitizeToken(address ?? hostname());
}

/** A new session id, `<host>-<epochMs>-<pid>.<n>` (never contains `:`, space, CR or LF). */
export function newSessionId(host: string = localHostToken(), now: number = Date.now(), pid: number = process.pid): string {
  sequence = sequence >= INT32_MAX ? 1 : sequence + 1;
  return `${sanitizeToken(host)}-${now}-${pid}.${sequence}`;
}

/**
 * Hands out the keys of one producer's local transactions: `TX:<sessionId>:1`, `:2`, … The
 * counter is a Java `int` on the wire; when it would overflow, a new session id starts again at 1.
 */
export class LocalKeyGenerator {
  #sessionId: string;
  #counter = 0;
  readonly #newSessionId: () => string;

  constructor(newSession: () => string = () => newSessionId()) {
    this.#newSessionId = newSession;
    this.#sessionId = newSession();
  }

  /** The current session id (also sent as the `<sessionId>` token of every transaction command). */
  get sessionId(): string {
    return this.#sessionId;
  }

  /** The next key. */
  next(): LocalTransactionKey {
    if (this.#counter >= INT32_MAX) {
      this.#sessionId = this.#newSessionId();
      this.#counter = 0;
    }
    this.#counter += 1;
    return { kind: 'local', sessionId: this.#sessionId, counter: this.#counter };
  }
}
