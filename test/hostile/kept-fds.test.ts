// GetValue reads value files through fds the daemon keeps open (daemon/cgroupfs/value-fds.ts).
// A kept fd must never let a caller read what a fresh open would not: delegated uid 1000 (A)
// reads a root-made cgroup inside its subtree, then root changes permissions, renames the
// cgroup, removes it and makes it again under the same name; every answer must be the one
// a daemon without kept fds would give.
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipReason, titled } from '../helpers';
import { expectRefused, startScene, type Scene } from './fixture';

const reason = skipReason({ cgroup2: true, named: 1 });

/** A value file in every cgroup of the hierarchy, without state per open file. */
const keyOf = (version: 1 | 2): string => (version === 1 ? 'notify_on_release' : 'cpu.stat');

describe.skipIf(reason !== undefined)(titled('kept value fds never outlive a check', reason), () => {
  let s: Scene;
  const made: string[] = [];
  beforeAll(async () => {
    s = await startScene();
  });
  afterAll(async () => {
    for (const dir of made.reverse()) if (fs.existsSync(dir)) fs.rmdirSync(dir);
    await s?.stop();
  });

  /** Root makes deleg/<name> (root's, 0755: A may read it) and returns its directory. */
  const mkdir = (label: string, name: string): string => {
    const dir = s.env.fsPath(label, 'deleg', name);
    fs.mkdirSync(dir);
    if (!made.includes(dir)) made.push(dir);
    return dir;
  };
  const read = async (label: string, name: string, key: string): Promise<string> => {
    const reply = await s.attacker.call('GetValue', [label, name, key]);
    expect(reply.ok, `GetValue ${label} ${name} ${key}: ${JSON.stringify(reply)}`).toBe(true);
    return reply.values?.[0] as string;
  };

  it('a permission taken away after a read is enforced on the next read (directory and key)', async () => {
    for (const [label, base] of s.env.bases) {
      const key = keyOf(base.version);
      const dir = mkdir(label, 'keptperm');
      await read(label, 'keptperm', key);
      await read(label, 'keptperm', key); // now through the kept fd
      fs.chmodSync(dir, 0o700);
      expectRefused(await s.attacker.call('GetValue', [label, 'keptperm', key]), 'AccessDenied', false, `${label} directory 0700`);
      fs.chmodSync(dir, 0o755);
      await read(label, 'keptperm', key);
      const mode = fs.statSync(`${dir}/${key}`).mode & 0o777;
      fs.chmodSync(`${dir}/${key}`, 0o600);
      expectRefused(await s.attacker.call('GetValue', [label, 'keptperm', key]), 'AccessDenied', false, `${label} key 0600`);
      fs.chmodSync(`${dir}/${key}`, mode);
      fs.chownSync(dir, 2000, 2000);
      fs.chmodSync(dir, 0o700);
      expectRefused(await s.attacker.call('GetValue', [label, 'keptperm', key]), 'AccessDenied', false, `${label} directory given to uid 2000`);
      fs.rmdirSync(dir);
    }
  });

  it('a renamed cgroup, or one removed and made again, is read afresh under its name', async () => {
    for (const [label, base] of s.env.bases) {
      if (base.version !== 1) continue; // the v1 flag below is a value root can set
      const key = keyOf(1);
      const first = mkdir(label, 'keptname');
      fs.writeFileSync(`${first}/${key}`, '1\n');
      expect(await read(label, 'keptname', key), label).toBe('1');
      expect(await read(label, 'keptname', key), label).toBe('1');
      // Rename it away and make a new one (the flag starts as the parent's, 0) under the name.
      const moved = s.env.fsPath(label, 'deleg', 'keptmoved');
      fs.renameSync(first, moved);
      made.push(moved);
      mkdir(label, 'keptname');
      expect(await read(label, 'keptname', key), `${label} after rename`).toBe('0');
      expect(await read(label, 'keptmoved', key), `${label} the renamed one`).toBe('1');
      // Removed and made again: another cgroup.
      fs.rmdirSync(moved);
      fs.writeFileSync(`${s.env.fsPath(label, 'deleg', 'keptname')}/${key}`, '1\n');
      expect(await read(label, 'keptname', key), label).toBe('1');
      fs.rmdirSync(s.env.fsPath(label, 'deleg', 'keptname'));
      mkdir(label, 'keptname');
      expect(await read(label, 'keptname', key), `${label} made again`).toBe('0');
      // Removed: no kept fd answers for it.
      fs.rmdirSync(s.env.fsPath(label, 'deleg', 'keptname'));
      expectRefused(await s.attacker.call('GetValue', [label, 'keptname', key]), 'FileNotFound', false, `${label} removed`);
    }
  });
});
