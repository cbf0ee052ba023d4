// Seed scenario: a Docker-style container (--memory 256m, --cpus 1.5, --pids-limit 100) set
// through the daemon with the v1 key names and with the v2 names, on v1 and on v2, checked
// in the kernel's own files, read back in the names used, and pids.max refusing a fork.
import { describe, expect, it } from 'vitest';
import { describeOnEachLayout, isSwapKey, type Kind, type LayoutName } from './scenario-layout';

type Naming = 'v1 names' | 'v2 names';

/** What Docker writes, in each version's words: [controller kind, key, value]. */
const SETTINGS: Readonly<Record<Naming, ReadonlyArray<[Kind, string, string]>>> = {
  'v1 names': [
    ['memory', 'memory.limit_in_bytes', '268435456'],
    // Docker's default --memory-swap is twice --memory.
    ['memory', 'memory.memsw.limit_in_bytes', '536870912'],
    ['cpu', 'cpu.cfs_period_us', '100000'],
    ['cpu', 'cpu.cfs_quota_us', '150000'],
    ['pids', 'pids.max', '100'],
  ],
  'v2 names': [
    ['memory', 'memory.max', '268435456'],
    ['memory', 'memory.swap.max', '268435456'],
    ['cpu', 'cpu.max', '150000 100000'],
    ['pids', 'pids.max', '100'],
  ],
};

/** What the kernel's files hold afterwards, whatever names were used. */
const KERNEL: Readonly<Record<LayoutName, ReadonlyArray<[Kind, string, string]>>> = {
  v1: [
    ['memory', 'memory.limit_in_bytes', '268435456'],
    ['memory', 'memory.memsw.limit_in_bytes', '536870912'],
    ['cpu', 'cpu.cfs_period_us', '100000'],
    ['cpu', 'cpu.cfs_quota_us', '150000'],
    ['pids', 'pids.max', '100'],
  ],
  v2: [
    ['memory', 'memory.max', '268435456'],
    ['memory', 'memory.swap.max', '268435456'],
    ['cpu', 'cpu.max', '150000 100000'],
    ['pids', 'pids.max', '100'],
  ],
};

describeOnEachLayout('Docker-style container', (s, layout) => {
  describe.each<Naming>(['v1 names', 'v2 names'])('set with the %s', (naming) => {
    const name = `docker-${naming.slice(0, 2)}`;
    const rel = (): string => `${s().env.baseName}/${name}`;

    it('creates the container and sets every limit', async () => {
      await s().client.create('all', rel());
      for (const [kind, key, value] of SETTINGS[naming]) {
        if (isSwapKey(key) && !s().hasSwapAccounting(name)) continue;
        await s().client.setValue(s().controller(kind), rel(), key, value);
      }
    });

    it("leaves the kernel's files as Docker would on this version", () => {
      for (const [kind, file, value] of KERNEL[layout]) {
        if (isSwapKey(file) && !s().hasSwapAccounting(name)) continue;
        expect(`${file} = ${s().read(kind, name, file)}`).toBe(`${file} = ${value}`);
      }
    });

    it('reads every limit back in the names it was set with', async () => {
      for (const [kind, key, value] of SETTINGS[naming]) {
        if (isSwapKey(key) && !s().hasSwapAccounting(name)) continue;
        expect(`${key} = ${await s().client.getValue(s().controller(kind), rel(), key)}`).toBe(`${key} = ${value}`);
      }
    });

    it('refuses a fork once pids.max is reached', async () => {
      await s().client.setValue(s().controller('pids'), rel(), 'pids.max', '1');
      // Only the pids hierarchy places the shell in the container; the others keep it in the base.
      const r = await s().env.run(['sh', '-c', 'sleep 0 & wait; echo forked'], { at: { [s().label('pids')]: name } });
      expect(r.stdout).not.toContain('forked');
      expect(r.stderr).toMatch(/cannot fork|resource temporarily unavailable/i);
      await s().client.setValue(s().controller('pids'), rel(), 'pids.max', '100');
    });
  });
});
