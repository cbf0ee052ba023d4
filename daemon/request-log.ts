// The per-request log line of SPEC §3: one "request completed" at info, denials at
// warn ("request denied") with the reason, our own faults at error with the stack.
import type { Logger } from './logger';
import { CgmError } from './errors';

export interface CredFields {
  pid: number;
  uid: number;
  gid: number;
}

export interface RequestFields {
  method: string;
  controller?: string;
  cgroup?: string;
  requestor?: CredFields;
  /** the connection's peer when it differs from the requestor (Scm calls through a proxy) */
  proxy?: CredFields;
  [extra: string]: unknown;
}

function sameCred(a: CredFields | undefined, b: CredFields | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.uid === b.uid && a.gid === b.gid;
}

/** Logs the outcome of one request exactly once. `error` undefined means success. */
export function logRequest(log: Logger, fields: RequestFields, startedNs: bigint, error?: unknown): void {
  // A quota refusal (LimitsExceeded) is a denial too: the admin wants to see who hit a limit.
  const isDenial =
    error instanceof CgmError &&
    (error.code === 'AccessDenied' || error.code === 'WrongNamespace' || error.code === 'ReflectedCredentials' || error.code === 'LimitsExceeded');
  const isFault = error !== undefined && !(error instanceof CgmError && error.code !== 'Failed');
  if (!isDenial && !isFault && !log.isLevelEnabled('info')) return;
  const line: Record<string, unknown> = fields;
  if (fields.proxy && sameCred(fields.proxy, fields.requestor)) line.proxy = undefined;
  line.durationMs = Number(process.hrtime.bigint() - startedNs) / 1e6;
  if (error === undefined) {
    line.outcome = 'ok';
    log.info(line, 'request completed');
    return;
  }
  line.outcome = error instanceof CgmError ? error.code : 'Failed';
  if (isDenial) {
    line.reason = (error as CgmError).message;
    log.warn(line, 'request denied');
  } else if (isFault) {
    line.err = error;
    log.error(line, 'request failed');
  } else {
    line.reason = (error as CgmError).message;
    log.info(line, 'request completed');
    return;
  }
  // Denials and faults reach the log at once, whatever is buffered.
  log.flush();
}
