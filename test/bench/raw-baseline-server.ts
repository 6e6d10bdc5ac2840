/**
 * Baseline for `npm run bench`: the least a MetaQ-framed server can do on this machine.
 * A child process that accepts `put` frames and answers `result 200` (optionally appending the
 * bodies to a file with one writev + fdatasync per batch, the raw form of group commit), and
 * answers `get` frames with `value` bodies cut from an in-memory run of 1 KiB records.
 * Hand-parsed, no store, no codec: what our broker does beyond this is our overhead.
 *
 * argv: <mode: ack | durable> <dir>. Prints `port <n>` when listening.
 */
import fs from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fdatasync, writevAll } from '../../src/store/file-io.js';
import { encodeRecord } from '../../src/protocol/record.js';

const [mode = 'ack', dir = '.'] = process.argv.slice(2);
const CRLF = 0x0a;
const record = encodeRecord({ id: 1n, flag: 0, data: Buffer.alloc(1024, 3) });
const backlog = Buffer.concat(Array.from({ length: 2048 }, () => record)); // ~2 MiB of records

const fd = mode === 'durable' ? fs.openSync(join(dir, 'raw-baseline.log'), 'w') : -1;
let filePosition = 0;
let pendingBodies: Buffer[] = [];
let pendingAcks: (() => void)[] = [];
let syncing = false;

async function groupCommit(): Promise<void> {
  if (syncing) return;
  syncing = true;
  while (pendingBodies.length > 0) {
    const bodies = pendingBodies;
    const acks = pendingAcks;
    pendingBodies = [];
    pendingAcks = [];
    let bytes = 0;
    for (const b of bodies) bytes += b.length;
    await writevAll(fd, bodies, filePosition);
    filePosition += bytes;
    await fdatasync(fd);
    for (const ack of acks) ack();
  }
  syncing = false;
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let buffer: Buffer = Buffer.alloc(0);
  let out: Buffer[] = [];
  let flushScheduled = false;
  const send = (b: Buffer): void => {
    out.push(b);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(() => {
        flushScheduled = false;
        socket.cork();
        for (const x of out) socket.write(x);
        socket.uncork();
        out = [];
      });
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    let pos = 0;
    for (;;) {
      const eol = buffer.indexOf(CRLF, pos);
      if (eol < 0) break;
      const tokens = buffer.toString('latin1', pos, eol - 1).split(' ');
      const opaque = tokens[tokens.length - 1] ?? '0';
      if (tokens[0] === 'put') {
        const length = Number(tokens[3]);
        if (eol + 1 + length > buffer.length) break;
        const body = buffer.subarray(eol + 1, eol + 1 + length);
        pos = eol + 1 + length;
        const ack = (): void => send(Buffer.from(`result 200 5 ${opaque}\r\n1 0 0`, 'latin1'));
        if (fd < 0) ack();
        else {
          pendingBodies.push(body);
          pendingAcks.push(ack);
          setImmediate(() => void groupCommit());
        }
      } else if (tokens[0] === 'get') {
        pos = eol + 1;
        const maxSize = Math.min(Number(tokens[5]), backlog.length);
        send(Buffer.concat([Buffer.from(`value ${maxSize} ${opaque}\r\n`, 'latin1'), backlog.subarray(0, maxSize)]));
      } else {
        pos = eol + 1;
        send(Buffer.from(`result 200 0 ${opaque}\r\n`, 'latin1'));
      }
    }
    buffer = buffer.subarray(pos);
  });
  socket.on('error', () => undefined);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`port ${typeof address === 'object' && address !== null ? address.port : 0}\n`);
});
