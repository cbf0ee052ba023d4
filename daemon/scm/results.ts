// The Scm result encodings of reference §6.4, as pure functions from an operation's
// outcome to the datagrams the daemon writes on the passed socket.
import type { Ucred } from '../../addon';
import type { KeyRow } from '../requests/listing';

export interface Datagram {
  data: Buffer;
  /** SCM_CREDENTIALS to attach (GetTasksScm sends each pid this way) */
  cred?: Ucred;
}

const one = (text: string): Datagram[] => [{ data: Buffer.from(text, 'latin1') }];

export const ok = (): Datagram[] => one('1');
export const failed = (): Datagram[] => one('0');

/** CreateScm and RemoveScm: '2' when the cgroup existed, '1' otherwise. */
export const existedByte = (existed: number): Datagram[] => one(existed === 1 ? '2' : '1');

/** GetPidCgroup(Abs)Scm, GetValueScm: the string and its NUL in one datagram. */
export const text = (s: string): Datagram[] => [{ data: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]) }];
/** Their failure: one zero-length datagram. */
export const emptyDatagram = (): Datagram[] => [{ data: Buffer.alloc(0) }];

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/** count (-1 on failure), and when positive a length and one payload datagram. */
function countedPayload(count: number, payload: Buffer): Datagram[] {
  if (count <= 0) return [{ data: int32(count) }];
  return [{ data: int32(count) }, { data: uint32(payload.length) }, { data: payload }];
}

export const countFailure = (): Datagram[] => [{ data: int32(-1) }];

/** ListChildrenScm: names each followed by a NUL. */
export function childrenPayload(names: readonly string[]): Datagram[] {
  return countedPayload(names.length, Buffer.concat(names.map((n) => Buffer.from(`${n}\0`, 'utf8'))));
}

/** ListKeysScm: name, uid, gid, mode on four lines each; ids printed as signed 32-bit. */
export function keysPayload(rows: readonly KeyRow[]): Datagram[] {
  const signed = (n: number): number => (n > 0x7fffffff ? n - 0x100000000 : n);
  const body = rows.map(([name, uid, gid, mode]) => `${name}\n${signed(uid)}\n${signed(gid)}\n${signed(mode)}\n`).join('');
  return countedPayload(rows.length, Buffer.from(body, 'utf8'));
}

/** GetTasks(Recursive)Scm: the count, then one credential datagram per pid. */
export function tasksPayload(pids: readonly number[]): Datagram[] {
  return [{ data: int32(pids.length) }, ...pids.map((pid) => ({ data: Buffer.from('p'), cred: { pid, uid: 0, gid: 0 } }))];
}

/** Marks the datagram that follows a failure result with the error's name and message. */
export const ERROR_DETAIL_PREFIX = 'cgmanager.error\n';

/**
 * Our extension (api_version 11): after a failure result, one more datagram names the
 * error, so a proxy can pass the daemon's named error on. Clients of the original
 * protocol stop reading after the result and never see it.
 */
export function errorDetail(dbusName: string, message: string): Datagram {
  return { data: Buffer.from(`${ERROR_DETAIL_PREFIX}${dbusName}\n${message}`, 'utf8') };
}

export function parseErrorDetail(data: Buffer): { name: string; message: string } | undefined {
  const text = data.toString('utf8');
  if (!text.startsWith(ERROR_DETAIL_PREFIX)) return undefined;
  const rest = text.slice(ERROR_DETAIL_PREFIX.length);
  const nl = rest.indexOf('\n');
  if (nl <= 0) return undefined;
  return { name: rest.slice(0, nl), message: rest.slice(nl + 1) };
}
