// What each cgm subcommand prints: the text lines of the original cgm (reference §10),
// byte for byte, and the --json shape. Pure functions of the call's result.
import type { CgroupStats, KeyInfo, SetupReport } from '../client';

export interface Output {
  /** exact stdout bytes in text mode ('' prints nothing) */
  text: string;
  /** the value printed (as one JSON line) with --json */
  json: unknown;
}

const lines = (items: readonly (string | number)[]): string => items.map((item) => `${item}\n`).join('');

/** create: `Path existed` when it existed, else nothing. */
export function formatCreate(existed: boolean): Output {
  return { text: existed ? 'Path existed\n' : '', json: { existed } };
}

/** remove: `Path did not exist` when it did not exist, else nothing. */
export function formatRemove(existed: boolean): Output {
  return { text: existed ? '' : 'Path did not exist\n', json: { existed } };
}

/** getpidcgroup, getpidcgroupabs: the cgroup and a newline. */
export function formatPidCgroup(cgroup: string): Output {
  return { text: `${cgroup}\n`, json: { cgroup } };
}

/** getvalue: the value and a newline (the daemon already stripped trailing newlines). */
export function formatValue(value: string): Output {
  return { text: `${value}\n`, json: { value } };
}

/** gettasks, gettasksrecursive: one pid per line. */
export function formatPids(pids: readonly number[]): Output {
  return { text: lines(pids), json: [...pids] };
}

/** listchildren, listcontrollers: one name per line. */
export function formatNames(names: readonly string[]): Output {
  return { text: lines(names), json: [...names] };
}

/** listkeys: `name uid gid mode` with uid/gid unsigned decimal and the full st_mode in octal. */
export function formatKeys(keys: readonly KeyInfo[]): Output {
  return {
    text: lines(keys.map((k) => `${k.name} ${k.uid} ${k.gid} ${k.mode.toString(8)}`)),
    json: keys.map((k) => ({ name: k.name, uid: k.uid, gid: k.gid, mode: k.mode, modeOctal: k.mode.toString(8) })),
  };
}

/** apiversion: the number and a newline. */
export function formatApiVersion(version: number): Output {
  return { text: `${version}\n`, json: { apiVersion: version } };
}

/** setup: what was created, existed, applied and moved, one item per line. */
export function formatSetup(report: SetupReport): Output {
  return {
    text: lines([
      ...report.created.map((h) => `created ${h}`),
      ...report.existed.map((h) => `existed ${h}`),
      ...Object.entries(report.applied).map(([key, files]) => `applied ${key} ${files}`),
      ...report.moved.map((pid) => `moved ${pid}`),
    ]),
    json: report,
  };
}

/** stats: `key value` per line. */
export function formatStats(stats: CgroupStats): Output {
  return { text: lines(Object.entries(stats).map(([key, value]) => `${key} ${String(value)}`)), json: stats };
}

/** The bytes written to stdout for `output`. */
export function render(output: Output, json: boolean): string {
  return json ? `${JSON.stringify(output.json)}\n` : output.text;
}
