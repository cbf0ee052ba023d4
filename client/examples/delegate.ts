#!/usr/bin/env node
// Example for the README: create a cgroup in every hierarchy, delegate it to a user,
// cap its memory and move a process into it, with the cgmanager client library.
// Usage: node dist/client/examples/delegate.js <cgroup> <uid> <gid> <memory-bytes> <pid>
// (the socket is $CGMANAGER_SOCKET, else the daemon's default path)
import { connect, isCgmanagerError, type CgmanagerClient } from '..';

async function main(): Promise<void> {
  const [cgroup, uid, gid, bytes, pid] = process.argv.slice(2);
  if (cgroup === undefined || uid === undefined || gid === undefined || bytes === undefined || pid === undefined) {
    console.error('usage: delegate <cgroup> <uid> <gid> <memory-bytes> <pid>');
    process.exitCode = 1;
    return;
  }
  let cgm: CgmanagerClient | undefined;
  try {
    cgm = await connect();
    const existed = await cgm.create('all', cgroup); // relative to our own cgroup
    await cgm.chown('all', cgroup, Number(uid), Number(gid)); // the user may now create children and move its tasks
    // The limit stays root's: Chown hands over the directory and task files only.
    // cgroup v1 calls the file memory.limit_in_bytes, cgroup v2 memory.max.
    const keys = new Set((await cgm.listKeys('memory', cgroup)).map((k) => k.name));
    const key = keys.has('memory.max') ? 'memory.max' : 'memory.limit_in_bytes';
    await cgm.setValue('memory', cgroup, key, bytes);
    await cgm.movePid('all', cgroup, Number(pid));
    const [limit, tasks] = await Promise.all([cgm.getValue('memory', cgroup, key), cgm.getTasks('memory', cgroup)]);
    console.log(`${existed ? 'reused' : 'created'} ${cgroup}: owner ${uid}:${gid}, ${key}=${limit}, tasks ${tasks.join(' ')}`);
  } catch (err) {
    if (!isCgmanagerError(err)) throw err;
    // err.code is the catalog code ('AccessDenied', 'FileNotFound', 'NotRunning', ...)
    console.error(`delegate: ${err.message} (${err.code})`);
    process.exitCode = 1;
  } finally {
    await cgm?.close();
  }
}

void main();
