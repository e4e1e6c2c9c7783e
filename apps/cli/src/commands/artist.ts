import { Option, type Command } from 'commander';
import { lazy } from '../lazy.ts';
import { tokenOption, urlOption } from './options.ts';

const session = () => import('../actions/session.ts');
const desktops = () => import('../actions/desktops.ts');

/** The artist's side of the CLI: login, logout, status, desktops, connect, disconnect. Nothing here loads broker code. */
export function artistCommands(program: Command): void {
  program
    .command('login')
    .description('sign in to a broker and remember the session (~/.config/stagedoor/session.json, mode 600) and the broker URL (config.json): give --url once')
    .addOption(urlOption())
    .option('--username <name>', 'your username (password sign-in)')
    .option('--sso <name>', 'sign in at the identity provider of this SSO server (see the login page): your browser opens, the CLI receives the answer on 127.0.0.1')
    .option('--no-browser', 'with --sso: print the URL instead of opening a browser')
    .option('--password-stdin', 'read the password from standard input (the default when it is not a terminal; on a terminal you are asked, without echo)')
    .addOption(new Option('--password <password>').env('STAGEDOOR_PASSWORD').hideHelp())
    .action(lazy(session, 'login'));

  program
    .command('logout')
    .description('end the session on the broker and delete it here')
    .action(lazy(session, 'logout'));

  program
    .command('status')
    .description('who you are signed in as, and your connections with what their grants allow')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--json', 'print JSON')
    .action(lazy(desktops, 'status'));

  program
    .command('desktops')
    .description('list the desktops you may use')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--json', 'print JSON')
    .action(lazy(desktops, 'listDesktops'));

  program
    .command('connect [desktop]')
    .description("connect to a desktop (by name): waits until it is ready, then writes the connection file or prints the command; with --tunnel, opens a local port through the gateway's HTTPS tunnel")
    .addOption(urlOption())
    .addOption(tokenOption())
    .addOption(new Option('--protocol <protocol>', 'rdp, dcv, vnc, ssh or pcoip (default: the first of the plan)').choices(['rdp', 'dcv', 'vnc', 'ssh', 'pcoip']))
    .addOption(new Option('--vnc-format <format>', 'VNC file for which viewer: realvnc (.vnc, the default) or tigervnc (.tigervnc; TigerVNC, TurboVNC)').choices(['realvnc', 'tigervnc']))
    .option('--out <file>', 'where to write the .rdp/.dcv/.vnc file (default: its own name in the current directory)')
    .option('--timeout <seconds>', 'how long to wait for the desktop', '600')
    .option('--tunnel', "reach the desktop through the gateway's HTTPS tunnel (port 443; works through HTTPS_PROXY): opens a port on 127.0.0.1 for your client until Ctrl-C")
    .option('--local-port <port>', 'with --tunnel: the local port (default: a free one)')
    .option('--tunnel-websocket', 'with --tunnel: always use the WebSocket (for a proxy that inspects TLS); by default the native TLS mode is tried first')
    .addOption(new Option('--tunnel-url <url>', "advanced, with --tunnel: the gateway's wss://host:port/tunnel, instead of asking the broker (needs --tunnel-token)"))
    .addOption(new Option('--tunnel-token <token>', 'advanced, with --tunnel-url: the grant token'))
    .addOption(new Option('--certificate-sha256 <fingerprint>', "advanced, with --tunnel-url: pin the gateway's certificate (AA:BB:… SHA-256) instead of checking it against the system CAs"))
    .action(lazy(desktops, 'connect'));

  // One operation on the broker (end my connection): a floating desktop goes back to its pool, a
  // persistent one stays yours. Artists call it either name, so both work.
  program
    .command('disconnect <desktop>')
    .alias('release')
    .description('end your connection to a desktop (by desktop or machine name): a floating desktop goes back to its pool, a persistent one stays yours. Also: release')
    .addOption(urlOption())
    .addOption(tokenOption())
    .action(lazy(desktops, 'disconnect'));
}

/** The studio admin's commands that talk to a broker over HTTP. */
export function studioCommands(program: Command): void {
  program
    .command('apply')
    .description('make groups, auth servers, providers, plans, pools and policies match a site file (YAML)')
    .requiredOption('-f, --file <file>', 'the site file')
    .option('--dry-run', 'print what would change, change nothing')
    .addOption(urlOption())
    .addOption(tokenOption())
    .action(lazy(() => import('../actions/apply.ts'), 'apply'));

  const report = program.command('report').description('reports from a broker (needs an admin, operator or auditor session: `stagedoor login` or --token)');
  report
    .command('cost')
    .description('running and stopped hours, cost and hours saved against always-on, per pool, user or instance type')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--from <date>', 'start (inclusive), e.g. 2026-11-23 (UTC midnight) or an ISO timestamp; default: 7 days before --to')
    .option('--to <date>', 'end (exclusive); default: now')
    .addOption(new Option('--group-by <what>', 'group rows by').choices(['pool', 'user', 'instanceType']).default('pool'))
    .option('--json', 'print the API answer as JSON')
    .action(lazy(() => import('../actions/report.ts'), 'reportCost'));
}
