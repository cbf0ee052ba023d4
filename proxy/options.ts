// cgproxy's command line (reference §9.2, SPEC §4) parsed with commander.
import { Command } from 'commander';
import * as path from 'node:path';
import { defaultSocketPath, LOWER_SOCKET } from '../daemon/socket-path';
import { addCommonOptions, commonOptionsFrom, type CommonOptions, type CommonOptionValues } from '../daemon/common-options';
import { VERSION } from '../daemon/version';

export interface ProxyOptions extends CommonOptions {
  checkMaster: boolean;
  /** where the proxy serves (the container's view of the CGManager socket) */
  socket: string;
  /** the host daemon's socket as bind-mounted into the container */
  upstream: string;
}

export function buildProxyCommand(env: NodeJS.ProcessEnv = process.env): Command {
  const command = new Command('cgproxy')
    .description(
      'cgroup manager proxy for containers: serves the cgmanager API on the container\'s socket and forwards each call to the host daemon as its Scm variant, so the kernel translates pids and uids.',
    )
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'show this help')
    .option('--check-master', 'exit 0 if a cgmanager (daemon or proxy) answers on --upstream or --socket, 1 otherwise')
    .option('--socket <path>', 'socket to serve on (env CGMANAGER_SOCKET; default as for the daemon)')
    .option('--upstream <path>', 'the host daemon\'s socket; when only --socket answers, its directory is moved here first', LOWER_SOCKET);
  return addCommonOptions(command, env, 'how long to wait for each step of an Scm exchange')
    .allowExcessArguments(false)
    .showHelpAfterError()
    .exitOverride();
}

export function parseProxyOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ProxyOptions {
  const command = buildProxyCommand(env);
  command.parse(argv, { from: 'user' });
  const o = command.opts<CommonOptionValues & { checkMaster?: boolean; socket?: string; upstream: string }>();
  return {
    checkMaster: o.checkMaster === true,
    socket: path.resolve(o.socket ?? defaultSocketPath(env)),
    upstream: path.resolve(o.upstream),
    ...commonOptionsFrom(o),
  };
}
