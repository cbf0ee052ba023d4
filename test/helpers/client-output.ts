// Parsers for what gdbus, busctl and dbus-send print, into plain JS values: strings, numbers,
// arrays (structs too), [key, value] pairs for dicts; variants are unwrapped.

/** gdbus prints the reply as GVariant text, e.g. `(['a', 'b'],)` or `([('k', uint32 0)],)`. */
export function parseGVariantText(text: string): unknown {
  const p = new GVariantParser(text.trim());
  const v = p.value();
  p.end();
  return v;
}

const TYPE_KEYWORDS = new Set(['boolean', 'byte', 'int16', 'uint16', 'int32', 'uint32', 'handle', 'int64', 'uint64', 'double', 'string', 'objectpath', 'signature']);
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"' };

class GVariantParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  private ws(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos] as string)) this.pos++;
  }

  private peek(): string {
    this.ws();
    return this.s[this.pos] ?? '';
  }

  private expect(c: string): void {
    if (this.peek() !== c) throw new Error(`GVariant text: expected ${c} at ${this.pos} in ${this.s.slice(0, 200)}`);
    this.pos++;
  }

  end(): void {
    if (this.peek() !== '') throw new Error(`GVariant text: trailing input at ${this.pos}`);
  }

  value(): unknown {
    const c = this.peek();
    if (c === '(') return this.seq('(', ')');
    if (c === '[') return this.seq('[', ']');
    if (c === '{') return this.dict();
    if (c === '<') {
      this.pos++;
      const v = this.value();
      this.expect('>');
      return v;
    }
    if (c === "'" || c === '"') return this.string();
    if (c === '@') {
      // '@as []': a type annotation, then the value
      this.pos++;
      this.typeString();
      return this.value();
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.pos))?.[0];
    if (word !== undefined) {
      if (word === 'true' || word === 'false') {
        this.pos += word.length;
        return word === 'true';
      }
      if (TYPE_KEYWORDS.has(word)) {
        this.pos += word.length;
        return this.value();
      }
      if (word === 'nothing') {
        this.pos += word.length;
        return null;
      }
    }
    const num = /^[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|inf|nan)/.exec(this.s.slice(this.pos))?.[0];
    if (num !== undefined) {
      this.pos += num.length;
      return Number(num);
    }
    throw new Error(`GVariant text: cannot parse at ${this.pos}: ${this.s.slice(this.pos, this.pos + 40)}`);
  }

  private typeString(): void {
    // Consumes one complete type: basic char, 'a' + type, '(' types ')', '{' kv '}'.
    const c = this.s[this.pos++];
    if (c === 'a' || c === 'm') return this.typeString();
    if (c === '(') {
      while (this.s[this.pos] !== ')') this.typeString();
      this.pos++;
    } else if (c === '{') {
      this.typeString();
      this.typeString();
      this.pos++;
    }
  }

  private seq(open: string, close: string): unknown[] {
    this.expect(open);
    const out: unknown[] = [];
    for (;;) {
      if (this.peek() === close) break;
      out.push(this.value());
      if (this.peek() === ',') this.pos++;
    }
    this.expect(close);
    return out;
  }

  private dict(): Array<[unknown, unknown]> {
    this.expect('{');
    const out: Array<[unknown, unknown]> = [];
    while (this.peek() !== '}') {
      const k = this.value();
      this.expect(':');
      out.push([k, this.value()]);
      if (this.peek() === ',') this.pos++;
    }
    this.expect('}');
    return out;
  }

  private string(): string {
    const quote = this.s[this.pos++];
    let out = '';
    for (;;) {
      const c = this.s[this.pos++];
      if (c === undefined) throw new Error('GVariant text: unterminated string');
      if (c === quote) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.pos++] ?? '';
      if (e === 'u' || e === 'U') {
        const n = e === 'u' ? 4 : 8;
        out += String.fromCodePoint(parseInt(this.s.slice(this.pos, this.pos + n), 16));
        this.pos += n;
      } else {
        out += ESCAPES[e] ?? e;
      }
    }
  }
}

/** busctl --json=short prints `{"type":"as","data":[[...]]}`; variants are `{"type":"i","data":10}`. */
export function parseBusctlJson(text: string): unknown[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const parsed = JSON.parse(trimmed) as { type: string; data: unknown[] };
  return parsed.data.map(normaliseJson);
}

function normaliseJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normaliseJson);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 2 && 'type' in o && 'data' in o && typeof o.type === 'string') return normaliseJson(o.data);
    return keys.map((k) => [k, normaliseJson(o[k])]);
  }
  return v;
}

/**
 * dbus-send --print-reply: a header line, then one typed item per line with nesting by
 * `array [ ]`, `struct { }` and `dict entry( )`. Strings are printed unescaped and may span lines.
 */
export function parseDbusSendReply(text: string): unknown[] {
  const nl = text.indexOf('\n');
  if (!text.startsWith('method return')) throw new Error(`dbus-send: unexpected output ${text.slice(0, 100)}`);
  const p = new DbusSendParser(nl < 0 ? '' : text.slice(nl + 1));
  const out: unknown[] = [];
  while (!p.atEnd()) out.push(p.item());
  return out;
}

const ITEM_START = /^\s*(?:string|object path|signature|int16|uint16|int32|uint32|int64|uint64|double|byte|boolean|variant|array \[|struct \{|dict entry\(|file descriptor|\]|\}|\))/;

class DbusSendParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.s.slice(this.pos).trim() === '';
  }

  private skipWs(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos] as string)) this.pos++;
  }

  private take(re: RegExp): string | undefined {
    this.skipWs();
    const m = re.exec(this.s.slice(this.pos));
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  item(): unknown {
    const kw = this.take(/^(?:string|object path|signature|int16|uint16|int32|uint32|int64|uint64|double|byte|boolean|variant|array \[|struct \{|dict entry\(|file descriptor)/);
    switch (kw) {
      case 'string':
      case 'object path':
      case 'signature':
        return this.quoted();
      case 'boolean':
        return this.take(/^\S+/) === 'true';
      case 'variant':
        return this.item();
      case 'array [':
        return this.until(']');
      case 'struct {':
        return this.until('}');
      case 'dict entry(':
        return this.until(')');
      case undefined:
        throw new Error(`dbus-send: cannot parse at ${this.s.slice(this.pos, this.pos + 60)}`);
      default:
        return Number(this.take(/^\S+/));
    }
  }

  private until(close: string): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      this.skipWs();
      if (this.s[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.item());
    }
  }

  /** A string ends at a quote that closes its line when the next line starts a new item (or the text ends). */
  private quoted(): string {
    this.skipWs();
    if (this.s[this.pos] !== '"') throw new Error('dbus-send: expected a quoted string');
    const start = this.pos + 1;
    let i = start;
    for (;;) {
      const q = this.s.indexOf('"', i);
      if (q < 0) throw new Error('dbus-send: unterminated string');
      const after = this.s.slice(q + 1);
      if (after === '' || after === '\n' || (after.startsWith('\n') && ITEM_START.test(after.slice(1)))) {
        this.pos = q + 1;
        return this.s.slice(start, q);
      }
      i = q + 1;
    }
  }
}

export interface ParsedError {
  name?: string;
  message?: string;
}

/** `Error: GDBus.Error:org.freedesktop.DBus.Error.AccessDenied: text` */
export function gdbusError(stderr: string): ParsedError {
  const m = /GDBus\.Error:([A-Za-z0-9_.]+):\s?([\s\S]*)$/.exec(stderr.trim());
  return m ? { name: m[1], message: m[2] } : { message: stderr.trim() };
}

/** `Error org.freedesktop.DBus.Error.AccessDenied: text` */
export function dbusSendError(stderr: string): ParsedError {
  const m = /^Error ([A-Za-z0-9_.]+): ([\s\S]*)$/m.exec(stderr.trim());
  return m ? { name: m[1], message: m[2] } : { message: stderr.trim() };
}

/**
 * busctl prints only the message ("Call failed: text"); with SYSTEMD_LOG_LEVEL=debug it also
 * logs the reply header, which carries the error name.
 */
export function busctlError(stderr: string): ParsedError {
  const header = /Got message type=error .*?error-name=(\S+) error-message=(.*)$/m.exec(stderr);
  // "Call failed:" shows strerror() instead of the text for names sd-bus maps to an errno.
  const message = header?.[2] ?? /^Call failed: (.*)$/m.exec(stderr)?.[1];
  return { name: header?.[1], message: message ?? stderr.trim().split('\n').pop() };
}
