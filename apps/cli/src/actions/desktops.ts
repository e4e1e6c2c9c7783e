import fs from 'node:fs';
import { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';
// The subpath, not the package: the package's index loads every zod schema of the API.
import { describeGrant, type GrantFacts } from '@stagedoor/contract/grant-words';
import type { TunnelInstructions } from './connect-tunnel.ts';

interface Desktop {
  poolId: string;
  name: string;
  state: string;
  reason: string | null;
  protocols: string[];
  machines: { workstationId: string; name: string; state: string; connectionId: string | null; persistent: boolean }[];
}
interface DesktopsAnswer {
  policy: { name: string } | null;
  reason: string | null;
  desktops: Desktop[];
}
export interface ConnectionView {
  id: string;
  state: string;
  protocol: string;
  workstation: { id: string; name: string };
  progress: { stage: string; percent: number; message: string };
  grant?: GrantFacts | null;
  instructions: null | { protocol: string; host: string; port: number; fileName: string | null; file: string | null; command: string | null; connectBy: string | null; tunnel?: TunnelInstructions | null };
}

interface ConnectOptions {
  url?: string;
  token?: string;
  protocol?: string;
  vncFormat?: string;
  out?: string;
  timeout: string;
  tunnel?: boolean;
  localPort?: string;
  tunnelWebsocket?: boolean;
  tunnelUrl?: string;
  tunnelToken?: string;
  certificateSha256?: string;
}

/** `stagedoor desktops`: the offer, one row per desktop under a header. */
export async function listDesktops(opts: { url?: string; token?: string; json?: boolean }): Promise<void> {
  const api = ApiClient.fromOptions(opts);
  const r = await api.request<DesktopsAnswer>('GET', '/api/v1/desktops');
  if (opts.json) return void console.log(JSON.stringify(r, null, 2));
  if (!r.policy) return void console.log(`no desktops: ${r.reason}`);
  const rows = r.desktops.map((d) => [d.name, d.state, d.protocols.join(','), d.machines.map((m) => `${m.name} (${m.state})`).join(', ') || d.reason || '']);
  console.log(table(['DESKTOP', 'STATE', 'PROTOCOLS', 'YOUR MACHINES'], rows));
}

/** `stagedoor status`: who I am, and each live connection of mine with what its grant allows. */
export async function status(opts: { url?: string; token?: string; json?: boolean }): Promise<void> {
  const api = ApiClient.fromOptions(opts);
  const me = await api.request<{ user: { username: string; role: string } }>('GET', '/api/v1/me');
  const mine = await myConnections(api);
  if (opts.json) return void console.log(JSON.stringify({ url: api.url, user: me.user, connections: mine.map((m) => m.connection) }, null, 2));
  console.log(statusText(api.url, me.user, mine, (t) => new Date(t).toLocaleTimeString()));
}

/** What `stagedoor status` prints (pure, for its test): the grant in the words the portal uses. */
export function statusText(url: string, user: { username: string; role: string }, mine: { desktop: string; connection: ConnectionView }[], time: (iso: string) => string): string {
  const head = `signed in to ${url} as ${user.username} (${user.role})`;
  if (!mine.length) return `${head}\nno connections (\`stagedoor desktops\` lists what you may use)`;
  const rows = mine.map(({ desktop, connection: c }) => [desktop, c.workstation.name, c.protocol, c.state, c.grant ? describeGrant(c.grant, time) : 'direct (no gateway grant)']);
  return `${head}\n${table(['DESKTOP', 'MACHINE', 'PROTOCOL', 'STATE', 'GRANT'], rows)}`;
}

/** `stagedoor disconnect|release NAME`: end my connections to that desktop (pool) or machine. */
export async function disconnect(name: string, opts: { url?: string; token?: string }): Promise<void> {
  const api = ApiClient.fromOptions(opts);
  const { desktops } = await api.request<DesktopsAnswer>('GET', '/api/v1/desktops');
  const wanted = name.toLowerCase();
  const held = desktops.flatMap((d) => d.machines.map((m) => ({ desktop: d.name, machine: m })));
  const matching = held.filter((h) => h.desktop.toLowerCase() === wanted || h.machine.name.toLowerCase() === wanted);
  if (!matching.length) throw new CliError(`you hold no desktop named "${name}"; yours: ${held.map((h) => `${h.desktop} (${h.machine.name})`).join(', ') || 'none'}`);
  const live = matching.filter((h) => h.machine.connectionId);
  if (!live.length) throw new CliError(`no connection to end on ${matching.map((h) => h.machine.name).join(', ')}`);
  for (const h of live) {
    await api.request('DELETE', `/api/v1/connections/${h.machine.connectionId}`);
    console.log(`${h.machine.name}: disconnected; ${h.machine.persistent ? 'it stays assigned to you' : `it went back to the pool ${h.desktop}`}`);
  }
}

/** `stagedoor connect NAME`. */
export async function connect(name: string | undefined, opts: ConnectOptions): Promise<void> {
  if (opts.tunnelUrl) {
    if (!opts.tunnelToken) throw new CliError('--tunnel-url needs --tunnel-token (the grant token)');
    const { runTunnel } = await import('./connect-tunnel.ts');
    return runTunnel({ url: opts.tunnelUrl, token: opts.tunnelToken, certificateSha256: opts.certificateSha256 ?? null }, { protocol: opts.protocol ?? 'tcp', localPort: opts.localPort, websocket: opts.tunnelWebsocket });
  }
  if (!name) throw new CliError('name the desktop to connect to (`stagedoor desktops` lists yours)');
  const api = ApiClient.fromOptions(opts);
  const conn = await waitForConnection(api, name, opts);
  const i = conn.instructions!;
  if (opts.tunnel) {
    const tunnel = i.tunnel;
    if (!tunnel) throw new CliError(`the broker offers no HTTPS tunnel for this ${i.protocol.toUpperCase()} connection: its plan uses port forward (connect without --tunnel), or the broker is older than the gateway's tunnel`);
    const { runTunnel } = await import('./connect-tunnel.ts');
    return runTunnel(tunnel, { protocol: i.protocol, localPort: opts.localPort, websocket: opts.tunnelWebsocket });
  }
  // What the grant allows, in words (single use, until when, reconnects), on stderr beside the progress.
  if (conn.grant) console.error(describeGrant(conn.grant, (t) => new Date(t).toLocaleTimeString()));
  if (i.file) {
    // Another viewer's format of the same file (TigerVNC rejects RealVNC's .vnc): the broker renders it.
    const alt = i.protocol === 'vnc' && opts.vncFormat && opts.vncFormat !== 'realvnc' ? await api.raw('GET', `/api/v1/connections/${conn.id}/file?format=${opts.vncFormat}`) : null;
    if (alt && !alt.ok) throw new CliError(`the broker cannot give a ${opts.vncFormat} file (${alt.status}): ${await alt.text()}`);
    const file = alt ? await alt.text() : i.file;
    const fileName = alt ? (/filename="?([^";]+)"?/.exec(alt.headers.get('content-disposition') ?? '')?.[1] ?? `${name}.${opts.vncFormat}`) : i.fileName!;
    const out = opts.out ?? fileName;
    fs.writeFileSync(out, file);
    console.log(`${out} written: open it with your ${i.protocol.toUpperCase()} client${i.connectBy ? ` before ${new Date(i.connectBy).toLocaleTimeString()}` : ''}`);
  } else {
    console.log(i.command);
  }
}

/** My live connections, by the desktops answer (it names the connection of each machine I hold). */
async function myConnections(api: ApiClient): Promise<{ desktop: string; connection: ConnectionView }[]> {
  const { desktops } = await api.request<DesktopsAnswer>('GET', '/api/v1/desktops');
  const held = desktops.flatMap((d) => d.machines.filter((m) => m.connectionId).map((m) => ({ desktop: d.name, id: m.connectionId! })));
  return Promise.all(held.map(async (h) => ({ desktop: h.desktop, connection: await api.request<ConnectionView>('GET', `/api/v1/connections/${h.id}`) })));
}

/** Columns padded to their widest cell, under an upper-case header. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** Ask the broker for a connection to the named desktop and wait until it has instructions. */
async function waitForConnection(api: ApiClient, name: string, opts: ConnectOptions): Promise<ConnectionView> {
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
