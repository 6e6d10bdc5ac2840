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
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ChildProcessServer, type ManagedServer, type ManagedServerOptions, type ServerKind, startOnFreePort } from './managed-server.js';
import { ensureDebianPackage } from './system-packages.js';

/** Where Debian's `libzookeeper-java` (pulled in by `zookeeper`) puts the server jar. */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/**
 * The rest of the class path. `zookeeper.jar`'s manifest already lists its dependencies
 * (netty, jute, jetty, ...), but not an SLF4J binding; without one ZooKeeper logs nothing and
 * SLF4J complains on stderr. Both jars come from dependencies of `libzookeeper-java`.
 */
const LOGGING_JARS = ['/usr/share/java/slf4j-log4j12.jar', '/usr/share/java/log4j-1.2.jar'];
const JAVA = '/usr/bin/java';

const ZOOKEEPER: ServerKind = {
  name: 'ZooKeeper',
  processName: 'the ZooKeeper JVM',
  startFunction: 'startZookeeper',
  dirPrefix: 'metaq-test-zk-',
  outputFile: 'jvm.out',
  logFile: 'zookeeper.log',
  readyWhat: 'answer ruok/srvr',
  portTaken: /Address already in use/,
  exitSignal: 'SIGKILL',
  stop: { signal: 'SIGTERM', graceMs: 5000 },
  kill: { signal: 'SIGKILL', graceMs: 0 },
  abortStart: { signal: 'SIGKILL', graceMs: 0 },
};

/** Options of {@link startZookeeper}; `port` is the client port. */
export interface ZookeeperOptions extends ManagedServerOptions {
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
}

/**
 * A running private ZooKeeper; see {@link startZookeeper}. Its process ({@link pid},
 * {@link running}) is the JVM; {@link port} is the client port; {@link dataDir} holds the
 * config, snapshots and logs.
 */
export interface ZookeeperServer extends ManagedServer {
  /** `host:port`, ready for `zookeeper.createClient()`. */
  readonly connectString: string;
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
  return startOnFreePort(ZOOKEEPER, options.port, (port) => new ZkServer(port, options));
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

class ZkServer extends ChildProcessServer implements ZookeeperServer {
  readonly connectString: string;
  #options: ZookeeperOptions;

  constructor(port: number, options: ZookeeperOptions) {
    super(ZOOKEEPER, port, options);
    this.connectString = `${this.host}:${port}`;
    this.#options = options;
  }

  /** Writes zoo.cfg and log4j.properties. */
  protected override async prepare(): Promise<void> {
    const tick = this.#options.tickTimeMs ?? 500;
    await mkdir(join(this.dataDir, 'data'));
    const cfg = [
      `tickTime=${tick}`,
      `dataDir=${join(this.dataDir, 'data')}`,
      `clientPort=${this.port}`,
      `clientPortAddress=${this.host}`,
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

  protected override spawnProcess(out: number): ChildProcess {
    return spawn(
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
  }

  /** `ruok` answers `imok` and `srvr` reports standalone mode. */
  protected override async isReady(): Promise<boolean> {
    return (await fourLetterWord(this.host, this.port, 'ruok')) === 'imok' && (await fourLetterWord(this.host, this.port, 'srvr')).includes('Mode: standalone');
  }
}
