import { describe, expect, it } from 'vitest';
import { ALL_METHODS, API_VERSION, INTERFACE_NAME, INTERFACE1_NAME, introspectionXml, METHODS, METHODS1, METHODS_BY_NAME, OBJECT_PATH, SIGNALS1 } from '../../../daemon/dbus/interface';

// Reference §1.8 (XML order) and §2 (names and signatures), CGManager 0.42.
const REFERENCE: Array<[name: string, inArgs: string, outArgs: string]> = [
  ['Ping', 'junk:i', ''],
  ['GetPidCgroupScm', 'controller:s sockfd:h', ''],
  ['GetPidCgroup', 'controller:s pid:i', 'output:s'],
  ['GetPidCgroupAbsScm', 'controller:s sockfd:h', ''],
  ['GetPidCgroupAbs', 'controller:s pid:i', 'output:s'],
  ['CreateScm', 'controller:s cgroup:s sockfd:h', ''],
  ['Create', 'controller:s cgroup:s', 'existed:i'],
  ['ChownScm', 'controller:s cgroup:s sockfd:h', ''],
  ['Chown', 'controller:s cgroup:s uid:i gid:i', ''],
  ['ChmodScm', 'controller:s cgroup:s file:s mode:i sockfd:h', ''],
  ['Chmod', 'controller:s cgroup:s file:s mode:i', ''],
  ['MovePidScm', 'controller:s cgroup:s sockfd:h', ''],
  ['MovePid', 'controller:s cgroup:s pid:i', ''],
  ['MovePidAbsScm', 'controller:s cgroup:s sockfd:h', ''],
  ['MovePidAbs', 'controller:s cgroup:s pid:i', ''],
  ['GetValueScm', 'controller:s cgroup:s key:s sockfd:h', ''],
  ['GetValue', 'controller:s cgroup:s key:s', 'value:s'],
  ['SetValueScm', 'controller:s cgroup:s key:s value:s sockfd:h', ''],
  ['SetValue', 'controller:s cgroup:s key:s value:s', ''],
  ['RemoveScm', 'controller:s cgroup:s recursive:i sockfd:h', ''],
  ['Remove', 'controller:s cgroup:s recursive:i', 'existed:i'],
  ['GetTasksScm', 'controller:s cgroup:s sockfd:h', ''],
  ['GetTasks', 'controller:s cgroup:s', 'output:ai'],
  ['GetTasksRecursiveScm', 'controller:s cgroup:s sockfd:h', ''],
  ['GetTasksRecursive', 'controller:s cgroup:s', 'output:ai'],
  ['ListChildrenScm', 'controller:s cgroup:s sockfd:h', ''],
  ['ListChildren', 'controller:s cgroup:s', 'output:as'],
  ['RemoveOnEmptyScm', 'controller:s cgroup:s sockfd:h', ''],
  ['RemoveOnEmpty', 'controller:s cgroup:s', ''],
  ['PruneScm', 'controller:s cgroup:s sockfd:h', ''],
  ['Prune', 'controller:s cgroup:s', ''],
  ['ListControllers', '', 'output:as'],
  ['ListKeysScm', 'controller:s cgroup:s sockfd:h', ''],
  ['ListKeys', 'controller:s cgroup:s', 'output:a(suuu)'],
];

const args = (list: ReadonlyArray<readonly [string, string]>): string => list.map(([n, t]) => `${n}:${t}`).join(' ');
const sig = (spec: string): string => (spec === '' ? '' : spec.split(' ').map((a) => a.split(':')[1]).join(''));

describe('the cgmanager interface table', () => {
  it('has the reference names', () => {
    expect(OBJECT_PATH).toBe('/org/linuxcontainers/cgmanager');
    expect(INTERFACE_NAME).toBe('org.linuxcontainers.cgmanager0_0');
    expect(API_VERSION).toBeGreaterThanOrEqual(10);
  });

  it('lists exactly the 34 methods of the reference, in its XML order', () => {
    expect(METHODS).toHaveLength(34);
    expect(METHODS.map((m) => m.name)).toEqual(REFERENCE.map(([name]) => name));
  });

  it.each(REFERENCE)('%s(%s) -> (%s)', (name, inArgs, outArgs) => {
    const spec = METHODS_BY_NAME.get(name);
    expect(spec).toBeDefined();
    expect(args(spec!.in)).toBe(inArgs);
    expect(args(spec!.out)).toBe(outArgs);
    expect(spec!.inSignature).toBe(sig(inArgs));
    expect(spec!.outSignature).toBe(sig(outArgs));
    expect(spec!.scm).toBe(name.endsWith('Scm'));
  });

  it('gives every Scm method a trailing h, no output, and a plain twin with the same leading arguments', () => {
    const scm = METHODS.filter((m) => m.scm);
    expect(scm).toHaveLength(16);
    for (const m of scm) {
      expect(m.inSignature.endsWith('h'), m.name).toBe(true);
      expect(m.inSignature.indexOf('h'), m.name).toBe(m.inSignature.length - 1);
      expect(m.out, m.name).toEqual([]);
      const twin = METHODS_BY_NAME.get(m.name.slice(0, -'Scm'.length));
      expect(twin, `${m.name} has a plain twin`).toBeDefined();
      expect(twin!.scm).toBe(false);
      // The Scm form drops the pid/uid/gid arguments the kernel supplies instead.
      const plainNames = twin!.in.map(([n]) => n).filter((n) => !['pid', 'uid', 'gid'].includes(n));
      expect(m.in.slice(0, -1).map(([n]) => n), m.name).toEqual(plainNames);
    }
  });

  it('puts h only in Scm methods', () => {
    for (const m of METHODS.filter((x) => !x.scm)) expect(m.inSignature, m.name).not.toContain('h');
  });

  it('indexes every method by name', () => {
    for (const m of ALL_METHODS) expect(METHODS_BY_NAME.get(m.name)).toBe(m);
    expect(METHODS_BY_NAME.size).toBe(METHODS.length + METHODS1.length);
  });
});

/** A tiny well-formedness check: tags balance, attributes are quoted, nothing stray between tags. */
function checkXml(xml: string): Array<{ name: string; attrs: Record<string, string>; path: string[] }> {
  const body = xml.replace(/^<!DOCTYPE[^>]*>\s*/, '');
  const elements: Array<{ name: string; attrs: Record<string, string>; path: string[] }> = [];
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="(?:[^"<>&]|&(?:lt|gt|amp|quot|apos);)*")*)\s*(\/?)>/y;
  let pos = 0;
  while (pos < body.length) {
    const ws = /\s*/y;
    ws.lastIndex = pos;
    pos += ws.exec(body)![0].length;
    if (pos >= body.length) break;
    tag.lastIndex = pos;
    const m = tag.exec(body);
    if (!m) throw new Error(`not well-formed at ${pos}: ${JSON.stringify(body.slice(pos, pos + 40))}`);
    pos = tag.lastIndex;
    const [, close, name, attrText, selfClose] = m as unknown as [string, string, string, string, string];
    if (close) {
      if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of attrText.matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
      if (a[1]! in attrs) throw new Error(`repeated attribute ${a[1]}`);
      attrs[a[1]!] = a[2]!;
    }
    elements.push({ name, attrs, path: [...stack] });
    if (!selfClose) stack.push(name);
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('><')}>`);
  return elements;
}

describe('introspectionXml', () => {
  const xml = introspectionXml();
  const elements = checkXml(xml);
  const interfaces = elements.filter((e) => e.name === 'interface').map((e) => e.attrs.name);
  const methodsOf = (iface: string): string[] => {
    const out: string[] = [];
    let current = '';
    for (const e of elements) {
      if (e.name === 'interface') current = e.attrs.name!;
      else if (e.name === 'method' && current === iface) out.push(e.attrs.name!);
    }
    return out;
  };

  it('starts with the D-Bus introspection DOCTYPE and one root node named by the object path', () => {
    expect(xml.startsWith('<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n')).toBe(true);
    expect(elements[0]).toMatchObject({ name: 'node', attrs: { name: OBJECT_PATH }, path: [] });
    expect(elements.filter((e) => e.path.length === 0)).toHaveLength(1);
  });

  it('lists the 0_0 interface, then cgmanager1, then Properties, Introspectable and Peer (libnih order)', () => {
    expect(interfaces).toEqual([INTERFACE_NAME, INTERFACE1_NAME, 'org.freedesktop.DBus.Properties', 'org.freedesktop.DBus.Introspectable', 'org.freedesktop.DBus.Peer']);
  });

  it('lists all 34 methods in order, with their arguments', () => {
    expect(methodsOf(INTERFACE_NAME)).toEqual(REFERENCE.map(([n]) => n));
    let current = '';
    let iface = '';
    const seen = new Map<string, string[]>();
    for (const e of elements) {
      if (e.name === 'interface') iface = e.attrs.name!;
      if (iface !== INTERFACE_NAME) continue;
      if (e.name === 'method') {
        current = e.attrs.name!;
        seen.set(current, []);
      } else if (e.name === 'arg' && e.path.at(-1) === 'method') {
        seen.get(current)!.push(`${e.attrs.direction}:${e.attrs.name}:${e.attrs.type}`);
      }
    }
    for (const [name, inArgs, outArgs] of REFERENCE) {
      const expected = [
        ...(inArgs ? inArgs.split(' ').map((a) => `in:${a}`) : []),
        ...(outArgs ? outArgs.split(' ').map((a) => `out:${a}`) : []),
      ];
      expect(seen.get(name), name).toEqual(expected);
    }
  });

  it('declares the read-only int32 api_version property on our interface', () => {
    const props = elements.filter((e) => e.name === 'property');
    expect(props).toEqual([{ name: 'property', attrs: { name: 'api_version', type: 'i', access: 'read' }, path: ['node', 'interface'] }]);
    const ifaceIndex = elements.findIndex((e) => e.name === 'interface' && e.attrs.name === INTERFACE_NAME);
    const propIndex = elements.findIndex((e) => e.name === 'property');
    const nextIface = elements.findIndex((e, i) => i > ifaceIndex && e.name === 'interface');
    expect(propIndex).toBeGreaterThan(ifaceIndex);
    expect(propIndex).toBeLessThan(nextIface);
  });

  it.each<[string, string[]]>([
    ['org.freedesktop.DBus.Properties', ['Get', 'Set', 'GetAll']],
    ['org.freedesktop.DBus.Introspectable', ['Introspect']],
    ['org.freedesktop.DBus.Peer', ['Ping', 'GetMachineId']],
  ])('lists the methods of %s', (iface, methods) => {
    expect(methodsOf(iface)).toEqual(methods);
  });

  it('lists every cgmanager1 method and signal with its arguments', () => {
    expect(methodsOf(INTERFACE1_NAME)).toEqual(METHODS1.map((m) => m.name));
    const signals = elements.filter((e) => e.name === 'signal').map((e) => e.attrs.name);
    expect(signals).toEqual(SIGNALS1.map((s) => s.name));
    for (const e of elements.filter((x) => x.name === 'arg' && x.path.at(-1) === 'signal')) expect(e.attrs.direction).toBeUndefined();
  });

  it('gives every method argument a direction and a single complete type', () => {
    for (const e of elements.filter((x) => x.name === 'arg')) {
      if (e.path.at(-1) === 'method') expect(['in', 'out']).toContain(e.attrs.direction);
      expect(e.attrs.type).toMatch(/^(?:[sihuvgbt]|a[si]|a\(suuu\)|a\{s[sv]\})$/);
      expect(e.attrs.name).toMatch(/^[a-z_]+$/);
    }
  });

  it('escapes what it is given', () => {
    const odd = introspectionXml([{ name: 'A<&>"B', interface: INTERFACE_NAME, in: [], out: [], inSignature: '', outSignature: '', scm: false }]);
    expect(() => checkXml(odd)).not.toThrow();
    expect(odd).toContain('name="A&lt;&amp;&gt;&quot;B"');
  });

  it('the checker itself rejects broken XML', () => {
    expect(() => checkXml('<node><a></node>')).toThrow();
    expect(() => checkXml('<node name=x/>')).toThrow();
    expect(() => checkXml('<node>')).toThrow();
  });
});
