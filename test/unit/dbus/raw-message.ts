// Builds D-Bus messages byte by byte, independently of wire.ts and dbus-next, so tests
// can make what an encoder never would: big-endian frames, wrong field types, repeated
// or unknown fields, bad padding, lying length fields.

export type Endian = 'l' | 'B';

/** One header field. `value` is a string for s/o/g, a number for y/u/i, or raw bytes (written after 8-alignment of the field, as is). */
export interface RawField {
  code: number;
  sig: string;
  value: string | number | Buffer;
}

export interface RawMessage {
  endian?: Endian;
  type: number;
  flags?: number;
  version?: number;
  serial: number;
  fields: RawField[];
  body?: Buffer;
  /** override the body length written in the fixed header */
  bodyLength?: number;
  /** override the header-fields array length written in the fixed header */
  fieldsLength?: number;
  /** byte used to pad the header to 8 (must be 0 in a valid message) */
  padByte?: number;
}

/** A growable byte writer with D-Bus alignment (offsets count from the start of the message). */
export class ByteWriter {
  private bytes: number[] = [];

  constructor(readonly little: boolean) {}

  get length(): number {
    return this.bytes.length;
  }

  align(n: number, fill = 0): this {
    while (this.bytes.length % n !== 0) this.bytes.push(fill);
    return this;
  }

  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }

  u32(v: number): this {
    this.align(4);
    const b = Buffer.alloc(4);
    if (this.little) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return this.raw(b);
  }

  i32(v: number): this {
    return this.u32(v >>> 0);
  }

  raw(b: Buffer | number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** D-Bus 's' or 'o': u32 length, UTF-8 bytes, NUL. */
  string(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u32(b.length).raw(b).u8(0);
  }

  /** D-Bus 'g': u8 length, bytes, NUL. */
  signature(s: string): this {
    const b = Buffer.from(s, 'latin1');
    return this.u8(b.length).raw(b).u8(0);
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

export function buildMessage(m: RawMessage): Buffer {
  const little = (m.endian ?? 'l') === 'l';
  const w = new ByteWriter(little);
  const body = m.body ?? Buffer.alloc(0);
  w.u8(little ? 0x6c : 0x42).u8(m.type).u8(m.flags ?? 0).u8(m.version ?? 1);
  w.u32(m.bodyLength ?? body.length).u32(m.serial);
  w.u32(0); // fields length, patched below
  const start = w.length;
  for (const f of m.fields) {
    w.align(8).u8(f.code).signature(f.sig);
    if (Buffer.isBuffer(f.value)) w.raw(f.value);
    else if (typeof f.value === 'string') {
      if (f.sig === 'g') w.signature(f.value);
      else w.string(f.value);
    } else if (f.sig === 'y') w.u8(f.value);
    else w.u32(f.value);
  }
  const fieldsLength = w.length - start;
  w.align(8, m.padByte ?? 0);
  const out = Buffer.concat([w.toBuffer(), body]);
  const len = m.fieldsLength ?? fieldsLength;
  if (little) out.writeUInt32LE(len, 12);
  else out.writeUInt32BE(len, 12);
  return out;
}

/** Header fields of a method call. */
export function callFields(opts: { path?: string; iface?: string; member?: string; signature?: string; unixFds?: number }): RawField[] {
  const f: RawField[] = [];
  if (opts.path !== undefined) f.push({ code: 1, sig: 'o', value: opts.path });
  if (opts.iface !== undefined) f.push({ code: 2, sig: 's', value: opts.iface });
  if (opts.member !== undefined) f.push({ code: 3, sig: 's', value: opts.member });
  if (opts.signature !== undefined) f.push({ code: 8, sig: 'g', value: opts.signature });
  if (opts.unixFds !== undefined) f.push({ code: 9, sig: 'u', value: opts.unixFds });
  return f;
}
