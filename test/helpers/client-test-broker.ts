/**
 * A real `metaq-server` process for client integration tests, with its own temporary data
 * directory and configuration, that can be stopped, SIGKILLed and restarted on the same port.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { testBrokerIni, type TestBrokerOptions } from './broker-config.js';
import { spawnBroker, type BrokerProcess } from './broker-process.js';
import { makeTempDir } from './temp-dir.js';

/** A broker for one test file. */
export interface ClientTestBroker {
  /** `meta://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The temporary directory (data in `data/`, config in `server.ini`); use it for client files too. */
  readonly dir: string;
  readonly process: BrokerProcess;
  /** SIGKILL: no shutdown, no flush. */
  kill(): Promise<void>;
  /** Starts the broker again on the same port and data directory. */
  restart(): Promise<void>;
  /** Graceful stop, then removes the directory. */
  cleanup(): Promise<void>;
}

/**
 * Starts a standalone broker (group commit, `unflushThreshold=0`, unless overridden). With
 * `port`, it listens there (needed to restart on the same port); otherwise on any free port.
 */
export async function startClientTestBroker(options: TestBrokerOptions & { port?: number } = {}): Promise<ClientTestBroker> {
  const temp = await makeTempDir('metaq-client-it-');
  const ini = join(temp.path, 'server.ini');
  fs.writeFileSync(ini, testBrokerIni(join(temp.path, 'data'), { ...options, system: { serverPort: options.port ?? 0, ...options.system } }));
  let current = spawnBroker(['start', '-c', ini]);
  let port: number;
  try {
    port = Number((await current.waitForLog('broker started'))['port']);
  } catch (error) {
    await temp.remove();
    throw error;
  }
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill(signal);
    await current.exited;
  };
  return {
    url: `meta://127.0.0.1:${port}`,
    port,
    dir: temp.path,
    get process() {
      return current;
    },
    kill: () => stop('SIGKILL'),
    async restart() {
      await stop('SIGTERM');
      current = spawnBroker(['start', '-c', ini]);
      const started = await current.waitForLog('broker started');
      if (Number(started['port']) !== port) throw new Error(`broker restarted on port ${String(started['port'])}, expected ${port}`);
    },
    async cleanup() {
      await stop('SIGTERM');
      await temp.remove();
    },
  };
}
