// A process held by a pidfd for the length of a request, so that what was checked about a
// pid (its uid, its cgroup) is about the process that is then acted on: if it exits and its
// pid is reused meanwhile, the pidfd still names the old process and says it exited.
// Where the kernel has no pidfds (before 5.3) the pid alone is all there is.
import { closeFd, pidfdExited, pidfdOpen } from '../../addon';
import { CgmError } from '../errors';

export class HeldProcess {
  private constructor(
    readonly pid: number,
    private fd: number,
  ) {}

  /** Holds `pid`; UnixProcessIdUnknown when there is no such process. */
  static hold(pid: number): HeldProcess {
    try {
      return new HeldProcess(pid, pidfdOpen(pid));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') throw new CgmError('UnixProcessIdUnknown', `process ${pid} does not exist`);
      throw err;
    }
  }

  /** Throws UnixProcessIdUnknown once the process has exited (its pid may name another by now). */
  assertAlive(): void {
    if (this.fd >= 0 && pidfdExited(this.fd)) throw new CgmError('UnixProcessIdUnknown', `process ${this.pid} exited during the call`);
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}
