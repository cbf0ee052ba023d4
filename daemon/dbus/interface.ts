// The one description of the cgmanager D-Bus interfaces: every method's name, argument
// names and types (the classic 0_0 interface in the original XML's order, then the
// cgmanager1 interface of container-level calls and events). Dispatch, introspection,
// the client library and the proxy are all generated from this table.

export const OBJECT_PATH = '/org/linuxcontainers/cgmanager';
export const INTERFACE_NAME = 'org.linuxcontainers.cgmanager0_0';
/** Container-level calls (Setup, Stats, Freeze, Thaw, Kill) and events (Watch and its signals). */
export const INTERFACE1_NAME = 'org.linuxcontainers.cgmanager1';
/** Raised by one for each capability we add (README changelog). 10 is the original's last. */
export const API_VERSION = 14;

export type Arg = readonly [name: string, type: string];

export interface MethodSpec {
  readonly name: string;
  /** INTERFACE_NAME or INTERFACE1_NAME */
  readonly interface: string;
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

function method(name: string, inArgs: Arg[], outArgs: Arg[] = [], iface = INTERFACE_NAME): MethodSpec {
  return {
    name,
    interface: iface,
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

const ctls: Arg = ['controllers', 's'];
const m1 = (name: string, inArgs: Arg[], outArgs: Arg[] = []): MethodSpec => method(name, inArgs, outArgs, INTERFACE1_NAME);

/**
 * org.linuxcontainers.cgmanager1. `controllers` is a comma-separated list as cgm takes it
 * ('all' for every hierarchy); cgroups are relative to the requestor's own cgroup as in
 * 0_0. uid/gid 0xffffffff in Setup means "do not chown". An Scm form passes the
 * requestor's credential first, then (SetupScm) the owner's when `chown` is true and one
 * credential per pid; its result is one datagram holding the plain method's reply body
 * marshalled as D-Bus (little-endian) with its out signature, or on failure the error
 * detail datagram of api 11.
 */
export const METHODS1: readonly MethodSpec[] = [
  m1('Setup', [ctls, cg, ['uid', 'u'], ['gid', 'u'], ['limits', 'a{ss}'], ['pids', 'ai']], [['report', 'a{sv}']]),
  m1('SetupScm', [ctls, cg, ['limits', 'a{ss}'], ['chown', 'b'], ['npids', 'i'], fd]),
  m1('Stats', [ctls, cg], [['stats', 'a{sv}']]),
  m1('StatsScm', [ctls, cg, fd]),
  m1('Freeze', [cg]),
  m1('FreezeScm', [cg, fd]),
  m1('Thaw', [cg]),
  m1('ThawScm', [cg, fd]),
  m1('Kill', [cg]),
  m1('KillScm', [cg, fd]),
  m1('Watch', [cg]),
  m1('WatchScm', [cg, fd]),
  m1('Unwatch', [cg]),
  m1('UnwatchScm', [cg, fd]),
];

export interface SignalSpec {
  readonly name: string;
  readonly interface: string;
  readonly args: readonly Arg[];
  readonly signature: string;
}

function signal(name: string, args: Arg[]): SignalSpec {
  return { name, interface: INTERFACE1_NAME, args, signature: args.map((a) => a[1]).join('') };
}

/** Sent to a connection for each cgroup it watches; `cgroup` is the name it gave Watch. */
export const SIGNALS1: readonly SignalSpec[] = [
  signal('Emptied', [cg]),
  signal('OOM', [cg, ['count', 't']]),
  signal('Frozen', [cg, ['state', 'b']]),
];

/** Every method of both interfaces; names are unique across them. */
export const ALL_METHODS: readonly MethodSpec[] = [...METHODS, ...METHODS1];
export const METHODS_BY_NAME: ReadonlyMap<string, MethodSpec> = new Map(ALL_METHODS.map((m) => [m.name, m]));

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function signalXml(spec: SignalSpec): string {
  return [`    <signal name="${xmlEscape(spec.name)}">`, ...spec.args.map(([n, t]) => `      <arg name="${n}" type="${t}"/>`), '    </signal>'].join('\n');
}

function methodXml(name: string, inArgs: readonly Arg[], outArgs: readonly Arg[]): string {
  const lines = [`    <method name="${xmlEscape(name)}">`];
  for (const [n, t] of inArgs) lines.push(`      <arg name="${n}" type="${t}" direction="in"/>`);
  for (const [n, t] of outArgs) lines.push(`      <arg name="${n}" type="${t}" direction="out"/>`);
  lines.push('    </method>');
  return lines.join('\n');
}

/**
 * Introspection XML in libnih's layout: the 0_0 interface exactly as the original's, then
 * cgmanager1, then Properties, Introspectable, Peer.
 */
export function introspectionXml(methods: readonly MethodSpec[] = METHODS, methods1: readonly MethodSpec[] = METHODS1, signals1: readonly SignalSpec[] = SIGNALS1): string {
  return [
    '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
    '"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">',
    `<node name="${OBJECT_PATH}">`,
    `  <interface name="${INTERFACE_NAME}">`,
    ...methods.map((m) => methodXml(m.name, m.in, m.out)),
    '    <property name="api_version" type="i" access="read"/>',
    '  </interface>',
    ...(methods1.length + signals1.length > 0
      ? [`  <interface name="${INTERFACE1_NAME}">`, ...methods1.map((m) => methodXml(m.name, m.in, m.out)), ...signals1.map(signalXml), '  </interface>']
      : []),
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
