// Every plain method and the standard interfaces, called with gdbus, busctl and dbus-send on
// the real daemon, checked against the kernel's own view: /proc/PID/cgroup, owners and modes,
// values in cgroup files, directories that appear and disappear. v1, v2 and named hierarchies.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  availableV1Controllers, okValues, sampleLimit, skipReason, startTestDaemon, titled, waitFor, TOOLS, INTERFACE, type CallArg,
  type CallResult, type ClientOptions, type LongLived, type TestDaemon, type Tool,
} from '../../helpers';
import { API_VERSION, METHODS } from '../../../daemon/dbus/interface';

// Real v1 controllers where the host has them (cpuacct separately mounted, to show separate
// hierarchies); on a pure cgroup2 host the two private named hierarchies carry the v1 side.
const CONTROLLERS = availableV1Controllers(['cpu', 'memory', 'cpuacct']);
const LEAF = '.cgm_leaf';
const reason = skipReason({ cgroup2: true, named: 2 });

function fails(r: CallResult, name: string): void {
  expect(r.ok, `${r.tool} should fail with ${name}`).toBe(false);
  expect(r.errorName).toBe(name);
}

const read = (file: string): string => fs.readFileSync(file, 'utf8').trim();
const owner = (file: string): [number, number] => {
  const st = fs.statSync(file);
  return [st.uid, st.gid];
};
const perm = (file: string): number => fs.statSync(file).mode & 0o7777;

describe.skipIf(reason !== undefined)(titled('plain methods with real clients', reason), () => {
  let env: TestDaemon;
  const ok = (r: CallResult): unknown[] => okValues(r, env);
  let all: string[];
  let v1: string[];
  /** one v1 hierarchy for single-hierarchy calls: cpu here, a named one on a pure cgroup2 host */
  let V1: string;

  beforeAll(async () => {
    env = await startTestDaemon({
      named: 2,
      cgroup2: true,
      controllers: CONTROLLERS,
      // The second named hierarchy may use remove-on-empty (notify_on_release).
      daemonArgs: (layout) => ['--allow-autoremove-premounted', layout.named[1] as string],
    });
    all = [...env.labels];
    v1 = all.filter((l) => l !== 'unified');
    V1 = env.primaryV1;
  });

  afterAll(async () => {
    await env?.stop();
  });

  // A victim to move; env.stop() ends it at the latest.
  const sleeper = (options: ClientOptions = {}): Promise<LongLived> => env.spawn(['sleep', '600'], options);

  describe.each(TOOLS)('with %s', (tool: Tool) => {
    // Each tool works in its own subtree of the base cgroups.
    const T = `t-${tool}`;
    const call = (method: string, sig: string, args: readonly CallArg[], options?: ClientOptions): Promise<CallResult> =>
      env.call(tool, method, sig, args, options);

    it('answers Ping, Peer, Introspect and the api_version property', async () => {
      const [ping, peerPing, machine, xml, got, gotEmpty, getAll] = await Promise.all([
        call('Ping', 'i', [0]),
        call('org.freedesktop.DBus.Peer.Ping', '', []),
        call('org.freedesktop.DBus.Peer.GetMachineId', '', []),
        call('org.freedesktop.DBus.Introspectable.Introspect', '', []),
        call('org.freedesktop.DBus.Properties.Get', 'ss', [INTERFACE, 'api_version']),
        call('org.freedesktop.DBus.Properties.Get', 'ss', ['', 'api_version']),
        call('org.freedesktop.DBus.Properties.GetAll', 's', [INTERFACE]),
      ]);
      expect(ok(ping)).toEqual([]);
      expect(ok(peerPing)).toEqual([]);
      const [id] = ok(machine) as [string];
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      if (fs.existsSync('/etc/machine-id')) expect(id).toBe(read('/etc/machine-id'));
      const [text] = ok(xml) as [string];
      expect(text).toContain(`<interface name="${INTERFACE}">`);
      expect(text).toContain('<property name="api_version" type="i" access="read"/>');
      for (const m of METHODS) expect(text).toContain(`<method name="${m.name}">`);
      expect(ok(got)).toEqual([API_VERSION]);
      expect(ok(gotEmpty)).toEqual([API_VERSION]);
      expect(ok(getAll)).toEqual([[['api_version', API_VERSION]]]);
    });

    it('ListControllers names every hierarchy of the private layout', async () => {
      const [list] = ok(await call('ListControllers', '', [])) as [string[]];
      const v2Controllers = read(env.absFsPath('unified', '/', 'cgroup.controllers')).split(/\s+/).filter((c) => c !== '');
      const expected = [...v1, ['unified', ...v2Controllers.sort()].join(',')];
      expect([...list].sort()).toEqual(expected.sort());
    });

    it('Create makes the cgroup in every hierarchy, owned wholly by the creator', async () => {
      expect(ok(await call('Create', 'ss', ['all', T]))).toEqual([-1]);
      for (const h of all) {
        const dir = env.fsPath(h, T);
        expect(fs.statSync(dir).isDirectory()).toBe(true);
        for (const f of ['', ...fs.readdirSync(dir)]) expect(owner(`${dir}/${f}`), `${h} ${f}`).toEqual([0, 0]);
      }
      expect(ok(await call('Create', 'ss', ['all', T]))).toEqual([1]);
      // Several levels at once, and a leading '/' is still relative to the caller (form B).
      expect(ok(await call('Create', 'ss', [V1, `/${T}/a/b`]))).toEqual([-1]);
      expect(fs.existsSync(env.fsPath(V1, `${T}/a/b`))).toBe(true);
      expect(fs.existsSync(env.fsPath('unified', `${T}/a`))).toBe(false);
    });

    it('Chown hands over the directory and the task files (v1) or the delegate files (v2), nothing else', async () => {
      ok(await call('Create', 'ss', ['all', `${T}/d`]));
      ok(await call('Chown', 'ssii', ['all', `${T}/d`, 1000, 1000]));
      const delegate = new Set(read('/sys/kernel/cgroup/delegate').split('\n'));
      for (const h of all) {
        const dir = env.fsPath(h, `${T}/d`);
        expect(owner(dir), h).toEqual([1000, 1000]);
        const handed = h === 'unified' ? delegate : new Set(['tasks', 'cgroup.procs']);
        for (const f of fs.readdirSync(dir)) {
          expect(owner(`${dir}/${f}`), `${h} ${f}`).toEqual(handed.has(f) ? [1000, 1000] : [0, 0]);
        }
      }
      // -1 leaves the gid alone, as chown(2) does.
      ok(await call('Chown', 'ssii', [V1, `${T}/d`, 1001, -1]));
      expect(owner(env.fsPath(V1, `${T}/d`))).toEqual([1001, 1000]);
    });

    it('Chmod changes the mode of one file, or of the cgroup directory itself', async () => {
      const { key } = sampleLimit(V1);
      ok(await call('Chmod', 'sssi', [V1, `${T}/d`, key, 0o640]));
      expect(perm(env.fsPath(V1, `${T}/d`, key))).toBe(0o640);
      ok(await call('Chmod', 'sssi', ['all', `${T}/d`, '', 0o750]));
      for (const h of all) expect(perm(env.fsPath(h, `${T}/d`)), h).toBe(0o750);
    });

    it('SetValue writes the kernel file and GetValue reads it back, in every kind of hierarchy', async () => {
      ok(await call('Create', 'ss', ['all', `${T}/v`]));
      // cpu.shares, memory.limit_in_bytes, cgroup.max.descendants, cgroup.clone_children (named)…
      const cases: Array<[string, string, string]> = all.map((h) => [h, sampleLimit(h).key, sampleLimit(h).value]);
      cases.push(['unified', 'cgroup.max.depth', '3']);
      for (const [h, key, value] of cases) {
        ok(await call('SetValue', 'ssss', [h, `${T}/v`, key, value]));
        expect(read(env.fsPath(h, `${T}/v`, key)), `${h} ${key}`).toBe(value);
        expect(ok(await call('GetValue', 'sss', [h, `${T}/v`, key]))).toEqual([value]);
      }
      // A value the kernel refuses changes nothing.
      const { key, value } = sampleLimit(V1);
      fails(await call('SetValue', 'ssss', [V1, `${T}/v`, key, 'lots']), 'org.freedesktop.DBus.Error.InvalidArgs');
      expect(read(env.fsPath(V1, `${T}/v`, key))).toBe(value);
      if (all.includes('cpuacct')) {
        // cpuacct is its own hierarchy here, next to cpu.
        const [usage] = ok(await call('GetValue', 'sss', ['cpuacct', `${T}/v`, 'cpuacct.usage'])) as [string];
        expect(usage).toMatch(/^\d+$/);
      }
    });

    it('MovePid and MovePidAbs move a task; the kernel agrees, and v2 keeps it in the hidden leaf', async () => {
      const victim = await sleeper();
      // (memory's base is below /process_api/… here: a hierarchy-absolute answer shows it)
      const absV1 = all.includes('memory') ? 'memory' : V1;
      ok(await call('Create', 'ss', ['all', `${T}/m`]));
      ok(await call('MovePid', 'ssi', ['all', `${T}/m`, victim.pid]));
      for (const h of v1) expect(env.cgroupOf(victim.pid, h), h).toBe(env.cgPath(h, `${T}/m`));
      expect(env.cgroupOf(victim.pid, 'unified')).toBe(env.cgPath('unified', `${T}/m/${LEAF}`));
      expect(owner(env.fsPath('unified', `${T}/m/${LEAF}`))).toEqual(owner(env.fsPath('unified', `${T}/m`)));

      // Answers never show the leaf.
      const [rel, relV1, abs, absV2, tasks, tasksV1, recursive, children, inside] = await Promise.all([
        call('GetPidCgroup', 'si', ['unified', victim.pid]),
        call('GetPidCgroup', 'si', [V1, victim.pid]),
        call('GetPidCgroupAbs', 'si', [absV1, victim.pid]),
        call('GetPidCgroupAbs', 'si', ['unified', victim.pid]),
        call('GetTasks', 'ss', ['unified', `${T}/m`]),
        call('GetTasks', 'ss', [V1, `${T}/m`]),
        call('GetTasksRecursive', 'ss', ['all', T]),
        call('ListChildren', 'ss', ['unified', T]),
        call('ListChildren', 'ss', ['unified', `${T}/m`]),
      ]);
      expect(ok(rel)).toEqual([`${T}/m`]);
      expect(ok(relV1)).toEqual([`${T}/m`]);
      expect(ok(abs)).toEqual([env.cgPath(absV1, `${T}/m`)]);
      expect(ok(absV2)).toEqual([env.cgPath('unified', `${T}/m`)]);
      expect(ok(tasks)).toEqual([[victim.pid]]);
      expect(ok(tasksV1)).toEqual([[victim.pid]]);
      expect((ok(recursive)[0] as number[])).toContain(victim.pid);
      expect([...(ok(children)[0] as string[])].sort()).toEqual(fs.readdirSync(env.fsPath('unified', T)).filter((n) => fs.statSync(env.fsPath('unified', `${T}/${n}`)).isDirectory()).sort());
      expect(ok(children)[0]).not.toContain(LEAF);
      expect(ok(inside)).toEqual([[]]);

      // MovePidAbs names the target from the hierarchy root.
      ok(await call('Create', 'ss', ['all', `${T}/m2`]));
      ok(await call('MovePidAbs', 'ssi', [V1, env.cgPath(V1, `${T}/m2`), victim.pid]));
      ok(await call('MovePidAbs', 'ssi', ['unified', env.cgPath('unified', `${T}/m2`), victim.pid]));
      expect(env.cgroupOf(victim.pid, V1)).toBe(env.cgPath(V1, `${T}/m2`));
      expect(env.cgroupOf(victim.pid, 'unified')).toBe(env.cgPath('unified', `${T}/m2/${LEAF}`));
      for (const h of v1.filter((x) => x !== V1)) expect(env.cgroupOf(victim.pid, h), h).toBe(env.cgPath(h, `${T}/m`));
    });

    it('ListKeys lists every file with its owner and full st_mode', async () => {
      const dir = env.fsPath(V1, `${T}/d`);
      const [rows] = ok(await call('ListKeys', 'ss', [V1, `${T}/d`])) as [Array<[string, number, number, number]>];
      const files = fs.readdirSync(dir).filter((f) => fs.statSync(`${dir}/${f}`).isFile());
      expect(rows.map((r) => r[0]).sort()).toEqual(files.sort());
      for (const [name, uid, gid, mode] of rows) {
        const st = fs.statSync(`${dir}/${name}`);
        expect([name, uid, gid, mode]).toEqual([name, st.uid, st.gid, st.mode]);
      }
    });

    it('Remove refuses busy or non-empty cgroups, removes trees recursively, and says whether it existed', async () => {
      ok(await call('Create', 'ss', ['all', `${T}/r/x`]));
      fails(await call('Remove', 'ssi', [V1, `${T}/r`, 0]), 'org.linuxcontainers.cgmanager.Error.NotEmpty');
      expect(fs.existsSync(env.fsPath(V1, `${T}/r/x`))).toBe(true);
      // The victim of the previous test sits in m2 (V1, unified) and m (the rest).
      fails(await call('Remove', 'ssi', [V1, `${T}/m2`, 0]), 'org.linuxcontainers.cgmanager.Error.Busy');
      expect(fs.existsSync(env.fsPath(V1, `${T}/m2`))).toBe(true);
      expect(ok(await call('Remove', 'ssi', ['all', `${T}/r`, 1]))).toEqual([1]);
      for (const h of all) expect(fs.existsSync(env.fsPath(h, `${T}/r`)), h).toBe(false);
      expect(ok(await call('Remove', 'ssi', ['all', `${T}/r`, 1]))).toEqual([-1]);
      // A v2 cgroup whose task left still has its (empty) leaf: Remove takes both.
      expect(fs.existsSync(env.fsPath('unified', `${T}/m/${LEAF}`))).toBe(true);
      expect(ok(await call('Remove', 'ssi', ['unified', `${T}/m`, 0]))).toEqual([1]);
      expect(fs.existsSync(env.fsPath('unified', `${T}/m`))).toBe(false);
    });

    it('RemoveOnEmpty removes a v2 cgroup when its last task exits; v1 sets notify_on_release where allowed', async () => {
      const victim = await sleeper();
      ok(await call('Create', 'ss', ['all', `${T}/e`]));
      ok(await call('MovePid', 'ssi', ['unified', `${T}/e`, victim.pid]));
      ok(await call('RemoveOnEmpty', 'ss', ['unified', `${T}/e`]));
      const named1 = env.named[1] as string;
      ok(await call('RemoveOnEmpty', 'ss', [named1, `${T}/e`]));
      expect(read(env.fsPath(named1, `${T}/e`, 'notify_on_release'))).toBe('1');
      // Premounted v1 hierarchies have no release agent of ours (V1 is not in the allowed list).
      fails(await call('RemoveOnEmpty', 'ss', [V1, `${T}/e`]), 'org.freedesktop.DBus.Error.NotSupported');
      expect(read(env.fsPath(V1, `${T}/e`, 'notify_on_release'))).toBe('0');
      expect(fs.existsSync(env.fsPath('unified', `${T}/e`))).toBe(true);
      await victim.stop();
      expect(await waitFor(() => !fs.existsSync(env.fsPath('unified', `${T}/e`)), 5000)).toBe(true);
    });

    it('Prune removes empty subtrees at once and busy v2 ones when their tasks are gone', async () => {
      ok(await call('Create', 'ss', ['all', `${T}/p/x/y`]));
      ok(await call('Create', 'ss', ['all', `${T}/p/z`]));
      ok(await call('Prune', 'ss', ['all', `${T}/p`]));
      for (const h of all) expect(fs.existsSync(env.fsPath(h, `${T}/p`)), h).toBe(false);

      const victim = await sleeper();
      ok(await call('Create', 'ss', ['unified', `${T}/q/busy`]));
      ok(await call('Create', 'ss', ['unified', `${T}/q/idle`]));
      ok(await call('MovePid', 'ssi', ['unified', `${T}/q/busy`, victim.pid]));
      ok(await call('Prune', 'ss', ['unified', `${T}/q`]));
      expect(fs.existsSync(env.fsPath('unified', `${T}/q/idle`))).toBe(false);
      expect(fs.existsSync(env.fsPath('unified', `${T}/q/busy`))).toBe(true);
      await victim.stop();
      expect(await waitFor(() => !fs.existsSync(env.fsPath('unified', `${T}/q`)), 5000)).toBe(true);
    });
  });

  describe('cgroup2 specifics', () => {
    // Which controllers our own cgroup2 cgroup may enable for its children: whatever its parent
    // enabled for it. We never touch the root's subtree_control (host state).
    const ownV2Controllers = (): string[] => read(env.fsPath('unified', '', 'cgroup.controllers')).split(/\s+/).filter((c) => c !== '');

    it('Create copies the parent\'s subtree_control into the child (when the parent of our base enables any controller)', async (ctx) => {
      const available = ownV2Controllers();
      // The UML v2 lane enables every controller at its root: there this must run, never skip.
      if (process.env.CGMT_UML_LAYOUT === 'v2') expect(available, 'controllers the UML v2 guest offers our base').toEqual(expect.arrayContaining(['cpu', 'io', 'memory', 'pids']));
      if (available.length === 0) {
        ctx.skip(`the test's cgroup2 parent enables no controllers for it (root cgroup.subtree_control is empty here and is host state)`);
        return;
      }
      // Only what this test enables is disabled again (the harness may have enabled some already).
      const before = read(env.fsPath('unified', '', 'cgroup.subtree_control')).split(/\s+/).filter((c) => c !== '');
      const added = available.filter((c) => !before.includes(c));
      fs.writeFileSync(env.fsPath('unified', '', 'cgroup.subtree_control'), available.map((c) => `+${c}`).join(' '));
      try {
        ok(await env.busctl('Create', 'ss', ['unified', 'sc/child']));
        const enabled = (rel: string): string[] => read(env.fsPath('unified', rel, 'cgroup.subtree_control')).split(/\s+/).filter((c) => c !== '').sort();
        expect(enabled('sc')).toEqual([...available].sort());
        expect(enabled('sc/child')).toEqual([...available].sort());
      } finally {
        ok(await env.busctl('Remove', 'ssi', ['unified', 'sc', 1]));
        if (added.length > 0) fs.writeFileSync(env.fsPath('unified', '', 'cgroup.subtree_control'), added.map((c) => `-${c}`).join(' '));
      }
    });

    it('Chown hands over the hidden leaf and its cgroup.procs too, once tasks live there', async () => {
      const victim = await sleeper();
      ok(await env.busctl('Create', 'ss', ['unified', 'lc']));
      ok(await env.busctl('MovePid', 'ssi', ['unified', 'lc', victim.pid]));
      expect(owner(env.fsPath('unified', `lc/${LEAF}`))).toEqual([0, 0]);
      ok(await env.busctl('Chown', 'ssii', ['unified', 'lc', 1000, 1000]));
      expect(owner(env.fsPath('unified', `lc/${LEAF}`))).toEqual([1000, 1000]);
      expect(owner(env.fsPath('unified', `lc/${LEAF}`, 'cgroup.procs'))).toEqual([1000, 1000]);
      expect(owner(env.fsPath('unified', `lc/${LEAF}`, 'cgroup.max.depth'))).toEqual([0, 0]);
      await victim.stop();
    });

    it('the hidden leaf cannot be named by clients', async () => {
      ok(await env.dbusSend('Create', 'ss', ['unified', 'hl']));
      fails(await env.dbusSend('Create', 'ss', ['unified', `hl/${LEAF}`]), 'org.freedesktop.DBus.Error.InvalidArgs');
      fails(await env.dbusSend('GetTasks', 'ss', ['unified', `hl/${LEAF}`]), 'org.freedesktop.DBus.Error.FileNotFound');
      expect(fs.existsSync(env.fsPath('unified', `hl/${LEAF}`))).toBe(false);
    });
  });
});
