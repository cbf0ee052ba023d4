// Server side of the D-Bus SASL handshake as a pure state machine over text lines.
// Authentication never authorises anything: every request is checked against the
// kernel's peer credentials, so EXTERNAL is accepted whatever uid it claims (a client
// in a user namespace claims its namespaced uid) and ANONYMOUS is accepted too.

export const MECHANISMS = 'EXTERNAL ANONYMOUS';

export type SaslStep =
  | { reply: string }
  | { reply?: string; begin: true }
  | { reply?: string; close: true };

const MAX_COMMANDS = 32;

export class SaslServer {
  private state: 'auth' | 'waitData' | 'authenticated' = 'auth';
  private commands = 0;
  unixFdNegotiated = false;
  /** what the client claimed, for the log only */
  claimedIdentity: string | undefined;
  mechanism: string | undefined;

  constructor(private readonly guid: string) {}

  /**
   * Handles one line (without CRLF). Follows the server states of the D-Bus spec
   * ("Authentication state diagrams") as libdbus implements them (dbus-auth.c).
   */
  feed(line: string): SaslStep {
    if (++this.commands > MAX_COMMANDS) return { reply: 'ERROR "too many commands"', close: true };
    const space = line.indexOf(' ');
    const command = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    switch (command) {
      case 'AUTH':
        if (this.state === 'waitData') return { reply: 'ERROR "Sent AUTH while another AUTH in progress"' };
        if (this.state === 'authenticated') return { reply: 'ERROR "Sent AUTH while expecting BEGIN"' };
        return this.auth(rest);
      case 'DATA':
        if (this.state !== 'waitData') return { reply: 'ERROR "unexpected DATA"' };
        return this.accept('EXTERNAL', rest);
      case 'CANCEL':
        if (this.state === 'auth') return { reply: 'ERROR "Not currently in an auth conversation"' };
        return this.reject();
      case 'ERROR':
        return this.reject();
      case 'NEGOTIATE_UNIX_FD':
        if (this.state !== 'authenticated') return { reply: 'ERROR "not authenticated"' };
        this.unixFdNegotiated = true;
        return { reply: 'AGREE_UNIX_FD' };
      case 'BEGIN':
        if (this.state !== 'authenticated') return { reply: 'ERROR "not authenticated"', close: true };
        return { begin: true };
      default:
        return { reply: 'ERROR "unknown command"' };
    }
  }

  /** Back to the start: the client may try another mechanism. */
  private reject(): SaslStep {
    this.state = 'auth';
    this.mechanism = undefined;
    this.claimedIdentity = undefined;
    this.unixFdNegotiated = false;
    return { reply: `REJECTED ${MECHANISMS}` };
  }

  private auth(args: string): SaslStep {
    const [mechanism, initial] = args.split(' ', 2);
    if (mechanism === 'EXTERNAL') {
      if (initial === undefined) {
        this.state = 'waitData';
        return { reply: 'DATA' };
      }
      return this.accept('EXTERNAL', initial);
    }
    if (mechanism === 'ANONYMOUS') return this.accept('ANONYMOUS', initial ?? '');
    return { reply: `REJECTED ${MECHANISMS}` };
  }

  private accept(mechanism: string, hexIdentity: string): SaslStep {
    // libdbus answers a response that is not hex with ERROR and stays where it was.
    if (!isHex(hexIdentity)) return { reply: 'ERROR "Invalid hex encoding"' };
    this.state = 'authenticated';
    this.mechanism = mechanism;
    this.claimedIdentity = Buffer.from(hexIdentity, 'hex').toString('latin1').slice(0, 64);
    return { reply: `OK ${this.guid}` };
  }
}

function isHex(text: string): boolean {
  return /^(?:[0-9a-fA-F]{2})*$/.test(text);
}
