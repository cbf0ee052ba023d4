// Mutation fuzzing of the D-Bus wire layer: a corpus of valid messages (every method of
// the interface, plain and Scm, plus replies and the standard interfaces), a seeded
// mutator, and the target that feeds a mutated frame through MessageReader and
// decodeBody the way the server does. Iteration i is a pure function of (seed, i), so a
// failure can be regenerated from its number alone.
import { METHODS, INTERFACE_NAME, OBJECT_PATH } from '../../../daemon/dbus/interface';
import {
  BodyError,
  decodeBody,
  decodeIntVariant,
  encodeMessage,
  MessageReader,
  MessageType,
  parseMessage,
  ProtocolError,
  type OutgoingMessage,
} from '../../../daemon/dbus/wire';

export const MAX_MESSAGE = 1024 * 1024;

/** mulberry32: small, fast, good enough to spread mutations. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ARG_VALUES: Record<string, unknown> = {
  controller: 'memory',
  cgroup: 'lxc/c1',
  key: 'memory.limit_in_bytes',
  value: '536870912',
  file: 'tasks',
  pid: 1234,
  uid: 1000,
  gid: 1000,
  mode: 0o775,
  recursive: 1,
  junk: 0,
  sockfd: 0,
};

const OUT_VALUES: Record<string, unknown> = {
  s: '/lxc/c1',
  i: 1,
  ai: [1, 2, 3, 4000000],
  as: ['cpu', 'memory', 'name=systemd'],
  'a(suuu)': [['memory.max', 0, 0, 0o644], ['cgroup.procs', 1000, 1000, 0o664]],
};

export interface CorpusEntry {
  name: string;
  bytes: Buffer;
  fds: number[];
}

/** Fake fd numbers: the target never closes or uses them. */
const FAKE_FDS = [1000, 1001, 1002];

export function buildCorpus(): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  const add = (name: string, m: OutgoingMessage): void => {
    out.push({ name, bytes: encodeMessage(m), fds: FAKE_FDS.slice(0, m.fds?.length ?? 0) });
  };
  let serial = 1;
  for (const spec of METHODS) {
    const body = spec.in.map(([name]) => ARG_VALUES[name]);
    const fds = spec.scm ? [0] : undefined;
    const base = { type: MessageType.MethodCall, path: OBJECT_PATH, member: spec.name, signature: spec.inSignature, body, fds };
    add(spec.name, { ...base, serial: serial++, interface: INTERFACE_NAME });
    add(`${spec.name} without interface`, { ...base, serial: serial++ });
    const outValue = OUT_VALUES[spec.outSignature];
    add(`${spec.name} reply`, {
      type: MessageType.MethodReturn,
      serial: serial++,
      replySerial: serial - 2,
      signature: spec.outSignature,
      body: outValue === undefined ? [] : [outValue],
    });
  }
  add('error reply', { type: MessageType.Error, serial: serial++, replySerial: 3, errorName: 'org.freedesktop.DBus.Error.AccessDenied', signature: 's', body: ['uid 1000 may not write memory:lxc/c1'] });
  add('Hello', { type: MessageType.MethodCall, serial: serial++, path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'Hello', destination: 'org.freedesktop.DBus' });
  add('Hello reply', { type: MessageType.MethodReturn, serial: serial++, replySerial: 1, signature: 's', body: [':1.1'] });
  add('Properties.Get', { type: MessageType.MethodCall, serial: serial++, path: OBJECT_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Get', signature: 'ss', body: [INTERFACE_NAME, 'api_version'] });
  add('Properties.Get reply', { type: MessageType.MethodReturn, serial: serial++, replySerial: 5, signature: 'v', body: [['i', 10]] });
  add('Properties.GetAll reply', { type: MessageType.MethodReturn, serial: serial++, replySerial: 5, signature: 'a{sv}', body: [[['api_version', ['i', 10]]]] });
  add('Properties.Set', { type: MessageType.MethodCall, serial: serial++, path: OBJECT_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Set', signature: 'ssv', body: [INTERFACE_NAME, 'api_version', ['i', 11]] });
  // Variants holding arrays: one type-code mutation ('ai' -> 'ar') gives the zero-width array
  // element that makes dbus-next's reader loop without advancing.
  add('Properties.Set array variant', { type: MessageType.MethodCall, serial: serial++, path: OBJECT_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Set', signature: 'ssv', body: [INTERFACE_NAME, 'ids', ['ai', [1, 2, 3]]] });
  add('Properties.Set string array variant', { type: MessageType.MethodCall, serial: serial++, path: OBJECT_PATH, interface: 'org.freedesktop.DBus.Properties', member: 'Set', signature: 'ssv', body: [INTERFACE_NAME, 'names', ['as', ['a', 'bc']]] });
  add('Properties.GetAll reply with arrays', { type: MessageType.MethodReturn, serial: serial++, replySerial: 6, signature: 'a{sv}', body: [[['api_version', ['i', 10]], ['ids', ['ai', [1, 2]]], ['names', ['as', ['x']]]]] });
  add('Peer.Ping', { type: MessageType.MethodCall, serial: serial++, path: '/', interface: 'org.freedesktop.DBus.Peer', member: 'Ping' });
  add('signal', { type: MessageType.Signal, serial: serial++, path: '/a', interface: 'org.x', member: 'Changed', signature: 'as', body: [['a']] });
  return out;
}

// Values that tend to break parsers: boundaries, D-Bus type codes, the endianness bytes.
const INTERESTING_BYTES = [0x00, 0x01, 0xff, 0x7f, 0x80, 0xfe, 0x10, 0x11, 0x6c, 0x42, ...Buffer.from('rvah(){}sigoubyxtdme*?@&^')];
const TYPE_CODES = new Set(Buffer.from('sihuoabgvyxtdn(){}'));
const INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xfffff, 0x100000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export interface Mutation {
  input: Buffer;
  fds: number[];
  /** where the input is split into two pushes (0: one push) */
  split: number;
  /** which corpus entry it started from, and what was done to it */
  origin: string;
  steps: string[];
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

export function mutate(corpus: readonly CorpusEntry[], seed: number, iteration: number): Mutation {
  const rand = prng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(iteration + 1, 0x85ebca6b)) >>> 0);
  const entry = pick(rand, corpus);
  let b = Buffer.from(entry.bytes);
  const steps: string[] = [];
  const at = (len = b.length): number => Math.floor(rand() * Math.max(len, 1));
  const count = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < count; k++) {
    const op = Math.floor(rand() * 11);
    if (b.length === 0 && op !== 5 && op !== 9) continue;
    switch (op) {
      case 0: {
        const i = at();
        const bit = Math.floor(rand() * 8);
        b[i] = (b[i] as number) ^ (1 << bit);
        steps.push(`flip bit ${bit} of byte ${i}`);
        break;
      }
      case 1:
      case 2: {
        const i = at();
        const v = pick(rand, INTERESTING_BYTES);
        b[i] = v;
        steps.push(`set byte ${i} to 0x${v.toString(16)}`);
        break;
      }
      case 3: {
        // Replace a type code wherever one appears (signatures live in the header and in variants).
        const positions: number[] = [];
        for (let i = 0; i < b.length; i++) if (TYPE_CODES.has(b[i] as number)) positions.push(i);
        if (positions.length === 0) break;
        const i = pick(rand, positions);
        const v = pick(rand, [...Buffer.from('rvah(){}mez')]);
        b[i] = v;
        steps.push(`type code at ${i} -> ${String.fromCharCode(v)}`);
        break;
      }
      case 4: {
        if (b.length < 4) break;
        const i = rand() < 0.7 ? at(b.length >> 2) * 4 : at(b.length - 3);
        const v = rand() < 0.8 ? pick(rand, INTERESTING_U32) : Math.floor(rand() * 0x100000000);
        b.writeUInt32LE(v >>> 0, Math.min(i, b.length - 4));
        steps.push(`u32 at ${i} = ${v}`);
        break;
      }
      case 5: {
        const i = at(b.length + 1);
        const n = 1 + Math.floor(rand() * 8);
        const ins = Buffer.from(Array.from({ length: n }, () => (rand() < 0.5 ? pick(rand, INTERESTING_BYTES) : Math.floor(rand() * 256))));
        b = Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
        steps.push(`insert ${ins.toString('hex')} at ${i}`);
        break;
      }
      case 6: {
        const i = at();
        const n = 1 + Math.floor(rand() * 16);
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + n)]);
        steps.push(`delete ${n} at ${i}`);
        break;
      }
      case 7: {
        const i = at();
        b = b.subarray(0, i);
        steps.push(`truncate to ${i}`);
        break;
      }
      case 8: {
        if (b.length < 16) break;
        // Body length (4) or header-fields length (12): off by a little, or wild.
        const field = rand() < 0.5 ? 4 : 12;
        const old = b.readUInt32LE(field);
        const v = rand() < 0.6 ? (old + Math.floor(rand() * 17) - 8) >>> 0 : pick(rand, INTERESTING_U32);
        b.writeUInt32LE(v, field);
        steps.push(`length field ${field}: ${old} -> ${v}`);
        break;
      }
      case 9: {
        const other = pick(rand, corpus).bytes;
        const cut = at(other.length);
        b = Buffer.concat([b, other.subarray(cut)]);
        steps.push(`append tail of another message from ${cut}`);
        break;
      }
      case 10: {
        const from = at();
        const n = 1 + Math.floor(rand() * 32);
        const to = at();
        const chunk = Buffer.from(b.subarray(from, from + n));
        chunk.copy(b, to);
        steps.push(`copy ${chunk.length} bytes from ${from} to ${to}`);
        break;
      }
    }
  }
  const split = rand() < 0.3 ? at(b.length + 1) : 0;
  return { input: b, fds: entry.fds, split, origin: entry.name, steps };
}

export type Outcome = 'message' | 'decoded' | 'needMore' | 'protocolError' | 'bodyError';

/**
 * Feeds one input through a fresh reader as the transport does and decodes every
 * message. Returns what happened; any exception that is not ProtocolError or
 * BodyError escapes to the caller (that is the bug the fuzzer looks for).
 */
export function runOne(input: Buffer, fds: number[], split = 0): Outcome[] {
  const outcomes: Outcome[] = [];
  const reader = new MessageReader(MAX_MESSAGE);
  const parts = split > 0 ? [input.subarray(0, split), input.subarray(split)] : [input];
  for (const [i, part] of parts.entries()) {
    reader.push(part, i === 0 ? fds : undefined);
    // A message is at least 16 bytes, so this bounds the loop even if the reader misbehaves.
    for (let n = 0; n <= input.length / 16 + 1; n++) {
      let next;
      try {
        next = reader.next();
      } catch (err) {
        if (err instanceof ProtocolError) {
          outcomes.push('protocolError');
          return outcomes; // the connection is closed
        }
        throw err;
      }
      if (!next) {
        outcomes.push('needMore');
        break;
      }
      outcomes.push('message');
      try {
        // A variant body is only ever read as the api_version int; everything else goes to decodeBody.
        if (next.message.signature === 'v') decodeIntVariant(next.message);
        else decodeBody(next.message, next.fds);
        outcomes.push('decoded');
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        outcomes.push('bodyError');
      }
    }
  }
  return outcomes;
}

/** Also exercised directly: a frame parsed on its own, as a caller with its own framing would. */
export function parseAlone(input: Buffer): void {
  try {
    parseMessage(input);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

export interface FuzzReport {
  iterations: number;
  counts: Record<Outcome, number>;
  unexpected: Array<{ iteration: number; error: string }>;
  slow: Array<{ iteration: number; ms: number }>;
  maxMs: number;
}

/**
 * Runs iterations [from, to) and records progress in `progress[0]` (Atomics), so a
 * watchdog in another thread can tell which iteration hung.
 */
export function fuzz(seed: number, from: number, to: number, slowMs: number, progress?: Int32Array): FuzzReport {
  const corpus = buildCorpus();
  const counts: Record<Outcome, number> = { message: 0, decoded: 0, needMore: 0, protocolError: 0, bodyError: 0 };
  const report: FuzzReport = { iterations: 0, counts, unexpected: [], slow: [], maxMs: 0 };
  for (let i = from; i < to; i++) {
    if (progress) Atomics.store(progress, 0, i);
    const m = mutate(corpus, seed, i);
    const t0 = performance.now();
    try {
      for (const o of runOne(m.input, m.fds, m.split)) counts[o]++;
      parseAlone(m.input);
    } catch (err) {
      report.unexpected.push({ iteration: i, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
    const ms = performance.now() - t0;
    if (ms > report.maxMs) report.maxMs = ms;
    if (ms > slowMs) report.slow.push({ iteration: i, ms });
    report.iterations++;
  }
  return report;
}
