// The Scm forms derived from the one interface table: the 0_0 shapes are exactly those
// the four hand-written copies described before (kept arguments, second credential,
// result encoding), every form round-trips plain arguments → Scm arguments and
// credentials → plain arguments, SetupScm's optional owner and counted pids, the
// cgmanager1 body results, and a real exchange with several credentials over a socketpair.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { setPassCred, type Ucred } from '../../../addon';
import { passFd } from '../../helpers/pass-fd';
import { METHODS_BY_NAME, NO_OWNER, SCM_SHAPES } from '../../../daemon/dbus/interface';
import { decodeBodyBytes } from '../../../daemon/dbus/wire';
import { admitScmSocket, ScmConversation } from '../../../daemon/scm/conversation';
import * as R from '../../../daemon/scm/results';
import {
  allScmForms, credentialCount, credentialsFrom, encodeResult, failureDatagrams, MAX_SCM_PIDS, plainArgsFrom, replyForCaller, scmArgsFrom, scmForm, scmFormOfPlain, scmFormsTable,
} from '../../../daemon/scm/shapes';
import { SCM_RESULT_KINDS, SCM_VICTIM_METHODS, runScmExchange } from '../../../client/scm-call';
import { hasScmVariant } from '../../../client/scm-route';
import { setupReportFrom, statsFrom } from '../../../client/client';
import { setupReportEntries } from '../../../daemon/requests/setup';
import { eventFlag, parseCounter, statsEntries, usageUsecOf } from '../../../daemon/requests/stats';

// What client/scm-route.ts (SHAPES), client/scm-call.ts (SCM_RESULT_KINDS, SCM_VICTIM_METHODS),
// daemon/scm/index.ts and proxy/forward.ts each spelled out before the table held it.
const OLD_0_0: Array<[scm: string, keep: number[], second: 'pid' | 'owner' | undefined, result: string]> = [
  ['GetPidCgroupScm', [0], 'pid', 'string'],
  ['GetPidCgroupAbsScm', [0], 'pid', 'string'],
  ['CreateScm', [0, 1], undefined, 'existed'],
  ['ChownScm', [0, 1], 'owner', 'status'],
  ['ChmodScm', [0, 1, 2, 3], undefined, 'status'],
  ['MovePidScm', [0, 1], 'pid', 'status'],
  ['MovePidAbsScm', [0, 1], 'pid', 'status'],
  ['GetValueScm', [0, 1, 2], undefined, 'string'],
  ['SetValueScm', [0, 1, 2, 3], undefined, 'status'],
  ['RemoveScm', [0, 1, 2], undefined, 'existed'],
  ['GetTasksScm', [0, 1], undefined, 'tasks'],
  ['GetTasksRecursiveScm', [0, 1], undefined, 'tasks'],
  ['ListChildrenScm', [0, 1], undefined, 'names'],
  ['RemoveOnEmptyScm', [0, 1], undefined, 'status'],
  ['PruneScm', [0, 1], undefined, 'status'],
  ['ListKeysScm', [0, 1], undefined, 'keys'],
];

const r: Ucred = { pid: 10, uid: 1000, gid: 1001 };

/** Sample plain arguments of the right types for `plain`. */
function sampleArgs(plain: string): unknown[] {
  const spec = METHODS_BY_NAME.get(plain)!;
  return spec.in.map(([name, type], i) => {
    if (type === 's') return `${name}-${i}`;
    if (type === 'ai') return [31, 32, 33];
    if (type === 'a{ss}') return [['pids.max', '5']];
    if (name === 'uid') return 2000;
    if (name === 'gid') return 2001;
    return 40 + i;
  });
}

describe('the Scm shapes of the interface table', () => {
  it.each(OLD_0_0)('%s keeps %j, sends %s second, encodes its result as %s', (name, keep, second, result) => {
    const form = scmForm(name)!;
    expect(form.shape.args).toEqual(keep.map((plain) => ({ plain })));
    expect(form.shape.result).toBe(result);
    expect(SCM_RESULT_KINDS[name]).toBe(result);
    expect(SCM_VICTIM_METHODS.has(name)).toBe(second !== undefined);
    const creds = form.shape.credentials;
    expect(creds.length).toBe(second === undefined ? 0 : 1);
    if (second) expect(second in creds[0]!).toBe(true);
    expect(failureDatagrams(form.shape.result)).toEqual(result === 'string' ? R.emptyDatagram() : ['tasks', 'names', 'keys'].includes(result) ? R.countFailure() : R.failed());
  });

  it('gives every Scm method of both interfaces a shape; the Watch forms are answered apart (their signals need the connection)', () => {
    const scmNames = [...METHODS_BY_NAME.values()].filter((m) => m.scm).map((m) => m.name);
    expect(scmNames.filter((n) => !SCM_SHAPES.has(n)).sort()).toEqual([]);
    expect(allScmForms().map((f) => f.spec.name).sort()).toEqual([...SCM_SHAPES.keys()].sort());
    for (const plain of ['Setup', 'Stats', 'Freeze', 'Thaw', 'Kill', 'Create', 'Watch', 'Unwatch']) expect(hasScmVariant(plain), plain).toBe(true);
    for (const plain of ['Ping', 'ListControllers']) expect(hasScmVariant(plain), plain).toBe(false);
    for (const name of ['WatchScm', 'UnwatchScm']) expect(SCM_RESULT_KINDS[name]).toBe('status');
    for (const name of ['SetupScm', 'StatsScm', 'FreezeScm', 'ThawScm', 'KillScm']) expect(SCM_RESULT_KINDS[name]).toBe('body');
  });

  it.each(allScmForms().map((f) => [f.spec.name]))('%s: plain args → Scm args and credentials → the same plain args', (name) => {
    const form = scmForm(name)!;
    const plain = sampleArgs(form.plain.name);
    const scmArgs = scmArgsFrom(form.shape, plain);
    // The Scm method's own signature (without the fd) fits what we build.
    expect(scmArgs.length).toBe(form.spec.in.length - 1);
    const creds = credentialsFrom(form.shape, plain, r, 99);
    expect(credentialCount(form.shape, scmArgs)).toBe(creds.length);
    expect(plainArgsFrom(form, scmArgs, creds)).toEqual(plain);
    expect(scmFormOfPlain(form.plain.name)?.spec.name).toBe(name);
  });

  it('SetupScm: the owner credential only when an owner is given, then one credential per pid', () => {
    const form = scmForm('SetupScm')!;
    const withOwner = ['all', 'c1', 2000, 2001, [], [7, 8]];
    expect(scmArgsFrom(form.shape, withOwner)).toEqual(['all', 'c1', [], true, 2]);
    expect(credentialsFrom(form.shape, withOwner, r, 99)).toEqual([
      { pid: 99, uid: 2000, gid: 2001 },
      { pid: 7, uid: r.uid, gid: r.gid },
      { pid: 8, uid: r.uid, gid: r.gid },
    ]);
    const noOwner = ['all', 'c1', NO_OWNER, NO_OWNER, [['pids.max', '3']], []];
    const scmArgs = scmArgsFrom(form.shape, noOwner);
    expect(scmArgs).toEqual(['all', 'c1', [['pids.max', '3']], false, 0]);
    expect(credentialsFrom(form.shape, noOwner, r, 99)).toEqual([]);
    expect(credentialCount(form.shape, scmArgs)).toBe(0);
    expect(plainArgsFrom(form, scmArgs, [])).toEqual(noOwner);
    for (const bad of [-1, MAX_SCM_PIDS + 1, 1.5]) expect(() => credentialCount(form.shape, ['all', 'c1', [], false, bad])).toThrow(RangeError);
  });

  it('cgmanager1 results: the plain reply body in one datagram; failure is the error detail alone', () => {
    const stats = scmForm('StatsScm')!;
    const entries = statsEntries({ 'memory.current': 4096n, populated: true, frozen: false });
    const [d] = encodeResult(stats, [entries]);
    expect(decodeBodyBytes('a{sv}', d!.data)).toEqual([entries]);
    expect(encodeResult(scmForm('FreezeScm')!, [])).toEqual([{ data: Buffer.alloc(0) }]);
    expect(failureDatagrams('body')).toEqual([]);
  });

  it("replyForCaller puts the caller's own pids back into Setup's report", () => {
    const shape = scmForm('SetupScm')!.shape;
    const daemonView = [setupReportEntries({ created: ['memory'], existed: [], applied: [['pids.max', 'pids.max']], moved: [17388] })];
    const mine = replyForCaller(shape, ['all', 'c', NO_OWNER, NO_OWNER, [], [14]], daemonView);
    expect(setupReportFrom(mine[0] as never)).toEqual({ created: ['memory'], existed: [], applied: { 'pids.max': 'pids.max' }, moved: [14] });
  });
});

describe('report and stats encodings', () => {
  it('Setup report: a{sv} with created/existed (as), applied (a{ss}), moved (ai)', () => {
    const entries = setupReportEntries({ created: ['memory', 'cpu,cpuacct'], existed: ['pids'], applied: [['memory.max', 'memory.limit_in_bytes']], moved: [5] });
    expect(entries.map(([k, [sig]]) => `${k}:${sig}`)).toEqual(['created:as', 'existed:as', 'applied:a{ss}', 'moved:ai']);
    const decoded = decodeBodyBytes('a{sv}', encodeResult(scmForm('SetupScm')!, [entries])[0]!.data);
    expect(setupReportFrom(decoded[0] as never)).toEqual({ created: ['memory', 'cpu,cpuacct'], existed: ['pids'], applied: { 'memory.max': 'memory.limit_in_bytes' }, moved: [5] });
  });

  it('Stats: counters as uint64 in a fixed order, flags as booleans; absent ones left out', () => {
    const entries = statsEntries({ frozen: true, 'pids.current': 3n, 'memory.peak': 18446744073709551615n });
    expect(entries).toEqual([['memory.peak', ['t', 18446744073709551615n]], ['pids.current', ['t', 3n]], ['frozen', ['b', true]]]);
    const decoded = decodeBodyBytes('a{sv}', encodeResult(scmForm('StatsScm')!, [entries])[0]!.data);
    expect(statsFrom(decoded[0] as never)).toEqual({ 'memory.peak': 18446744073709551615, 'pids.current': 3, frozen: true });
  });

  it('parses the kernel files Stats reads', () => {
    expect(parseCounter('123\n')).toBe(123n);
    expect(parseCounter('max')).toBeUndefined();
    expect(usageUsecOf('usage_usec 77\nuser_usec 50\nsystem_usec 27\n')).toBe(77n);
    expect(usageUsecOf('nr_periods 0\n')).toBeUndefined();
    expect(eventFlag('populated 1\nfrozen 0\n', 'populated')).toBe(true);
    expect(eventFlag('populated 1\nfrozen 0\n', 'frozen')).toBe(false);
    expect(eventFlag('populated 1\n', 'frozen')).toBeUndefined();
  });
});


describe('an Scm exchange with several credentials after the requestor', () => {
  it('asks for each with a kick and hands them to the request in order', async () => {
    // Our parent's pid: a conversation refuses credentials carrying its own (reflection).
    const own: Ucred = { pid: process.ppid, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    const extra: Ucred[] = [{ ...own, uid: 5, gid: 6 }, own, { ...own, uid: 7 }];
    let seen: Ucred[] = [];
    const value = await runScmExchange({
      method: 'SetupScm',
      requestor: own,
      credentials: extra,
      timeoutMs: 2000,
      sendCall: async (fd) => {
        const mine = await passFd(fd);
        setPassCred(mine, true); // as the daemon's handler does
        new ScmConversation(mine, admitScmSocket(mine), {
          needsVictim: false,
          credentials: extra.length,
          timeoutMs: 2000,
          failure: R.failed,
          refused: () => undefined,
          run: (_r, _v, got) => {
            seen = [...got];
            return { datagrams: encodeResult(scmForm('SetupScm')!, [setupReportEntries({ created: ['memory'], existed: [], applied: [], moved: [] })]) };
          },
          done: () => undefined,
        });
        return [];
      },
    });
    expect(seen.map((c) => [c.uid, c.gid])).toEqual(extra.map((c) => [c.uid, c.gid]));
    expect(value).toMatchObject({ kind: 'body' });
    expect(setupReportFrom((value as { values: unknown[] }).values[0] as never).created).toEqual(['memory']);
  });
});

describe("the README's table of Scm forms", () => {
  it('is the one rendered from the interface table', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    const m = /<!-- scm-forms:start -->\n([\s\S]*?)\n<!-- scm-forms:end -->/.exec(readme);
    expect(m, 'README.md holds the table between <!-- scm-forms:start --> and <!-- scm-forms:end -->').not.toBeNull();
    expect(m![1]!.split('\n')).toEqual(scmFormsTable());
  });
});
