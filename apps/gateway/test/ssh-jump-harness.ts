import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Algorithms, Client, ClientChannel } from 'ssh2';
import type { RefusalReason } from '@stagedoor/contract';
// First of the gateway's modules: ssh2 loads through it, so the native relay can take the keys (ADR 0033).
import { ssh2 } from '../src/routed/ssh2-keys.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';

/**
 * What the SSH jump host tests share. `admit` is the jump host's boundary (the grant table and the
 * broker's claim live behind it), so the tests play it with a small table: token → target, single use.
 */
export type Outcome = Parameters<Admitted['ended']>[0];
export interface TestGrant {
  grantId: string;
  target: { host: string; port: number };
  used: boolean;
  closers: ((reason: string) => void)[];
  ended: Outcome[];
}

export function grantTable() {
  const grants = new Map<string, TestGrant>();
  const admits: { listener: string; token: string; clientAddress: string }[] = [];
  const admit: Admit = async (listener, token, clientAddress) => {
    admits.push({ listener, token, clientAddress });
    const refused = (reason: RefusalReason) => ({ ok: false as const, reason, message: REFUSAL_MESSAGES[reason] });
    const g = grants.get(token);
    if (!g) return refused('no-grant');
    if (g.used) return refused('used');
    g.used = true;
    return { ok: true, grantId: g.grantId, target: g.target, onClose: (c) => g.closers.push(c), countBytes: () => {}, ended: (o) => g.ended.push(o) };
  };
  const grant = (target: { host: string; port: number }): { token: string; g: TestGrant } => {
    const token = [...randomBytes(32)].map((b) => BASE32[b % 32]).join('');
    const g: TestGrant = { grantId: `grant-${token.slice(0, 6)}`, target, used: false, closers: [], ended: [] };
    grants.set(token, g);
    return { token, g };
  };
  return { grants, admits, admit, grant };
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function run(command: string, args: string[], timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A TCP echo server: another "desktop" port, which counts whoever reaches it and the bytes it got. */
export async function echoServer(): Promise<{ port: number; accepted: () => number; received: () => number; close: () => void }> {
  let accepted = 0;
  let received = 0;
  const srv = net.createServer((s) => {
    accepted++;
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => (received += d.length));
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, accepted: () => accepted, received: () => received, close: () => srv.close() };
}

/** An ssh2 client to the jump host, for what OpenSSH will not do on purpose (a second channel, a rekey, a forged packet). */
export function connectJumpClient(opts: { port: number; token: string; hostPublicKey: string; sock?: net.Socket; keepalive?: { intervalMs: number; countMax: number }; algorithms?: Algorithms }): Promise<Client> {
  const expected = Buffer.from(opts.hostPublicKey.split(' ')[1]!, 'base64');
  const keepalive = opts.keepalive ? { keepaliveInterval: opts.keepalive.intervalMs, keepaliveCountMax: opts.keepalive.countMax } : {};
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c)).on('error', reject);
    c.connect({ host: '127.0.0.1', port: opts.port, sock: opts.sock, username: opts.token, hostVerifier: (key: Buffer) => key.equals(expected), readyTimeout: 60_000, ...keepalive, ...(opts.algorithms ? { algorithms: opts.algorithms } : {}) });
  });
}

export function forwardOut(c: Client, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => (err ? reject(err) : resolve(ch))));
}

export function echoOnce(ch: ClientChannel, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length < text.length) return;
      ch.off('data', onData);
      resolve(got);
    };
    ch.on('data', onData);
    ch.write(text);
  });
}
