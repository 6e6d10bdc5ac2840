/**
 * Crash and shutdown safety of the broker process: pipelined group-commit puts over raw
 * sockets, the broker SIGKILLed at a random moment and restarted, several times. Every
 * acknowledged message must be present exactly once, intact, at its acknowledged partition and
 * offset with its acknowledged id. A SIGTERM during puts must answer or refuse every request and
 * exit 0 with everything acknowledged on disk.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { readMessageRecords } from '../../src/protocol/message-records.js';
import { crashRecordData } from '../helpers/crash-record.js';
import { testBrokerIni } from '../helpers/broker-config.js';
import { spawnBroker, type BrokerProcess } from '../helpers/broker-process.js';
import { RawClient, resultText } from '../helpers/raw-client.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const PARTITIONS = 2;
const IN_FLIGHT = 64;

interface Ack {
  readonly id: bigint;
  readonly partition: number;
  readonly offset: number;
}

/** Sends puts (seq from `firstSeq`) with IN_FLIGHT in flight until the connection breaks. */
function pump(client: RawClient, firstSeq: number, acks: Map<number, Ack>): { stop: () => void; done: Promise<number> } {
  let seq = firstSeq;
  let stopped = false;
  const pending = new Map<number, number>(); // opaque → seq
  const send = (): void => {
    if (stopped || client.isClosed) return;
    const mine = seq++;
    const data = crashRecordData(mine);
    pending.set(mine, mine);
    client.write(Buffer.concat([Buffer.from(`put test ${mine % PARTITIONS} ${data.length} 0 -1 ${mine}\r\n`), data]));
  };
  const done = (async () => {
    for (let i = 0; i < IN_FLIGHT; i++) send();
    while (!client.isClosed && !stopped) {
      await new Promise((r) => setTimeout(r, 2));
      for (const frame of client.frames.splice(0)) {
        const { code, text } = resultText(frame);
        pending.delete(frame.opaque);
        if (code === 200) {
          const [id, partition, offset] = text.split(' ');
          acks.set(frame.opaque, { id: BigInt(id ?? ''), partition: Number(partition), offset: Number(offset) });
        }
        send();
      }
    }
    // Answers that arrived before the close still count as acknowledged.
    for (const frame of client.frames.splice(0)) {
      const { code, text } = resultText(frame);
      if (code === 200) {
        const [id, partition, offset] = text.split(' ');
        acks.set(frame.opaque, { id: BigInt(id ?? ''), partition: Number(partition), offset: Number(offset) });
      }
    }
    return seq;
  })();
  return {
    stop: () => {
      stopped = true;
    },
    done,
  };
}

/** Reads every record of every partition: seq → where it is. */
async function readAll(port: number): Promise<Map<number, Ack>> {
  const client = await RawClient.connect(port);
  const found = new Map<number, Ack>();
  let opaque = 1;
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      let offset = 0;
      for (;;) {
        const frame = await client.request(`get test g ${partition} ${offset} 1048576 ${opaque}\r\n`, opaque);
        opaque += 1;
        if (frame.type === 'result') {
          assert.equal(frame.code, 404, `unexpected answer reading partition ${partition} at ${offset}: ${frame.body.toString()}`);
          break;
        }
        const { records, consumed } = readMessageRecords(frame.body);
        assert.ok(records.length > 0, `no whole record at ${partition}/${offset}`);
        for (const [i, record] of records.entries()) {
          const seq = Number(record.data.readBigUInt64BE(0));
          assert.deepEqual(record.data, crashRecordData(seq), `record ${seq} intact`);
          assert.ok(!found.has(seq), `record ${seq} stored twice`);
          let at = offset;
          for (let j = 0; j < i; j++) at += 20 + (records[j]?.data.length ?? 0);
          found.set(seq, { id: record.id, partition, offset: at });
        }
        offset += consumed;
      }
    }
  } finally {
    client.close();
  }
  return found;
}

describe('broker crash safety (SIGKILL during pipelined group-commit puts)', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let ini: string;
  before(async () => {
    dir = await makeTempDir('metaq-broker-crash-');
    ini = join(dir.path, 'server.ini');
    fs.writeFileSync(ini, testBrokerIni(join(dir.path, 'data'), { system: { maxSegmentSize: 256 * 1024 } }));
  });
  after(async () => {
    await dir.remove();
  });

  it('keeps every acknowledged message exactly once across 4 kills', async () => {
    const allAcks = new Map<number, Ack>();
    let nextSeq = 1;
    for (let round = 0; round < 4; round++) {
      const broker: BrokerProcess = spawnBroker(['start', '-c', ini]);
      const port = Number((await broker.waitForLog('broker started'))['port']);
      const client = await RawClient.connect(port);
      const acks = new Map<number, Ack>();
      const run = pump(client, nextSeq, acks);
      // The random moment starts at the first acknowledgement: a just-started broker's first
      // fsyncs can take longer than the delay on a loaded machine.
      await waitFor(() => acks.size > 0, { timeoutMs: 30_000, intervalMs: 5, what: `round ${round}: a first acknowledgement` });
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      broker.child.kill('SIGKILL');
      await broker.exited;
      nextSeq = (await run.done) + 1000;
      client.close();
      assert.ok(acks.size > 0, `round ${round}: nothing acknowledged before the kill`);
      for (const [seq, ack] of acks) allAcks.set(seq, ack);

      const check = spawnBroker(['start', '-c', ini]);
      const checkPort = Number((await check.waitForLog('broker started'))['port']);
      const found = await readAll(checkPort);
      check.child.kill('SIGTERM');
      assert.equal(await check.exited, 0);
      for (const [seq, ack] of allAcks) assert.deepEqual(found.get(seq), ack, `round ${round}: acknowledged message ${seq} lost or moved`);
    }
  });

  it('SIGTERM during puts: every put is answered or refused, exit 0, everything acknowledged is on disk', async () => {
    const broker = spawnBroker(['start', '-c', ini]);
    const port = Number((await broker.waitForLog('broker started'))['port']);
    const client = await RawClient.connect(port);
    const acks = new Map<number, Ack>();
    const run = pump(client, 10_000_000, acks);
    await waitFor(() => acks.size > 0, { timeoutMs: 30_000, intervalMs: 5, what: 'a first acknowledgement' });
    await new Promise((r) => setTimeout(r, 300));
    broker.child.kill('SIGTERM');
    assert.equal(await broker.exited, 0);
    run.stop();
    await run.done;
    client.close();
    assert.ok(acks.size > 0);
    const check = spawnBroker(['start', '-c', ini]);
    const found = await readAll(Number((await check.waitForLog('broker started'))['port']));
    check.child.kill('SIGTERM');
    await check.exited;
    for (const [seq, ack] of acks) assert.deepEqual(found.get(seq), ack, `acknowledged message ${seq} lost`);
    assert.ok(!check.logs.some((l) => String(l['msg']).startsWith('recovery: truncating')), 'a clean shutdown leaves no torn tail');
  });
});
