// Puts a compiled device program on a cgroup v2 directory through the addon's bpf(2) calls.
// Our program is swapped in place with BPF_F_ALLOW_MULTI | BPF_F_REPLACE: the kernel rebuilds
// the cgroup's effective program array once, with the new program where the old one was, so
// there is no moment where neither or both of them apply. (Attach-new-then-detach-old would
// apply both for a moment, i.e. deny what either denies; detach-then-attach would open a
// window with neither.) ALLOW_MULTI keeps every ancestor's program running too, and a device
// access passes only if all of them allow it: a child never gets more than its parents.
// Never logs; errors come back as CgmErrors naming the cgroup.
import * as fs from 'node:fs';
import { bpfAttachDeviceProgram, bpfLoadDeviceProgram, bpfProgramFdById, bpfProgramId, bpfQueryDevicePrograms, closeFd, type BpfLoadError } from '../../../addon';
import { CgmError, errorFromErrno } from '../../errors';
import { compileDeviceRules, encodeInsns } from './compile';
import type { DeviceRules } from './rules';

/** The name bpftool shows for our programs. */
export const PROGRAM_NAME = 'cgm_devices';

function withCgroupFd<T>(dir: string, what: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch (err) {
    throw errorFromErrno(err, `cannot open ${what}`);
  }
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Ids of the device programs attached to the cgroup itself. */
export function attachedProgramIds(dir: string, what: string): number[] {
  return withCgroupFd(dir, what, (fd) => {
    try {
      return bpfQueryDevicePrograms(fd);
    } catch (err) {
      throw errorFromErrno(err, `cannot query the device programs of ${what}`);
    }
  });
}

/** The fd of program `id` when it is still attached to the cgroup, else undefined. */
function attachedFd(cgroupFd: number, id: number | undefined): number | undefined {
  if (id === undefined || !bpfQueryDevicePrograms(cgroupFd).includes(id)) return undefined;
  try {
    return bpfProgramFdById(id);
  } catch {
    return undefined; // detached and freed between the two calls
  }
}

/**
 * Compiles `rules`, loads the program and attaches it to the cgroup at `dir`, in place of
 * program `previousId` when that one is still attached there. Returns the new program's id.
 * On failure nothing changed: the previous program (if any) still applies.
 */
export function installDeviceProgram(dir: string, what: string, rules: DeviceRules, previousId: number | undefined): number {
  const insns = encodeInsns(compileDeviceRules(rules));
  let progFd: number;
  try {
    progFd = bpfLoadDeviceProgram(insns, PROGRAM_NAME);
  } catch (err) {
    // Not the caller's fault whatever the errno (a verifier refusal is our bug, EPERM means
    // the daemon lacks CAP_BPF/CAP_SYS_ADMIN): Failed, with the verifier's log for our log.
    const e = errorFromErrno(err, `cannot load the device program for ${what}`);
    throw Object.assign(new CgmError('Failed', e.message), { verifierLog: (err as BpfLoadError).log });
  }
  try {
    return withCgroupFd(dir, what, (cgroupFd) => {
      const oldFd = attachedFd(cgroupFd, previousId);
      try {
        bpfAttachDeviceProgram(cgroupFd, progFd, oldFd);
      } catch (err) {
        throw errorFromErrno(err, `cannot attach the device program to ${what}`);
      } finally {
        if (oldFd !== undefined) closeFd(oldFd);
      }
      return bpfProgramId(progFd);
    });
  } finally {
    // The attached program is held by the cgroup; our fd is not needed any more.
    closeFd(progFd);
  }
}
