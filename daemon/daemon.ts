// Wires the daemon together: layout discovery, the listening socket (own or passed by
// systemd), the D-Bus server with the request handlers, readiness and shutdown.
import * as fs from 'node:fs';
import { closeFd, notifyDatagram } from '../addon';
import { bindSocket } from './listen-socket';
import type { Logger } from './logger';
import type { DaemonOptions } from './options';
import { DBusServer } from './dbus/server';
import { createHandlers } from './requests';
import { createRuntime } from './runtime';
import { mountNamedHierarchies } from './cgroupfs/mount-named';

export interface RunningDaemon {
  socketPath: string;
  stop(): Promise<void>;
}

const SD_LISTEN_FDS_START = 3;

/** The listening fd systemd passed (socket activation), if it was meant for us. */
function activationFd(env: NodeJS.ProcessEnv): number | undefined {
  if (env.LISTEN_PID !== String(process.pid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isInteger(count) || count < 1) return undefined;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  return SD_LISTEN_FDS_START;
}

/** Tells systemd (Type=notify) about our state; a no-op without NOTIFY_SOCKET. */
export function sdNotify(text: string, log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return;
  try {
    notifyDatagram(socket, text);
  } catch (err) {
    log.warn({ err, socket }, 'sd_notify failed');
  }
}

export async function startDaemon(options: DaemonOptions, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RunningDaemon> {
  if (options.mount.length > 0) mountNamedHierarchies(options.mount, options.mountDir, log);
  const runtime = createRuntime(options, log);
  const passedFd = activationFd(env);
  const listenFd = passedFd ?? bindSocket(options.socket);
  const ownsSocket = passedFd === undefined;
  const server = new DBusServer({
    listenFd,
    handlers: createHandlers(runtime),
    log,
    maxMessage: options.maxMessageSize,
    maxConnectionsPerUid: options.maxConnectionsPerUid,
  });
  log.info(
    {
      socket: ownsSocket ? options.socket : `fd ${listenFd} (socket activation)`,
      hierarchies: runtime.layout.listControllers(),
      version: process.version,
    },
    'serving',
  );
  sdNotify('READY=1\nSTATUS=serving', log, env);
  return {
    socketPath: options.socket,
    async stop(): Promise<void> {
      sdNotify('STOPPING=1', log, env);
      // Remove the socket first so no new client reaches a daemon that is leaving.
      if (ownsSocket) {
        try {
          fs.unlinkSync(options.socket);
        } catch {
          // already gone
        }
      }
      await server.stop();
      await runtime.close();
      if (ownsSocket) closeFd(listenFd);
    },
  };
}
