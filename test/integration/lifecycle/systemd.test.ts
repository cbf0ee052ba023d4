// Host integration: the unit files pass `systemd-analyze verify`; the daemon tells systemd
// READY=1 only once its socket takes calls and STOPPING=1 on SIGTERM (NOTIFY_SOCKET, received
// here by a small python3 datagram server); it serves a listening socket passed the way
// systemd passes it (LISTEN_FDS/LISTEN_PID, fd 3); and like CGManager it makes a read-only
// /sys/fs/cgroup tmpfs writable for its socket directory (in the test's private namespace).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, REPO_ROOT, runCommand, skipReason, startTestDaemon, titled, toolArgv, waitFor, type TestDaemon } from '../../helpers';
import { startCollecting, stopChild } from '../../helpers/processes';
import { inHolder, startOwnDaemon } from './lifecycle';

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** systemd resolves a bare ExecStart command in this fixed list (systemd.service(5), "Command lines"). */
const SYSTEMD_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function verifySkipReason(): string | undefined {
  if (!hasTool('systemd-analyze')) return 'systemd-analyze is not installed (Debian package systemd)';
  if (!SYSTEMD_SEARCH_PATH.some((d) => fs.existsSync(path.join(d, 'node')))) return `node is not in systemd's search path (${SYSTEMD_SEARCH_PATH.join(':')}), where the units look for it`;
  return undefined;
}

const UNITS = ['cgmanager.service', 'cgmanager.socket', 'cgproxy.service'].map((u) => path.join(REPO_ROOT, 'systemd', u));
const verifyReason = verifySkipReason();

describe.skipIf(verifyReason !== undefined)(titled('the systemd units', verifyReason), () => {
  it('pass systemd-analyze verify', async () => {
    // --man=no: Documentation= names our man pages, which only an install puts in place.
    const r = await runCommand(['systemd-analyze', 'verify', '--man=no', ...UNITS], { env: { PATH: process.env.PATH, SYSTEMD_LOG_LEVEL: 'notice' } });
    // Complaints about the host's own units (some systemd versions print them) are not ours.
    const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /cgmanager|cgproxy/.test(l));
    expect(ours).toEqual([]);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('say what they must', () => {
    const text = (unit: string): string => fs.readFileSync(path.join(REPO_ROOT, 'systemd', unit), 'utf8');
    const service = text('cgmanager.service');
    expect(service).toMatch(/^Type=notify$/m);
    expect(service).toMatch(/^Delegate=yes$/m);
    expect(service).toMatch(/^ConditionVirtualization=!container$/m);
    expect(service).toMatch(/^RuntimeDirectoryPreserve=yes$/m);
    expect(service).not.toMatch(/^ProtectControlGroups=yes$/m);
    expect(text('cgproxy.service')).toMatch(/^ConditionVirtualization=container$/m);
    expect(text('cgmanager.socket')).toMatch(/^ListenStream=\/sys\/fs\/cgroup\/cgmanager\/sock$/m);
    for (const [unit, page] of [['cgmanager.service', 'cgmanager(8)'], ['cgmanager.socket', 'cgmanager(8)'], ['cgproxy.service', 'cgproxy(8)']]) {
      expect(text(unit as string)).toMatch(new RegExp(`^Documentation=man:${(page as string).replace(/[()]/g, '\\$&')} .*file:/usr/local/lib/node_modules/cgmanager/README\\.md`, 'm'));
    }
  });
});

// A datagram server standing in for systemd's notify socket. On READY=1 it calls the daemon at
// once (argv in $2, as JSON) and reports whether that worked; it ends after STOPPING=1.
const NOTIFY_RECEIVER = `
import json, socket, subprocess, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    text = s.recv(4096).decode()
    out = {"message": text}
    if "READY=1" in text.split("\\n"):
        r = subprocess.run(json.loads(sys.argv[2]), capture_output=True, text=True, timeout=10)
        out["call"] = {"code": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
    print(json.dumps(out), flush=True)
    if "STOPPING=1" in text.split("\\n"):
        break
`;

// systemd's side of socket activation: a listening socket at fd 3, LISTEN_FDS=1 and
// LISTEN_PID = our pid, which exec keeps (nsenter before us does not fork either).
const ACTIVATOR = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(64)
os.chmod(sys.argv[1], 0o666)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
`;

const reason = skipReason({ named: 1, tools: ['python3'] });

describe.skipIf(reason !== undefined)(titled('readiness, shutdown and socket activation', reason), () => {
  let env: TestDaemon;

  beforeAll(async () => {
    env = await startTestDaemon({ named: 1 });
  });

  afterAll(async () => {
    await env?.stop();
  });

  it('sends READY=1 once the socket takes calls, and STOPPING=1 on SIGTERM', async () => {
    const notify = path.join(env.dir, 'notify');
    const socket = path.join(env.dir, 'notified.sock');
    const ping = toolArgv('dbus-send', socket, 'Ping', 'i', [0]);
    const receiver = startCollecting(['python3', '-c', NOTIFY_RECEIVER, notify, JSON.stringify(ping)], { timeoutMs: 30_000 });
    let seen = '';
    receiver.child.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      expect(await waitFor(() => fs.existsSync(notify), 5000, 5)).toBe(true);
      const daemon = await startOwnDaemon(env, ['--socket', socket, '--state-dir', path.join(env.dir, 'state-notify')], {
        env: { NOTIFY_SOCKET: notify },
        logFile: path.join(env.dir, 'notify.log'),
      });
      // The receiver calls the daemon when READY=1 arrives; stop only once that call is done.
      await waitFor(() => seen.includes('"call"'), 20_000, 10);
      const stopped = await daemon.stop('SIGTERM');
      expect(stopped.code).toBe(0);
      const r = await receiver.result;
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { message?: string; call?: { code: number; stderr: string } });
      const messages = lines.filter((l) => l.message !== undefined);
      expect(messages.map((l) => l.message)).toEqual(['READY=1\nSTATUS=serving', 'STOPPING=1']);
      expect(messages[0]?.call?.code, messages[0]?.call?.stderr).toBe(0);
    } finally {
      await stopChild(receiver.child, 'SIGKILL', 1000);
    }
  });

  it('serves a listening socket passed with LISTEN_FDS/LISTEN_PID, and leaves it to its owner', async () => {
    const socket = path.join(env.dir, 'activated.sock');
    const daemon = await startOwnDaemon(env, ['--socket', socket, '--state-dir', path.join(env.dir, 'state-activated')], {
      launcher: ['python3', '-c', ACTIVATOR, socket],
      logFile: path.join(env.dir, 'activated.log'),
    });
    try {
      expect(daemon.logText()).toContain('fd 3 (socket activation)');
      const client = await RawClient.connect(socket);
      try {
        const r = await client.call('ListControllers', '', []);
        expect(r.ok).toBe(true);
        expect(r.values[0]).toEqual(env.named);
      } finally {
        client.close();
      }
    } finally {
      expect((await daemon.stop('SIGTERM')).code).toBe(0);
    }
    // The socket belongs to whoever passed it (systemd removes it with RemoveOnStop=).
    expect(fs.statSync(socket).isSocket()).toBe(true);
  });

  it('makes a read-only /sys/fs/cgroup tmpfs writable for its socket directory, as CGManager did', async () => {
    const ro = await inHolder(env, 'mount -o remount,ro /sys/fs/cgroup && ! mkdir /sys/fs/cgroup/probe 2>/dev/null');
    expect(ro.code, ro.stderr).toBe(0);
    const inside = '/sys/fs/cgroup/cgmanager/sock';
    const daemon = await startOwnDaemon(env, ['--socket', inside, '--state-dir', path.join(env.dir, 'state-ro')], {
      logFile: path.join(env.dir, 'ro.log'),
    });
    try {
      expect(daemon.logText()).toContain('remounted read-write for the socket directory');
      const client = await RawClient.connect(`/proc/${env.holderPid}/root${inside}`);
      try {
        expect((await client.call('Ping', 'i', [0])).ok).toBe(true);
      } finally {
        client.close();
      }
    } finally {
      expect((await daemon.stop('SIGTERM')).code).toBe(0);
      await inHolder(env, 'rmdir /sys/fs/cgroup/cgmanager');
    }
  });
});
