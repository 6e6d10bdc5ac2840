/**
 * The real {@link CliContext}: the process's streams and environment, and signal handling.
 */
import type { CliContext } from './context.js';

/** Exit status after a second Ctrl-C, or after Ctrl-C where no command handles it (128 + SIGINT). */
const INTERRUPTED_EXIT_CODE = 130;

/** The {@link CliContext} of this process. */
export function processContext(): CliContext {
  const stopHandlers = new Set<(reason: string) => void>();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1 || stopHandlers.size === 0) process.exit(INTERRUPTED_EXIT_CODE);
    for (const handler of stopHandlers) handler(signal);
  };
  let listening = false;
  // A closed stdout (`metaq sub | head -1`): stop like Ctrl-C, or exit when nothing is running.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    if (stopHandlers.size === 0) process.exit(0);
    for (const handler of stopHandlers) handler('EPIPE');
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    onInterrupt(onStop) {
      stopHandlers.add(onStop);
      if (!listening) {
        listening = true;
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      }
      return () => {
        stopHandlers.delete(onStop);
      };
    },
  };
}
