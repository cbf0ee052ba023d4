// GetPidCgroup and GetPidCgroupAbs (reference §5.2, §5.3): where a task is, relative
// to the requestor's cgroup ('xxx/b') or to the proxy's, or for a plain call the
// hierarchy root ('/xxx/b'). Tasks outside that base are not reported.
import { CgmError } from '../errors';
import { assertPid, chopProxySuffix, relativeAnswer } from '../policy';
import type { Runtime } from '../runtime';
import { processCgroup, type Caller } from './caller';
import { singleHierarchy } from './hierarchies';

export function getPidCgroup(rt: Runtime, caller: Caller, controller: string, pid: number, abs: boolean): string {
  const h = singleHierarchy(rt, controller);
  assertPid(pid);
  const victimCgroup = processCgroup(rt, pid, h);
  const base = abs ? chopProxySuffix(caller.proxyCgroup(h)) : caller.requestorCgroup(h);
  const answer = relativeAnswer(victimCgroup, base, abs);
  if (answer === undefined) {
    throw new CgmError('AccessDenied', `process ${pid} is outside the caller's cgroup ${h.primaryName}:${base}`);
  }
  return answer;
}
