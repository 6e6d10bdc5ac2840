/**
 * Broadcast consumers (metaq-reference §6.8): MetaQ rewrites the group of a broadcast consumer
 * to `<group>-<local IP with '.' and ':' replaced by '-'>`, so that each host is a group of its
 * own and every host gets every message.
 */
import os from 'node:os';
import { InvalidArgumentError } from '../../common/errors.js';
import type { BroadcastConsumerConfig, ConsumerConfig } from '../consumer/consumer-config.js';
import { groupNameError } from '../consumer/group-name.js';

/**
 * The local address MetaQ uses: the first non-internal IPv4 address, else IPv6, else the host
 * name, with `.` and `:` (and anything else a group may not contain) replaced by `-`.
 */
export function localBroadcastId(
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces(),
  hostname: () => string = os.hostname,
): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((info) => !info.internal);
  const address = all.find((info) => info.family === 'IPv4')?.address ?? all.find((info) => info.family === 'IPv6')?.address ?? hostname();
  return address.replace(/[^A-Za-z0-9_-]/g, '-');
}

/**
 * The configuration of a broadcast consumer's group: `group` becomes `<group>-<broadcastId>`.
 *
 * @throws {InvalidArgumentError} for a `broadcastId` that cannot be part of a group name.
 */
export function broadcastConsumerConfig(config: BroadcastConsumerConfig, defaultId: () => string = localBroadcastId): ConsumerConfig {
  if (config === null || typeof config !== 'object') throw new InvalidArgumentError('createBroadcastConsumer needs a ConsumerConfig with at least a group');
  const { broadcastId, ...rest } = config;
  if (broadcastId !== undefined) {
    const problem = typeof broadcastId === 'string' ? groupNameError(broadcastId) : 'it is not a string';
    if (problem !== undefined) throw new InvalidArgumentError(`ConsumerConfig.broadcastId ${JSON.stringify(broadcastId)} is invalid: ${problem}`);
  }
  // The group itself is checked (with its own message) when the consumer resolves the config.
  if (typeof config.group !== 'string' || groupNameError(config.group) !== undefined) return rest;
  return { ...rest, group: `${config.group}-${broadcastId ?? defaultId()}` };
}
