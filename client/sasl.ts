// Client side of the D-Bus SASL handshake as a pure state machine over text lines
// (https://dbus.freedesktop.org/doc/dbus-specification.html#auth-protocol). It only
// decides what to send next; the connection does the I/O. EXTERNAL first (claiming our
// uid), ANONYMOUS when that is refused; unix-fd negotiation and BEGIN are sent together
// with the first method call so that connect + first call costs two round trips.

export type SaslClientState = 'external' | 'anonymous' | 'authenticated' | 'negotiating' | 'open' | 'failed';

export type SaslClientStep =
  /** write this and keep feeding lines */
  | { send: string }
  /** authentication accepted; call begin() together with the first message */
  | { authenticated: true }
  /** the server answered the fd negotiation: binary messages follow */
  | { open: true }
  | { fail: string };

/** Longest line we accept from the server; a real one is under 100 bytes. */
export const MAX_SASL_LINE = 1024;
const MAX_LINES = 16;

/** Hex of the decimal text of `uid`, as EXTERNAL expects (uid 1000 -> "31303030"). */
export function externalIdentity(uid: number): string {
  return Buffer.from(String(uid), 'ascii').toString('hex');
}

export class SaslClient {
  private current: SaslClientState = 'external';
  private lines = 0;
  /** the server's guid from OK */
  guid: string | undefined;
  mechanism: 'EXTERNAL' | 'ANONYMOUS' = 'EXTERNAL';
  unixFdsNegotiated = false;

  constructor(private readonly uid: number) {}

  get state(): SaslClientState {
    return this.current;
  }

  /** The opening bytes: the credentials NUL byte and AUTH EXTERNAL with our uid. */
  start(): string {
    return `\0AUTH EXTERNAL ${externalIdentity(this.uid)}\r\n`;
  }

  /** The bytes that end the handshake; send them with (before) the first message. */
  begin(): string {
    if (this.current !== 'authenticated') throw new Error(`SASL begin() in state ${this.current}`);
    this.current = 'negotiating';
    return 'NEGOTIATE_UNIX_FD\r\nBEGIN\r\n';
  }

  /** Handles one line from the server (without CRLF). */
  feed(line: string): SaslClientStep {
    if (++this.lines > MAX_LINES) return this.fail('the daemon sent too many authentication lines');
    const space = line.indexOf(' ');
    const command = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    switch (this.current) {
      case 'external':
        if (command === 'OK') return this.ok(rest);
        if (command === 'DATA') return { send: `DATA ${externalIdentity(this.uid)}\r\n` };
        if (command === 'REJECTED' || command === 'ERROR') {
          // A client in a user namespace claims its namespaced uid; a strict server refuses it.
          this.current = 'anonymous';
          this.mechanism = 'ANONYMOUS';
          return { send: 'AUTH ANONYMOUS\r\n' };
        }
        return this.fail(`unexpected authentication reply ${JSON.stringify(line)}`);
      case 'anonymous':
        if (command === 'OK') return this.ok(rest);
        if (command === 'DATA') return { send: 'DATA\r\n' };
        if (command === 'REJECTED' || command === 'ERROR') return this.fail('the daemon refused EXTERNAL and ANONYMOUS authentication');
        return this.fail(`unexpected authentication reply ${JSON.stringify(line)}`);
      case 'negotiating':
        // AGREE_UNIX_FD, or ERROR from a server without fd passing (plain calls still work).
        if (command === 'AGREE_UNIX_FD') {
          this.unixFdsNegotiated = true;
          this.current = 'open';
          return { open: true };
        }
        if (command === 'ERROR') {
          this.current = 'open';
          return { open: true };
        }
        return this.fail(`unexpected reply to NEGOTIATE_UNIX_FD: ${JSON.stringify(line)}`);
      default:
        return this.fail(`unexpected authentication line in state ${this.current}: ${JSON.stringify(line)}`);
    }
  }

  private ok(guid: string): SaslClientStep {
    if (!/^[0-9a-fA-F]{32}$/.test(guid)) return this.fail(`malformed OK from the daemon: ${JSON.stringify(guid)}`);
    this.guid = guid;
    this.current = 'authenticated';
    return { authenticated: true };
  }

  private fail(reason: string): SaslClientStep {
    this.current = 'failed';
    return { fail: reason };
  }
}
