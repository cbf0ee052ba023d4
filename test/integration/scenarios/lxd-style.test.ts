// Seed scenario: an LXD-style container (pinned to one core, 10 ms per 150 ms of CPU, 256 MiB
// with swap off, a lower CPU priority) set through the daemon with the v1 key names and with
// the v2 names, on v1 and on v2, checked in the kernel's files and read back in the names used.
import { describe, expect, it } from 'vitest';
import { describeOnEachLayout, isSwapKey, type Kind, type LayoutName } from './scenario-layout';

type Naming = 'v1 names' | 'v2 names';

/** [controller kind, key, value set, value read back with the same key: on both, or per version]. */
const SETTINGS: Readonly<Record<Naming, ReadonlyArray<[Kind, string, string, string | Readonly<Record<LayoutName, string>>]>>> = {
  'v1 names': [
    ['cpu', 'cpu.cfs_quota_us', '10000', '10000'],
    ['cpu', 'cpu.cfs_period_us', '150000', '150000'],
    ['memory', 'memory.limit_in_bytes', '256M', '268435456'],
    // limits.memory.swap=false: memory+swap may not exceed memory.
    ['memory', 'memory.memsw.limit_in_bytes', '256M', '268435456'],
    // limits.cpu.priority below the default. A weight holds less than shares, so on v2
    // 512 becomes weight 20 and reads back as 2 + ⌈19 × 262142 / 9999⌉ = 501.
    ['cpu', 'cpu.shares', '512', { v1: '512', v2: '501' }],
  ],
  'v2 names': [
    ['cpu', 'cpu.max', '10000 150000', '10000 150000'],
    ['memory', 'memory.max', '256M', '268435456'],
    ['memory', 'memory.swap.max', '0', '0'],
    ['cpu', 'cpu.weight', '20', '20'],
  ],
};

/** The kernel's files afterwards: [kind, file, value with v1 names, value with v2 names]. */
const KERNEL: Readonly<Record<LayoutName, ReadonlyArray<[Kind, string, string, string]>>> = {
  v1: [
    ['cpu', 'cpu.cfs_quota_us', '10000', '10000'],
    ['cpu', 'cpu.cfs_period_us', '150000', '150000'],
    ['memory', 'memory.limit_in_bytes', '268435456', '268435456'],
    ['memory', 'memory.memsw.limit_in_bytes', '268435456', '268435456'],
    // weight 20 is shares 2 + ⌈19 × 262142 / 9999⌉ = 501; shares 512 stays 512.
    ['cpu', 'cpu.shares', '512', '501'],
  ],
  v2: [
    ['cpu', 'cpu.max', '10000 150000', '10000 150000'],
    ['memory', 'memory.max', '268435456', '268435456'],
    ['memory', 'memory.swap.max', '0', '0'],
    // shares 512 is weight 1 + (510 × 9999) / 262142 = 20.
    ['cpu', 'cpu.weight', '20', '20'],
  ],
};


describeOnEachLayout('LXD-style container', (s, layout) => {
  /** swap accounting is a kernel option; without it the swap rows have nothing to act on */
  let hasSwap = false;

  describe.each<Naming>(['v1 names', 'v2 names'])('set with the %s', (naming) => {
    const name = `lxd-${naming.slice(0, 2)}`;
    const rel = (): string => `${s().env.baseName}/${name}`;

    it('creates the container and sets every limit', async () => {
      await s().client.create('all', rel());
      hasSwap = s().hasSwapAccounting(name);
      for (const [kind, key, value] of SETTINGS[naming]) {
        if (isSwapKey(key) && !hasSwap) continue;
        await s().client.setValue(s().controller(kind), rel(), key, value);
      }
    });

    it("leaves the kernel's files as LXD would on this version", () => {
      for (const [kind, file, withV1, withV2] of KERNEL[layout]) {
        if (isSwapKey(file) && !hasSwap) continue;
        expect(`${file} = ${s().read(kind, name, file)}`).toBe(`${file} = ${naming === 'v1 names' ? withV1 : withV2}`);
      }
    });

    it('reads every limit back in the names it was set with', async () => {
      for (const [kind, key, , back] of SETTINGS[naming]) {
        if (isSwapKey(key) && !hasSwap) continue;
        const want = typeof back === 'string' ? back : back[layout];
        expect(`${key} = ${await s().client.getValue(s().controller(kind), rel(), key)}`).toBe(`${key} = ${want}`);
      }
    });

    it('pins the container to one core (cpuset.cpus, same name on both versions)', async (ctx) => {
      if (!s().has('cpuset')) ctx.skip(`no cpuset controller on this ${layout} layout (the UML kernel has none)`);
      const effective = await s().client.getValue('cpuset', s().env.baseName, layout === 'v1' ? 'cpuset.effective_cpus' : 'cpuset.cpus.effective');
      const core = /^\d+/.exec(effective)?.[0] ?? '0';
      if (layout === 'v1' && s().read('cpuset', name, 'cpuset.mems') === '') {
        // Until Create fills a new v1 cpuset cgroup from its parent, the container takes the base's mems.
        await s().client.setValue('cpuset', rel(), 'cpuset.mems', s().read('cpuset', '', 'cpuset.mems'));
      }
      await s().client.setValue('cpuset', rel(), 'cpuset.cpus', core);
      expect(s().read('cpuset', name, 'cpuset.cpus')).toBe(core);
      // The v2 name of the effective set works on v1 and the v1 name on v2.
      const otherName = layout === 'v1' ? 'cpuset.cpus.effective' : 'cpuset.effective_cpus';
      expect(await s().client.getValue('cpuset', rel(), otherName)).toBe(core);
      const r = await s().env.run(['grep', '^Cpus_allowed_list', '/proc/self/status'], { at: { [s().label('cpuset')]: name } });
      expect(r.stdout.trim()).toBe(`Cpus_allowed_list:\t${core}`);
    });
  });
});
