// HeldProcess: a pidfd names one process; once it exits, the hold says so whatever the pid
// names by then.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HeldProcess } from '../../../daemon/proc/held-process';
import { CgmError } from '../../../daemon/errors';

describe('HeldProcess', () => {
  it('is alive while the process runs, and refuses once it has exited', async () => {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const held = HeldProcess.hold(pid);
    expect(() => held.assertAlive()).not.toThrow();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(() => held.assertAlive()).toThrow(expect.objectContaining({ code: 'UnixProcessIdUnknown', message: `process ${pid} exited during the call` }));
    held.close();
    held.close();
  });

  it('a pid with no process is UnixProcessIdUnknown', () => {
    let err: unknown;
    try {
      HeldProcess.hold(0x3fffffff);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CgmError);
    expect((err as CgmError).code).toBe('UnixProcessIdUnknown');
  });
});
