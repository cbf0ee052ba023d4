// Keeps the UML lane honest (issue 9): inside a guest started by test/uml/lane.ts, checks that
// the kernel is UML and that /sys/fs/cgroup really has the layout the lane asked for, with
// free controllers (v2: cgroup2 with nsdelegate and cpu, io, memory, pids enabled at the root).
// Also that user processes' vector registers survive task switches, which on AMX hosts
// depends on test/uml/xstate-shim.c. On a plain host there is nothing to check, and the
// suite says so.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostCgroupMounts } from '../helpers/leftovers';
import { titled } from '../helpers/requirements';

const LAYOUT = process.env.CGMT_UML_LAYOUT;
const reason = LAYOUT === undefined ? 'runs only inside the UML lane (npm run test:uml sets CGMT_UML_LAYOUT)' : undefined;

const words = (file: string): string[] => fs.readFileSync(file, 'utf8').split(/\s+/).filter((w) => w !== '');
const V1_EXPECTED = ['blkio', 'cpu', 'cpuacct', 'devices', 'freezer', 'memory', 'pids'];

function mountOptions(mountPoint: string): { fsType: string; options: string[] } | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep > 0 && f[4] === mountPoint) return { fsType: f[sep + 1] ?? '', options: [...(f[5] ?? '').split(','), ...(f[sep + 3] ?? '').split(',')] };
  }
  return undefined;
}

describe.skipIf(reason !== undefined)(titled(`the UML guest has the ${LAYOUT ?? ''} layout`, reason), () => {
  it('runs on a User-Mode Linux kernel', () => {
    expect(fs.readFileSync('/proc/cpuinfo', 'utf8')).toMatch(/^model name\s*: UML$/m);
  });

  // SHA-256 (SIMD in OpenSSL), Buffer copies (glibc's AVX2/AVX-512 memcpy) and float sums, in
  // three processes at once so that the kernel switches between them mid-computation: a lost
  // or misplaced part of the FPU state shows as a different result. Expected: the host's.
  it('vector registers survive task switches: three processes at once compute what the host does', async () => {
    const script = [
      'const c = require("crypto"); let h = ""; for (let i = 0; i < 3000; i++) h = c.createHash("sha256").update(h + i).digest("hex");',
      'let b = Buffer.alloc(1 << 16); let x = 0; for (let i = 0; i < 3000; i++) { b.fill(i & 255, i % 100); b = Buffer.from(b); x = (x + b[(i * 7919) % b.length]) % 65521; }',
      'let f = 0; const a = new Float64Array(4096); for (let r = 0; r < 200; r++) for (let i = 0; i < a.length; i++) { a[i] = a[i] * 0.5 + i * 0.25 + r; f += a[i]; }',
      'process.stdout.write(`${h.slice(0, 16)} ${x} ${f}`);',
    ].join('\n');
    const run = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`exit ${String(code ?? signal)}`))));
      });
    expect(await Promise.all([run(), run(), run()])).toEqual(Array(3).fill('bf0d2ae4aa98a8ad 48199 995861504.0000912'));
  }, 120_000);

  it.runIf(LAYOUT === 'v2')('v2: cgroup2 with nsdelegate at /sys/fs/cgroup, cpu io memory pids enabled, no v1 hierarchy', () => {
    const m = mountOptions('/sys/fs/cgroup');
    expect(m?.fsType).toBe('cgroup2');
    expect(m?.options).toContain('nsdelegate');
    for (const c of ['cpu', 'io', 'memory', 'pids']) {
      expect(words('/sys/fs/cgroup/cgroup.controllers'), 'cgroup.controllers').toContain(c);
      expect(words('/sys/fs/cgroup/cgroup.subtree_control'), 'cgroup.subtree_control').toContain(c);
    }
    expect(hostCgroupMounts().map((h) => h.label)).toEqual(['unified']);
  });

  it.runIf(LAYOUT === 'v1' || LAYOUT === 'hybrid')(`${LAYOUT}: each v1 controller in its own hierarchy, plus name=systemd`, () => {
    const mounts = hostCgroupMounts();
    for (const c of V1_EXPECTED) expect(mounts.find((m) => m.controllers.includes(c))?.controllers, c).toEqual([c]);
    expect(mounts.map((m) => m.label)).toContain('name=systemd');
  });

  it.runIf(LAYOUT === 'v1-comount')('v1-comount: cpu and cpuacct share one hierarchy', () => {
    const mounts = hostCgroupMounts();
    expect(mounts.find((m) => m.controllers.includes('cpu'))?.controllers.sort()).toEqual(['cpu', 'cpuacct']);
    for (const c of ['blkio', 'memory', 'pids']) expect(mounts.find((m) => m.controllers.includes(c))?.controllers, c).toEqual([c]);
  });

  it.runIf(LAYOUT === 'v1-all')('v1-all: every v1 controller in one hierarchy', () => {
    const v1 = hostCgroupMounts().filter((m) => m.controllers.length > 0);
    expect(v1).toHaveLength(1);
    for (const c of V1_EXPECTED) expect(v1[0]?.controllers, c).toContain(c);
  });

  it.runIf(LAYOUT === 'v1' || LAYOUT === 'v1-comount' || LAYOUT === 'v1-all')(`${LAYOUT}: no cgroup2`, () => {
    expect(hostCgroupMounts().map((m) => m.label)).not.toContain('unified');
  });

  it.runIf(LAYOUT === 'hybrid')('hybrid: a controller-less cgroup2 with nsdelegate at /sys/fs/cgroup/unified', () => {
    const m = mountOptions('/sys/fs/cgroup/unified');
    expect(m?.fsType).toBe('cgroup2');
    expect(m?.options).toContain('nsdelegate');
    expect(words('/sys/fs/cgroup/unified/cgroup.subtree_control')).toEqual([]);
  });
});
