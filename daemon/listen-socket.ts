// Taking a listening unix socket the way CGManager did: refuse when another instance
// answers there, replace a stale socket file, and leave access control to the
// per-request credential checks (the socket is world-connectable).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closeFd, connectUnix, listenUnix } from '../addon';

/** Whether something accepts connections on `socketPath` right now. */
export function isAnswering(socketPath: string): boolean {
  try {
    closeFd(connectUnix(socketPath));
    return true;
  } catch {
    return false;
  }
}

/** Binds and listens on `socketPath`; throws when another instance already answers there. */
export function bindSocket(socketPath: string): number {
  if (isAnswering(socketPath)) throw new Error(`another instance is already answering on ${socketPath}`);
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  try {
    fs.unlinkSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = listenUnix(socketPath, 4096);
  // Access is decided per request from kernel credentials, never by socket permissions.
  fs.chmodSync(socketPath, 0o666);
  return fd;
}

export function removeSocket(socketPath: string): void {
  try {
    fs.unlinkSync(socketPath);
  } catch {
    // already gone
  }
}
