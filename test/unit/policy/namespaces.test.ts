import { describe, expect, it } from 'vitest';
import { mayCallPlain, type CallerNamespaces, type Decision } from '../../../daemon/policy';

const SAME: CallerNamespaces = { samePidNs: true, sameUserNs: true };
const OTHER_PID: CallerNamespaces = { samePidNs: false, sameUserNs: true };
const OTHER_USER: CallerNamespaces = { samePidNs: true, sameUserNs: false };
const OTHER_BOTH: CallerNamespaces = { samePidNs: false, sameUserNs: false };

const ok: Decision = { allow: true };
const no = (reason: string): Decision => ({ allow: false, reason });
const PROXY = 'Escape request from different namespace requires a proxy';

describe('mayCallPlain (reference §4.6)', () => {
  it.each<[string, CallerNamespaces, Decision]>([
    ['Ping', OTHER_BOTH, ok],
    ['GetPidCgroup', SAME, ok],
    ['GetPidCgroup', OTHER_USER, ok],
    ['GetPidCgroup', OTHER_PID, no('GetPidCgroup called from non-init namespace')],
    ['GetPidCgroupAbs', SAME, ok],
    ['GetPidCgroupAbs', OTHER_USER, ok],
    ['GetPidCgroupAbs', OTHER_PID, no('GetPidCgroupAbs called from non-init namespace')],
    ['Create', OTHER_BOTH, ok],
    ['Chown', SAME, ok],
    ['Chown', OTHER_PID, ok],
    ['Chown', OTHER_USER, no('chown called from different user namespace')],
    ['Chown', OTHER_BOTH, no('chown called from different user namespace')],
    ['Chmod', OTHER_BOTH, ok],
    ['MovePid', SAME, ok],
    ['MovePid', OTHER_USER, ok],
    ['MovePid', OTHER_PID, no(PROXY)],
    ['MovePidAbs', SAME, ok],
    ['MovePidAbs', OTHER_USER, ok],
    ['MovePidAbs', OTHER_PID, no(PROXY)],
    ['MovePidAbs', OTHER_BOTH, no(PROXY)],
    ['GetValue', OTHER_BOTH, ok],
    ['SetValue', OTHER_BOTH, ok],
    ['Remove', OTHER_BOTH, ok],
    ['GetTasks', OTHER_BOTH, ok],
    ['GetTasksRecursive', OTHER_BOTH, ok],
    ['ListChildren', OTHER_BOTH, ok],
    ['RemoveOnEmpty', OTHER_BOTH, ok],
    ['Prune', OTHER_BOTH, ok],
    ['ListControllers', OTHER_BOTH, ok],
    ['ListKeys', OTHER_BOTH, ok],
    // Scm variants are never subject to these rules: the kernel translated their credentials.
    ['MovePidScm', OTHER_BOTH, ok],
    ['ChownScm', OTHER_BOTH, ok],
    ['GetPidCgroupScm', OTHER_BOTH, ok],
    // A name that is a property of every JS object must not be mistaken for a rule.
    ['constructor', OTHER_BOTH, ok],
    ['toString', OTHER_BOTH, ok],
  ])('%s from %o', (method, caller, expected) => {
    expect(mayCallPlain(method, caller)).toEqual(expected);
  });
});
