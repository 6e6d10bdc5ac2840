/**
 * What the command layer needs from the transaction engine (`src/transaction`): transactional
 * puts, the `transaction` command and the end of a connection. Kept as an interface so the
 * broker's command layer does not depend on the engine's internals.
 */
import type { TransactionFrame } from '../../protocol/frames.js';
import type { TransactionKey } from '../../protocol/transaction-key.js';
import type { ConnectionSession } from './connection-session.js';
import type { PutRequest } from './put-command.js';
import type { Reply } from './reply.js';

/** The broker's transaction engine as the command layer sees it. */
export interface TransactionHandler {
  /** A put carrying a transaction key: staged, answered `<id> <partition> -1`. */
  put(request: PutRequest, key: TransactionKey, session: ConnectionSession): Promise<Reply>;
  /** A `transaction` command (BEGIN, END, PREPARE, COMMIT_*, ROLLBACK, RECOVER, FORGET). */
  command(frame: TransactionFrame, session: ConnectionSession): Promise<Reply>;
  /** The connection closed: its local transactions are rolled back. */
  sessionClosed(session: ConnectionSession): void;
}
