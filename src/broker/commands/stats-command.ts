/**
 * `stats [item]` (metaq-reference §1.4): `STATS\r\n`, one `key value` line per item, `END\r\n`.
 * Items: none (broker info), `topics`, `offsets`, `realtime`, `help`, `reset`, `config` (the raw
 * server.ini), or a topic name.
 */
import { crc32 } from 'node:zlib';
import { configuredTopicNames } from '../../common/config/index.js';
import { statsBody } from '../../protocol/response-bodies.js';
import { ResultCode } from '../../protocol/result-codes.js';
import type { PartitionLog } from '../../store/partition-log.js';
import { REALTIME_NAMES } from '../stats/broker-stats.js';
import type { BrokerContext } from './broker-context.js';
import { result, type Reply } from './reply.js';


function logsByTopic(ctx: BrokerContext): Map<string, PartitionLog[]> {
  const byTopic = new Map<string, PartitionLog[]>();
  for (const log of ctx.store.logs()) {
    const list = byTopic.get(log.topic) ?? [];
    list.push(log);
    byTopic.set(log.topic, list);
  }
  for (const list of byTopic.values()) list.sort((a, b) => a.partition - b.partition);
  return byTopic;
}

function brokerInfo(ctx: BrokerContext): string[] {
  const { totals } = ctx.stats;
  let totalMessages = 0;
  for (const log of ctx.store.logs()) totalMessages += log.appendedRecords;
  return [
    `pid ${process.pid}`,
    `broker_id ${ctx.config.system.brokerId}`,
    `port ${new URL(ctx.brokerUrl()).port}`,
    `uptime ${ctx.stats.uptimeSeconds()}`,
    `version ${ctx.version}`,
    'slave false',
    `curr_connections ${ctx.connectionCount()}`,
    // Node runs JavaScript on one thread; libuv's pool does the file I/O.
    `threads ${1 + Number(process.env['UV_THREADPOOL_SIZE'] ?? 4)}`,
    `cmd_put ${totals.cmdPut}`,
    `cmd_get ${totals.cmdGet}`,
    `cmd_offset ${totals.cmdOffset}`,
    `tx_begin ${totals.txBegin}`,
    `tx_xa_begin ${totals.txXaBegin}`,
    `tx_commit ${totals.txCommit}`,
    `tx_rollback ${totals.txRollback}`,
    `get_miss ${totals.getMiss}`,
    `put_failed ${totals.putFailed}`,
    `total_messages ${totalMessages}`,
    `topics ${new Set([...configuredTopicNames(ctx.config), ...ctx.store.logs().map((l) => l.topic)]).size}`,
    `config_checksum ${crc32(ctx.config.rawText)}`,
  ];
}

function topics(ctx: BrokerContext): string[] {
  const byTopic = logsByTopic(ctx);
  const lines: string[] = [];
  for (const [topic, logs] of [...byTopic].sort(([a], [b]) => a.localeCompare(b))) {
    const config = ctx.store.topicConfig(topic);
    let count = 0;
    let bytes = 0;
    for (const log of logs) {
      count += log.appendedRecords;
      bytes += log.maxOffset - log.minOffset;
    }
    lines.push(
      `${topic} partitions ${logs.length} message_count ${count} message_bytes ${bytes} ` +
        `accept_publish ${config?.acceptPublish ?? false} accept_subscribe ${config?.acceptSubscribe ?? false}`,
    );
  }
  for (const topic of configuredTopicNames(ctx.config)) if (!byTopic.has(topic)) lines.push(`${topic} *Empty*`);
  return lines;
}

function offsets(ctx: BrokerContext): string[] {
  const lines: string[] = [];
  for (const [topic, logs] of [...logsByTopic(ctx)].sort(([a], [b]) => a.localeCompare(b))) {
    for (const log of logs) lines.push(`${topic} part ${log.partition} min_offset ${log.minOffset} max_offset ${log.maxOffset}`);
  }
  return lines;
}

function realtime(ctx: BrokerContext): string[] {
  return REALTIME_NAMES.map((name) => `realtime_${name} ${ctx.stats.realtime[name].format()}`);
}

function topicItem(ctx: BrokerContext, topic: string): string[] {
  const logs = logsByTopic(ctx).get(topic) ?? [];
  const configured = ctx.store.topicConfig(topic) !== undefined;
  // 0 = has data, 1 = unknown topic, 2 = configured but no data (MetaQ's codes).
  const resultCode = logs.length > 0 ? 0 : configured ? 2 : 1;
  let count = 0;
  let bytes = 0;
  for (const log of logs) {
    count += log.appendedRecords;
    bytes += log.maxOffset - log.minOffset;
  }
  const topicStats = ctx.stats.topicRealtime(topic);
  return [
    topic,
    `resultCode ${resultCode}`,
    `partitions ${logs.length}`,
    `message_count ${count}`,
    `bytes ${bytes}`,
    ...REALTIME_NAMES.map((name) => `topic_realtime_${name} ${topicStats?.[name].format() ?? 'null'}`),
  ];
}

/** Items `stats help` lists. */
export const STATS_ITEMS = ['*EMPTY*', 'help', 'topics', 'offsets', 'realtime', 'reset', 'config', '<topic>'] as const;

/** Handles `stats [item]`. */
export function handleStats(ctx: BrokerContext, item: string | undefined): Reply {
  switch (item) {
    case undefined:
    case '':
      return result(ResultCode.Success, statsBody(brokerInfo(ctx)));
    case 'topics':
      return result(ResultCode.Success, statsBody(topics(ctx)));
    case 'offsets':
      return result(ResultCode.Success, statsBody(offsets(ctx)));
    case 'realtime':
      return result(ResultCode.Success, statsBody(realtime(ctx)));
    case 'help':
      return result(ResultCode.Success, statsBody(STATS_ITEMS));
    case 'reset':
      ctx.stats.resetRealtime();
      return result(ResultCode.Success, statsBody(['reset ok']));
    case 'config':
      // The raw file, not a STATS block: async slaves copy the master's configuration from it.
      return result(ResultCode.Success, Buffer.from(ctx.config.rawText, 'utf8'));
    default:
      return result(ResultCode.Success, statsBody(topicItem(ctx, item)));
  }
}
