// The man pages cgm(1), cgmanager(8) and cgproxy(8), rendered from the same commander
// programs and command table that parse the command lines, so that a new option or
// subcommand cannot be missing from its page. Pure apart from building those programs.
import type { Command } from 'commander';
import { buildCommand } from '../../daemon/options';
import { VERSION } from '../../daemon/version';
import { buildProxyCommand } from '../../proxy/options';
import { COMMANDS } from '../cli/commands';
import { buildProgram, NOTES } from '../cli/program';
import { usageLine } from '../cli/run-command';
import { escapeRoff, formatFlags, optionList, paragraphs, type ManOption } from './roff';

export interface ManPage {
  /** file name, e.g. cgm.1 */
  file: string;
  text: string;
}

const PROJECT = 'https://github.com/lxc/cgmanager (wire protocol); this package\'s README.md';

function optionsOf(command: Command): ManOption[] {
  const shown: ManOption[] = command.options
    .filter((o) => !o.hidden)
    .map((o) => ({ flags: o.flags, description: o.description, defaultValue: o.defaultValue as unknown }));
  return [...shown, { flags: '-h, --help', description: 'show the help and exit' }];
}

function header(name: string, section: 1 | 8, summary: string): string {
  const title = section === 1 ? 'User Commands' : 'System Administration';
  return `.TH ${name.toUpperCase()} ${section} "" "cgmanager ${escapeRoff(VERSION)}" "${title}"\n.SH NAME\n${escapeRoff(name)} \\- ${escapeRoff(summary)}\n`;
}

const NO_IO = { stdout: (): void => undefined, stderr: (): void => undefined, env: {} };

function cgmPage(): ManPage {
  const program = buildProgram(NO_IO, () => undefined);
  const commands = COMMANDS.map((def) => {
    const synopsis = usageLine(def).replace(/^usage: cgm /, '');
    const prints = def.prints ? ` ${def.prints}` : '';
    return `.TP\n\\fBcgm\\fR ${formatFlags(synopsis)}\n${escapeRoff(`${def.summary[0]?.toUpperCase() ?? ''}${def.summary.slice(1)}.${prints}`)}\n`;
  }).join('');
  const text = [
    header('cgm', 1, 'command-line client for the cgmanager cgroup manager'),
    '.SH SYNOPSIS\n\\fBcgm\\fR [\\fB\\-\\-socket\\fR \\fIpath\\fR] \\fIcommand\\fR [\\fIarguments\\fR]\n.br\n\\fBcgm help\\fR [\\fIcommand\\fR]\n.br\n\\fBcgm\\fR \\fIcommand\\fR \\fB\\-\\-help\\fR\n.br\n\\fBcgm \\-\\-version\\fR\n',
    `.SH DESCRIPTION\n${paragraphs(program.description())}`,
    '.PP\nEvery subcommand of CGManager 0.42\'s cgm, with the same arguments, output and exit status, plus \\fB\\-\\-json\\fR on commands that print data and \\fBtree\\fR.\n',
    `.SH OPTIONS\n${optionList(optionsOf(program))}`,
    `.SH COMMANDS\n${commands}`,
    `.SH NOTES\n${paragraphs(NOTES)}`,
    '.SH EXIT STATUS\n0 on success, 1 on any failure or usage error (an unknown command, a missing argument, a bad number). Errors are one line on stderr; stdout carries only data.\n',
    `.SH SEE ALSO\n\\fBcgmanager\\fR(8), \\fBcgproxy\\fR(8); ${escapeRoff(PROJECT)}\n`,
  ].join('');
  return { file: 'cgm.1', text };
}

function daemonPage(): ManPage {
  const command = buildCommand({});
  const text = [
    header('cgmanager', 8, 'per-host cgroup manager daemon'),
    `.SH SYNOPSIS\n\\fBcgmanager\\fR [\\fIoptions\\fR]\n`,
    `.SH DESCRIPTION\n${paragraphs(command.description())}`,
    '.PP\nIt speaks the D\\-Bus API of LXC\'s CGManager 0.42 over peer\\-to\\-peer D\\-Bus on a unix socket, and lets callers create cgroups, move tasks, read and set limits, chown and remove cgroups, each only inside its own subtree. It runs in the foreground; \\fBcgmanager.service\\fR is \\fIType=notify\\fR and may be socket\\-activated by \\fBcgmanager.socket\\fR. SIGTERM or SIGINT removes the socket, answers the requests in flight and exits.\n',
    `.SH OPTIONS\n${optionList(optionsOf(command))}`,
    '.SH ENVIRONMENT\n.TP\n\\fBCGMANAGER_SOCKET\\fR\nthe socket when \\fB\\-\\-socket\\fR is not given\n.TP\n\\fBCGMANAGER_LOG_LEVEL\\fR\nthe log level when \\fB\\-\\-log\\-level\\fR is not given\n.TP\n\\fBCGMANAGER_ADDON\\fR\npath of the native addon, when it is not in the package\n',
    '.SH FILES\n.TP\n\\fI/sys/fs/cgroup/cgmanager/sock\\fR\nthe default socket on cgroup v1 and hybrid hosts\n.TP\n\\fI/run/cgmanager/sock\\fR\nthe default socket where \\fI/sys/fs/cgroup\\fR is cgroup2\n.TP\n\\fI/run/cgmanager\\fR\nstate: remove\\-on\\-empty marks, the create journal, release agents\n',
    '.SH EXIT STATUS\n0 after a clean stop; 1 when it cannot start (bad option, socket taken, native addon missing), with one line on stderr.\n',
    `.SH SEE ALSO\n\\fBcgm\\fR(1), \\fBcgproxy\\fR(8), \\fBsystemd.unit\\fR(5); ${escapeRoff(PROJECT)}\n`,
  ].join('');
  return { file: 'cgmanager.8', text };
}

function proxyPage(): ManPage {
  const command = buildProxyCommand({});
  const text = [
    header('cgproxy', 8, 'cgmanager proxy for containers'),
    `.SH SYNOPSIS\n\\fBcgproxy\\fR [\\fIoptions\\fR]\n.br\n\\fBcgproxy \\-\\-check\\-master\\fR\n`,
    `.SH DESCRIPTION\n${paragraphs(command.description())}`,
    '.PP\nThe container runtime bind\\-mounts the host\'s socket directory at \\fI/sys/fs/cgroup/cgmanager\\fR; cgproxy moves it to \\fI/sys/fs/cgroup/cgmanager.lower\\fR and serves the container on \\fI/sys/fs/cgroup/cgmanager/sock\\fR. Run it as the container\'s root.\n',
    `.SH OPTIONS\n${optionList(optionsOf(command))}`,
    '.SH EXIT STATUS\n0 after a clean stop (or when \\fB\\-\\-check\\-master\\fR finds a manager); 1 otherwise, with one line on stderr.\n',
    `.SH SEE ALSO\n\\fBcgmanager\\fR(8), \\fBcgm\\fR(1); ${escapeRoff(PROJECT)}\n`,
  ].join('');
  return { file: 'cgproxy.8', text };
}

/** The three pages. */
export function renderManPages(): ManPage[] {
  return [cgmPage(), daemonPage(), proxyPage()];
}
