/**
 * The `master_config_checksum` a master broker publishes in ZooKeeper: the CRC32 of its
 * server.ini, in decimal, as MetaQ's `FileUtils.checksumCRC32(file)` (an unsigned value).
 * Async slaves watch it to notice that the master's configuration changed.
 */
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { BrokerConfig } from '../../common/config/types.js';

/** CRC32 of `bytes` as an unsigned decimal string (`0` … `4294967295`). */
export function crc32Decimal(bytes: Uint8Array): string {
  return String(crc32(bytes) >>> 0);
}

/**
 * The checksum of the configuration the broker runs with: the CRC32 of the file's bytes (so a
 * BOM or non-UTF-8 bytes count as MetaQ counts them), or of the UTF-8 text it was parsed from
 * when it did not come from a file or the file changed since it was read (the checksum must
 * describe the configuration in use, not a later edit).
 */
export async function configFileChecksum(config: Pick<BrokerConfig, 'file' | 'rawText'>): Promise<string> {
  if (config.file !== undefined) {
    try {
      const bytes = await readFile(config.file);
      if (bytes.toString('utf8') === config.rawText) return crc32Decimal(bytes);
    } catch {
      // Unreadable now (moved, permissions): fall back to the text that was loaded.
    }
  }
  return crc32Decimal(Buffer.from(config.rawText, 'utf8'));
}
