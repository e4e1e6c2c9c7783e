import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { SshTerminalClient } from '../../apps/gateway/test/ssh-terminal-client.ts';
import { freePort } from '../../test/support/ports.ts';
import { startPasswordSshd } from '../../test/support/sshd.ts';

/**
 * Gateway memory per idle browser SSH session (issue 17; docs/web.md): N sessions signed in to a real
 * sshd through the gateway's ssh-terminal mode, each with its shell open and idle; the gateway's RSS
 * and heap after a full GC, before and with the N sessions. Needs root (it makes a local user for
 * sshd's password sign-in, as the tests do).
 *
 * The tunnel runs as on a gateway with the native relay engine (the default): each connection's TLS
 * over the record tap that lets the relay threads take a session. `--no-tap`: as on the JavaScript
 * engine, without it.
 *
 *   npx tsx bench/browser-ssh/run.ts [sessions=100] [--no-tap]
 */
const N = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 100);
const TAP = !process.argv.includes('--no-tap');
const USER = 'sd-webssh-bench';
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-bench-webssh-'));
const sshd = await startPasswordSshd(dir, await freePort(), USER, PASSWORD);
const server = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(import.meta.dirname, 'server.ts')], { env: { ...process.env, TARGET: `127.0.0.1:${sshd.port}`, TAP: TAP ? '1' : '0' }, stdio: ['pipe', 'pipe', 'inherit'] });
const lines = readline.createInterface({ input: server.stdout! });
const next = (prefix: string) => new Promise<string>((resolve) => {
  const on = (l: string) => l.startsWith(prefix) && (lines.off('line', on), resolve(l.slice(prefix.length)));
  lines.on('line', on);
});
const port = Number(await next('port '));
const url = `wss://127.0.0.1:${port}/tunnel`;
const mem = async () => {
  const answer = next('mem ');
  server.stdin!.write('mem\n');
  return JSON.parse(await answer) as NodeJS.MemoryUsage;
};

async function session(i: number): Promise<SshTerminalClient> {
  const c = new SshTerminalClient(url, { token: `bench-${i}`, username: USER, cols: 120, rows: 40 });
  await c.message('host-key');
  c.control({ type: 'host-key-answer', accept: true });
  await c.until('the password prompt', () => c.output.endsWith('password: '));
  c.type(`${PASSWORD}\r`);
  await c.message('shell');
  await c.until('the shell prompt', () => /\$ $/.test(c.output));
  return c;
}

// Twenty sessions first, closed: modules, TLS and allocator arenas are warm before anything is counted.
// One at a time, as below: sshd drops unauthenticated connections beyond MaxStartups.
const warm: SshTerminalClient[] = [];
for (let i = 0; i < 20; i++) warm.push(await session(-1 - i));
for (const c of warm) c.close();
await Promise.all(warm.map((c) => c.closedWith()));
const clients: SshTerminalClient[] = [];
const start = await mem();
for (let i = 0; i < N / 2; i++) clients.push(await session(i));
// The marginal cost: RSS does not give memory back after a GC, so the second half is what counts.
const half = await mem();
for (let i = N / 2; i < N; i++) clients.push(await session(i));
const after = await mem();
const kib = (bytes: number) => Math.round(bytes / 1024);
const per = (k: keyof NodeJS.MemoryUsage) => `${kib((after[k] - half[k]) / (N - N / 2))} KiB per session`;
console.log(`browser SSH sessions at the gateway${TAP ? ' (TLS over the record tap, as on the native engine)' : ' (no record tap, as on the JavaScript engine)'}: ${N} idle sessions (signed in, shell open, 120x40); per session = (${N} sessions - ${N / 2}) / ${N - N / 2}`);
for (const k of ['rss', 'heapUsed', 'external', 'arrayBuffers'] as const) console.log(`  ${k.padEnd(12)} ${kib(start[k])} KiB with none, ${kib(half[k])} KiB with ${N / 2}, ${kib(after[k])} KiB with ${N}: ${per(k)}`);
for (const c of clients) c.close();
await Promise.all(clients.map((c) => c.closedWith()));
server.stdin!.end();
await sshd.proc.stop();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
