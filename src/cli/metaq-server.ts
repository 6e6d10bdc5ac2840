#!/usr/bin/env node
/**
 * `metaq-server`: runs a broker.
 *
 *   metaq-server start -c conf/server.ini
 *
 * SIGTERM or SIGINT stop it cleanly (queued writes finished, logs fsynced, files closed,
 * exit 0); a second signal during shutdown exits at once with status 1.
 */
import { parseArgs } from 'node:util';
import { MetaqBroker } from '../broker/broker.js';
import { loadBrokerConfig } from '../common/config/index.js';
import { MetaqError } from '../common/errors.js';
import { rootLogger } from '../common/logger.js';
import { metaqVersion } from '../common/version.js';

const USAGE = `Usage: metaq-server start -c <server.ini>

Commands:
  start        run a broker in the foreground until SIGTERM or SIGINT

Options:
  -c, --config <file>   broker configuration (default: conf/server.ini)
  -h, --help            show this help
  -v, --version         print the version`;

/** How long a clean shutdown may take before the process gives up and exits with status 1. */
const SHUTDOWN_DEADLINE_MS = 30_000;

async function start(configPath: string): Promise<void> {
  const config = await loadBrokerConfig(configPath);
  const broker = await MetaqBroker.start(config);
  const log = rootLogger().child({ component: 'cli' });
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting without finishing shutdown');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      log.error(`shutdown took longer than ${SHUTDOWN_DEADLINE_MS} ms; exiting`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    broker.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c', default: 'conf/server.ini' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (values.version === true) {
    console.log(metaqVersion());
    return 0;
  }
  const command = positionals[0] ?? 'start';
  if (command !== 'start') {
    console.error(`metaq-server: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  await start(values.config);
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    // Start-up errors are for a person at a terminal: one clear line, not a stack trace.
    if (error instanceof MetaqError) console.error(`metaq-server: ${error.message} [${error.code}]`);
    else if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) console.error(`metaq-server: ${error.message}\n\n${USAGE}`);
    else console.error('metaq-server: failed to start:', error);
    process.exit(2);
  },
);
