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
  const durationMs = Number(process.hrtime.bigint() - startedNs) / 1e6;
  const { proxy, ...rest } = fields;
  const base = sameCred(proxy, fields.requestor) || !proxy ? rest : fields;
  if (error === undefined) {
    if (log.isLevelEnabled('info')) log.info({ ...base, outcome: 'ok', durationMs }, 'request completed');
    return;
  }
  if (error instanceof CgmError) {
    if (error.code === 'AccessDenied' || error.code === 'WrongNamespace') {
      log.warn({ ...base, outcome: error.code, reason: error.message, durationMs }, 'request denied');
    } else if (error.code === 'Failed') {
      log.error({ ...base, outcome: error.code, err: error, durationMs }, 'request failed');
    } else if (log.isLevelEnabled('info')) {
      log.info({ ...base, outcome: error.code, reason: error.message, durationMs }, 'request completed');
    }
    return;
  }
  log.error({ ...base, outcome: 'Failed', err: error, durationMs }, 'request failed');
}
