// Freeze, thaw and kill a container's subtree through SetValue, with the v1 names
// (freezer.state) and the v2 names (cgroup.freeze, cgroup.kill), on v1 and on v2, checked
// in the kernel's files and by the fate of a real task; a caller who may not write the
// freezer files is refused.
import { describe, expect, it } from 'vitest';
import { connect } from '../../../client';
import { availableV1Controllers, waitFor } from '../../helpers';
import { describeOnEachLayout } from './scenario-layout';

type Naming = 'v1 names' | 'v2 names';

const KEYS: Readonly<Record<Naming, { key: string; frozen: string; thawed: string }>> = {
  'v1 names': { key: 'freezer.state', frozen: 'FROZEN', thawed: 'THAWED' },
  'v2 names': { key: 'cgroup.freeze', frozen: '1', thawed: '0' },
};

describeOnEachLayout('freeze, thaw and kill', (s, layout) => {
  /** The kernel's own word on whether the container is frozen. */
  const kernelFrozen = (name: string): boolean =>
    layout === 'v1' ? s().read('freezer', name, 'freezer.state') === 'FROZEN' : /^frozen 1$/m.test(s().read('freezer', name, 'cgroup.events'));

  /** No task left anywhere in the container (v2: cgroup.events; v1: both cgroups' procs). */
  const isEmpty = (name: string): boolean =>
    layout === 'v1'
      ? s().read('freezer', name, 'cgroup.procs') === '' && s().read('freezer', `${name}/inner`, 'cgroup.procs') === ''
      : /^populated 0$/m.test(s().read('freezer', name, 'cgroup.events'));

  describe.each<Naming>(['v1 names', 'v2 names'])('with the %s', (naming) => {
    const { key, frozen, thawed } = KEYS[naming];
    const name = `fk-${naming.slice(0, 2)}`;
    const rel = (): string => `${s().env.baseName}/${name}`;

    it('freezes and thaws the subtree, and reports it in the names used', async () => {
      await s().client.create('all', `${rel()}/inner`);
      const sleeper = await s().env.spawn(['sleep', '600'], { at: { [s().label('freezer')]: `${name}/inner` } });
      await s().client.setValue(s().controller('freezer'), rel(), key, frozen);
      // SetValue returns once the freeze has settled.
      expect(kernelFrozen(name)).toBe(true);
      expect(await s().client.getValue(s().controller('freezer'), rel(), key)).toBe(frozen);
      await s().client.setValue(s().controller('freezer'), rel(), key, thawed);
      expect(kernelFrozen(name)).toBe(false);
      expect(await s().client.getValue(s().controller('freezer'), rel(), key)).toBe(thawed);
      await sleeper.stop();
    });

    it('freezes through the Scm variant too (the result waits for the freeze)', async () => {
      const scm = await connect({ socket: s().env.socket, route: 'scm' });
      try {
        await scm.setValue(s().controller('freezer'), rel(), key, frozen);
        expect(kernelFrozen(name)).toBe(true);
        await scm.setValue(s().controller('freezer'), rel(), key, thawed);
        expect(kernelFrozen(name)).toBe(false);
      } finally {
        await scm.close();
      }
    });

    it('refuses a caller who may not write the freezer files, and changes nothing', async () => {
      const r = await s().env.dbusSend('SetValue', 'ssss', [s().controller('freezer'), name, key, frozen], { uid: 65534 });
      expect(r.ok).toBe(false);
      expect(r.errorName).toBe('org.freedesktop.DBus.Error.AccessDenied');
      expect(kernelFrozen(name)).toBe(false);
    });

    it('refuses a value that is neither frozen nor thawed', async () => {
      await expect(s().client.setValue(s().controller('freezer'), rel(), key, 'sometimes')).rejects.toMatchObject({ code: 'InvalidArgs' });
    });

    it('kills every task of the subtree with cgroup.kill', async () => {
      const a = await s().env.spawn(['sleep', '600'], { at: { [s().label('freezer')]: name } });
      const b = await s().env.spawn(['sleep', '601'], { at: { [s().label('freezer')]: `${name}/inner` } });
      await s().client.setValue(s().controller('freezer'), rel(), 'cgroup.kill', '1');
      const [ra, rb] = await Promise.all([a.result, b.result]);
      expect([ra.signal, rb.signal]).toEqual(['SIGKILL', 'SIGKILL']);
      expect(await waitFor(() => isEmpty(name), 5000, 20)).toBe(true);
      // Killing leaves the subtree thawed (the v1 fallback freezes it first).
      expect(kernelFrozen(name)).toBe(false);
    });
  });
},
  // v1 freezing needs the freezer hierarchy (this host and uml-run --layout v1 have one).
  (layout) => (layout === 'v1' && !startableFreezer() ? 'no v1 freezer hierarchy on this host' : undefined));

function startableFreezer(): boolean {
  return availableV1Controllers(['freezer']).length > 0;
}
