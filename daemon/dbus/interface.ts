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
  /** for an Scm method: how it stands for its plain twin (the credentials it carries, its result encoding) */
  readonly scmShape?: ScmShape;
}

/**
 * Where one in-argument of an Scm method (before the fd) comes from, given the plain call:
 * a plain argument as it is, whether the owner credential follows (SetupScm's `chown`), or
 * how many pid credentials follow (SetupScm's `npids`).
 */
export type ScmArgSource = { readonly plain: number } | { readonly ownerGiven: readonly [uid: number, gid: number] } | { readonly count: number };

/**
 * A credential an Scm call sends after the requestor's (reference §6.2), carrying what the
 * plain call passes as arguments, so that the kernel translates it across namespaces:
 * `pid` a victim pid (plain argument index); `owner` a uid and gid (indexes), sent only
 * when `ownerGiven` says so for an optional one; `pids` one credential per pid of an `ai`.
 */
export type ScmCredentialSource =
  | { readonly pid: number }
  | { readonly owner: readonly [uid: number, gid: number]; readonly optional?: boolean }
  | { readonly pids: number };

/**
 * How the result travels back on the socket: the reference's encodings (§6.4) for 0_0,
 * and for cgmanager1 `body`: one datagram holding the plain reply body marshalled
 * little-endian with the plain out signature (the error detail datagram alone on failure).
 */
export type ScmResultKind = 'status' | 'existed' | 'string' | 'tasks' | 'names' | 'keys' | 'body';

/** How an Scm method stands for its plain twin: the one description daemon, client, proxy and README use. */
export interface ScmShape {
  readonly plain: string;
  /** one entry per Scm in-argument before the fd */
  readonly args: readonly ScmArgSource[];
  readonly credentials: readonly ScmCredentialSource[];
  readonly result: ScmResultKind;
  /**
   * a{sv} replies: the entry `key` lists the pids of plain argument `arg`. The daemon can only
   * name them in its own pid namespace, so the Scm caller puts back the ones it sent.
   */
  readonly echoesPids?: { readonly key: string; readonly arg: number };
}

/**
 * Whether exactly one credential always follows the requestor's (a victim pid, or Chown's
 * owner): the reference's 0_0 exchanges with a second credential.
 */
export function hasOneCredential(shape: ScmShape): boolean {
  const [only] = shape.credentials;
  return shape.credentials.length === 1 && only !== undefined && !('pids' in only) && !('optional' in only && only.optional);
}

/** uid and gid 0xffffffff (both) in Setup: no chown, so SetupScm sends no owner credential. */
export const NO_OWNER = 0xffffffff;

const c: Arg = ['controller', 's'];
const cg: Arg = ['cgroup', 's'];
const fd: Arg = ['sockfd', 'h'];

function method(name: string, inArgs: Arg[], outArgs: Arg[] = [], iface = INTERFACE_NAME, scmShape?: ScmShape): MethodSpec {
  return {
    name,
    interface: iface,
    in: inArgs,
    out: outArgs,
    inSignature: inArgs.map((a) => a[1]).join(''),
    outSignature: outArgs.map((a) => a[1]).join(''),
    scm: name.endsWith('Scm'),
    ...(scmShape ? { scmShape } : {}),
  };
}

/** The plain arguments at these indexes are kept as they are. */
const keep = (...indexes: number[]): ScmArgSource[] => indexes.map((plain) => ({ plain }));

/** An Scm method of 0_0: its plain twin is its name without 'Scm'. */
function scm0(name: string, inArgs: Arg[], args: ScmArgSource[], result: ScmResultKind, credentials: ScmCredentialSource[] = []): MethodSpec {
  return method(name, inArgs, [], INTERFACE_NAME, { plain: name.slice(0, -3), args, credentials, result });
}

export const METHODS: readonly MethodSpec[] = [
  method('Ping', [['junk', 'i']]),
  scm0('GetPidCgroupScm', [c, fd], keep(0), 'string', [{ pid: 1 }]),
  method('GetPidCgroup', [c, ['pid', 'i']], [['output', 's']]),
  scm0('GetPidCgroupAbsScm', [c, fd], keep(0), 'string', [{ pid: 1 }]),
  method('GetPidCgroupAbs', [c, ['pid', 'i']], [['output', 's']]),
  scm0('CreateScm', [c, cg, fd], keep(0, 1), 'existed'),
  method('Create', [c, cg], [['existed', 'i']]),
  // The new owner travels as the second credential, mapped by the kernel.
  scm0('ChownScm', [c, cg, fd], keep(0, 1), 'status', [{ owner: [2, 3] }]),
  method('Chown', [c, cg, ['uid', 'i'], ['gid', 'i']]),
  scm0('ChmodScm', [c, cg, ['file', 's'], ['mode', 'i'], fd], keep(0, 1, 2, 3), 'status'),
  method('Chmod', [c, cg, ['file', 's'], ['mode', 'i']]),
  scm0('MovePidScm', [c, cg, fd], keep(0, 1), 'status', [{ pid: 2 }]),
  method('MovePid', [c, cg, ['pid', 'i']]),
  scm0('MovePidAbsScm', [c, cg, fd], keep(0, 1), 'status', [{ pid: 2 }]),
  method('MovePidAbs', [c, cg, ['pid', 'i']]),
  scm0('GetValueScm', [c, cg, ['key', 's'], fd], keep(0, 1, 2), 'string'),
  method('GetValue', [c, cg, ['key', 's']], [['value', 's']]),
  scm0('SetValueScm', [c, cg, ['key', 's'], ['value', 's'], fd], keep(0, 1, 2, 3), 'status'),
  method('SetValue', [c, cg, ['key', 's'], ['value', 's']]),
  scm0('RemoveScm', [c, cg, ['recursive', 'i'], fd], keep(0, 1, 2), 'existed'),
  method('Remove', [c, cg, ['recursive', 'i']], [['existed', 'i']]),
  scm0('GetTasksScm', [c, cg, fd], keep(0, 1), 'tasks'),
  method('GetTasks', [c, cg], [['output', 'ai']]),
  scm0('GetTasksRecursiveScm', [c, cg, fd], keep(0, 1), 'tasks'),
  method('GetTasksRecursive', [c, cg], [['output', 'ai']]),
  scm0('ListChildrenScm', [c, cg, fd], keep(0, 1), 'names'),
  method('ListChildren', [c, cg], [['output', 'as']]),
  scm0('RemoveOnEmptyScm', [c, cg, fd], keep(0, 1), 'status'),
  method('RemoveOnEmpty', [c, cg]),
  scm0('PruneScm', [c, cg, fd], keep(0, 1), 'status'),
  method('Prune', [c, cg]),
  method('ListControllers', [], [['output', 'as']]),
  scm0('ListKeysScm', [c, cg, fd], keep(0, 1), 'keys'),
  method('ListKeys', [c, cg], [['output', 'a(suuu)']]),
];

const ctls: Arg = ['controllers', 's'];
const m1 = (name: string, inArgs: Arg[], outArgs: Arg[] = [], scmShape?: ScmShape): MethodSpec => method(name, inArgs, outArgs, INTERFACE1_NAME, scmShape);
/** A cgmanager1 Scm form: the result is the plain reply body. */
const scm1 = (name: string, inArgs: Arg[], args: ScmArgSource[], credentials: ScmCredentialSource[] = []): MethodSpec =>
  m1(name, inArgs, [], { plain: name.slice(0, -3), args, credentials, result: 'body' });

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
  m1('SetupScm', [ctls, cg, ['limits', 'a{ss}'], ['chown', 'b'], ['npids', 'i'], fd], [], {
    plain: 'Setup',
    args: [{ plain: 0 }, { plain: 1 }, { plain: 4 }, { ownerGiven: [2, 3] }, { count: 5 }],
    credentials: [{ owner: [2, 3], optional: true }, { pids: 5 }],
    result: 'body',
    // Setup moves every pid or none, so on success `moved` is the pids as the caller named them.
    echoesPids: { key: 'moved', arg: 5 },
  }),
  m1('Stats', [ctls, cg], [['stats', 'a{sv}']]),
  scm1('StatsScm', [ctls, cg, fd], keep(0, 1)),
  m1('Freeze', [cg]),
  scm1('FreezeScm', [cg, fd], keep(0)),
  m1('Thaw', [cg]),
  scm1('ThawScm', [cg, fd], keep(0)),
  m1('Kill', [cg]),
  scm1('KillScm', [cg, fd], keep(0)),
  // Watch/Unwatch: signals go to the calling connection (daemon/requests/watch-handlers.ts;
  // cgproxy relays them, proxy/watch-relay.ts). The Scm forms answer '1' as 0_0's do.
  m1('Watch', [cg]),
  method('WatchScm', [cg, fd], [], INTERFACE1_NAME, { plain: 'Watch', args: keep(0), credentials: [], result: 'status' }),
  m1('Unwatch', [cg]),
  method('UnwatchScm', [cg, fd], [], INTERFACE1_NAME, { plain: 'Unwatch', args: keep(0), credentials: [], result: 'status' }),
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

/** Every Scm method that has a shape, by name. */
export const SCM_SHAPES: ReadonlyMap<string, ScmShape> = new Map(
  [...METHODS, ...METHODS1].flatMap((m): Array<[string, ScmShape]> => (m.scmShape ? [[m.name, m.scmShape]] : [])),
);

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
