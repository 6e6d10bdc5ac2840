/**
 * A private, throw-away ZooKeeper 3.8 server for integration tests.
 *
 * Runs the JVM of Debian's `zookeeper` package directly (no init script, no `/etc/zookeeper`)
 * with a generated `zoo.cfg` in a fresh temporary directory, on a free loopback port.
 *
 * @example
 * ```ts
 * const zk = await startZookeeper();
 * after(() => zk.stop());
 * const client = zookeeper.createClient(zk.connectString);
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasExited, reapOrphans, terminateChild, trackServer, writeOwnerFile } from './cleanup.js';
import { freePort } from './free-port.js';
import { ensureDebianPackage } from './system-packages.js';
import { waitFor } from './wait-for.js';

/** Where Debian's `libzookeeper-java` (pulled in by `zookeeper`) puts the server jar. */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/**
 * The rest of the class path. `zookeeper.jar`'s manifest already lists its dependencies
 * (netty, jute, jetty, ...), but not an SLF4J binding; without one ZooKeeper logs nothing and
 * SLF4J complains on stderr. Both jars come from dependencies of `libzookeeper-java`.
 */
const LOGGING_JARS = ['/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];
const JAVA = '/usr/bin/java';
const DIR_PREFIX = 'metaq-test-zk-';
const HOST = '127.0.0.1';

/** Options of {@link startZookeeper}. */
export interface ZookeeperOptions {
  /** Client port; a free one is picked when omitted. */
  port?: number;
  /**
   * ZooKeeper's `tickTime` in ms. Default 500 (ZooKeeper's own default is 2000): session
   * timeouts are bounded by multiples of it, and small ticks let session-expiry tests run fast.
   */
  tickTimeMs?: number;
  /** Smallest session timeout the server grants, in ms. Default `2 * tickTimeMs`. */
  minSessionTimeoutMs?: number;
  /**
   * Largest session timeout the server grants, in ms. Default 60 000, so that clients asking for
   * the usual 30 s get it even with a small tick (ZooKeeper's default would be `20 * tickTime`).
   */
  maxSessionTimeoutMs?: number;
  /** JVM maximum heap, passed as `-Xmx`. Default `256m`. */
  heap?: string;
  /** How long to wait for the server to become ready, in ms. Default 60 000. */
  startTimeoutMs?: number;
}

/** A running private ZooKeeper; see {@link startZookeeper}. */
export interface ZookeeperServer {
  /** Always `127.0.0.1`. */
  readonly host: string;
  /** The client port. Stays the same across {@link kill}/{@link start}. */
  readonly port: number;
  /** `host:port`, ready for `zookeeper.createClient()`. */
  readonly connectString: string;
  /** The private temporary directory (config, snapshots, logs); deleted by {@link stop}. */
  readonly dataDir: string;
  /** ZooKeeper's own log file (inside {@link dataDir}); read it when a test fails oddly. */
  readonly logFile: string;
  /** The JVM's pid, or undefined while the server is not running. */
  readonly pid: number | undefined;
  /** True while the JVM runs. */
  readonly running: boolean;
  /**
   * Stops the server for good: SIGTERM, SIGKILL after a grace period, waits for the JVM to exit
   * and deletes {@link dataDir}. Idempotent; never throws for an already-stopped server.
   */
  stop(): Promise<void>;
  /**
   * Simulates a crash: SIGKILLs the JVM and waits for it to exit, keeping the data directory
   * so that {@link start} brings the same ensemble state back (for "ZooKeeper died" tests).
   */
  kill(): Promise<void>;
  /** Starts the server again after {@link kill}, on the same port and data; waits until ready. */
  start(): Promise<void>;
  /** {@link kill} followed by {@link start}. */
  restart(): Promise<void>;
}

/**
 * Starts a private standalone ZooKeeper on a free loopback port and waits until it serves
 * (`ruok` answers `imok` and `srvr` reports `Mode: standalone`).
 *
 * Installs the Debian package `zookeeper` first if it is missing. Always pair with `stop()` in
 * an `after` hook or `finally`; if a test process dies anyway, the server is killed on exit.
 *
 * @param options - See {@link ZookeeperOptions}.
 * @throws Error with the tail of ZooKeeper's log when it does not come up in time.
 */
export async function startZookeeper(options: ZookeeperOptions = {}): Promise<ZookeeperServer> {
  await ensureDebianPackage('zookeeper', ZOOKEEPER_JAR);
  for (const jar of [JAVA, ...LOGGING_JARS]) {
    if (!existsSync(jar)) {
      throw new Error(`${jar} is missing although package 'zookeeper' is installed; install 'default-jre-headless libslf4j-java liblog4j1.2-java'.`);
    }
  }
  reapOrphans(DIR_PREFIX, 'SIGKILL');
  // Why retry: freePort() only says the port was free a moment ago; if another process grabbed
  // it before the JVM bound it, pick another one rather than fail the test.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort(HOST));
    const server = new ZkServer(port, options);
    try {
      await server.init();
      await server.start();
      return server;
    } catch (err) {
      const portTaken = server.readLog().includes('Address already in use');
      await server.stop();
      if (!portTaken || options.port !== undefined || attempt >= 3) throw err;
    }
  }
}

/** Sends a ZooKeeper four-letter command (`ruok`, `srvr`, `stat`, ...) and returns the reply. */
export function fourLetterWord(host: string, port: number, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`'${command}' to ${host}:${port} timed out after ${timeoutMs} ms`)));
    socket.once('connect', () => socket.end(command));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

class ZkServer implements ZookeeperServer {
  readonly host = HOST;
  readonly port: number;
  readonly connectString: string;
  dataDir = '';
  logFile = '';
  #options: ZookeeperOptions;
  #child: ChildProcess | undefined;
  #untrack: (() => void) | undefined;
  #stopped = false;

  constructor(port: number, options: ZookeeperOptions) {
    this.port = port;
    this.connectString = `${HOST}:${port}`;
    this.#options = options;
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && !hasExited(this.#child);
  }

  /** Creates the directory and writes zoo.cfg and log4j.properties. */
  async init(): Promise<void> {
    this.dataDir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    writeOwnerFile(this.dataDir, undefined);
    this.logFile = join(this.dataDir, 'zookeeper.log');
    this.#untrack = trackServer({ name: `ZooKeeper ${this.connectString}`, dir: this.dataDir, pid: () => this.pid, exitSignal: 'SIGKILL' });
    const tick = this.#options.tickTimeMs ?? 500;
    await mkdir(join(this.dataDir, 'data'));
    const cfg = [
      `tickTime=${tick}`,
      `dataDir=${join(this.dataDir, 'data')}`,
      `clientPort=${this.port}`,
      `clientPortAddress=${HOST}`,
      `minSessionTimeout=${this.#options.minSessionTimeoutMs ?? 2 * tick}`,
      `maxSessionTimeout=${this.#options.maxSessionTimeoutMs ?? 60_000}`,
      'initLimit=10',
      'syncLimit=5',
      // Tests open many connections from one address; ZooKeeper's default cap is 60.
      'maxClientCnxns=0',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,stat',
      // Speed over durability: the data is thrown away. preAllocSize (KB) avoids 64 MB log files.
      'forceSync=no',
      'preAllocSize=1024',
    ];
    await writeFile(join(this.dataDir, 'zoo.cfg'), cfg.join('\n') + '\n');
    const log4j = [
      'log4j.rootLogger=INFO, FILE',
      'log4j.appender.FILE=org.apache.log4j.FileAppender',
      `log4j.appender.FILE.File=${this.logFile}`,
      'log4j.appender.FILE.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n',
    ];
    await writeFile(join(this.dataDir, 'log4j.properties'), log4j.join('\n') + '\n');
  }

  async start(): Promise<void> {
    if (this.#stopped) throw new Error(`ZooKeeper ${this.connectString} was stopped and its data deleted; start a new one with startZookeeper().`);
    if (this.running) return;
    const out = openSync(join(this.dataDir, 'jvm.out'), 'a');
    let child: ChildProcess;
    try {
      child = spawn(
        JAVA,
        [
          `-Xmx${this.#options.heap ?? '256m'}`,
          // Faster JVM start-up for a short-lived, lightly loaded server.
          '-XX:+UseSerialGC',
          '-XX:TieredStopAtLevel=1',
          '-Djava.net.preferIPv4Stack=true',
          `-Dlog4j.configuration=file:${join(this.dataDir, 'log4j.properties')}`,
          '-Dzookeeper.jmx.log4j.disable=true',
          '-Dzookeeper.admin.enableServer=false',
          '-cp',
          [ZOOKEEPER_JAR, ...LOGGING_JARS].join(':'),
          'org.apache.zookeeper.server.quorum.QuorumPeerMain',
          join(this.dataDir, 'zoo.cfg'),
        ],
        { cwd: this.dataDir, stdio: ['ignore', out, out] },
      );
    } finally {
      closeSync(out); // the child has its own copy of the descriptor
    }
    // Why unref: a test that forgets stop() must not hang the test run; the exit handler in
    // cleanup.ts kills the JVM when the process ends.
    child.unref();
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    this.#child = child;
    writeOwnerFile(this.dataDir, child.pid);
    try {
      await Promise.race([
        spawnError,
        waitFor(
          async () => (await fourLetterWord(HOST, this.port, 'ruok')) === 'imok' && (await fourLetterWord(HOST, this.port, 'srvr')).includes('Mode: standalone'),
          {
            timeoutMs: this.#options.startTimeoutMs ?? 60_000,
            intervalMs: 100,
            what: `ZooKeeper on ${this.connectString} to answer ruok/srvr`,
            abortIf: () => {
              if (hasExited(child)) throw new Error(`the ZooKeeper JVM exited during start-up (code ${child.exitCode}, signal ${child.signalCode})`);
            },
          },
        ),
      ]);
    } catch (err) {
      await terminateChild(child, 'SIGKILL', 0);
      throw new Error(`ZooKeeper did not start on ${this.connectString}: ${(err as Error).message}\n--- log tail (${this.logFile}) ---\n${this.readLog().split('\n').slice(-30).join('\n')}`, { cause: err });
    }
  }

  async kill(): Promise<void> {
    if (this.#child !== undefined) await terminateChild(this.#child, 'SIGKILL', 0);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#child !== undefined) await terminateChild(this.#child, 'SIGTERM', 5000);
    if (this.dataDir !== '') await rm(this.dataDir, { recursive: true, force: true });
    this.#untrack?.();
  }

  /** The JVM's stdout/stderr followed by ZooKeeper's log, or '' when there is none yet. */
  readLog(): string {
    if (this.dataDir === '') return '';
    let text = '';
    for (const file of [join(this.dataDir, 'jvm.out'), this.logFile]) {
      try {
        text += readFileSync(file, 'utf8');
      } catch {
        // not written yet
      }
    }
    return text;
  }
}
