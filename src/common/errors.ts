/**
 * The one error taxonomy of metaq. Every error thrown across a module boundary is a
 * {@link MetaqError} with a stable `code` (documented in docs/errors.md), a `retriable` flag
 * telling a caller whether trying again can succeed, and an optional ES2022 `cause`.
 *
 * Why codes and not only classes: codes survive serialisation (logs, JSON, the wire) and are
 * what operators search for; classes are for `instanceof` in code.
 */

/** Stable error codes. Never rename one; add new ones instead. */
export const ErrorCode = {
  /** The configuration file is missing, unreadable or invalid. */
  Config: 'METAQ_ERR_CONFIG',
  /** Segment files on disk are inconsistent (gap, overlap, bad name); the store refuses to open. */
  StoreCorrupt: 'METAQ_ERR_STORE_CORRUPT',
  /** An operation was attempted on a store or partition after it was closed. */
  StoreClosed: 'METAQ_ERR_STORE_CLOSED',
  /** An I/O operation on the store failed (disk full, permission denied, ...). */
  StoreIo: 'METAQ_ERR_STORE_IO',
  /** A single message or batch is larger than the store accepts. */
  MessageTooLarge: 'METAQ_ERR_MESSAGE_TOO_LARGE',
  /** An argument was outside its allowed range. */
  InvalidArgument: 'METAQ_ERR_INVALID_ARGUMENT',
  /** The broker could not start (port in use, data directory locked, ...). */
  Startup: 'METAQ_ERR_STARTUP',
  /** A frame on the wire could not be decoded (bad header, wrong token count, oversized body). */
  Protocol: 'METAQ_ERR_PROTOCOL',
  /** A request got no answer in time. */
  Timeout: 'METAQ_ERR_TIMEOUT',
  /** The connection to a broker could not be made or was lost. */
  Connection: 'METAQ_ERR_CONNECTION',
  /** The broker answered a request with an error status. */
  Broker: 'METAQ_ERR_BROKER',
  /** The partition is closed for puts or gets (status 403). */
  PartitionClosed: 'METAQ_ERR_PARTITION_CLOSED',
  /** Message data does not match its checksum. */
  Checksum: 'METAQ_ERR_CHECKSUM',
  /** A stored record in a fetched block is corrupt (CRC mismatch or impossible length). */
  InvalidMessage: 'METAQ_ERR_INVALID_MESSAGE',
  /** The client object (factory, producer, consumer) was closed. */
  ClientClosed: 'METAQ_ERR_CLIENT_CLOSED',
  /** A call was made in a state that does not allow it (e.g. send before publish). */
  IllegalState: 'METAQ_ERR_ILLEGAL_STATE',
  /** An XA resource call failed; `xaCode` holds the X/Open code (XAER_RMFAIL = retry later). */
  Xa: 'METAQ_ERR_XA',
  /** A local transaction's commit (or rollback) got no answer: whether it happened is not known. */
  TransactionOutcomeUnknown: 'METAQ_ERR_TX_OUTCOME_UNKNOWN',
  /** The broker rolled the local transaction back (timeout, lost connection, restart) or never knew it. */
  TransactionRolledBack: 'METAQ_ERR_TX_ROLLED_BACK',
  /** A participant of a global (XA) transaction reported an outcome contrary to the decision; an operator must check. */
  TransactionHeuristic: 'METAQ_ERR_TX_HEURISTIC',
  /** A ZooKeeper operation failed (not connected, session expired, unexpected node state). */
  Zookeeper: 'METAQ_ERR_ZOOKEEPER',
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Options accepted by every {@link MetaqError} constructor. */
export interface MetaqErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
  /** Whether retrying the same operation may succeed. Defaults to false. */
  retriable?: boolean;
}

/** Base class of every error metaq throws on purpose. */
export class MetaqError extends Error {
  /** Stable machine-readable code, see {@link ErrorCode}. */
  readonly code: ErrorCodeValue;
  /** True when the same operation may succeed if tried again. */
  readonly retriable: boolean;

  constructor(code: ErrorCodeValue, message: string, options: MetaqErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** The server configuration is invalid; the message names the file, line and fix. */
export class ConfigError extends MetaqError {
  /** The configuration file, when the error comes from one. */
  readonly file: string | undefined;
  /** 1-based line number in {@link file}, when known. */
  readonly line: number | undefined;

  constructor(message: string, where: { file?: string; line?: number } = {}, options: MetaqErrorOptions = {}) {
    const prefix = where.file === undefined ? '' : where.line === undefined ? `${where.file}: ` : `${where.file}:${where.line}: `;
    super(ErrorCode.Config, prefix + message, options);
    this.file = where.file;
    this.line = where.line;
  }
}

/** The on-disk store is inconsistent and was not opened, so that nothing is overwritten. */
export class StoreCorruptError extends MetaqError {
  constructor(message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCode.StoreCorrupt, message, options);
  }
}

/** The store (or one partition of it) was closed. */
export class StoreClosedError extends MetaqError {
  constructor(what: string) {
    super(ErrorCode.StoreClosed, `${what} is closed`);
  }
}

/** A disk operation failed; `cause` holds the Node.js system error. */
export class StoreIoError extends MetaqError {
  constructor(message: string, cause: unknown) {
    super(ErrorCode.StoreIo, `${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, retriable: true });
  }
}

/** An argument was outside its allowed range; the message says which and why. */
export class InvalidArgumentError extends MetaqError {
  constructor(message: string) {
    super(ErrorCode.InvalidArgument, message);
  }
}

/** A request got no answer in time; the message names the request, broker and wait. */
export class RequestTimeoutError extends MetaqError {
  constructor(message: string) {
    super(ErrorCode.Timeout, message, { retriable: true });
  }
}

/** The connection to a broker failed or was lost. */
export class ConnectionError extends MetaqError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCode.Connection, message, { cause, retriable: true });
  }
}

/** The broker answered with an error status; `status` is the MetaQ/HTTP-style code. */
export class BrokerError extends MetaqError {
  /** The status code of the `result` frame (400, 403, 404, 500, ...). */
  readonly status: number;
  /** The broker's message. */
  readonly detail: string;

  constructor(status: number, detail: string, options: { code?: ErrorCodeValue; retriable?: boolean; context?: string } = {}) {
    super(options.code ?? ErrorCode.Broker, `${options.context === undefined ? '' : `${options.context}: `}broker answered ${status}: ${detail}`, {
      retriable: options.retriable ?? status >= 500,
    });
    this.status = status;
    this.detail = detail;
  }
}

/** The object was closed and cannot be used any more. */
export class ClientClosedError extends MetaqError {
  constructor(what: string) {
    super(ErrorCode.ClientClosed, `${what} is closed`);
  }
}

/** A call was made in a state that does not allow it; the message says what to do first. */
export class IllegalStateError extends MetaqError {
  constructor(message: string) {
    super(ErrorCode.IllegalState, message);
  }
}

/** XA_RETRY (4) and XAER_RMFAIL (-7): the two X/Open codes that mean "try the same call again later". */
const RETRIABLE_XA_CODES: ReadonlySet<number> = new Set([4, -7]);

/**
 * An XA resource call failed (`javax.transaction.xa.XAException`): `xaCode` is the X/Open code a
 * transaction manager acts on (XAER_NOTA -4, XAER_PROTO -6, XA_RBTIMEOUT 106, ...). Retriable
 * only for XAER_RMFAIL (-7, the broker could not be reached or did not answer: the outcome is
 * unknown, ask again) and XA_RETRY (4).
 */
export class XaError extends MetaqError {
  /** The X/Open XA code (negative: XAER_*, 100–107: XA_RB*, 5–8: heuristics). */
  readonly xaCode: number;

  constructor(xaCode: number, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.Xa, message, { cause: options.cause, retriable: RETRIABLE_XA_CODES.has(xaCode) });
    this.xaCode = xaCode;
  }
}

/**
 * A local transaction's commit or rollback got no answer (timeout, lost connection): the broker
 * may or may not have done it. Never means "rolled back". When `retriable`, call the same method
 * again: the broker answers a repeated commit of a committed transaction with OK.
 */
export class TransactionOutcomeUnknownError extends MetaqError {
  /** The transaction key, `TX:<sessionId>:<counter>`. */
  readonly transactionKey: string;

  constructor(transactionKey: string, message: string, options: MetaqErrorOptions = {}) {
    super(ErrorCode.TransactionOutcomeUnknown, message, { cause: options.cause, retriable: options.retriable ?? true });
    this.transactionKey = transactionKey;
  }
}

/**
 * The broker rolled a local transaction back on its own (it timed out, the producer's connection
 * closed, the broker restarted) or does not know it: none of its messages will ever be visible.
 * Not retriable: begin a new transaction and send again.
 */
export class TransactionRolledBackError extends MetaqError {
  /** The transaction key, `TX:<sessionId>:<counter>`. */
  readonly transactionKey: string;

  constructor(transactionKey: string, message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.TransactionRolledBack, message, { cause: options.cause });
    this.transactionKey = transactionKey;
  }
}

/** One participant's heuristic outcome, as {@link TransactionHeuristicError} reports it. */
export interface HeuristicParticipantReport {
  /** The resource, e.g. `metaq:meta://host:8123#orders-tm` or `postgres:orders`. */
  readonly resourceId: string;
  /** The branch, `formatId:gtridHex:bqualHex`. */
  readonly xid: string;
  /** `heuristic-commit`, `heuristic-rollback`, `heuristic-mixed` or `heuristic-hazard`. */
  readonly outcome: string;
  /** What was seen. */
  readonly detail: string;
}

/**
 * The transaction manager decided (commit, or rollback) but a participant reports a different
 * outcome (an operator resolved its prepared branch by hand, or PostgreSQL's prepared
 * transaction vanished without its marker): the participants may disagree. The coordinator log
 * holds a HEURISTIC record for each; the transaction stays listed until an operator has checked
 * the data and called the manager's `forget(gtrid)`. Not retriable.
 */
export class TransactionHeuristicError extends MetaqError {
  /** The global transaction id, hex. */
  readonly gtrid: string;
  /** What the manager decided. */
  readonly decision: 'commit' | 'rollback';
  /** The heuristic outcomes that contradict the decision. */
  readonly participants: readonly HeuristicParticipantReport[];

  constructor(gtrid: string, decision: 'commit' | 'rollback', participants: readonly HeuristicParticipantReport[], message: string) {
    super(ErrorCode.TransactionHeuristic, message);
    this.gtrid = gtrid;
    this.decision = decision;
    this.participants = participants;
  }
}

/**
 * A ZooKeeper operation failed. `zkCode` is the name of ZooKeeper's error (`CONNECTION_LOSS`,
 * `SESSION_EXPIRED`, `NO_NODE`, `NODE_EXISTS`, ...) or `TIMEOUT` when the ensemble could not be
 * reached in time. Retriable for connection problems: the client reconnects by itself.
 */
export class ZookeeperError extends MetaqError {
  /** ZooKeeper's error name, or `TIMEOUT`. */
  readonly zkCode: string;
  /** The znode the operation was about, if any. */
  readonly path: string | undefined;

  constructor(zkCode: string, message: string, options: MetaqErrorOptions & { path?: string } = {}) {
    super(ErrorCode.Zookeeper, message, { cause: options.cause, retriable: options.retriable ?? false });
    this.zkCode = zkCode;
    this.path = options.path;
  }
}
