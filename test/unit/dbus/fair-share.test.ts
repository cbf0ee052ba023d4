import { describe, expect, it } from 'vitest';
import { FairShare } from '../../../daemon/dbus/fair-share';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairShare', () => {
  it('lets a uid run until its budget for this turn is used, others independently', () => {
    const f = new FairShare(1000);
    expect(f.mayRun(1)).toBe(true);
    f.charge(1, 600);
    expect(f.mayRun(1)).toBe(true);
    f.charge(1, 600);
    expect(f.mayRun(1)).toBe(false);
    expect(f.mayRun(2)).toBe(true);
  });

  it('gives every uid a fresh budget on the next turn and resumes the waiting', async () => {
    const f = new FairShare(1000);
    f.charge(1, 5000);
    const resumed: string[] = [];
    f.waitTurn(() => resumed.push('a'));
    f.waitTurn(() => resumed.push('b'));
    expect(resumed).toEqual([]);
    await nextTurn();
    expect(resumed).toEqual(['a', 'b']);
    expect(f.mayRun(1)).toBe(true);
  });

  it('a waiter that uses up the budget again waits for the turn after', async () => {
    const f = new FairShare(1000);
    let runs = 0;
    const work = (): void => {
      runs++;
      f.charge(7, 2000);
      if (runs < 3) f.waitTurn(work);
    };
    work();
    expect(runs).toBe(1);
    await nextTurn();
    expect(runs).toBe(2);
    await nextTurn();
    expect(runs).toBe(3);
  });
});
