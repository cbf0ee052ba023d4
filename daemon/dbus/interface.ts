// The one description of the cgmanager D-Bus interface: every method's name, argument
// names and types in the original XML's order. Dispatch, introspection, the client
// library and the proxy are all generated from this table.

export const OBJECT_PATH = '/org/linuxcontainers/cgmanager';
export const INTERFACE_NAME = 'org.linuxcontainers.cgmanager0_0';
/** Raised by one for each capability we add (README changelog). 10 is the original's last. */
export const API_VERSION = 13;

export type Arg = readonly [name: string, type: string];

export interface MethodSpec {
  readonly name: string;
  readonly in: readonly Arg[];
  readonly out: readonly Arg[];
  /** signature of the in-arguments, e.g. 'ssi' */
  readonly inSignature: string;
  readonly outSignature: string;
  /** the Scm variant of a plain method has the same name plus 'Scm' and an 'h' last */
  readonly scm: boolean;
}

const c: Arg = ['controller', 's'];
const cg: Arg = ['cgroup', 's'];
const fd: Arg = ['sockfd', 'h'];

function method(name: string, inArgs: Arg[], outArgs: Arg[] = []): MethodSpec {
  return {
    name,
    in: inArgs,
    out: outArgs,
    inSignature: inArgs.map((a) => a[1]).join(''),
    outSignature: outArgs.map((a) => a[1]).join(''),
    scm: name.endsWith('Scm'),
  };
}

export const METHODS: readonly MethodSpec[] = [
  method('Ping', [['junk', 'i']]),
  method('GetPidCgroupScm', [c, fd]),
  method('GetPidCgroup', [c, ['pid', 'i']], [['output', 's']]),
  method('GetPidCgroupAbsScm', [c, fd]),
  method('GetPidCgroupAbs', [c, ['pid', 'i']], [['output', 's']]),
  method('CreateScm', [c, cg, fd]),
  method('Create', [c, cg], [['existed', 'i']]),
  method('ChownScm', [c, cg, fd]),
  method('Chown', [c, cg, ['uid', 'i'], ['gid', 'i']]),
  method('ChmodScm', [c, cg, ['file', 's'], ['mode', 'i'], fd]),
  method('Chmod', [c, cg, ['file', 's'], ['mode', 'i']]),
  method('MovePidScm', [c, cg, fd]),
  method('MovePid', [c, cg, ['pid', 'i']]),
  method('MovePidAbsScm', [c, cg, fd]),
  method('MovePidAbs', [c, cg, ['pid', 'i']]),
  method('GetValueScm', [c, cg, ['key', 's'], fd]),
  method('GetValue', [c, cg, ['key', 's']], [['value', 's']]),
  method('SetValueScm', [c, cg, ['key', 's'], ['value', 's'], fd]),
  method('SetValue', [c, cg, ['key', 's'], ['value', 's']]),
  method('RemoveScm', [c, cg, ['recursive', 'i'], fd]),
  method('Remove', [c, cg, ['recursive', 'i']], [['existed', 'i']]),
  method('GetTasksScm', [c, cg, fd]),
  method('GetTasks', [c, cg], [['output', 'ai']]),
  method('GetTasksRecursiveScm', [c, cg, fd]),
  method('GetTasksRecursive', [c, cg], [['output', 'ai']]),
  method('ListChildrenScm', [c, cg, fd]),
  method('ListChildren', [c, cg], [['output', 'as']]),
  method('RemoveOnEmptyScm', [c, cg, fd]),
  method('RemoveOnEmpty', [c, cg]),
  method('PruneScm', [c, cg, fd]),
  method('Prune', [c, cg]),
  method('ListControllers', [], [['output', 'as']]),
  method('ListKeysScm', [c, cg, fd]),
  method('ListKeys', [c, cg], [['output', 'a(suuu)']]),
];

export const METHODS_BY_NAME: ReadonlyMap<string, MethodSpec> = new Map(METHODS.map((m) => [m.name, m]));

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function methodXml(name: string, inArgs: readonly Arg[], outArgs: readonly Arg[]): string {
  const lines = [`    <method name="${xmlEscape(name)}">`];
  for (const [n, t] of inArgs) lines.push(`      <arg name="${n}" type="${t}" direction="in"/>`);
  for (const [n, t] of outArgs) lines.push(`      <arg name="${n}" type="${t}" direction="out"/>`);
  lines.push('    </method>');
  return lines.join('\n');
}

/** Introspection XML in libnih's layout: our interface, then Properties, Introspectable, Peer. */
export function introspectionXml(methods: readonly MethodSpec[] = METHODS): string {
  return [
    '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
    '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
    `<node name="${OBJECT_PATH}">`,
    `  <interface name="${INTERFACE_NAME}">`,
    ...methods.map((m) => methodXml(m.name, m.in, m.out)),
    '    <property name="api_version" type="i" access="read"/>',
    '  </interface>',
    '  <interface name="org.freedesktop.DBus.Properties">',
    methodXml('Get', [['interface_name', 's'], ['property_name', 's']], [['value', 'v']]),
    methodXml('Set', [['interface_name', 's'], ['property_name', 's'], ['value', 'v']], []),
    methodXml('GetAll', [['interface_name', 's']], [['props', 'a{sv}']]),
    '  </interface>',
    '  <interface name="org.freedesktop.DBus.Introspectable">',
    methodXml('Introspect', [], [['data', 's']]),
    '  </interface>',
    '  <interface name="org.freedesktop.DBus.Peer">',
    methodXml('Ping', [], []),
    methodXml('GetMachineId', [], [['machine_uuid', 's']]),
    '  </interface>',
    '</node>',
    '',
  ].join('\n');
}
