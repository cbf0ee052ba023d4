// The Scm forms, derived from the one interface table (MethodSpec.scmShape): which plain
// arguments an Scm call keeps, which travel as credentials after the requestor's, and how
// the result is written and read. The daemon, the client's Scm route, the client's Scm
// exchange and cgproxy all use these functions, so a shape is described exactly once.
import type { Ucred } from '../../addon';
import { METHODS_BY_NAME, NO_OWNER, type MethodSpec, type ScmResultKind, type ScmShape } from '../dbus/interface';
import { encodeBodyBytes } from '../dbus/wire';
import * as R from './results';

/** The most pid credentials one Scm call may announce (SetupScm's npids). */
export const MAX_SCM_PIDS = 1024;

export interface ScmForm {
  /** the Scm method */
  readonly spec: MethodSpec;
  readonly shape: ScmShape;
  /** its plain twin */
  readonly plain: MethodSpec;
}

function formOf(spec: MethodSpec | undefined): ScmForm | undefined {
  const shape = spec?.scmShape;
  const plain = shape ? METHODS_BY_NAME.get(shape.plain) : undefined;
  return spec && shape && plain ? { spec, shape, plain } : undefined;
}

/** The Scm form of plain method `plainName`, if the table gives it one. */
export function scmFormOfPlain(plainName: string): ScmForm | undefined {
  return formOf(METHODS_BY_NAME.get(`${plainName}Scm`));
}

/** The form of Scm method `scmName`, if the table gives it a shape. */
export function scmForm(scmName: string): ScmForm | undefined {
  return formOf(METHODS_BY_NAME.get(scmName));
}

/** Every Scm method that has a shape, in table order. */
export function allScmForms(): ScmForm[] {
  return [...METHODS_BY_NAME.values()].flatMap((m) => {
    const form = formOf(m);
    return form ? [form] : [];
  });
}

const ownerGiven = (plainArgs: readonly unknown[], [uid, gid]: readonly [number, number]): boolean =>
  !(plainArgs[uid] === NO_OWNER && plainArgs[gid] === NO_OWNER);

/** The Scm call's in-arguments (before the fd) for a plain call. */
export function scmArgsFrom(shape: ScmShape, plainArgs: readonly unknown[]): unknown[] {
  return shape.args.map((src) => {
    if ('plain' in src) return plainArgs[src.plain];
    if ('ownerGiven' in src) return ownerGiven(plainArgs, src.ownerGiven);
    return (plainArgs[src.count] as readonly unknown[]).length;
  });
}

/**
 * The credentials a client sends after the requestor's, for a plain call. Pids carry the
 * requestor's own uid and gid (which anyone may claim); an owner carries our own pid (the
 * daemon reads only its ids). The kernel checks each claim when it is sent.
 */
export function credentialsFrom(shape: ScmShape, plainArgs: readonly unknown[], requestor: Ucred, ownPid: number): Ucred[] {
  const out: Ucred[] = [];
  for (const src of shape.credentials) {
    if ('pid' in src) out.push({ pid: plainArgs[src.pid] as number, uid: requestor.uid, gid: requestor.gid });
    else if ('owner' in src) {
      if (src.optional && !ownerGiven(plainArgs, src.owner)) continue;
      out.push({ pid: ownPid, uid: plainArgs[src.owner[0]] as number, gid: plainArgs[src.owner[1]] as number });
    } else {
      for (const pid of plainArgs[src.pids] as readonly number[]) out.push({ pid, uid: requestor.uid, gid: requestor.gid });
    }
  }
  return out;
}

/** The index of the Scm argument that says whether the optional owner credential is sent. */
function ownerFlagIndex(shape: ScmShape): number {
  return shape.args.findIndex((a) => 'ownerGiven' in a);
}

/** The index of the Scm argument that counts the pid credentials of plain argument `plainIndex`. */
function countIndex(shape: ScmShape, plainIndex: number): number {
  return shape.args.findIndex((a) => 'count' in a && a.count === plainIndex);
}

/**
 * How many credentials the daemon waits for after the requestor's, from the Scm call's own
 * arguments; throws a RangeError for a pid count out of range.
 */
export function credentialCount(shape: ScmShape, scmArgs: readonly unknown[]): number {
  let n = 0;
  for (const src of shape.credentials) {
    if ('pid' in src) n += 1;
    else if ('owner' in src) n += src.optional ? (scmArgs[ownerFlagIndex(shape)] === true ? 1 : 0) : 1;
    else {
      const count = scmArgs[countIndex(shape, src.pids)];
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > MAX_SCM_PIDS) {
        throw new RangeError(`the pid count must be between 0 and ${MAX_SCM_PIDS}, not ${String(count)}`);
      }
      n += count;
    }
  }
  return n;
}

/** The plain call an Scm call stands for, once its credentials (after the requestor's) are in. */
export function plainArgsFrom(form: ScmForm, scmArgs: readonly unknown[], creds: readonly Ucred[]): unknown[] {
  const { shape, plain } = form;
  const out: unknown[] = new Array(plain.in.length).fill(undefined);
  shape.args.forEach((src, i) => {
    if ('plain' in src) out[src.plain] = scmArgs[i];
  });
  let k = 0;
  for (const src of shape.credentials) {
    if ('pid' in src) out[src.pid] = creds[k++]?.pid;
    else if ('owner' in src) {
      if (src.optional && scmArgs[ownerFlagIndex(shape)] !== true) {
        out[src.owner[0]] = NO_OWNER;
        out[src.owner[1]] = NO_OWNER;
        continue;
      }
      const owner = creds[k++];
      out[src.owner[0]] = owner?.uid;
      out[src.owner[1]] = owner?.gid;
    } else {
      const count = scmArgs[countIndex(shape, src.pids)] as number;
      out[src.pids] = creds.slice(k, k + count).map((c) => c.pid);
      k += count;
    }
  }
  return out;
}

/**
 * The reply values as the Scm caller should see them: an a{sv} entry that lists pids
 * (echoesPids) gets the pids the caller sent, in its own namespace, instead of the daemon's.
 */
export function replyForCaller(shape: ScmShape, plainArgs: readonly unknown[], values: unknown[]): unknown[] {
  const echo = shape.echoesPids;
  if (!echo || !Array.isArray(values[0])) return values;
  const dict = values[0] as Array<[string, [string, unknown]]>;
  return [dict.map(([key, variant]): [string, [string, unknown]] => (key === echo.key ? [key, ['ai', [...(plainArgs[echo.arg] as number[])]]] : [key, variant])), ...values.slice(1)];
}

/** The result datagrams for the plain method's reply values. */
export function encodeResult(form: ScmForm, values: readonly unknown[]): R.Datagram[] {
  const [first] = values;
  switch (form.shape.result) {
    case 'status':
      return R.ok();
    case 'existed':
      return R.existedByte(first as number);
    case 'string':
      return R.text(first as string);
    case 'tasks':
      return R.tasksPayload(first as number[]);
    case 'names':
      return R.childrenPayload(first as string[]);
    case 'keys':
      return R.keysPayload(first as Array<[string, number, number, number]>);
    case 'body':
      return [{ data: encodeBodyBytes(form.plain.outSignature, [...values]) }];
  }
}

/** What a failed call writes before the error detail: the reference's failure encoding, nothing for `body`. */
export function failureDatagrams(kind: ScmResultKind): R.Datagram[] {
  switch (kind) {
    case 'status':
    case 'existed':
      return R.failed();
    case 'string':
      return R.emptyDatagram();
    case 'tasks':
    case 'names':
    case 'keys':
      return R.countFailure();
    case 'body':
      return [];
  }
}

const RESULT_TEXT: Readonly<Record<ScmResultKind, string>> = {
  status: "`'1'`; failure `'0'`",
  existed: "`'2'` if it existed, else `'1'`; failure `'0'`",
  string: 'the string and a NUL; failure: an empty datagram',
  tasks: 'count (int32), then one credential per pid; failure: count -1',
  names: 'count, byte length, then the names each NUL-terminated; failure: count -1',
  keys: 'count, byte length, then name, uid, gid, mode on four lines each; failure: count -1',
  body: 'one datagram: the plain reply body, D-Bus-marshalled little-endian with the out signature; failure: the error detail alone',
};

/**
 * The README's table of Scm forms, one Markdown row per form, rendered from the interface
 * table (a unit test keeps the README's copy equal to this).
 */
export function scmFormsTable(): string[] {
  const rows = ['| Scm method | Arguments kept (then `sockfd h`) | Credentials after the requestor\'s | Result datagrams |', '|---|---|---|---|'];
  for (const { spec, shape, plain } of allScmForms()) {
    const name = (i: number): string => `\`${plain.in[i]?.[0] ?? '?'}\``;
    const args = spec.in.slice(0, -1).map(([n, t], i) => {
      const src = shape.args[i];
      const note = src && 'ownerGiven' in src ? ` (${name(src.ownerGiven[0])}/${name(src.ownerGiven[1])} given)` : src && 'count' in src ? ` (pids in ${name(src.count)})` : '';
      return `${n} ${t}${note}`;
    });
    const creds = shape.credentials.map((c) => {
      if ('pid' in c) return `the pid ${name(c.pid)}`;
      if ('owner' in c) return `${c.optional ? 'if `chown`: ' : ''}the owner ${name(c.owner[0])}, ${name(c.owner[1])} as its uid and gid`;
      return `one per pid of ${name(c.pids)}`;
    });
    rows.push(`| ${spec.name} | ${args.join(', ') || '—'} | ${creds.join('; ') || '—'} | ${RESULT_TEXT[shape.result]} |`);
  }
  return rows;
}
