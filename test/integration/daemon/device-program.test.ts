// The device-program layer alone on a real kernel, without the daemon (cheap enough for the
// UML lane): compiled rule lists pass the verifier, are attached with ALLOW_MULTI, swapped in
// place with BPF_F_REPLACE (one program, a new id, no double attach), enforce the libvirt list
// on a task's opens, and an ancestor's program applies to a child that has none of its own.
// Cgroups live under the test's own cgroup of a cgroup2 mounted in a private mount namespace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgroupBpfSkipReason, joinCg, procCgroupPath, removeCgroupTree, runCommand, skipReason, titled } from '../../helpers';
import { Holder } from '../../helpers/namespace-holder';
import { newRunId, PREFIX } from '../../helpers/leftovers';
import { attachedProgramIds, installDeviceProgram } from '../../../daemon/cgroupfs/device-acl/attach';
import { MAX_DEVICE_EXCEPTIONS } from '../../../daemon/cgroupfs/device-acl/device-acl';
import { ALLOW_ALL } from '../../../daemon/cgroupfs/device-acl/rules';
import { rulesFrom } from '../../helpers/device-rules';

const reason = skipReason({ cgroup2: true, tools: ['mknod', 'unshare', 'nsenter'] }) ?? cgroupBpfSkipReason();


const LIBVIRT = rulesFrom(['deny a', 'allow c 1:3 rwm', 'allow c 1:5 rwm', 'allow c 1:7 rwm', 'allow c 5:1 rwm', 'allow c 1:8 rwm', 'allow c 1:9 rwm']);
const NODES: Record<string, string> = { null: 'c 1 3', zero: 'c 1 5', urandom: 'c 1 9', tty: 'c 5 0', mem: 'c 1 1', loop: 'b 7 0' };

describe.skipIf(reason !== undefined)(titled('device programs on a real kernel (attach, replace, hierarchy)', reason), () => {
  let holder: Holder;
  let base: string;
  let nodeDir: string;
  const dir = (rel: string): string => path.join(base, rel);

  /** Opens each node for reading from a task placed in `rel`: 'ok', 'EPERM' or 'other'. */
  async function probe(rel: string, names: readonly string[]): Promise<Record<string, string>> {
    const script = [
      'echo $$ > "$1/cgroup.procs" || exit 97; shift',
      'for p in "$@"; do err=$( (exec 3<"$p") 2>&1 ); if [ -z "$err" ]; then r=ok; else case $err in *"not permitted"*) r=EPERM;; *) r=other;; esac; fi; echo "${p##*/} $r"; done',
    ].join('\n');
    const r = await runCommand(['sh', '-c', script, 'sh', dir(rel), ...names.map((n) => path.join(nodeDir, n))]);
    expect(r.code, r.stderr).toBe(0);
    return Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
  }

  beforeAll(async () => {
    const runId = newRunId();
    holder = await Holder.start({ named: [], cgroup2: true, controllers: [], marker: `${PREFIX}-${runId}-devprog` });
    const own = procCgroupPath('self', 'unified') ?? '/';
    base = holder.hostPath(joinCg(holder.mountPointOf('unified'), joinCg(own, `${PREFIX}-${runId}`)));
    fs.mkdirSync(base);
    for (const rel of ['lv', 'par', 'par/kid']) fs.mkdirSync(dir(rel));
    nodeDir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-nodes-`));
    for (const [name, spec] of Object.entries(NODES)) execFileSync('mknod', ['-m', '0666', path.join(nodeDir, name), ...spec.split(' ')]);
  });

  afterAll(async () => {
    if (base) await removeCgroupTree(base);
    await holder?.stop();
    if (nodeDir) fs.rmSync(nodeDir, { recursive: true, force: true });
  });

  it('the libvirt list: allowed devices open, others get EPERM', async () => {
    const id = installDeviceProgram(dir('lv'), 'lv', LIBVIRT, undefined);
    expect(attachedProgramIds(dir('lv'), 'lv')).toEqual([id]);
    expect(await probe('lv', Object.keys(NODES))).toEqual({ null: 'ok', zero: 'ok', urandom: 'ok', tty: 'EPERM', mem: 'EPERM', loop: 'EPERM' });
  });

  it('a new list replaces the old program in place: still one program, with a new id', async () => {
    const [old] = attachedProgramIds(dir('lv'), 'lv');
    const id = installDeviceProgram(dir('lv'), 'lv', rulesFrom(['deny a', 'allow c 1:3 r']), old);
    expect(id).not.toBe(old);
    expect(attachedProgramIds(dir('lv'), 'lv')).toEqual([id]);
    expect(await probe('lv', ['null', 'zero'])).toEqual({ null: 'ok', zero: 'EPERM' });
  });

  it("an ancestor's program applies to a child without one, and a child's wider program cannot undo it", async () => {
    installDeviceProgram(dir('par'), 'par', rulesFrom(['deny c 1:5 rwm']), undefined);
    expect(await probe('par/kid', ['null', 'zero'])).toEqual({ null: 'ok', zero: 'EPERM' });
    installDeviceProgram(dir('par/kid'), 'par/kid', ALLOW_ALL, undefined);
    expect(await probe('par/kid', ['null', 'zero'])).toEqual({ null: 'ok', zero: 'EPERM' });
  });

  it(`the longest list the daemon allows passes the verifier (${MAX_DEVICE_EXCEPTIONS} exceptions)`, () => {
    const exceptions = Array.from({ length: MAX_DEVICE_EXCEPTIONS }, (_, i) => ({ type: 2 as const, major: 200 + (i >> 8), minor: i & 0xff, access: 6 }));
    const id = installDeviceProgram(dir('lv'), 'lv', { behavior: 'deny', exceptions }, attachedProgramIds(dir('lv'), 'lv')[0]);
    expect(attachedProgramIds(dir('lv'), 'lv')).toEqual([id]);
  });
});
