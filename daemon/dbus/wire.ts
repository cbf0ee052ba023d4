// D-Bus message framing and (de)marshalling: the only module that imports dbus-next.
// dbus-next's reader trusts its input (a bad variant signature can make it allocate
// forever), so every header is parsed here by a bounded validator and a body is only
// handed to dbus-next once its signature is one we expect.
/* eslint-disable @typescript-eslint/no-require-imports */

// Deep imports, pinned by the exact dbus-next version in package.json. Required on first
// use, not at import: the bodies that need them are rare on the client side (cgm ping
// needs neither), and loading dbus-next with long and jsbi is a tenth of cgm's start-up.
type Marshall = (sig: string, data: unknown[], offset?: number, fds?: number[]) => Buffer;
type DBusBufferClass = new (
  buf: Buffer,
  start: number,
  endian: number,
  fds: number[] | undefined,
  options?: { ayBuffer: boolean },
) => { read(signature: string): unknown[]; pos: number };
let marshallModule: Marshall | undefined;
let dbusBufferClass: DBusBufferClass | undefined;
const marshall: Marshall = (...args) => (marshallModule ??= require('dbus-next/lib/marshall') as Marshall)(...args);
const dbusBuffer = (): DBusBufferClass => (dbusBufferClass ??= require('dbus-next/lib/dbus-buffer') as DBusBufferClass);

export const MessageType = { MethodCall: 1, MethodReturn: 2, Error: 3, Signal: 4 } as const;
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];
export const Flag = { NoReplyExpected: 1, NoAutoStart: 2 } as const;

const LITTLE = 0x6c; // 'l'
const BIG = 0x42; // 'B'
const HEADER_FIXED = 16;
/** D-Bus caps a message at 128 MiB; callers pass their own, smaller limit. */
export const PROTOCOL_MAX_MESSAGE = 128 * 1024 * 1024;

export interface Message {
  type: MessageTypeValue;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature: string;
  unixFds: number;
  /** raw body bytes; decode with decodeBody once the signature is known to be acceptable */
  body: Buffer;
  littleEndian: boolean;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

// Header field codes and the single type each must carry (D-Bus spec, "Header Fields").
const FIELD_TYPES: Record<number, string> = { 1: 'o', 2: 's', 3: 's', 4: 's', 5: 'u', 6: 's', 7: 's', 8: 'g', 9: 'u' };
const FIXED_SIZES: Record<string, number> = { y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, h: 4, x: 8, t: 8, d: 8 };

// Plain arithmetic, not `& ~(n - 1)`: bitwise operators wrap at 2^31, and a header
// length near 2^32 then aligned to a small number that passed the length check.
function align(pos: number, n: number): number {
  return pos + ((n - (pos % n)) % n);
}

/** Bounded reader over one message's header fields. Every read checks its bounds. */
class HeaderCursor {
  pos: number;
  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
    private readonly little: boolean,
  ) {
    this.pos = start;
  }

  need(n: number): void {
    if (this.pos + n > this.end) throw new ProtocolError('header field runs past the header');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u32(): number {
    this.pos = align(this.pos, 4);
    this.need(4);
    const v = this.little ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  text(len: number): string {
    this.need(len + 1);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    if (this.buf[this.pos + len] !== 0) throw new ProtocolError('string not NUL-terminated');
    if (s.includes('\0')) throw new ProtocolError('NUL inside a header string');
    this.pos += len + 1;
    return s;
  }

  string(): string {
    return this.text(this.u32());
  }

  signature(): string {
    return this.text(this.u8());
  }

  skip(type: string): void {
    if (type === 's' || type === 'o') {
      this.string();
    } else if (type === 'g') {
      this.signature();
    } else {
      const size = FIXED_SIZES[type];
      if (size === undefined) throw new ProtocolError(`unsupported header field type ${JSON.stringify(type)}`);
      this.pos = align(this.pos, size);
      this.need(size);
      this.pos += size;
    }
  }
}

/** Total byte length of the message that starts at buf[0], or 0 if 16 bytes are not there yet. */
export function peekMessageLength(buf: Buffer, maxMessage: number): number {
  if (buf.length < HEADER_FIXED) return 0;
  const endian = buf[0];
  if (endian !== LITTLE && endian !== BIG) throw new ProtocolError('bad endianness byte');
  if (buf[3] !== 1) throw new ProtocolError('unsupported protocol version');
  const little = endian === LITTLE;
  const bodyLen = little ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  const fieldsLen = little ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const total = align(HEADER_FIXED + fieldsLen, 8) + bodyLen;
  if (fieldsLen > maxMessage || bodyLen > maxMessage || total > maxMessage) {
    throw new ProtocolError(`message of ${total} bytes exceeds the limit of ${maxMessage}`);
  }
  return total;
}

/** Parses and validates one complete message (exactly `buf`). */
export function parseMessage(buf: Buffer): Message {
  // Repeats peekMessageLength's checks so that this is safe on any buffer, not only a framed one.
  if (buf.length < HEADER_FIXED) throw new ProtocolError('message shorter than its fixed header');
  if (buf[0] !== LITTLE && buf[0] !== BIG) throw new ProtocolError('bad endianness byte');
  if (buf[3] !== 1) throw new ProtocolError('unsupported protocol version');
  const little = buf[0] === LITTLE;
  const type = buf[1] as number;
  if (type < 1 || type > 4) throw new ProtocolError(`bad message type ${type}`);
  const serial = little ? buf.readUInt32LE(8) : buf.readUInt32BE(8);
  if (serial === 0) throw new ProtocolError('serial 0');
  const fieldsLen = little ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
  const fieldsEnd = HEADER_FIXED + fieldsLen;
  const bodyStart = align(fieldsEnd, 8);
  const bodyLen = little ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
  if (bodyStart > buf.length || bodyStart + bodyLen !== buf.length) throw new ProtocolError('length mismatch');

  const msg: Message = {
    type: type as MessageTypeValue,
    flags: buf[2] as number,
    serial,
    signature: '',
    unixFds: 0,
    body: buf.subarray(bodyStart),
    littleEndian: little,
  };
  const c = new HeaderCursor(buf, HEADER_FIXED, fieldsEnd, little);
  const seen = new Set<number>();
  while (c.pos < fieldsEnd) {
    c.pos = align(c.pos, 8);
    if (c.pos >= fieldsEnd) break;
    const code = c.u8();
    const sig = c.signature();
    const expected = FIELD_TYPES[code];
    if (expected === undefined) {
      // Unknown fields must be ignored (spec), but only simple ones can be skipped safely.
      if (sig.length !== 1) throw new ProtocolError(`unknown header field ${code} with type ${sig}`);
      c.skip(sig);
      continue;
    }
    if (sig !== expected) throw new ProtocolError(`header field ${code} has type ${sig}, expected ${expected}`);
    if (seen.has(code)) throw new ProtocolError(`header field ${code} repeated`);
    seen.add(code);
    switch (code) {
      case 1: msg.path = c.string(); break;
      case 2: msg.interface = c.string(); break;
      case 3: msg.member = c.string(); break;
      case 4: msg.errorName = c.string(); break;
      case 5: msg.replySerial = c.u32(); break;
      case 6: msg.destination = c.string(); break;
      case 7: msg.sender = c.string(); break;
      case 8: msg.signature = c.signature(); break;
      case 9: msg.unixFds = c.u32(); break;
    }
  }
  if (c.pos > fieldsEnd) throw new ProtocolError('header fields overrun');
  for (let i = fieldsEnd; i < bodyStart; i++) if (buf[i] !== 0) throw new ProtocolError('non-zero header padding');
  switch (msg.type) {
    case MessageType.MethodCall:
      if (msg.path === undefined || msg.member === undefined) throw new ProtocolError('method call without path or member');
      break;
    case MessageType.MethodReturn:
      if (msg.replySerial === undefined) throw new ProtocolError('reply without reply serial');
      break;
    case MessageType.Error:
      if (msg.replySerial === undefined || msg.errorName === undefined) throw new ProtocolError('error without name or reply serial');
      break;
    case MessageType.Signal:
      if (msg.path === undefined || msg.interface === undefined || msg.member === undefined) throw new ProtocolError('bad signal');
      break;
  }
  if (bodyLen > 0 && msg.signature === '') throw new ProtocolError('body without signature');
  if (msg.unixFds > 16) throw new ProtocolError('too many unix fds');
  return msg;
}

/** Signatures whose bodies we decode; anything else is refused before dbus-next sees it. */
const DECODABLE = /^(?:[sihuobgt]|as|ai|au|a\(suuu\)|a\{ss\})*$/;

/** The variant types an a{sv} of ours may hold (cgmanager1's Setup report and Stats). */
const DICT_VARIANTS: ReadonlySet<string> = new Set(['s', 'i', 'u', 'b', 't', 'as', 'ai', 'a{ss}']);

/**
 * Decodes an a{sv} body without letting dbus-next parse an arbitrary variant signature:
 * each variant's signature must be one of DICT_VARIANTS. Entries come back as
 * [key, [signature, value]], the marshaller's own form.
 */
function decodeVariantDict(buf: Buffer, littleEndian: boolean): Array<[string, [string, unknown]]> {
  const u32 = (p: number): number => {
    if (p + 4 > buf.length) throw new BodyError('truncated a{sv}');
    return littleEndian ? buf.readUInt32LE(p) : buf.readUInt32BE(p);
  };
  const length = u32(0);
  let pos = align(4, 8);
  const end = pos + length;
  if (end !== buf.length) throw new BodyError('a{sv} length does not match the body');
  const out: Array<[string, [string, unknown]]> = [];
  while (pos < end) {
    pos = align(pos, 8);
    const keyLength = u32(pos);
    pos += 4;
    if (pos + keyLength >= end || buf[pos + keyLength] !== 0) throw new BodyError('bad a{sv} key');
    const key = buf.toString('utf8', pos, pos + keyLength);
    pos += keyLength + 1;
    const sigLength = buf[pos] ?? 0;
    if (pos + 1 + sigLength >= end || buf[pos + 1 + sigLength] !== 0) throw new BodyError('bad a{sv} variant signature');
    const signature = buf.toString('latin1', pos + 1, pos + 1 + sigLength);
    pos += sigLength + 2;
    if (!DICT_VARIANTS.has(signature)) throw new BodyError(`a{sv} variant of type ${signature} is not expected`);
    const reader = new (dbusBuffer())(buf.subarray(pos, end), pos, littleEndian ? LITTLE : BIG, []);
    let value: unknown;
    try {
      [value] = reader.read(signature);
    } catch (err) {
      throw new BodyError(`malformed a{sv} value: ${(err as Error).message}`);
    }
    pos += reader.pos;
    out.push([key, [signature, value]]);
  }
  if (pos !== end) throw new BodyError('a{sv} entries overrun the array');
  assertNoNul(out);
  return out;
}

/**
 * Decodes a body held outside a message (a cgmanager1 Scm result datagram: the plain
 * reply body, little-endian) with the same rules as decodeBody.
 */
export function decodeBodyBytes(signature: string, body: Buffer, littleEndian = true): unknown[] {
  return decodeBody({ signature, body, littleEndian } as Message, []);
}

/** Marshals a body on its own, little-endian, aligned as if it began a message body. */
export function encodeBodyBytes(signature: string, values: unknown[]): Buffer {
  if (signature === '') return EMPTY;
  return encodeScalarBody(signature, values) ?? encodeArrayBody(signature, values) ?? encodeVariantDict(signature, values) ?? marshall(signature, values, 0);
}

export class BodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BodyError';
  }
}

/**
 * Decodes a body whose signature the caller has already matched against what it
 * expects. Strings with embedded NUL bytes are refused (D-Bus forbids them, and a
 * cgroup name must never be cut short by one).
 */
export function decodeBody(msg: Message, fds: readonly number[]): unknown[] {
  if (msg.signature === '') {
    if (msg.body.length !== 0) throw new BodyError('body has trailing bytes or is truncated');
    return [];
  }
  if (msg.signature === 'a{sv}') return [decodeVariantDict(msg.body, msg.littleEndian)];
  if (msg.signature.length > 64 || !DECODABLE.test(msg.signature)) throw new BodyError(`cannot decode signature ${msg.signature}`);
  if (FLAT.test(msg.signature)) return decodeFlat(msg);
  let values: unknown[];
  const DBusBuffer = dbusBuffer();
  const reader = new DBusBuffer(msg.body, 0, msg.littleEndian ? LITTLE : BIG, [...fds]);
  try {
    values = reader.read(msg.signature);
  } catch (err) {
    throw new BodyError(`malformed body: ${(err as Error).message}`);
  }
  if (reader.pos !== msg.body.length) throw new BodyError('body has trailing bytes or is truncated');
  assertNoNul(values);
  return values;
}

/** Bodies of strings and 32-bit integers only: most calls' (GetValue is 'sss'). */
const FLAT = /^[siu]{1,16}$/;

/**
 * Decodes a FLAT body directly (dbus-next's reader allocated a tenth of a call's memory):
 * the same values, and a BodyError for whatever that reader refuses, a string past the end
 * or without its NUL, a NUL inside a string, trailing bytes.
 */
function decodeFlat(msg: Message): unknown[] {
  const b = msg.body;
  const little = msg.littleEndian;
  const values: unknown[] = [];
  let pos = 0;
  for (let i = 0; i < msg.signature.length; i++) {
    pos = align(pos, 4);
    if (pos + 4 > b.length) throw new BodyError('malformed body: truncated');
    const word = little ? b.readUInt32LE(pos) : b.readUInt32BE(pos);
    pos += 4;
    const type = msg.signature[i];
    if (type === 'u') {
      values.push(word);
    } else if (type === 'i') {
      values.push(word | 0);
    } else {
      if (word > b.length - pos - 1) throw new BodyError('malformed body: string runs past the end');
      if (b[pos + word] !== 0) throw new BodyError('malformed body: string not NUL-terminated');
      const text = b.toString('utf8', pos, pos + word);
      if (text.includes('\0')) throw new BodyError('string argument contains a NUL byte');
      values.push(text);
      pos += word + 1;
    }
  }
  if (pos !== b.length) throw new BodyError('body has trailing bytes or is truncated');
  return values;
}

function assertNoNul(value: unknown): void {
  if (typeof value === 'string') {
    if (value.includes('\0')) throw new BodyError('string argument contains a NUL byte');
  } else if (Array.isArray(value)) {
    for (const v of value) assertNoNul(v);
  }
}

/**
 * Decodes a body that is a single variant holding an int32 (the api_version property),
 * without letting dbus-next parse an arbitrary variant signature.
 */
export function decodeIntVariant(msg: Message): number {
  const b = msg.body;
  if (msg.signature !== 'v' || b.length !== 8 || b[0] !== 1 || b[1] !== 0x69 || b[2] !== 0) {
    throw new BodyError('expected a variant holding an int32');
  }
  return msg.littleEndian ? b.readInt32LE(4) : b.readInt32BE(4);
}

export interface OutgoingMessage {
  type: MessageTypeValue;
  flags?: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  signature?: string;
  /** values in dbus-next's marshaller format: a variant is [signature, value] */
  body?: unknown[];
  /** fds to attach: 'h' arguments in body are indexes into this list */
  fds?: number[];
}

const FIELD_ORDER: Array<[keyof OutgoingMessage, number, string]> = [
  ['path', 1, 'o'],
  ['interface', 2, 's'],
  ['member', 3, 's'],
  ['errorName', 4, 's'],
  ['replySerial', 5, 'u'],
  ['destination', 6, 's'],
  ['sender', 7, 's'],
  ['signature', 8, 'g'],
];

const EMPTY = Buffer.alloc(0);

/**
 * A zero-filled buffer (padding must be zero) carved from Node's shared pool when small:
 * Buffer.alloc mallocs every one, and replies are made at every call; the native side
 * copies what it cannot send at once, so nothing keeps a pool slab alive for long.
 */
function zeroed(size: number): Buffer {
  return Buffer.allocUnsafe(size).fill(0);
}

/**
 * The one-value bodies of most replies and of every error ('s', 'i'), written directly;
 * anything else (arrays, structs, variants) goes through dbus-next's marshaller.
 */
function encodeScalarBody(signature: string, body: unknown[]): Buffer | undefined {
  if (body.length !== 1) return undefined;
  const [value] = body;
  if (signature === 's' && typeof value === 'string') {
    if (value.includes('\0')) throw new TypeError('a D-Bus string cannot hold a NUL byte');
    const bytes = Buffer.byteLength(value);
    const out = zeroed(4 + bytes + 1);
    out.writeUInt32LE(bytes, 0);
    out.write(value, 4, 'utf8');
    return out;
  }
  if (signature === 'i' && Number.isInteger(value) && (value as number) >= -0x80000000 && (value as number) <= 0x7fffffff) {
    const out = zeroed(4);
    out.writeInt32LE(value as number, 0);
    return out;
  }
  return undefined;
}

/**
 * Array replies ('as' of ListChildren, 'ai' of GetTasks*), written directly: dbus-next's
 * marshaller took 300-700 ms for 10 000 strings here (this takes about 3 ms), one block that
 * stalled every other connection after a sliced ListChildren had finished reading (issue 12).
 */
function encodeArrayBody(signature: string, body: unknown[]): Buffer | undefined {
  if (body.length !== 1 || !Array.isArray(body[0])) return undefined;
  const values = body[0] as unknown[];
  if (signature === 'ai') {
    if (!values.every((v) => Number.isInteger(v) && (v as number) >= -0x80000000 && (v as number) <= 0x7fffffff)) return undefined;
    const out = Buffer.alloc(4 + 4 * values.length);
    out.writeUInt32LE(4 * values.length, 0);
    values.forEach((v, i) => out.writeInt32LE(v as number, 4 + 4 * i));
    return out;
  }
  if (signature === 'as') {
    if (!values.every((v) => typeof v === 'string')) return undefined;
    const strings = values as string[];
    if (strings.some((v) => v.includes('\0'))) throw new TypeError('a D-Bus string cannot hold a NUL byte');
    let size = 4;
    const lengths = strings.map((v) => {
      const bytes = Buffer.byteLength(v);
      size = align(size, 4) + 4 + bytes + 1;
      return bytes;
    });
    const out = Buffer.alloc(size);
    out.writeUInt32LE(size - 4, 0);
    let pos = 4;
    strings.forEach((v, i) => {
      const bytes = lengths[i] as number;
      pos = align(pos, 4);
      out.writeUInt32LE(bytes, pos);
      out.write(v, pos + 4, 'utf8');
      pos += 4 + bytes + 1;
    });
    return out;
  }
  return undefined;
}

/** Writes a little-endian body into a reused scratch buffer, zeroing the padding. */
class BodyWriter {
  private static scratch = Buffer.alloc(4096);
  private buf = BodyWriter.scratch;
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
    if (bigger.length <= 1024 * 1024) BodyWriter.scratch = bigger;
  }

  align(n: number): void {
    const to = align(this.pos, n);
    this.room(to - this.pos);
    this.buf.fill(0, this.pos, to);
    this.pos = to;
  }

  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  i32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** 's' (and 'o'): length, bytes, NUL */
  string(v: string): void {
    if (v.includes('\0')) throw new TypeError('a D-Bus string cannot hold a NUL byte');
    const bytes = Buffer.byteLength(v);
    this.u32(bytes);
    this.room(bytes + 1);
    this.buf.write(v, this.pos, 'utf8');
    this.buf[this.pos + bytes] = 0;
    this.pos += bytes + 1;
  }

  /** 'g': one-byte length, bytes, NUL (signatures are ASCII) */
  signature(v: string): void {
    this.room(v.length + 2);
    this.buf[this.pos] = v.length;
    this.buf.write(v, this.pos + 1, 'latin1');
    this.buf[this.pos + 1 + v.length] = 0;
    this.pos += v.length + 2;
  }

  /** An array: its length word, padding to the elements' alignment, the elements, then the length filled in. */
  array(elementAlign: number, writeElements: () => void): void {
    this.u32(0);
    const lengthAt = this.pos - 4;
    this.align(elementAlign);
    const start = this.pos;
    writeElements();
    this.buf.writeUInt32LE(this.pos - start, lengthAt);
  }

  /** A copy of what was written (the scratch buffer is reused). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

const isInt32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= -0x80000000 && (v as number) <= 0x7fffffff;
const isUint32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isStringPair = (v: unknown): v is [string, string] => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string';

/** Whether encodeVariantDict writes a variant of this signature and value itself. */
function isDirectVariant(signature: unknown, value: unknown): boolean {
  switch (signature) {
    case 's':
      return typeof value === 'string';
    case 'i':
      return isInt32(value);
    case 'u':
      return isUint32(value);
    case 'b':
      return typeof value === 'boolean';
    case 'as':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'ai':
      return Array.isArray(value) && value.every(isInt32);
    case 'a{ss}':
      return Array.isArray(value) && value.every(isStringPair);
    default:
      return false;
  }
}

/**
 * The a{sv} replies (cgmanager1's Setup report and Stats, GetAll), written directly for the
 * variant types they use (dbus-next's marshaller took about 30 µs for a Setup report);
 * undefined, for the marshaller, when an entry holds any other type.
 */
function encodeVariantDict(signature: string, body: unknown[]): Buffer | undefined {
  if (signature !== 'a{sv}' || body.length !== 1 || !Array.isArray(body[0])) return undefined;
  const entries = body[0] as unknown[];
  for (const e of entries) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || !Array.isArray(e[1]) || e[1].length !== 2) return undefined;
    if (!isDirectVariant(e[1][0], e[1][1])) return undefined;
  }
  const w = new BodyWriter();
  w.array(8, () => {
    for (const [key, [sig, value]] of entries as Array<[string, [string, unknown]]>) {
      w.align(8);
      w.string(key);
      w.signature(sig);
      if (sig === 's') w.string(value as string);
      else if (sig === 'i') w.i32(value as number);
      else if (sig === 'u') w.u32(value as number);
      else if (sig === 'b') w.u32(value ? 1 : 0);
      else if (sig === 'as') w.array(4, () => (value as string[]).forEach((v) => w.string(v)));
      else if (sig === 'ai') w.array(4, () => (value as number[]).forEach((v) => w.i32(v)));
      else {
        w.array(8, () => {
          for (const [k, v] of value as Array<[string, string]>) {
            w.align(8);
            w.string(k);
            w.string(v);
          }
        });
      }
    }
  });
  return w.take();
}

/**
 * Encodes a message (little endian). The body goes through dbus-next's marshaller; the
 * header, whose fields are only strings and integers, is written here directly: every
 * reply needs one, and building it through the generic marshaller cost more than the
 * rest of a call's JavaScript together.
 */
export function encodeMessage(m: OutgoingMessage): Buffer {
  const signature = m.signature ?? '';
  const body = signature
    ? (encodeScalarBody(signature, m.body ?? []) ?? encodeArrayBody(signature, m.body ?? []) ?? encodeVariantDict(signature, m.body ?? []) ?? marshall(signature, m.body ?? [], 0))
    : EMPTY;
  const fields: Array<[number, string, string | number, number]> = [];
  let size = HEADER_FIXED;
  for (const [key, code, type] of FIELD_ORDER) {
    const v = m[key];
    if (v === undefined || v === '') continue;
    size = align(size, 8) + 4; // code, signature length, signature, NUL
    let bytes = 0;
    if (type === 'u') size = align(size, 4) + 4;
    else if (type === 'g') size += 1 + (bytes = Buffer.byteLength(v as string)) + 1;
    else size = align(size, 4) + 4 + (bytes = Buffer.byteLength(v as string)) + 1;
    fields.push([code, type, v as string | number, bytes]);
  }
  if (m.fds && m.fds.length > 0) {
    size = align(size, 8) + 4;
    size = align(size, 4) + 4;
    fields.push([9, 'u', m.fds.length, 0]);
  }
  const bodyStart = align(size, 8);
  const out = zeroed(bodyStart + body.length);
  out[0] = LITTLE;
  out[1] = m.type;
  out[2] = m.flags ?? 0;
  out[3] = 1;
  out.writeUInt32LE(body.length, 4);
  out.writeUInt32LE(m.serial, 8);
  out.writeUInt32LE(size - HEADER_FIXED, 12);
  let pos = HEADER_FIXED;
  for (const [code, type, value, bytes] of fields) {
    pos = align(pos, 8);
    out[pos] = code;
    out[pos + 1] = 1;
    out[pos + 2] = type.charCodeAt(0);
    out[pos + 3] = 0;
    pos += 4;
    if (type === 'u') {
      pos = align(pos, 4);
      out.writeUInt32LE(value as number, pos);
      pos += 4;
    } else if (type === 'g') {
      out[pos] = bytes;
      out.write(value as string, pos + 1, 'utf8');
      pos += 1 + bytes + 1;
    } else {
      pos = align(pos, 4);
      out.writeUInt32LE(bytes, pos);
      out.write(value as string, pos + 4, 'utf8');
      pos += 4 + bytes + 1;
    }
  }
  body.copy(out, bodyStart);
  return out;
}

/**
 * Frames a byte stream into complete messages, pairing each with the fds it declares.
 * Chunks are kept in a list and joined once per message, so a peer that dribbles a
 * large message a few bytes at a time costs linear, not quadratic, copying.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private fdQueue: number[] = [];

  constructor(private readonly maxMessage: number) {}

  push(chunk: Buffer, fds?: number[]): void {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.length += chunk.length;
    }
    if (fds) this.fdQueue.push(...fds);
  }

  /** Joins the buffered chunks into one and returns it. */
  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** The next complete message, or undefined when more bytes are needed. Throws ProtocolError. */
  next(): { message: Message; fds: number[] } | undefined {
    if (this.length < HEADER_FIXED) return undefined;
    let head = this.chunks[0] as Buffer;
    if (head.length < HEADER_FIXED) head = this.joined();
    const total = peekMessageLength(head, this.maxMessage);
    if (this.length < total) return undefined;
    if (head.length < total) head = this.joined();
    const frame = head.subarray(0, total);
    if (head.length > total) this.chunks[0] = head.subarray(total);
    else this.chunks.shift();
    this.length -= total;
    const message = parseMessage(frame);
    if (message.unixFds > this.fdQueue.length) throw new ProtocolError('message declares more fds than were received');
    const fds = this.fdQueue.splice(0, message.unixFds);
    return { message, fds };
  }

  /** fds received but not (yet) claimed by a message; the owner must close them on teardown. */
  takeStrayFds(): number[] {
    return this.fdQueue.splice(0);
  }

  get buffered(): number {
    return this.length;
  }

  /** fds received and not yet claimed by a message */
  get heldFds(): number {
    return this.fdQueue.length;
  }
}
