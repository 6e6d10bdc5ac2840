/**
 * Crash test of the message store: a child process appends in group-commit mode and is killed
 * with SIGKILL at a random moment, several times over the same directory. After each restart
 * every acknowledged record must be present, intact and exactly once, and the log must end on a
 * record boundary. (SIGKILL keeps the page cache; what this proves is that acks never run ahead
 * of the writes, that recovery keeps every whole record and that restarts never duplicate.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog } from '../../src/store/partition-log.js';
import { decodeRecordAt } from '../../src/protocol/record.js';
import { crashRecordData } from '../helpers/crash-record.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const CHILD = fileURLToPath(new URL('../helpers/store-writer-child.ts', import.meta.url));
const SEGMENT_SIZE = 256 * 1024; // small, so that kills also land around segment rolls
const ROUNDS = 6;

interface RoundResult {
  acked: Map<number, number>;
  maxSeq: number;
}

/** Runs the writer child until it has acked a few records, kills it at a random moment. */
async function runAndKill(dir: string, firstSeq: number): Promise<RoundResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(firstSeq), String(SEGMENT_SIZE)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked = new Map<number, number>();
  let maxSeq = firstSeq;
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let killTimer: NodeJS.Timeout | undefined;
  for await (const line of lines) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'ready') {
      killTimer = setTimeout(() => child.kill('SIGKILL'), 150 + Math.floor(Math.random() * 600));
    } else if (kind === 'ack') {
      const seq = Number(a);
      assert.ok(!acked.has(seq), `seq ${seq} acked twice`);
      acked.set(seq, Number(b));
      maxSeq = Math.max(maxSeq, seq);
    }
  }
  await exited;
  clearTimeout(killTimer);
  assert.equal(child.signalCode, 'SIGKILL', 'the child was killed, not crashed on its own');
  return { acked, maxSeq };
}

/** Reads the whole log: seq → offset, asserting every record is intact. */
async function readAll(dir: string): Promise<{ found: Map<number, number>; end: number }> {
  const log = await PartitionLog.open({
    topic: 'crash',
    partition: 0,
    dir,
    maxSegmentSize: SEGMENT_SIZE,
    maxRecordDataLength: 1 << 20,
    unflushThreshold: 0,
    unflushInterval: 1000,
    logger: componentLogger('crash-check'),
  });
  try {
    const found = new Map<number, number>();
    let offset = log.minOffset;
    while (offset < log.maxOffset) {
      const slice = await log.read(offset, 1 << 20);
      assert.equal(slice.kind, 'data');
      if (slice.kind !== 'data') break;
      let pos = 0;
      for (;;) {
        const record = decodeRecordAt(slice.data, pos, 1 << 20);
        if (typeof record === 'string') break;
        const seq = Number(record.data.readBigUInt64BE(0));
        assert.equal(record.id, BigInt(seq), `record at ${offset + pos}: id matches its seq`);
        assert.deepEqual(record.data, crashRecordData(seq), `record ${seq} intact`);
        assert.ok(!found.has(seq), `record ${seq} stored twice (at ${found.get(seq)} and ${offset + pos})`);
        found.set(seq, offset + pos);
        pos += record.size;
      }
      assert.ok(pos > 0, `no whole record at offset ${offset}: the log does not end on a record boundary`);
      offset += pos;
    }
    assert.equal(offset, log.maxOffset, 'every byte up to the end belongs to a whole record');
    return { found, end: log.maxOffset };
  } finally {
    await log.close();
  }
}

describe('message store crash safety (SIGKILL during group-commit appends)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await makeTempDir('metaq-crash-');
  });
  after(async () => {
    await dir.remove();
  });

  it(`keeps every acknowledged record exactly once across ${ROUNDS} kills`, async () => {
    const allAcked = new Map<number, number>();
    let nextSeq = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { acked, maxSeq } = await runAndKill(dir.path, nextSeq);
      assert.ok(acked.size > 0, `round ${round}: the child acknowledged nothing before the kill`);
      for (const [seq, offset] of acked) allAcked.set(seq, offset);
      // Sequence numbers are never reused, even for records that were lost unacknowledged.
      nextSeq = maxSeq + 1000;
      const { found } = await readAll(dir.path);
      for (const [seq, offset] of allAcked) {
        assert.equal(found.get(seq), offset, `round ${round}: acknowledged record ${seq} missing or moved`);
      }
    }
    assert.ok(allAcked.size > 100, `only ${allAcked.size} acks in ${ROUNDS} rounds`);
  });
});
