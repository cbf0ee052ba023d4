// Wires the daemon together: the listening socket (own or passed by systemd), the
// state that survives restarts (create journal, remove-on-empty marks, release agents),
// the D-Bus server with the request handlers, the mount watch, readiness and shutdown.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { closeFd, notifyDatagram } from '../addon';
import { bindSocket } from './listen-socket';
import type { Logger } from './logger';
import type { DaemonOptions } from './options';
import { DBusServer } from './dbus/server';
import { abandonWaitingScm } from './scm/conversation';
import { createHandlers } from './requests';
import { createRuntime } from './runtime';
import type { DeviceAcl, DeviceAclRestore } from './cgroupfs/device-acl/device-acl';
import { mountNamedHierarchies } from './cgroupfs/mount-named';
import { MountWatch } from './cgroupfs/mount-watch';
import { FileJournal, rollBackInterrupted } from './create-journal';
import { MEMORY_ONLY, StateFile, type MarkStore } from './state-file';
import { ReleaseAgents } from './release-agent';
import { BorrowFile, BORROWS_MEMORY_ONLY, type BorrowStore } from './cgroupfs/release-flags';
import { DEVICE_ACL_MEMORY_ONLY, DeviceAclFile, type DeviceAclStore } from './cgroupfs/device-acl/state';
import { CGROUP_BASE, isCgroup2Mount } from './socket-path';

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

/**
 * systemd mounts the /sys/fs/cgroup tmpfs read-only on v1 and hybrid hosts; like CGManager
 * (reference §7.2) remount it read-write when the socket directory there must be made.
 */
function prepareSocketDirectory(socket: string, log: Logger): void {
  const dir = path.dirname(socket);
  if (path.dirname(dir) !== CGROUP_BASE || fs.existsSync(dir) || isCgroup2Mount(CGROUP_BASE)) return;
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EROFS') return; // bindSocket reports it
  }
  try {
    execFileSync('mount', ['-o', 'remount,rw', CGROUP_BASE], { stdio: ['ignore', 'ignore', 'pipe'] });
    log.info({ mountPoint: CGROUP_BASE }, 'remounted read-write for the socket directory');
  } catch (err) {
    log.warn({ mountPoint: CGROUP_BASE, err: String((err as { stderr?: Buffer }).stderr ?? err).trim() }, 'cannot remount read-write for the socket directory');
  }
}

interface DurableState {
  watchFlags: BorrowStore;
  marks: MarkStore;
  journal: FileJournal | undefined;
  deviceAcl: DeviceAclStore;
}

/** The state directory's files; without a usable directory promises last only as long as the process. */
function openState(stateDir: string, log: Logger): DurableState {
  try {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 });
    return { marks: new StateFile(stateDir), journal: FileJournal.inDir(stateDir), deviceAcl: new DeviceAclFile(stateDir), watchFlags: new BorrowFile(stateDir) };
  } catch (err) {
    log.error({ err, stateDir }, 'cannot use the state directory; remove-on-empty marks, device rule lists and interrupted creates will not survive a restart');
    return { marks: MEMORY_ONLY, journal: undefined, deviceAcl: DEVICE_ACL_MEMORY_ONLY, watchFlags: BORROWS_MEMORY_ONLY };
  }
}

/**
 * Re-attaches the v2 device programs a restart lost. A cgroup whose program cannot be attached
 * is logged and keeps its saved list (its next change attaches one); it never stops the start.
 */
function restoreDeviceAcl(acl: DeviceAcl, log: Logger): Omit<DeviceAclRestore, 'failed'> & { failed: number } {
  let report: DeviceAclRestore;
  try {
    report = acl.restore();
  } catch (err) {
    log.error({ err }, 'cannot read the saved device rule lists; v2 devices.list starts empty');
    return { kept: 0, reattached: 0, dropped: 0, failed: 0 };
  }
  for (const f of report.failed) log.error({ cgroup: f.cgroup, error: f.error }, 'cannot re-attach a device program');
  return { ...report, failed: report.failed.length };
}

export async function startDaemon(options: DaemonOptions, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<RunningDaemon> {
  // The socket first: it proves no other instance runs, whose mounts and state we must not touch.
  const passedFd = activationFd(env);
  if (passedFd === undefined) prepareSocketDirectory(options.socket, log);
  const listenFd = passedFd ?? bindSocket(options.socket);
  const ownsSocket = passedFd === undefined;
  // Everything below runs before the event loop accepts the first connection.
  if (options.mount.length > 0) mountNamedHierarchies(options.mount, options.mountDir, log);
  const state = openState(options.stateDir, log);
  const runtime = createRuntime(options, log, { marks: state.marks, deviceAcl: state.deviceAcl, ...(state.journal ? { journal: state.journal } : {}) });
  if (state.journal) rollBackInterrupted(state.journal, runtime.cgfs, log);
  // Agents and their spool watch first, then what was spooled while we were down: a release
  // spooled from here on is seen by the watch.
  // notify_on_release flags a watch of a dead run borrowed go back to 0 first; the releases
  // they caused while we were down are reported to nobody and remove nothing.
  runtime.events.flags.useStore(state.watchFlags);
  const watchFlagsGivenBack = runtime.events.flags.restore();
  const agents = new ReleaseAgents(options, log, () => runtime.cgfs, runtime.events);
  agents.setup();
  runtime.events.sources.v1EmptiedAvailable = (h) => agents.serves(h);
  const released = agents.processPending();
  runtime.events.flags.finishRestore();
  const restored = runtime.autoRemove.restore();
  const devices = restoreDeviceAcl(runtime.deviceAcl, log);
  // Quota counts come from the tree's owners, before the first request (nothing listens yet).
  await runtime.quota.recountAll();
  runtime.quota.start();
  const server = new DBusServer({
    listenFd,
    handlers: createHandlers(runtime),
    log,
    maxMessage: options.maxMessageSize,
    maxConnectionsPerUid: options.maxConnectionsPerUid,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    maxQueuedOutput: options.maxQueuedOutput,
  });
  const mountWatch = new MountWatch(options.mountPollMs, () => {
    try {
      const change = runtime.refreshLayout();
      if (change === undefined) return;
      log.info({ ...change, hierarchies: runtime.layout.listControllers() }, 'hierarchies changed');
      agents.setup();
    } catch (err) {
      log.error({ err }, 'cannot follow a change of the mount table; keeping the previous layout');
    }
  });
  mountWatch.start();
  log.info(
    {
      socket: ownsSocket ? options.socket : `fd ${listenFd} (socket activation)`,
      hierarchies: runtime.layout.listControllers(),
      stateDir: options.stateDir,
      removeOnEmpty: restored,
      deviceAcl: devices,
      releasedWhileDown: released,
      watchFlagsGivenBack,
      limits: options.limits,
      limitsFile: options.limitsFile,
      owned: runtime.quota.summary(),
      version: process.version,
    },
    'serving',
  );
  sdNotify('READY=1\nSTATUS=serving', log, env);
  return {
    socketPath: options.socket,
    async stop(): Promise<void> {
      sdNotify('STOPPING=1', log, env);
      mountWatch.stop();
      // Remove the socket first so no new client reaches a daemon that is leaving.
      if (ownsSocket) {
        try {
          fs.unlinkSync(options.socket);
        } catch {
          // already gone
        }
      }
      // Scm peers that never sent their credentials would hold the stop for --scm-timeout.
      abandonWaitingScm('the daemon is stopping');
      await server.stop();
      agents.close();
      await runtime.close();
      if (ownsSocket) closeFd(listenFd);
    },
  };
}
