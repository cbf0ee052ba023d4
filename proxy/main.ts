#!/usr/bin/env node
// cgproxy: runs inside a container whose /sys/fs/cgroup/cgmanager is the host daemon's
// socket directory; serves the same API on the container's socket and forwards each
// call as its Scm variant (reference §9). Shares the daemon's transport.
import { CommanderError } from 'commander';
import { AddonLoadError, assertAddonLoadable, closeFd } from '../addon';
import { createLogger } from '../daemon/logger';
import { DBusServer } from '../daemon/dbus/server';
import { bindSocket, removeSocket } from '../daemon/listen-socket';
import { sdNotify } from '../daemon/daemon';
import { parseProxyOptions, type ProxyOptions } from './options';
import { checkMaster, takeOver } from './takeover';
import { Upstream } from './upstream';
import { createForwardingHandlers } from './forward';
import { createWatchRelayHandlers } from './watch-relay';

function fail(message: string): never {
  process.stderr.write(`cgproxy: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let options: ProxyOptions;
  try {
    options = parseProxyOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    throw err;
  }
  try {
    assertAddonLoadable();
  } catch (err) {
    if (err instanceof AddonLoadError) fail(err.message);
    throw err;
  }
  if (options.checkMaster) process.exit(checkMaster(options.socket, options.upstream) ? 0 : 1);
  if (process.geteuid?.() !== 0) fail('Cgmanager proxy must be run as root');

  const log = createLogger({ level: options.logLevel, file: options.logFile, name: 'cgproxy' });
  let takeover: ReturnType<typeof takeOver>;
  try {
    takeover = takeOver(options.socket, options.upstream);
  } catch (err) {
    fail(`cannot move ${options.socket}'s directory aside: ${(err as Error).message}`);
  }
  if (takeover.outcome === 'already-running') fail(`a proxy is already running (both ${options.socket} and ${options.upstream} answer)`);
  if (takeover.outcome === 'nothing-answers') fail(`no cgmanager answers on ${options.socket} or ${options.upstream}`);
  if (takeover.outcome === 'moved') log.info({ from: options.socket, to: options.upstream, how: takeover.how }, 'moved the host socket aside');

  const upstream = new Upstream(options.upstream, options.scmTimeoutMs * 5, log);
  try {
    await upstream.start();
  } catch (err) {
    fail((err as Error).message);
  }
  let listenFd: number;
  try {
    listenFd = bindSocket(options.socket);
  } catch (err) {
    fail((err as Error).message);
  }
  const server = new DBusServer({
    listenFd,
    handlers: new Map([
      ...createForwardingHandlers({ upstream, timeoutMs: options.scmTimeoutMs, maxPendingPerConnection: options.maxPendingScm, maxPendingPerUid: options.maxPendingScmPerUid }),
      // Watch: an upstream connection per watching client, whose signals are relayed to it.
      ...createWatchRelayHandlers({ upstreamSocket: options.upstream, log, timeoutMs: options.scmTimeoutMs, maxPendingPerConnection: options.maxPendingScm, maxPendingPerUid: options.maxPendingScmPerUid }),
    ]),
    log,
    maxMessage: options.maxMessageSize,
    maxConnectionsPerUid: options.maxConnectionsPerUid,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    maxQueuedOutput: options.maxQueuedOutput,
  });
  log.info({ socket: options.socket, upstream: options.upstream }, 'serving');
  sdNotify('READY=1\nSTATUS=forwarding', log);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    sdNotify('STOPPING=1', log);
    removeSocket(options.socket);
    server
      .stop()
      .then(() => upstream.stop())
      .finally(() => {
        closeFd(listenFd);
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception'));
}

main().catch((err: unknown) => {
  // Never a stack trace on the terminal: one line, exit status 1.
  const message = err instanceof AddonLoadError ? err.message : `internal error: ${(err as Error)?.message ?? String(err)}`;
  process.stderr.write(`cgproxy: ${message}\n`);
  process.exit(1);
});
