/**
 * Forces the expiry of a live ZooKeeper session on a real server, at once (waiting out a
 * session timeout would make tests slow and timing-dependent).
 *
 * How: a second connection presents the session's id and password and, in the same write,
 * asks to close it — so the client cannot win the session back in between. The server then
 * ends the session as if it had expired: its ephemeral nodes are deleted and the owner gets
 * SESSION_EXPIRED when it next talks to the server. Repeated until a further attach is
 * answered with timeout 0 ("no such session"); the client can occasionally reattach first.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { zkSessionCredentials } from '../../src/zk/index.js';
import type { ZkClient } from '../../src/zk/zk-client.js';

/** The session timeout announced in the attach request (any value the server accepts). */
const ATTACH_TIMEOUT_MS = 4000;

/**
 * One attempt: attaches to the session and closes it in a single write. Returns the session
 * timeout of the server's connect response (0: the session no longer exists), or undefined when
 * the server closed the connection without answering (the client took its session back first).
 */
async function attachAndClose(connectString: string, sessionId: Buffer, password: Buffer): Promise<number | undefined> {
  const [host = '', port = ''] = (connectString.split(',')[0] ?? '').split(':');
  const socket = connect({ host, port: Number(port) });
  await once(socket, 'connect');
  // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (length-prefixed).
  const connectBody = Buffer.alloc(4 + 8 + 4 + 8 + 4 + password.length);
  let offset = connectBody.writeInt32BE(0, 0) + 8;
  offset = connectBody.writeInt32BE(ATTACH_TIMEOUT_MS, offset);
  offset += sessionId.copy(connectBody, offset);
  offset = connectBody.writeInt32BE(password.length, offset);
  password.copy(connectBody, offset);
  const connectFrame = Buffer.concat([Buffer.alloc(4), connectBody]);
  connectFrame.writeInt32BE(connectBody.length, 0);
  // closeSession: length 8, xid 1, op type -11.
  const closeFrame = Buffer.alloc(12);
  closeFrame.writeInt32BE(8, 0);
  closeFrame.writeInt32BE(1, 4);
  closeFrame.writeInt32BE(-11, 8);
  const replies: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => replies.push(chunk));
  socket.on('error', () => undefined); // a reset is an answer too: see the return value
  socket.write(Buffer.concat([connectFrame, closeFrame]));
  await once(socket, 'close');
  const reply = Buffer.concat(replies);
  // ConnectResponse: length, protocolVersion, timeOut, ...
  return reply.length >= 12 ? reply.readInt32BE(8) : undefined;
}

/** Ends `client`'s session on the server at `connectString`; resolves once the server confirms it is gone. */
export async function expireZkSession(connectString: string, client: ZkClient): Promise<void> {
  const credentials = zkSessionCredentials(client);
  if (credentials === undefined) throw new Error('client is not connected; cannot expire its session');
  for (let attempt = 1; attempt <= 20; attempt++) {
    const timeOut = await attachAndClose(connectString, credentials.sessionId, credentials.password);
    if (timeOut !== undefined && timeOut <= 0) return;
  }
  throw new Error(`could not expire session ${credentials.sessionId.toString('hex')}`);
}
