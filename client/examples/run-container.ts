#!/usr/bin/env node
// Example for the README: what a container runtime does with the client library. It
// makes a cgroup in every hierarchy, sets memory and CPU limits (v1 or v2 names), starts
// the payload held at a gate, moves it in before it runs a single instruction of its own,
// waits for it, and removes the cgroup. Every call has a deadline; Ctrl-C aborts them.
// Usage: node dist/client/examples/run-container.js <cgroup> <memory-bytes> <cpu-shares> -- <command> [args...]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, isCgmanagerError, type CgmanagerClient } from '..';

/** cgroup v1 cpu.shares (2..262144) as cgroup v2 cpu.weight (1..10000), as runc converts it. */
const sharesToWeight = (shares: number): number => 1 + Math.floor(((shares - 2) * 9999) / 262142);

async function limit(cgm: CgmanagerClient, controller: string, cgroup: string, v1: [string, string], v2: [string, string], signal: AbortSignal): Promise<string> {
  const keys = new Set((await cgm.listKeys(controller, cgroup, { signal })).map((k) => k.name));
  const [key, value] = keys.has(v2[0]) ? v2 : v1;
  await cgm.setValue(controller, cgroup, key, value, { signal, timeoutMs: 5000 });
  return `${key}=${await cgm.getValue(controller, cgroup, key, { signal })}`;
}

async function main(): Promise<void> {
  const [cgroup, memory, shares, dashes, command, ...args] = process.argv.slice(2);
  if (cgroup === undefined || memory === undefined || shares === undefined || dashes !== '--' || command === undefined) {
    console.error('usage: run-container <cgroup> <memory-bytes> <cpu-shares> -- <command> [args...]');
    process.exitCode = 1;
    return;
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const { signal } = abort;
  try {
    // `await using`: the connection is closed however this block ends.
    await using cgm = await connect({ timeoutMs: 5000, signal });
    await cgm.create('all', cgroup, { signal });
    try {
      const limits = [
        await limit(cgm, 'memory', cgroup, ['memory.limit_in_bytes', memory], ['memory.max', memory], signal),
        await limit(cgm, 'cpu', cgroup, ['cpu.shares', shares], ['cpu.weight', String(sharesToWeight(Number(shares)))], signal),
      ];
      // The payload waits at a gate (a read on its stdin) until it sits in the cgroup.
      const child = spawn('sh', ['-c', 'read -r _ && exec "$@"', 'gate', command, ...args], { stdio: ['pipe', 'inherit', 'inherit'] });
      await once(child, 'spawn');
      await cgm.movePid('all', cgroup, child.pid as number, { signal });
      console.error(`run-container: ${cgroup}: pid ${child.pid}, ${limits.join(', ')}`);
      child.stdin.end('go\n');
      const [code, killedBy] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      process.exitCode = code ?? 128;
      if (killedBy) console.error(`run-container: ${cgroup}: killed by ${killedBy}`);
    } finally {
      // Tasks are gone once the payload exited (its own children too, unless it left some
      // behind: then Remove says Busy and the cgroup stays for the runtime to clean up).
      await cgm.remove('all', cgroup, true, { timeoutMs: 5000 });
    }
  } catch (err) {
    if (!isCgmanagerError(err)) throw err;
    console.error(`run-container: ${err.message} (${err.code})`);
    process.exitCode = 1;
  }
}

void main();
