/**
 * Child process for the store crash test: appends records to one partition log in group-commit
 * mode, many in flight at once, and prints `ack <seq> <offset>` for every acknowledged append,
 * until it is killed. Record data: 8-byte seq + filler derived from seq (checked by the parent).
 *
 * argv: <dir> <firstSeq> <maxSegmentSize>
 */
import { componentLogger } from '../../src/common/logger.js';
import { PartitionLog } from '../../src/store/partition-log.js';
import { crashRecordData } from './crash-record.js';

const [dir, firstSeqText, maxSegmentSizeText] = process.argv.slice(2);
if (dir === undefined || firstSeqText === undefined || maxSegmentSizeText === undefined) {
  throw new Error('usage: store-writer-child <dir> <firstSeq> <maxSegmentSize>');
}
const log = await PartitionLog.open({
  topic: 'crash',
  partition: 0,
  dir,
  maxSegmentSize: Number(maxSegmentSizeText),
  maxRecordDataLength: 1 << 20,
  unflushThreshold: 0,
  unflushInterval: 1000,
  logger: componentLogger('crash-child'),
});
process.stdout.write(`ready ${log.maxOffset}\n`);

let seq = Number(firstSeqText);
const IN_FLIGHT = 32;
async function writer(): Promise<void> {
  for (;;) {
    const mine = seq++;
    const offset = await log.append({ id: BigInt(mine), flag: 0, data: crashRecordData(mine) });
    process.stdout.write(`ack ${mine} ${offset}\n`);
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, () => writer()));
