// Watch and its signals for real, in the test's own cgroups. v1 (a private named hierarchy
// whose release agent the daemon owns, and the host's memory and freezer hierarchies
// re-attached): Emptied through the release agent when a process the test started exits,
// OOM through memory.oom_control's eventfd when a process of ours outgrows a small limit,
// Frozen when the daemon itself writes freezer.state. cgroup2: Emptied and Frozen from
// cgroup.events, OOM from memory.events where the memory controller is on cgroup2. Both
// plain and through WatchScm; what an unprivileged uid may not read it may not watch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dbus from 'dbus-next';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { okValues, skipReason, startTestDaemon, titled, type CallArg, type TestDaemon } from '../../helpers';
import { killDaemon, releaseAgentSkipReason, stateDirOf } from '../lifecycle/lifecycle';
import { CGM_MAIN } from '../../helpers/container';
import { REPO_ROOT } from '../../helpers/requirements';
import { connect, isCgmanagerError, type CgmanagerClient, type CgroupEvent, type CgroupWatch } from '../../../client';

const NODE = process.execPath;
const WATCH_MAIN = path.join(REPO_ROOT, 'dist', 'test', 'helpers', 'watch-main.js');
/** Allocates and touches memory until the kernel stops it. */
const HOG = 'const a = []; for (;;) a.push(Buffer.alloc(4 << 20, 1));';

/** The next event of a watch, or undefined when none comes within `ms`. */
async function nextEvent(it: AsyncIterator<CgroupEvent>, ms = 10_000): Promise<CgroupEvent | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  const r = await Promise.race([it.next(), timeout]);
  clearTimeout(timer);
  return r && !r.done ? r.value : undefined;
}

async function failsWith(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isCgmanagerError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

const v1Reason = skipReason({ controllers: ['memory', 'freezer'], named: 1 }) ?? releaseAgentSkipReason();

// One top-level suite: the UML lane fails a wholly skipped top-level suite, and each layout holds only one half.
describe('Watch and its signals', () => {
  describe.skipIf(v1Reason !== undefined)(titled('events on cgroup v1', v1Reason), () => {
    let env: TestDaemon;
    let client: CgmanagerClient;
    let N: string;
    let B: string;
    const cg = (rel: string): string => `${B}/${rel}`;
    const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args), env);
    // cgm as a client at the bases (its cgroup names are relative to them).
    const runCgm = (args: string[]) => env.run([NODE, CGM_MAIN, '--socket', env.socket, ...args], { timeoutMs: 15_000 });
    const flag = (rel: string): string => fs.readFileSync(env.fsPath(N, rel, 'notify_on_release'), 'utf8').trim();

    beforeAll(async () => {
      env = await startTestDaemon({
        named: 1,
        controllers: ['memory', 'freezer'],
        logLevel: 'debug',
        daemonArgs: (layout) => ['--allow-autoremove-premounted', layout.named[0] as string, '--autoremove-premounted-set-release-agent'],
      });
      N = env.named[0] as string;
      B = path.basename(env.cgPath(N));
      client = await connect({ socket: env.socket });
    });

    afterAll(async () => {
      client?.destroy();
      await env?.stop();
    });

    it('Emptied when the last process exits (release agent), the cgroup stays, and unwatching gives notify_on_release back', async () => {
      await call('Create', 'ss', ['all', 'e']);
      const sleeper = await env.spawn(['sleep', '600'], { at: 'e' });
      const w = client.watch(cg('e'));
      await w.ready;
      expect(flag('e')).toBe('1');
      const it = w[Symbol.asyncIterator]();
      await sleeper.stop();
      expect(await nextEvent(it)).toEqual({ type: 'emptied', cgroup: cg('e') });
      // Watched, not marked: the release did not remove it.
      await new Promise((r) => setTimeout(r, 300));
      expect(fs.existsSync(env.fsPath(N, 'e'))).toBe(true);
      await it.return?.();
      expect(flag('e')).toBe('0');
    });

    it('coexists with RemoveOnEmpty: a marked cgroup is still removed, and its watcher hears Emptied', async () => {
      await call('Create', 'ss', [N, 'm']);
      const sleeper = await env.spawn(['sleep', '600'], { at: { [N]: 'm' } });
      const w = client.watch(cg('m'));
      await w.ready;
      await call('RemoveOnEmpty', 'ss', [N, 'm']);
      const it = w[Symbol.asyncIterator]();
      await sleeper.stop();
      expect(await nextEvent(it)).toEqual({ type: 'emptied', cgroup: cg('m') });
      expect(await waitForGone(env.fsPath(N, 'm'))).toBe(true);
      await w.close();
    });

    it('Frozen when the daemon freezes and thaws through SetValue of freezer.state', async () => {
      await call('Create', 'ss', ['freezer', 'f']);
      const sleeper = await env.spawn(['sleep', '600'], { at: { freezer: 'f' } });
      const w = client.watch(cg('f'));
      await w.ready;
      const it = w[Symbol.asyncIterator]();
      await client.setValue('freezer', cg('f'), 'freezer.state', 'FROZEN');
      expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('f'), frozen: true });
      await client.setValue('freezer', cg('f'), 'freezer.state', 'THAWED');
      expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('f'), frozen: false });
      await w.close();
      await sleeper.stop();
    });

    it('Frozen also for cgmanager1 Freeze and Thaw, and a third-party D-Bus library (dbus-next) sees the signals', async () => {
      await call('Create', 'ss', ['freezer', 'g']);
      const sleeper = await env.spawn(['sleep', '600'], { at: { freezer: 'g' } });
      // dbus-next as a plain peer client: it says Hello (answered), then sees our signals as messages.
      const bus = dbus.sessionBus({ busAddress: `unix:path=${env.socket}` });
      try {
        const seen: Array<{ member: string; signature: string; body: unknown[] }> = [];
        bus.on('message', (m: dbus.Message) => {
          if (m.type === dbus.MessageType.SIGNAL && m.interface === 'org.linuxcontainers.cgmanager1') seen.push({ member: m.member, signature: m.signature, body: m.body });
        });
        await bus.call(new dbus.Message({ path: '/org/linuxcontainers/cgmanager', interface: 'org.linuxcontainers.cgmanager1', member: 'Watch', signature: 's', body: [cg('g')] }));
        const w = client.watch(cg('g'));
        await w.ready;
        const it = w[Symbol.asyncIterator]();
        await client.freeze(cg('g'));
        expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('g'), frozen: true });
        await client.thaw(cg('g'));
        expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('g'), frozen: false });
        expect(await waitForFlag(() => seen.length >= 2)).toBe(true);
        expect(seen).toEqual([
          { member: 'Frozen', signature: 'sb', body: [cg('g'), true] },
          { member: 'Frozen', signature: 'sb', body: [cg('g'), false] },
        ]);
        await w.close();
      } finally {
        bus.disconnect();
        await sleeper.stop();
      }
    });

    it('OOM with the kill count when a process of ours outgrows a small memory limit', async () => {
      await call('Create', 'ss', ['memory', 'o']);
      await client.setValue('memory', cg('o'), 'memory.limit_in_bytes', String(96 << 20));
      const w = client.watch(cg('o'));
      await w.ready;
      const it = w[Symbol.asyncIterator]();
      // Only this process is in the cgroup, so only it can be chosen by the OOM killer.
      const hog = await env.run([NODE, '-e', HOG], { at: { memory: 'o' }, timeoutMs: 30_000 });
      expect(hog.signal ?? hog.code, hog.stderr).toBe('SIGKILL');
      const e = await nextEvent(it);
      expect(e?.type).toBe('oom');
      expect(e?.count).toBeGreaterThanOrEqual(1);
      await w.close();
    });

    it('WatchScm: the requestor credential decides the base; the signals reach the calling connection', async () => {
      const scm = await connect({ socket: env.socket, route: 'scm' });
      try {
        await call('Create', 'ss', ['all', 's']);
        const sleeper = await env.spawn(['sleep', '600'], { at: 's' });
        const w = scm.watch(cg('s'));
        await w.ready;
        const it = w[Symbol.asyncIterator]();
        await sleeper.stop();
        expect(await nextEvent(it)).toEqual({ type: 'emptied', cgroup: cg('s') });
        await w.close();
        await failsWith(scm.watch(cg('no-such')).ready, 'FileNotFound');
      } finally {
        scm.destroy();
      }
      await new Promise((r) => setTimeout(r, 150)); // info lines are flushed every 100 ms
      expect(env.logLines().some((l) => l.method === 'WatchScm' && l.requestor !== undefined)).toBe(true);
    });

    it('an unprivileged uid cannot watch outside its subtree, nor a cgroup it may not read', async () => {
      await call('Create', 'ss', ['all', 'secret']);
      await call('Chmod', 'sssi', ['all', 'secret', '', 0o700]);
      // Absolute names are read from the hierarchy root, bounded by the caller's own cgroup.
      const outside = await env.dbusSend('org.linuxcontainers.cgmanager1.Watch', 's', ['/'], { uid: 1000 });
      expect(outside.errorName).toBe('org.freedesktop.DBus.Error.AccessDenied');
      const unreadable = await env.dbusSend('org.linuxcontainers.cgmanager1.Watch', 's', ['secret'], { uid: 1000 });
      expect(unreadable.errorName).toBe('org.freedesktop.DBus.Error.AccessDenied');
      // Nothing was set up for them.
      expect(flag('secret')).toBe('0');
      await new Promise((r) => setTimeout(r, 150));
      const denied = env.logLines().filter((l) => l.method === 'Watch' && (l.requestor as { uid?: number } | undefined)?.uid === 1000);
      expect(denied.length).toBe(2);
    });

    it('a watcher hears only what it may read: unreadable event files are skipped, and all of them unreadable is AccessDenied', async () => {
      await call('Create', 'ss', ['all', 'files']);
      await call('Chmod', 'sssi', [N, 'files', 'cgroup.procs', 0o600]); // v1 Emptied's file
      await call('Chmod', 'sssi', ['memory', 'files', 'memory.oom_control', 0o600]);
      await call('Chmod', 'sssi', ['freezer', 'files', 'freezer.state', 0o600]);
      const sleeper = await env.spawn(['sleep', '600'], { at: 'files' });
      const watchArgs = JSON.stringify({ socket: env.socket, cgroups: ['files'], count: 1 });
      const refused = await env.run([NODE, WATCH_MAIN, watchArgs], { uid: 1000 });
      expect(JSON.parse(refused.stdout.trim())).toMatchObject({ code: 'AccessDenied' });
      // With freezer.state readable again, the watch holds Frozen only.
      await call('Chmod', 'sssi', ['freezer', 'files', 'freezer.state', 0o644]);
      const watcher = await env.spawn([NODE, WATCH_MAIN, watchArgs], { uid: 1000 });
      expect(await waitForFlag(() => env.logLines().some((l) => l.method === 'Watch' && l.cgroup === 'files' && l.outcome === 'ok'), 10_000)).toBe(true);
      expect(flag('files')).toBe('0'); // no Emptied source: notify_on_release untouched
      await sleeper.stop(); // emptied: not theirs to hear
      await client.setValue('freezer', cg('files'), 'freezer.state', 'FROZEN');
      const r = await watcher.result;
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([{ ready: true, route: 'plain' }, { type: 'frozen', cgroup: 'files', frozen: true }]);
      await client.setValue('freezer', cg('files'), 'freezer.state', 'THAWED');
    });

    // On v1 the Emptied source sets notify_on_release, which makes the daemon remove what empties
    // below it unless it knows the flag for a watch's; a cgroup renamed (v1) after the borrow is
    // no longer known by that name. So only a watcher that could mark the cgroup itself
    // (RemoveOnEmpty: write access to its directory) gets v1 Emptied; a read-only one changes nothing.
    it("a read-only watcher of root's cgroup gets no v1 Emptied and leaves notify_on_release alone", async () => {
      await call('Create', 'ss', ['all', 'readonly']);
      const sleeper = await env.spawn(['sleep', '600'], { at: 'readonly' });
      const watchArgs = JSON.stringify({ socket: env.socket, cgroups: ['readonly'], count: 1 });
      const watcher = await env.spawn([NODE, WATCH_MAIN, watchArgs], { uid: 1000 });
      try {
        expect(await waitForFlag(() => env.logLines().some((l) => l.method === 'Watch' && l.cgroup === 'readonly' && l.outcome === 'ok'), 10_000)).toBe(true);
        expect(flag('readonly')).toBe('0');
      } finally {
        await watcher.stop();
        await sleeper.stop();
      }
    });

    it('bad input is a named error and watching a name twice is one watch', async () => {
      await failsWith(client.watch('../../../../../../../..').ready, 'InvalidArgs');
      await failsWith(client.watch(cg('no-such')).ready, 'FileNotFound');
      await call('Create', 'ss', ['all', 'twice']);
      const a = client.watch(cg('twice'));
      const b = client.watch(cg('twice'));
      await Promise.all([a.ready, b.ready]);
      await a.close();
      expect(flag('twice')).toBe('1'); // b still watches
      await b.close();
      expect(flag('twice')).toBe('0');
    });

    it('a daemon killed while watching gives the borrowed flags back at its next start, and removes nothing that emptied meanwhile', async () => {
      await call('Create', 'ss', [N, 'crash/marked']);
      await call('RemoveOnEmpty', 'ss', [N, 'crash/marked']); // a mark from before the watch stays one
      await call('Create', 'ss', ['all', 'crash2']);
      const sleeper = await env.spawn(['sleep', '600'], { at: 'crash2' });
      const w1 = client.watch(cg('crash'));
      const w2 = client.watch(cg('crash2'));
      await Promise.all([w1.ready, w2.ready]);
      expect([flag('crash'), flag('crash2')]).toEqual(['1', '1']);
      const saved = JSON.parse(fs.readFileSync(path.join(stateDirOf(env), 'watch-flags.json'), 'utf8')) as { borrows: Array<{ cgroup: string }> };
      expect(saved.borrows.map((b) => b.cgroup).sort()).toEqual([env.cgPath(N, 'crash'), env.cgPath(N, 'crash2')]);
      await killDaemon(env);
      client.destroy();
      fs.mkdirSync(env.fsPath(N, 'crash/later')); // made while the daemon is down: inherits the flag
      await sleeper.stop(); // the kernel runs the release agent for crash2, which spools it
      await env.restartDaemon();
      client = await connect({ socket: env.socket });
      expect([flag('crash'), flag('crash/later'), flag('crash2')]).toEqual(['0', '0', '0']);
      expect(flag('crash/marked')).toBe('1');
      expect(fs.existsSync(env.fsPath(N, 'crash2')), 'a watched-only cgroup released while the daemon was down stays').toBe(true);
    });

    it('cgm watch prints one line per event (and --json), and exits after --count', async () => {
      await call('Create', 'ss', ['freezer', 'cw']);
      const sleeper = await env.spawn(['sleep', '600'], { at: { freezer: 'cw' } });
      const watchers = [
        runCgm(['watch', '--count', '2', 'cw']),
        runCgm(['watch', '--json', '--count', '1', 'cw']),
      ];
      // Both watch once the daemon has logged their (successful) Watch calls.
      expect(await waitForFlag(() => env.logLines().filter((l) => l.method === 'Watch' && l.cgroup === 'cw' && l.outcome === 'ok').length >= 2, 10_000)).toBe(true);
      await client.setValue('freezer', cg('cw'), 'freezer.state', 'FROZEN');
      await client.setValue('freezer', cg('cw'), 'freezer.state', 'THAWED');
      const [text, json] = await Promise.all(watchers);
      expect(text?.stdout).toBe('frozen cw 1\nfrozen cw 0\n');
      expect(JSON.parse(json?.stdout ?? '')).toEqual({ type: 'frozen', cgroup: 'cw', frozen: true });
      expect([text?.code, json?.code]).toEqual([0, 0]);
      await sleeper.stop();
    });

    it('a connection may watch 64 cgroups; the 65th is LimitsExceeded and changes nothing', async () => {
      const names = Array.from({ length: 65 }, (_, i) => cg(`lim/${i}`));
      await Promise.all(names.map((n) => client.create(N, n)));
      const other = await connect({ socket: env.socket });
      try {
        const watches = names.slice(0, 64).map((n) => other.watch(n));
        await Promise.all(watches.map((w) => w.ready));
        await failsWith(other.watch(names[64] as string).ready, 'LimitsExceeded');
        expect(flag('lim/64')).toBe('0');
        await watches[0]?.close();
        await other.watch(names[64] as string).ready; // room again
      } finally {
        other.destroy();
      }
    });

    it('a watch ends with its connection', async () => {
      await call('Create', 'ss', ['all', 'conn']);
      const other = await connect({ socket: env.socket });
      const w: CgroupWatch = other.watch(cg('conn'));
      await w.ready;
      expect(flag('conn')).toBe('1');
      other.destroy();
      expect(await waitForFlag(() => flag('conn') === '0')).toBe(true);
    });
  });

  async function waitForGone(p: string, ms = 5000): Promise<boolean> {
    return waitForFlag(() => !fs.existsSync(p), ms);
  }

  async function waitForFlag(f: () => boolean, ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (f()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return f();
  }

  const v2Reason = skipReason({ cgroup2: true });

  describe.skipIf(v2Reason !== undefined)(titled('events on cgroup v2', v2Reason), () => {
    let env: TestDaemon;
    let client: CgmanagerClient;
    let B: string;
    const cg = (rel: string): string => `${B}/${rel}`;
    const call = async (method: string, sig: string, args: readonly CallArg[]): Promise<unknown[]> => okValues(await env.dbusSend(method, sig, args), env);

    beforeAll(async () => {
      env = await startTestDaemon({ cgroup2: true, logLevel: 'debug' });
      B = path.basename(env.cgPath('unified'));
      client = await connect({ socket: env.socket });
    });

    afterAll(async () => {
      client?.destroy();
      await env?.stop();
    });

    it('Emptied from cgroup.events when the last process exits, then Frozen on freeze and thaw', async () => {
      await call('Create', 'ss', ['unified', 'e']);
      const sleeper = await env.spawn(['sleep', '600'], { at: 'e' });
      const w = client.watch(cg('e'));
      await w.ready;
      const it = w[Symbol.asyncIterator]();
      await client.setValue('unified', cg('e'), 'cgroup.freeze', '1');
      expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('e'), frozen: true });
      await client.setValue('unified', cg('e'), 'cgroup.freeze', '0');
      expect(await nextEvent(it)).toEqual({ type: 'frozen', cgroup: cg('e'), frozen: false });
      await sleeper.stop();
      expect(await nextEvent(it)).toEqual({ type: 'emptied', cgroup: cg('e') });
      await w.close();
    });

    it('a removed cgroup ends the watch, with Emptied if it was not sent', async () => {
      await call('Create', 'ss', ['unified', 'r']);
      const w = client.watch(cg('r'));
      await w.ready;
      const it = w[Symbol.asyncIterator]();
      await call('Remove', 'ssi', ['unified', 'r', 0]);
      expect(await nextEvent(it)).toEqual({ type: 'emptied', cgroup: cg('r') });
      // The daemon forgot it: watching the name again starts afresh (and finds no cgroup).
      await failsWith(client.watch(cg('r')).ready, 'FileNotFound');
      await w.close();
    });

    it('OOM from memory.events where cgroup2 has the memory controller', async (ctx) => {
      if (!fs.readFileSync(env.fsPath('unified', '', 'cgroup.subtree_control'), 'utf8').includes('memory')) return ctx.skip();
      await call('Create', 'ss', ['unified', 'o']);
      await client.setValue('unified', cg('o'), 'memory.max', String(96 << 20));
      await client.setValue('unified', cg('o'), 'memory.swap.max', '0').catch(() => undefined);
      const w = client.watch(cg('o'));
      await w.ready;
      const it = w[Symbol.asyncIterator]();
      const hog = await env.run([NODE, '-e', HOG], { at: 'o', timeoutMs: 60_000 });
      expect(hog.signal ?? hog.code, hog.stderr).toBe('SIGKILL');
      // The kill also empties the cgroup; the kernel notifies memory.events and cgroup.events
      // in no fixed order, so Emptied may come first.
      const seen: CgroupEvent[] = [];
      const has = (type: string): boolean => seen.some((e) => e.type === type);
      while (!(has('oom') && has('emptied'))) {
        const e = await nextEvent(it, 20_000);
        if (!e) break;
        seen.push(e);
      }
      expect([...new Set(seen.map((e) => e.type))].sort()).toEqual(['emptied', 'oom']);
      const oom = seen.find((e): e is Extract<CgroupEvent, { type: 'oom' }> => e.type === 'oom');
      expect(oom?.cgroup).toBe(cg('o'));
      expect(oom?.count).toBeGreaterThanOrEqual(1);
      await w.close();
    });
  });
});
