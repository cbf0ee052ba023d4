// Command lines for the three real D-Bus clients (gdbus, busctl, dbus-send) talking to the
// daemon's peer-to-peer socket, and the reading of their results into one shape.
import { busctlError, dbusSendError, gdbusError, parseBusctlJson, parseDbusSendReply, parseGVariantText } from './client-output';
import type { RunResult } from './processes';
import { METHODS_BY_NAME } from '../../daemon/dbus/interface';

export const TOOLS = ['gdbus', 'busctl', 'dbus-send'] as const;
export type Tool = (typeof TOOLS)[number];

export const OBJECT_PATH = '/org/linuxcontainers/cgmanager';
export const INTERFACE = 'org.linuxcontainers.cgmanager0_0';
/** gdbus insists on a destination even on a peer connection; any valid bus name does. */
export const BUS_NAME = 'org.cgmanager';

/** An argument that the client process replaces with its own pid (the wrapper substitutes it before exec). */
export const SELF_PID = '@SELF@';

export type CallArg = string | number;

export interface CallResult {
  ok: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
  /** the reply's values, one per out-argument */
  values: unknown[];
  errorName?: string;
  errorMessage?: string;
  tool: Tool;
  /** the client process (the requestor the daemon saw) */
  pid: number;
}

/** 'Create' → our interface; 'org.freedesktop.DBus.Peer.Ping' → that interface. */
export function splitMethod(method: string): { iface: string; member: string } {
  const dot = method.lastIndexOf('.');
  // A bare name is a method of the table, on its own interface (0_0 or cgmanager1).
  return dot < 0 ? { iface: METHODS_BY_NAME.get(method)?.interface ?? INTERFACE, member: method } : { iface: method.slice(0, dot), member: method.slice(dot + 1) };
}

/** Splits a D-Bus signature into its complete single types ('sa(suuu)i' → ['s', 'a(suuu)', 'i']). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  const one = (): void => {
    const c = sig[i++];
    if (c === 'a') return one();
    if (c === '(' || c === '{') {
      const close = c === '(' ? ')' : '}';
      while (sig[i] !== close) one();
      i++;
    }
  };
  while (i < sig.length) {
    const start = i;
    one();
    out.push(sig.slice(start, i));
  }
  return out;
}

function gvariantLiteral(type: string, arg: CallArg): string {
  if (type === 's' || type === 'o' || type === 'g') {
    const escaped = String(arg).replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    return `'${escaped}'`;
  }
  return String(arg);
}

const DBUS_SEND_TYPES: Record<string, string> = { s: 'string', i: 'int32', u: 'uint32', o: 'objpath', g: 'signature', b: 'boolean', x: 'int64', t: 'uint64', y: 'byte', d: 'double' };

/**
 * The argv of one call. `signature` types the arguments: gdbus parses GVariant text (strings are
 * quoted), busctl takes the signature explicitly, dbus-send prefixes each value with its type.
 * Wrong signatures can be sent on purpose with busctl and dbus-send; gdbus checks them itself
 * against introspection.
 */
export function toolArgv(tool: Tool, socket: string, method: string, signature: string, args: readonly CallArg[]): string[] {
  const { iface, member } = splitMethod(method);
  const types = splitSignature(signature);
  if (types.length !== args.length) throw new Error(`signature ${signature} does not fit ${args.length} arguments`);
  switch (tool) {
    case 'gdbus':
      return [
        'gdbus', 'call', '--address', `unix:path=${socket}`, '--dest', BUS_NAME, '--object-path', OBJECT_PATH,
        '--method', `${iface}.${member}`, '--timeout', '15', '--', ...args.map((a, i) => gvariantLiteral(types[i] as string, a)),
      ];
    case 'busctl':
      return [
        'busctl', `--address=unix:path=${socket}`, '--json=short', '--no-pager', '--timeout=15', 'call', '--',
        BUS_NAME, OBJECT_PATH, iface, member, ...(signature === '' ? [] : [signature, ...args.map(String)]),
      ];
    case 'dbus-send':
      return [
        'dbus-send', '--print-reply', `--address=unix:path=${socket}`, '--type=method_call', '--reply-timeout=15000',
        OBJECT_PATH, `${iface}.${member}`,
        ...args.map((a, i) => {
          const type = DBUS_SEND_TYPES[types[i] as string];
          if (!type) throw new Error(`dbus-send cannot send type ${types[i]}`);
          return `${type}:${a}`;
        }),
      ];
  }
}

/** Environment additions a tool needs: busctl logs the reply header (with the error name) at debug. */
export function toolEnv(tool: Tool): NodeJS.ProcessEnv {
  return tool === 'busctl' ? { SYSTEMD_LOG_LEVEL: 'debug', SYSTEMD_PAGER: 'cat' } : {};
}

export function parseToolResult(tool: Tool, r: RunResult): CallResult {
  const base = { code: r.code, stdout: r.stdout, stderr: r.stderr, tool, pid: r.pid };
  if (r.code !== 0) {
    const e = tool === 'gdbus' ? gdbusError(r.stderr) : tool === 'busctl' ? busctlError(r.stderr) : dbusSendError(r.stderr);
    return { ...base, ok: false, values: [], errorName: e.name, errorMessage: e.message };
  }
  let values: unknown[];
  if (tool === 'gdbus') {
    const v = parseGVariantText(r.stdout);
    values = Array.isArray(v) ? v : [v];
  } else if (tool === 'busctl') {
    values = parseBusctlJson(r.stdout);
  } else {
    values = parseDbusSendReply(r.stdout);
  }
  return { ...base, ok: true, values };
}
