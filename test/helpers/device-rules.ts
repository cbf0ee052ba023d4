// Device rule lists for tests, written as the lines a caller would set: 'deny a',
// 'allow c 1:3 rwm', ... applied in order from allow-all, as SetValue would apply them.
import { ALLOW_ALL, applyDeviceRule, parseDeviceRule, type DeviceRules } from '../../daemon/cgroupfs/device-acl/rules';

export function rulesFrom(lines: readonly string[]): DeviceRules {
  let rules = ALLOW_ALL;
  for (const line of lines) {
    const [file, ...rest] = line.split(' ');
    const p = parseDeviceRule(rest.join(' '));
    if (!p.ok) throw new Error(p.reason);
    const r = applyDeviceRule(rules, file as 'allow' | 'deny', p.rule, { parent: undefined, hasChildren: false });
    if (!r.ok) throw new Error(r.reason);
    rules = r.rules;
  }
  return rules;
}
