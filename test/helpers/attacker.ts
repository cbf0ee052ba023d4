// Drives attacker-main.js: a long-lived attacker process (a real uid via setpriv, placed in a
// delegated cgroup, inside the daemon's private mount namespace; or root inside a container,
// talking to cgproxy) to which the test sends one request at a time, so that it can take a
// snapshot as root between two attacks.
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Ucred } from '../../addon';
import { placementFile, type HierarchyLabel } from './cgroup-fs';
import type { Container } from './container';
import type { AttackReply, AttackRequest } from './attacker-main';
import { CLIENT_ENV, startCollecting, stopChild, type RunResult } from './processes';
import { REPO_ROOT } from './requirements';
import type { TestDaemon } from './test-daemon';
import { setprivArgv } from './userns';

export type { AttackReply, AttackRequest } from './attacker-main';

export const ATTACKER_MAIN = path.join(REPO_ROOT, 'dist', 'test', 'helpers', 'attacker-main.js');

// Places the shell in each cgroup.procs given, then execs the rest.
const PLACE = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"';

export class Attacker {
  private buffered = '';
  private readonly waiting = new Map<number, (r: AttackReply) => void>();
  private nextId = 1;
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly result: Promise<RunResult>,
    /** the pid the daemon sees for the attacker (the node process itself) */
    readonly pid: number,
  ) {
    // Buffers, not setEncoding: startCollecting concatenates the same chunks.
    child.stdout?.on('data', (chunk: Buffer) => this.onData(chunk.toString('utf8')));
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8');
    });
    result.catch(() => undefined);
  }

  /**
   * uid `uid` (gid the same) in cgroup `at` (relative to the test's bases) of every hierarchy,
   * inside the daemon's mount namespace, talking to the daemon's socket.
   */
  static async onHost(env: TestDaemon, uid: number, at: string): Promise<Attacker> {
    const files = [...env.bases.values()].map((b) => placementFile(env.fsPath(b.label, at), b.version));
    const argv = [
      'sh', '-c', PLACE, 'sh', String(files.length), ...files,
      'nsenter', `--mount=/proc/${env.holderPid}/ns/mnt`, '--',
      ...setprivArgv({ uid, gid: uid }), process.execPath, ATTACKER_MAIN, env.socket,
    ];
    const { child, result } = startCollecting(argv, { env: CLIENT_ENV, keepStdinOpen: true });
    return Attacker.ready(child, result, child.pid ?? -1);
  }

  /** root of `c`, in its own cgroup, talking to the container's socket (cgproxy). */
  static async inContainer(c: Container, socket: string): Promise<Attacker> {
    const p = await c.spawn([process.execPath, ATTACKER_MAIN, socket], { keepStdinOpen: true });
    return Attacker.ready(p.child, p.result, p.hostPid);
  }

  private static async ready(child: ChildProcess, result: Promise<RunResult>, pid: number): Promise<Attacker> {
    const a = new Attacker(child, result, pid);
    const hello = await a.wait(0, 15_000);
    if (!hello.ok) throw new Error(`attacker did not start: ${a.stderr}`);
    return a;
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    for (let eol = this.buffered.indexOf('\n'); eol >= 0; eol = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, eol);
      this.buffered = this.buffered.slice(eol + 1);
      let reply: AttackReply;
      try {
        reply = JSON.parse(line) as AttackReply;
      } catch {
        continue; // not ours
      }
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      w?.(reply);
    }
  }

  private wait(id: number, timeoutMs: number): Promise<AttackReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`attacker gave no answer to request ${id} within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.result.then(() => {
        clearTimeout(timer);
        reject(new Error(`attacker exited; stderr: ${this.stderr}`));
      }, () => undefined);
    });
  }

  request(req: AttackRequest, timeoutMs = 20_000): Promise<AttackReply> {
    const id = this.nextId++;
    const answer = this.wait(id, timeoutMs);
    this.child.stdin?.write(`${JSON.stringify({ id, ...req })}\n`);
    return answer;
  }

  /**
   * A plain call, or with `scm` the …Scm variant as an Scm exchange with our own credentials
   * (a pid argument becomes the victim credential: the kernel refuses one that is not ours).
   */
  call(method: string, args: unknown[], scm = false): Promise<AttackReply> {
    return this.request({ op: scm ? 'scm' : 'call', method, args });
  }

  forge(method: string, args: unknown[], creds: Ucred[], waitMs: number): Promise<AttackReply> {
    return this.request({ op: 'forge', method, args, creds, waitMs }, waitMs * (creds.length + 2) + 10_000);
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    await stopChild(this.child, 'SIGKILL', 3000);
  }
}

/**
 * The path of a test cgroup (or file) as the attacker sees it: inside the daemon's mount
 * namespace, where the test's bases are mounted.
 */
export function attackerPath(env: TestDaemon, label: HierarchyLabel, rel: string, file?: string): string {
  return env.fsPath(label, rel, file).replace(`/proc/${env.holderPid}/root`, '');
}
