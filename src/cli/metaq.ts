#!/usr/bin/env node
/**
 * `metaq`: the user tool, a thin layer over the client library (docs/cli.md).
 *
 *   metaq pub -t test "hello"
 *   metaq sub -t test -g readers --from-beginning --max 10
 *   metaq stats [item]
 *
 * stdout carries only the command's output; the client's logs go to stderr as JSON lines, at
 * level `error` unless `METAQ_LOG_LEVEL` says otherwise. That logger must be in place before
 * any client module loads (they create their loggers at import time), hence the dynamic import.
 */
import { pino } from 'pino';
import { setRootLogger } from '../common/logger.js';

const level = process.env['METAQ_LOG_LEVEL'];
setRootLogger(pino({ name: 'metaq', level: level !== undefined && level !== '' ? level : 'error' }, pino.destination({ dest: 2, sync: true })));

const { processContext } = await import('./commands/process-context.js');
const { runCli } = await import('./commands/main.js');

const code = await runCli(process.argv.slice(2), processContext());
// Let what was written reach its reader before exiting (open sockets or stdin would otherwise keep the process alive).
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(code);
