// Shared by the denial-of-service tests and benchmark: starting the hostile client
// (dos-attacker-main) as an unprivileged uid, and reading a daemon's fd count and RSS.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AttackReport, AttackSpec } from './dos-attacker-main';
import { REPO_ROOT } from './requirements';
import type { TestDaemon } from './test-daemon';

export const ATTACKER_MAIN = path.join(REPO_ROOT, 'dist', 'test', 'helpers', 'dos-attacker-main.js');
/** The uid the attacks run as: nobody, owning nothing. */
export const ATTACKER_UID = 65534;

// The fd flood with as many fds per message as the kernel takes (SCM_MAX_FD, 253), which our
// own addon cannot send: every other connection before the handshake, the rest after it;
// 20 messages per connection, then it waits for the daemon to close it. argv: socket,
// total fds, duration ms.
export const FD_FLOOD_PY = `
import os, socket, sys, time
path, total, end = sys.argv[1], int(sys.argv[2]), time.time() + int(sys.argv[3]) / 1000
fd = os.open('/dev/null', os.O_RDONLY)
sent = conns = dropped = 0
hello = ('\\0AUTH EXTERNAL %s\\r\\nNEGOTIATE_UNIX_FD\\r\\nBEGIN\\r\\n' % os.getuid().__str__().encode().hex()).encode()
print('{"event":"ready"}', flush=True)
while sent < total and time.time() < end:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    conns += 1
    before = conns % 2 == 0
    try:
        if not before:
            s.sendall(hello)
        for i in range(20):
            if sent >= total:
                break
            socket.send_fds(s, [b'\\0' if before else b'l'], [fd] * 253)
            sent += 253
        s.settimeout(max(0.1, end - time.time()))
        while s.recv(4096):
            pass
        dropped += 1
    except socket.timeout:
        pass
    except OSError:
        dropped += 1
    s.close()
print('{"event":"done","fdsSent":%d,"opened":%d,"closedByDaemon":%d}' % (sent, conns, dropped), flush=True)
`;

export interface RunningAttack {
  ready: Promise<void>;
  done: Promise<AttackReport>;
  child: ChildProcess;
}

/** Starts an attacker process (`argv`) and follows its JSON event lines. */
export function followAttacker(child: ChildProcess, what: string): RunningAttack {
  let text = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const done = new Promise<AttackReport>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      for (;;) {
        const eol = text.indexOf('\n');
        if (eol < 0) break;
        const line = text.slice(0, eol);
        text = text.slice(eol + 1);
        let event: { event?: string; message?: string };
        try {
          event = JSON.parse(line) as { event?: string };
        } catch {
          continue;
        }
        if (event.event === 'ready') onReady();
        if (event.event === 'done') resolve(event as AttackReport);
        if (event.event === 'error') reject(new Error(`${what}: ${event.message}`));
      }
    });
    child.once('exit', (code) => {
      onReady();
      reject(new Error(`${what} exited (${code}) without a report`));
    });
  });
  done.catch(() => undefined);
  return { ready, done, child };
}

/** Runs an attack from dos-attacker-main as ATTACKER_UID against `env`'s daemon. */
export async function startAttack(env: TestDaemon, spec: Omit<AttackSpec, 'socket'>): Promise<RunningAttack> {
  const handle = await env.spawn([process.execPath, ATTACKER_MAIN, JSON.stringify({ socket: env.socket, ...spec })], { uid: ATTACKER_UID, at: false });
  return followAttacker(handle.child, spec.attack);
}

/** Runs FD_FLOOD_PY as ATTACKER_UID. */
export async function startPythonFdFlood(env: TestDaemon, totalFds: number, durationMs: number): Promise<RunningAttack> {
  const handle = await env.spawn(['python3', '-c', FD_FLOOD_PY, env.socket, String(totalFds), String(durationMs)], { uid: ATTACKER_UID, at: false });
  return followAttacker(handle.child, 'python fd flood');
}

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** user+system CPU time in ms. */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

/** Samples `f` every `everyMs` until stopped; returns the largest value seen. */
export function sampleMax(f: () => number, everyMs = 20): { stop(): number } {
  let max = f();
  const timer = setInterval(() => {
    try {
      max = Math.max(max, f());
    } catch {
      // the process is gone: keep what was seen
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return max;
    },
  };
}
