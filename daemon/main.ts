#!/usr/bin/env -S node --max-semi-space-size=2
// cgmanager: start-up and shutdown of the daemon. Parses options, discovers the
// hierarchies, takes the socket (or the one systemd passed), serves until SIGTERM.
import { CommanderError } from 'commander';
import { AddonLoadError, assertAddonLoadable } from '../addon';
import { parseOptions } from './options';
import { createLogger } from './logger';
import { startDaemon } from './daemon';

async function main(): Promise<void> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    throw err;
  }
  // Before the logger: a missing addon is an installation problem, said in one line.
  assertAddonLoadable();
  const log = createLogger({ level: options.logLevel, file: options.logFile });
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon(options, log);
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.stderr.write(`cgmanager: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    daemon.stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => undefined);
  process.on('uncaughtException', (err) => {
    // A bug somewhere: log it and keep serving rather than dropping every client.
    log.error({ err }, 'uncaught exception');
  });
}

main().catch((err: unknown) => {
  // Never a stack trace on the terminal: one line, exit status 1 (systemd logs it).
  const message = err instanceof AddonLoadError ? err.message : `internal error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`cgmanager: ${message}\n`);
  process.exit(1);
});
