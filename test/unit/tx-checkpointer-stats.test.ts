/**
 * The checkpointer's counters for operators (`GET /api/transactions/stats`): checkpoints written,
 * the age of the last one, and the last failure until the next success.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { SystemConfig } from '../../src/common/config/types.js';
import { TransactionCheckpointer } from '../../src/transaction/tx-checkpointer.js';
import { journalFixturePerTest } from '../helpers/txlog-fixtures.js';

const fixture = journalFixturePerTest();
const EMPTY = { prepared: [], committing: [], heuristics: [], tombstones: [] };
const system = { maxCheckpoints: 3, checkpointInterval: 60_000 } as unknown as SystemConfig;

describe('TransactionCheckpointer.stats', () => {
  it('counts written checkpoints, ages the last one, and reports a failure until the next success', async () => {
    const journal = await fixture.open();
    let now = 1_000_000;
    const dir = join(fixture.dir, 'checkpoints');
    fs.mkdirSync(dir, { recursive: true });
    const checkpointer = new TransactionCheckpointer(dir, journal, system, pino({ level: 'silent' }), () => now);
    assert.deepEqual(checkpointer.stats(), { written: 0, lastAgeSeconds: null, lastFailure: null });

    await checkpointer.checkpoint(EMPTY);
    now += 2_500;
    assert.deepEqual(checkpointer.stats(), { written: 1, lastAgeSeconds: 2, lastFailure: null });

    // A checkpoint directory that cannot be written to: the failure is reported, the count stays.
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'not a directory');
    await assert.rejects(checkpointer.checkpoint(EMPTY));
    const failed = checkpointer.stats();
    assert.equal(failed.written, 1);
    assert.ok(failed.lastFailure !== null && failed.lastFailure.length > 0, 'the failure is reported');

    fs.rmSync(dir);
    fs.mkdirSync(dir);
    await checkpointer.checkpoint(EMPTY);
    assert.deepEqual(checkpointer.stats(), { written: 2, lastAgeSeconds: 0, lastFailure: null }, 'a success clears the failure');
  });
});
