/**
 * A whole MetaQ cluster for end-to-end tests, every part a real process: a private ZooKeeper
 * (zookeeper-server.ts), optionally a private PostgreSQL (postgres-server.ts), broker processes
 * registered in ZooKeeper (`zk.zkEnable=true`, broker-process.ts + broker-config.ts) and
 * consumers in child processes (cluster-consumer-child.ts) that join their group through
 * ZooKeeper and report what they fetch and consume over IPC.
 *
 * ```ts
 * const cluster = await startCluster({ topics: ['t'], postgres: true });
 * after(() => cluster.stop());
 * const a = await cluster.spawnConsumer({ name: 'a', group: 'g', topic: 't', mode: 'report', storage: { kind: 'zookeeper' } });
 * await waitFor(() => cluster.converged('g', 't', [a]));
 * await a.kill();               // SIGKILL; a.pause() / a.resume() for SIGSTOP / SIGCONT
 * await cluster.addBroker(4);
 * ```
 *
 * Settings are small so that failures show fast: brokers and consumers use a ZooKeeper session
 * timeout of 4 s, brokers wait `zk.zkSyncTimeMs` = 200 ms at stop. Everything started is
 * stopped by {@link TestCluster.stop}, and killed (with its directory removed) if the test
 * process exits first (cleanup.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createMessageSessionFactory, type MessageProducer, type MessageSessionFactory, type SendResult } from '../../src/index.js';
import { connectZookeeper } from '../../src/zk/zookeeper-client.js';
import type { ZkClient } from '../../src/zk/zk-client.js';
import { decodeTopicBrokerData, MetaPaths, parseTopicBrokerName, partitionName } from '../../src/zk/meta-paths.js';
import { testBrokerIni } from './broker-config.js';
import { spawnBroker, type BrokerProcess } from './broker-process.js';
import { hasExited, trackServer } from './cleanup.js';
import type { ChildOffsetStorage, ChildReport, ConsumerChildConfig, ParentCommand, ReportedMessage } from './cluster-protocol.js';
import { eoPayload } from './exactly-once-workload.js';
import { freePort } from './free-port.js';
import { startPostgres, type PostgresServer } from './postgres-server.js';
import { makeTempDir } from './temp-dir.js';
import { waitFor } from './wait-for.js';
import { startZookeeper, type ZookeeperServer } from './zookeeper-server.js';

const CHILD = fileURLToPath(new URL('./cluster-consumer-child.ts', import.meta.url));

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Topics every broker serves (publish and subscribe). */
  readonly topics: readonly string[];
  /** Partitions of each topic on each broker. Default 4. */
  readonly partitionsPerBroker?: number;
  /** Brokers started at once. Default `[1, 2, 3]`. */
  readonly brokerIds?: readonly number[];
  /** Brokers' `zk.zkSessionTimeoutMs`. Default 4000. */
  readonly brokerSessionTimeoutMs?: number;
  /** Brokers' `zk.zkSyncTimeMs`. Default 200. */
  readonly brokerSyncTimeMs?: number;
  /** Consumer children's `zkSessionTimeoutMs`. Default 4000. */
  readonly consumerSessionTimeoutMs?: number;
  /** Also start a private PostgreSQL (and open {@link TestCluster.pool} on it). Default false. */
  readonly postgres?: boolean;
}

/** What {@link TestCluster.spawnConsumer} needs; the rest of {@link ConsumerChildConfig} is filled in. */
export interface SpawnConsumerOptions {
  readonly name: string;
  readonly group: string;
  readonly topic: string;
  readonly mode: ConsumerChildConfig['mode'];
  readonly storage: ChildOffsetStorage;
  readonly rowsTable?: string;
  readonly broadcastId?: string;
  readonly pauseAfter?: number;
}

/** The state of a group's rebalancing in ZooKeeper for one topic. */
export interface GroupState {
  /** Children of `consumers/<group>/ids`, sorted. */
  readonly members: readonly string[];
  /** Every partition registered under `topics-sub/<topic>`, sorted. */
  readonly partitions: readonly string[];
  /** Owner node data by partition name (owner nodes of partitions not registered included). */
  readonly owners: ReadonlyMap<string, string>;
}

/** A broker process registered in ZooKeeper, restartable on the same port and data. */
export class ClusterBroker {
  readonly id: number;
  readonly port: number;
  readonly url: string;
  readonly iniFile: string;
  readonly dataDir: string;
  #process: BrokerProcess | undefined;
  #untrack: () => void = () => undefined;
  /** Set by kill/stop: the coming exit is the test's doing. */
  #exitExpected = false;

  constructor(id: number, port: number, iniFile: string, dataDir: string) {
    this.id = id;
    this.port = port;
    this.url = `meta://127.0.0.1:${port}`;
    this.iniFile = iniFile;
    this.dataDir = dataDir;
  }

  /** True while the process runs. */
  get running(): boolean {
    return this.#process !== undefined && !hasExited(this.#process.child);
  }

  /** The broker's log lines so far (JSON, parsed). */
  logs(): readonly Record<string, unknown>[] {
    return this.#process?.logs ?? [];
  }

  /** The broker's stderr so far. */
  stderr(): string {
    return this.#process?.stderr() ?? '';
  }

  /** A description of the exit when the process ended without kill()/stop(), else `undefined`. */
  unexpectedExit(): string | undefined {
    const child = this.#process?.child;
    if (child === undefined || !hasExited(child) || this.#exitExpected) return undefined;
    return `broker ${this.id} exited by itself (code ${String(child.exitCode)}, signal ${String(child.signalCode)}); stderr: ${this.stderr().slice(-2000)}`;
  }

  /** Starts the process and waits for `broker started`. */
  async start(): Promise<void> {
    if (this.running) return;
    const broker = spawnBroker(['start', '-c', this.iniFile]);
    this.#process = broker;
    this.#exitExpected = false;
    this.#untrack = trackServer({ name: `broker ${this.id}`, dir: this.dataDir, pid: () => (hasExited(broker.child) ? undefined : broker.child.pid), exitSignal: 'SIGKILL' });
    await broker.waitForLog('broker started', 30_000);
  }

  /** SIGKILL (a crash: nothing deregistered, the ZooKeeper session lingers until it times out). */
  kill(): Promise<void> {
    return this.#signal('SIGKILL');
  }

  /** SIGTERM: deregisters, waits `zk.zkSyncTimeMs`, closes. */
  stop(): Promise<void> {
    return this.#signal('SIGTERM');
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const broker = this.#process;
    if (broker === undefined) return;
    if (!hasExited(broker.child)) {
      this.#exitExpected = true;
      broker.child.kill(signal);
    }
    await broker.exited;
    this.#untrack();
  }
}

/** A consumer child process; see cluster-consumer-child.ts. */
export class ConsumerChild {
  readonly name: string;
  /** `<group>_<name>` (broadcast: `<group>-<broadcastId>_<name>`), the id in ZooKeeper. */
  readonly memberId: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Messages the listener finished with (`report` mode), in report order. */
  readonly consumed: ReportedMessage[] = [];
  /** Completed rebalances, with the test's clock. */
  readonly rebalances: { readonly at: number; readonly assignment: readonly string[]; readonly durationMs: number }[] = [];
  /** Error-level log lines of the client. */
  readonly errors: string[] = [];
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals>;
  readonly #ready: Promise<void>;
  readonly #closed: Promise<void>;
  #output = '';
  #untrack: () => void;
  /** Set by kill/close: the coming exit is the test's doing. */
  #exitExpected = false;

  constructor(config: ConsumerChildConfig, group: string) {
    this.name = config.name;
    this.memberId = `${group}_${config.name}`;
    this.logFile = config.logFile;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    this.child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
    const child = this.child;
    this.#untrack = trackServer({ name: `consumer ${config.name}`, dir: config.recoverPath, pid: () => (hasExited(child) ? undefined : child.pid), exitSignal: 'SIGKILL' });
    child.stdout?.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#output += chunk.toString('utf8');
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#untrack();
        resolve(signal ?? code ?? -1);
      });
    });
    let readyResolve: () => void = () => undefined;
    let closedResolve: () => void = () => undefined;
    this.#ready = new Promise((resolve) => {
      readyResolve = resolve;
    });
    this.#closed = new Promise((resolve) => {
      closedResolve = resolve;
    });
    child.on('message', (report: ChildReport) => {
      switch (report.type) {
        case 'ready':
          readyResolve();
          break;
        case 'rebalanced':
          this.rebalances.push({ at: Date.now(), assignment: [...report.assignment].sort(), durationMs: report.durationMs });
          break;
        case 'consumed':
          this.consumed.push(...report.messages);
          break;
        case 'error-log':
          this.errors.push(report.line);
          break;
        case 'closed':
          closedResolve();
          break;
      }
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !hasExited(this.child);
  }

  /** The partitions of the last completed rebalance (sorted), `undefined` before the first. */
  get assignment(): readonly string[] | undefined {
    return this.rebalances.at(-1)?.assignment;
  }

  /** Resolves once the consumer runs (`completeSubscribe()` resolved); rejects if it exits first. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await this.#until(this.#ready, timeoutMs, 'ready');
  }

  /** A description of the exit when the process ended without kill()/close(), else `undefined`. */
  unexpectedExit(): string | undefined {
    if (this.alive || this.#exitExpected) return undefined;
    return `consumer ${this.name} exited by itself (code ${String(this.child.exitCode)}, signal ${String(this.child.signalCode)})\n${this.diagnostics()}`;
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.#exitExpected = true;
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process freezes (no ZooKeeper pings: its session expires after the timeout). */
  pause(): void {
    this.child.kill('SIGSTOP');
  }

  /** SIGCONT. */
  resume(): void {
    this.child.kill('SIGCONT');
  }

  /** Graceful close (final commit, leaves the group); resolves once the process exited with 0. */
  async close(timeoutMs = 30_000): Promise<void> {
    if (!this.alive) throw new Error(`consumer ${this.name} is not running (exit ${String(await this.exited)})\n${this.diagnostics()}`);
    this.#exitExpected = true;
    const command: ParentCommand = { type: 'close' };
    this.child.send(command);
    await this.#until(this.#closed, timeoutMs, 'closed');
    const code = await this.exited;
    if (code !== 0) throw new Error(`consumer ${this.name} exited with ${String(code)} after close\n${this.diagnostics()}`);
  }

  /** stderr/stdout and the tail of the log file, for failure messages. */
  diagnostics(lines = 30): string {
    let log = '';
    try {
      log = fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      // not written yet
    }
    return `--- consumer ${this.name} (pid ${String(this.pid)}) output ---\n${this.#output.slice(-4000)}\n--- log tail (${this.logFile}) ---\n${log}`;
  }

  async #until(promise: Promise<void>, timeoutMs: number, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        promise,
        this.exited.then((code) => {
          throw new Error(`consumer ${this.name} exited (${String(code)}) before it was ${what}\n${this.diagnostics()}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`consumer ${this.name} was not ${what} after ${timeoutMs} ms\n${this.diagnostics()}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One acknowledged send of a {@link ContinuousProducer}. */
export interface AckedSend {
  readonly seq: number;
  readonly result: SendResult;
}

/**
 * Sends `eoPayload(seq)` messages (exactly-once-workload.ts) to one topic at a steady rate until
 * stopped, recording every acknowledgement and every failure (a failed send may or may not have
 * been stored).
 */
export class ContinuousProducer {
  readonly topic: string;
  /** seq → where it was stored. */
  readonly acked = new Map<number, SendResult>();
  /** Seqs whose send failed. */
  readonly failed = new Set<number>();
  readonly #producer: MessageProducer;
  readonly #inFlight = new Set<Promise<void>>();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(producer: MessageProducer, topic: string) {
    this.#producer = producer;
    this.topic = topic;
  }

  /** Seqs sent so far. */
  get sent(): number {
    return this.#next;
  }

  /** Starts sending about `perSecond` messages a second (at most `window` in flight). */
  start(perSecond: number, window = 64): void {
    const tickMs = 20;
    const perTick = Math.max(1, Math.round((perSecond * tickMs) / 1000));
    this.#timer = setInterval(() => {
      for (let i = 0; i < perTick && this.#inFlight.size < window; i++) this.sendOne();
    }, tickMs);
  }

  /** Sends one message now; resolves when it is settled (acknowledged or failed). */
  sendOne(): Promise<void> {
    const seq = this.#next++;
    const sending = this.#producer.send({ topic: this.topic, data: eoPayload(seq) }, { timeoutMs: 5000 }).then(
      (result) => {
        this.acked.set(seq, result);
      },
      () => {
        this.failed.add(seq);
      },
    );
    this.#inFlight.add(sending);
    void sending.then(() => this.#inFlight.delete(sending));
    return sending;
  }

  /** Stops sending and waits for the sends in flight to settle. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#inFlight]);
  }
}

/** A running cluster; see {@link startCluster}. */
export class TestCluster {
  readonly zk: ZookeeperServer;
  readonly pg: PostgresServer | undefined;
  /** A pool on {@link pg} (max 5), for the test's own queries. */
  readonly pool: pg.Pool | undefined;
  /** The temporary directory of broker data, child logs, recover stores and offset files. */
  readonly dir: string;
  readonly paths: MetaPaths;
  /** The test's own ZooKeeper client, for reading the cluster's znodes. */
  readonly checker: ZkClient;
  readonly brokers = new Map<number, ClusterBroker>();
  readonly consumers: ConsumerChild[] = [];
  readonly #options: Required<Omit<ClusterOptions, 'postgres' | 'brokerIds'>>;
  readonly #removeDir: () => Promise<void>;
  readonly #factories: MessageSessionFactory[] = [];
  readonly #untrackDir: () => void;

  constructor(zk: ZookeeperServer, pgServer: PostgresServer | undefined, dir: { path: string; remove: () => Promise<void> }, options: ClusterOptions) {
    this.zk = zk;
    this.pg = pgServer;
    this.pool = pgServer === undefined ? undefined : new pg.Pool({ connectionString: pgServer.connectionString, max: 5 });
    this.dir = dir.path;
    this.#removeDir = dir.remove;
    this.paths = new MetaPaths(`/metaq-cluster-${process.pid}`);
    // Removed with everything else if the test process exits without stop().
    this.#untrackDir = trackServer({ name: 'cluster directory', dir: dir.path, pid: () => undefined, exitSignal: 'SIGKILL' });
    this.checker = connectZookeeper({ connectString: zk.connectString, sessionTimeoutMs: 10_000, connectionTimeoutMs: 10_000 });
    this.#options = {
      topics: options.topics,
      partitionsPerBroker: options.partitionsPerBroker ?? 4,
      brokerSessionTimeoutMs: options.brokerSessionTimeoutMs ?? 4000,
      brokerSyncTimeMs: options.brokerSyncTimeMs ?? 200,
      consumerSessionTimeoutMs: options.consumerSessionTimeoutMs ?? 4000,
    };
  }

  /** The consumers' ZooKeeper session timeout. */
  get consumerSessionTimeoutMs(): number {
    return this.#options.consumerSessionTimeoutMs;
  }

  /** The partitions each broker has per topic. */
  get partitionsPerBroker(): number {
    return this.#options.partitionsPerBroker;
  }

  /** Starts broker `id` (free port, own data directory) and waits until it registered every topic. */
  async addBroker(id: number): Promise<ClusterBroker> {
    if (this.brokers.has(id)) throw new Error(`broker ${id} exists already`);
    const port = await freePort();
    const dataDir = join(this.dir, `broker-${id}`);
    const iniFile = join(this.dir, `broker-${id}.ini`);
    const ini = testBrokerIni(dataDir, {
      system: { brokerId: id, serverPort: port, numPartitions: this.#options.partitionsPerBroker },
      topics: this.#options.topics.map((topic) => `[topic=${topic}]`).join('\n'),
      zookeeper: {
        'zk.zkConnect': this.zk.connectString,
        'zk.zkRoot': this.paths.root,
        'zk.zkSessionTimeoutMs': this.#options.brokerSessionTimeoutMs,
        'zk.zkSyncTimeMs': this.#options.brokerSyncTimeMs,
      },
    });
    fs.writeFileSync(iniFile, ini);
    const broker = new ClusterBroker(id, port, iniFile, dataDir);
    this.brokers.set(id, broker);
    await broker.start();
    await this.waitRegistered(broker);
    return broker;
  }

  /** Waits until `broker` is registered under `topics-sub` for every topic. */
  async waitRegistered(broker: ClusterBroker, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const topic of this.#options.topics) {
          if (!((await this.checker.children(this.paths.topicSub(topic))) ?? []).includes(`${broker.id}-m`)) return false;
        }
        return true;
      },
      { timeoutMs, what: `broker ${broker.id} registered under ${this.paths.brokerTopicsSub}` },
    );
  }

  /** A session factory in cluster mode (closed by {@link stop}). */
  createFactory(): MessageSessionFactory {
    const factory = createMessageSessionFactory({ zkConnect: this.zk.connectString, zkRoot: this.paths.root, zkSessionTimeoutMs: 10_000 });
    this.#factories.push(factory);
    return factory;
  }

  /** A producer on a new factory, publishing `topic`, wrapped in a {@link ContinuousProducer}. */
  async createProducer(topic: string): Promise<ContinuousProducer> {
    const producer = this.createFactory().createProducer();
    await producer.publish(topic);
    return new ContinuousProducer(producer, topic);
  }

  /** Spawns a consumer child and waits until it runs. */
  async spawnConsumer(options: SpawnConsumerOptions): Promise<ConsumerChild> {
    const recoverPath = join(this.dir, `recover-${options.name}`);
    fs.mkdirSync(recoverPath, { recursive: true });
    const config: ConsumerChildConfig = {
      ...options,
      zkConnect: this.zk.connectString,
      zkRoot: this.paths.root,
      zkSessionTimeoutMs: this.#options.consumerSessionTimeoutMs,
      recoverPath,
      logFile: join(this.dir, `consumer-${options.name}.log`),
    };
    const group = options.broadcastId === undefined ? options.group : `${options.group}-${options.broadcastId}`;
    const child = new ConsumerChild(config, group);
    this.consumers.push(child);
    await child.ready();
    return child;
  }

  /**
   * Throws when a broker or consumer process ended without the test asking for it (a crash),
   * with its output. Pass as `abortIf` to waits, so that a crash fails at once and says so.
   */
  checkProcesses(): void {
    const crashes = [...[...this.brokers.values()].map((b) => b.unexpectedExit()), ...this.consumers.map((c) => c.unexpectedExit())].filter(
      (crash): crash is string => crash !== undefined,
    );
    if (crashes.length > 0) throw new Error(crashes.join('\n'));
  }

  /** Partition names registered under `topics-sub/<topic>`, sorted. */
  async subscribePartitions(topic: string): Promise<string[]> {
    const dir = this.paths.topicSub(topic);
    const names: string[] = [];
    for (const child of (await this.checker.children(dir)) ?? []) {
      const parsed = parseTopicBrokerName(child);
      const node = await this.checker.get(`${dir}/${child}`);
      const data = node === undefined ? undefined : decodeTopicBrokerData(node.data);
      if (parsed === undefined || data === undefined) continue;
      for (let p = 0; p < data.numParts; p++) names.push(partitionName(parsed.brokerId, p));
    }
    return [...new Set(names)].sort();
  }

  /** Members, partitions and owners of `group` for `topic`, as ZooKeeper has them now. */
  async groupState(group: string, topic: string): Promise<GroupState> {
    const members = ((await this.checker.children(this.paths.groupIds(group))) ?? []).sort();
    const partitions = await this.subscribePartitions(topic);
    const ownersDir = this.paths.groupOwners(group, topic);
    const owners = new Map<string, string>();
    for (const name of (await this.checker.children(ownersDir)) ?? []) {
      const node = await this.checker.get(`${ownersDir}/${name}`);
      if (node !== undefined) owners.set(name, node.data);
    }
    return { members, partitions, owners };
  }

  /**
   * True when the group has converged on exactly `members`: they (and nobody else) are
   * registered, every partition of the topic (`expectedPartitions` of them, when given) has an
   * owner node naming one of them, no other owner node exists, shares differ by at most one,
   * and each member's last completed rebalance fetches exactly what it owns in ZooKeeper.
   * Otherwise throws an Error saying what is missing (waitFor reports the last one on timeout).
   */
  async converged(group: string, topic: string, members: readonly ConsumerChild[], expectedPartitions?: number): Promise<true> {
    const state = await this.groupState(group, topic);
    const ids = members.map((m) => m.memberId).sort();
    if (state.members.join() !== ids.join()) throw new Error(`registered members ${state.members.join(' ')} ≠ expected ${ids.join(' ')}`);
    if (state.partitions.length === 0 || (expectedPartitions !== undefined && state.partitions.length !== expectedPartitions)) {
      throw new Error(`${state.partitions.length} partitions registered (expected ${String(expectedPartitions)})`);
    }
    const unowned = state.partitions.filter((p) => !state.owners.has(p));
    if (unowned.length > 0) throw new Error(`partitions without owner: ${unowned.join(' ')}`);
    const stray = [...state.owners].filter(([p, owner]) => !state.partitions.includes(p) || !ids.includes(owner));
    if (stray.length > 0) throw new Error(`owner nodes of unknown partitions or non-members: ${stray.map(([p, o]) => `${p}=${o}`).join(' ')}`);
    const floor = Math.floor(state.partitions.length / ids.length);
    for (const member of members) {
      const owned = [...state.owners].filter(([, owner]) => owner === member.memberId).map(([p]) => p).sort();
      if (owned.length < floor || owned.length > floor + (state.partitions.length % ids.length === 0 ? 0 : 1)) {
        throw new Error(`${member.memberId} owns ${owned.length} of ${state.partitions.length} partitions: unbalanced`);
      }
      if ((member.assignment ?? []).join() !== owned.join()) {
        throw new Error(`${member.memberId} fetches [${(member.assignment ?? []).join(' ')}] but owns [${owned.join(' ')}] in ZooKeeper`);
      }
    }
    return true;
  }

  /**
   * Stops everything started (consumer children still running are SIGKILLed) and removes the
   * directory. With `METAQ_CLUSTER_LOGS=<dir>` in the environment, the consumers' and brokers'
   * logs are copied there first (for a failure's post-mortem).
   */
  async stop(): Promise<void> {
    // Every step runs even when an earlier one fails; the first failure is thrown at the end.
    const failures: unknown[] = [];
    const step = async (run: () => Promise<unknown>): Promise<void> => {
      try {
        await run();
      } catch (error) {
        failures.push(error);
      }
    };
    await step(() => Promise.all(this.consumers.map((c) => c.kill())));
    await step(() => Promise.allSettled(this.#factories.map((f) => f.close())));
    await step(() => Promise.all([...this.brokers.values()].map((b) => b.stop())));
    await step(async () => this.#keepLogs());
    await step(() => this.checker.close());
    await step(async () => this.pool?.end());
    await step(async () => this.pg?.stop());
    await step(() => this.zk.stop());
    await step(() => this.#removeDir());
    this.#untrackDir();
    if (failures.length > 0) throw failures[0];
  }

  /** Copies the logs to `$METAQ_CLUSTER_LOGS` when set (best effort). */
  #keepLogs(): void {
    const keep = process.env['METAQ_CLUSTER_LOGS'];
    if (keep === undefined || keep === '') return;
    fs.mkdirSync(keep, { recursive: true });
    const copy = (from: string, to: string): void => {
      if (fs.existsSync(from)) fs.copyFileSync(from, join(keep, to));
    };
    for (const c of this.consumers) copy(c.logFile, `consumer-${c.name}.log`);
    for (const b of this.brokers.values()) {
      fs.writeFileSync(join(keep, `broker-${b.id}.log`), b.logs().map((l) => JSON.stringify(l)).join('\n') + '\n');
      fs.writeFileSync(join(keep, `broker-${b.id}.stderr`), b.stderr());
    }
    copy(this.zk.logFile, 'zookeeper.log');
  }

}

/**
 * Starts ZooKeeper (and PostgreSQL when asked) and the brokers `brokerIds` (default 1, 2, 3),
 * and waits until every broker registered every topic.
 */
export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const dir = await makeTempDir('metaq-cluster-');
  const [zk, pgServer] = await Promise.all([startZookeeper(), options.postgres === true ? startPostgres({ maxConnections: 200 }) : Promise.resolve(undefined)]);
  const cluster = new TestCluster(zk, pgServer, dir, options);
  try {
    await Promise.all((options.brokerIds ?? [1, 2, 3]).map((id) => cluster.addBroker(id)));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
