import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';
import { describeGrant, type GrantFacts } from '@stagedoor/contract';
import { runTunnel, type TunnelInstructions } from './connect-tunnel.ts';

interface Desktop {
  poolId: string;
  name: string;
  state: string;
  reason: string | null;
  protocols: string[];
  machines: { workstationId: string; name: string; state: string }[];
}
interface ConnectionView {
  id: string;
  state: string;
  progress: { stage: string; percent: number; message: string };
  grant?: GrantFacts | null;
  instructions: null | { protocol: string; host: string; port: number; fileName: string | null; file: string | null; command: string | null; connectBy: string | null; tunnel?: TunnelInstructions | null };
}

interface ConnectOptions {
  url?: string;
  token?: string;
  protocol?: string;
  out?: string;
  timeout: string;
  tunnel?: boolean;
  localPort?: string;
  tunnelUrl?: string;
  tunnelToken?: string;
  certificateSha256?: string;
}

export const urlOption = () => new Option('--url <url>', 'broker URL').env('STAGEDOOR_URL');
export const tokenOption = () => new Option('--token <token>', 'API token (instead of `stagedoor login`)').env('STAGEDOOR_TOKEN');

/** The artist's side of the CLI: login, desktops, connect. */
export function userCommands(program: Command): void {
  program
    .command('login')
    .description('sign in to a broker and remember the session (~/.config/stagedoor/session.json, mode 600)')
    .addOption(urlOption().makeOptionMandatory())
    .requiredOption('--username <name>', 'your username')
    .option('--password-stdin', 'read the password from standard input (otherwise STAGEDOOR_PASSWORD)')
    .addOption(new Option('--password <password>').env('STAGEDOOR_PASSWORD').hideHelp())
    .action(async (opts: { url: string; username: string; passwordStdin?: boolean; password?: string }) => {
      const password = opts.passwordStdin ? await readStdin() : opts.password;
      if (!password) throw new CliError('give the password on standard input (--password-stdin) or in STAGEDOOR_PASSWORD');
      const s = await ApiClient.login(opts.url, opts.username, password);
      console.log(`signed in to ${s.url} as ${s.username}`);
    });

  program
    .command('desktops')
    .description('list the desktops you may use')
    .addOption(urlOption())
    .addOption(tokenOption())
    .option('--json', 'print JSON')
    .action(async (opts: { url?: string; token?: string; json?: boolean }) => {
      const api = ApiClient.fromOptions(opts);
      const r = await api.request<{ policy: { name: string } | null; reason: string | null; desktops: Desktop[] }>('GET', '/api/v1/desktops');
      if (opts.json) return void console.log(JSON.stringify(r, null, 2));
      if (!r.policy) return void console.log(`no desktops: ${r.reason}`);
      for (const d of r.desktops) {
        const machines = d.machines.map((m) => `${m.name} (${m.state})`).join(', ');
        console.log(`${d.name.padEnd(24)} ${d.state.padEnd(12)} ${d.protocols.join(',').padEnd(16)} ${machines || d.reason || ''}`);
      }
    });

  program
    .command('connect [desktop]')
    .description('connect to a desktop (by name): waits until it is ready, then writes the connection file or prints the command; with --tunnel, opens a local port through the gateway\'s HTTPS tunnel')
    .addOption(urlOption())
    .addOption(tokenOption())
    .addOption(new Option('--protocol <protocol>', 'rdp, dcv, vnc, ssh or pcoip (default: the first of the plan)').choices(['rdp', 'dcv', 'vnc', 'ssh', 'pcoip']))
    .option('--out <file>', 'where to write the .rdp/.dcv/.vnc file (default: its own name in the current directory)')
    .option('--timeout <seconds>', 'how long to wait for the desktop', '600')
    .option('--tunnel', 'reach the desktop through the gateway\'s HTTPS tunnel (port 443; works through HTTPS_PROXY): opens a port on 127.0.0.1 for your client until Ctrl-C')
    .option('--local-port <port>', 'with --tunnel: the local port (default: a free one)')
    .addOption(new Option('--tunnel-url <url>', 'advanced, with --tunnel: the gateway\'s wss://host:port/tunnel, instead of asking the broker (needs --tunnel-token)'))
    .addOption(new Option('--tunnel-token <token>', 'advanced, with --tunnel-url: the grant token'))
    .addOption(new Option('--certificate-sha256 <fingerprint>', 'advanced, with --tunnel-url: pin the gateway\'s certificate (AA:BB:… SHA-256) instead of checking it against the system CAs'))
    .action(async (name: string | undefined, opts: ConnectOptions) => {
      if (opts.tunnelUrl) {
        if (!opts.tunnelToken) throw new CliError('--tunnel-url needs --tunnel-token (the grant token)');
        return runTunnel({ url: opts.tunnelUrl, token: opts.tunnelToken, certificateSha256: opts.certificateSha256 ?? null }, { protocol: opts.protocol ?? 'tcp', localPort: opts.localPort });
      }
      if (!name) throw new CliError('name the desktop to connect to (`stagedoor desktops` lists yours)');
      const conn = await waitForConnection(name, opts);
      const i = conn.instructions!;
      if (opts.tunnel) {
        const tunnel = i.tunnel;
        if (!tunnel) throw new CliError(`the broker offers no HTTPS tunnel for this ${i.protocol.toUpperCase()} connection: its plan uses port forward (connect without --tunnel), or the broker is older than the gateway's tunnel`);
        return runTunnel(tunnel, { protocol: i.protocol, localPort: opts.localPort });
      }
      // What the grant allows, in words (single use, until when, reconnects), on stderr beside the progress.
      if (conn.grant) console.error(describeGrant(conn.grant, (t) => new Date(t).toLocaleTimeString()));
      if (i.file) {
        const out = opts.out ?? i.fileName!;
        fs.writeFileSync(out, i.file);
        console.log(`${out} written: open it with your ${i.protocol.toUpperCase()} client${i.connectBy ? ` before ${new Date(i.connectBy).toLocaleTimeString()}` : ''}`);
      } else {
        console.log(i.command);
      }
    });
}

/** Ask the broker for a connection to the named desktop and wait until it has instructions. */
async function waitForConnection(name: string, opts: ConnectOptions): Promise<ConnectionView> {
  const api = ApiClient.fromOptions(opts);
  const { desktops } = await api.request<{ desktops: Desktop[] }>('GET', '/api/v1/desktops');
  const desktop = desktops.find((d) => d.name.toLowerCase() === name.toLowerCase());
  if (!desktop) throw new CliError(`no desktop named "${name}"; yours: ${desktops.map((d) => d.name).join(', ') || 'none'}`);
  let conn = await api.requestOnce<ConnectionView>('POST', '/api/v1/connections', { poolId: desktop.poolId, ...(opts.protocol ? { protocol: opts.protocol } : {}) });
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  let last = '';
  while (!conn.instructions && conn.state !== 'failed' && conn.state !== 'closed') {
    if (Date.now() > deadline) throw new CliError(`the desktop is still not ready (${conn.progress.message}); try again later`);
    const line = `${conn.progress.percent}% ${conn.progress.message}`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    await new Promise((r) => setTimeout(r, 2000));
    conn = await api.request<ConnectionView>('GET', `/api/v1/connections/${conn.id}`);
  }
  if (!conn.instructions) throw new CliError(`the connection ${conn.state}: ${conn.progress.message}`);
  return conn;
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
