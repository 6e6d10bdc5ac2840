/** Builds broker configurations for tests: a broker with its data in `dataPath`, standalone unless ZooKeeper keys are given. */
import { parseBrokerConfig } from '../../src/common/config/index.js';
import type { BrokerConfig } from '../../src/common/config/types.js';

/** Options of {@link testBrokerIni}. */
export interface TestBrokerOptions {
  /** `[system]` keys to set or override. */
  readonly system?: Readonly<Record<string, string | number>>;
  /** Topic sections (text); default: `[topic=test]` and `[topic=orders-*]` with 3 partitions. */
  readonly topics?: string;
  /**
   * `[zookeeper]` keys as written in the file (`zk.zkConnect`, ...). When given, the broker
   * registers in ZooKeeper (`zk.zkEnable=true` unless set here); otherwise it is standalone.
   */
  readonly zookeeper?: Readonly<Record<string, string | number | boolean>>;
}

/** server.ini text for a standalone test broker. */
export function testBrokerIni(dataPath: string, options: TestBrokerOptions = {}): string {
  const system: Record<string, string | number> = {
    brokerId: 7,
    serverPort: 0,
    hostName: '127.0.0.1',
    numPartitions: 2,
    dataPath,
    unflushThreshold: 0,
    unflushInterval: 1000,
    maxSegmentSize: '1024*1024',
    ...options.system,
  };
  return [
    '[system]',
    ...Object.entries(system).map(([key, value]) => `${key}=${value}`),
    '[zookeeper]',
    ...(options.zookeeper === undefined
      ? ['zk.zkEnable=false']
      : Object.entries({ 'zk.zkEnable': true, ...options.zookeeper }).map(([key, value]) => `${key}=${value}`)),
    options.topics ?? '[topic=test]\n[topic=orders-*]\nnumPartitions=3',
    '',
  ].join('\n');
}

/** A parsed, validated config for a standalone test broker. */
export function testBrokerConfig(dataPath: string, options: TestBrokerOptions = {}): BrokerConfig {
  return parseBrokerConfig(testBrokerIni(dataPath, options), { file: 'test.ini' });
}
