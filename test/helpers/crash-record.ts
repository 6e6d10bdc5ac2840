/** Deterministic record contents for crash tests, so the parent can check every byte. */

/** Data of the record with sequence number `seq`: 8-byte seq, then 50..1050 filler bytes. */
export function crashRecordData(seq: number): Buffer {
  const length = 8 + 50 + ((seq * 7919) % 1000);
  const data = Buffer.alloc(length, seq % 251);
  data.writeBigUInt64BE(BigInt(seq), 0);
  return data;
}
