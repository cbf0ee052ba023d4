// The `api_version` property read (Properties.Get): the client library's apiVersion() and the
// Scm route (whether a peer's Scm failures carry the error detail) ask it the same way.
import { INTERFACE_NAME, OBJECT_PATH } from '../daemon/dbus/interface';
import { decodeIntVariant } from '../daemon/dbus/wire';
import type { CallRequest, PeerConnection } from './connection';

/** Reads the peer's api_version; `options` are the call's timeout and AbortSignal. */
export async function readApiVersion(connection: PeerConnection, options: Pick<CallRequest, 'timeoutMs' | 'signal'>): Promise<number> {
  const [version] = await connection.call({
    path: OBJECT_PATH,
    interface: 'org.freedesktop.DBus.Properties',
    member: 'Get',
    signature: 'ss',
    body: [INTERFACE_NAME, 'api_version'],
    replySignature: 'v',
    decode: (reply) => [decodeIntVariant(reply)],
    ...options,
  });
  return version as number;
}
