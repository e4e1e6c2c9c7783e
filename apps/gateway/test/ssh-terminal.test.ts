import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SSH_TERMINAL_CLOSE, TUNNEL_CLOSE } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import type { Spawned } from '../../../test/support/processes.ts';
import { startPasswordSshd } from '../../../test/support/sshd.ts';
import { runSshTerminal } from '../src/browser/ssh-terminal.ts';
import { createLog } from '../src/log.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';
import { sshFingerprint } from '../src/routed/ssh-host-key.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';
import { SshTerminalClient } from './ssh-terminal-client.ts';

/**
 * SSH in the browser at the gateway (issue 17 point 2): the real TunnelServer with the
 * `ssh-terminal` mode, a real OpenSSH server with a password user, and a Node client speaking the
 * terminal wire. The admission is a table of token → target (as in tunnel.test.ts); each token is
 * one grant, and what was reported ended is recorded.
 */
const USER = 'sd-webssh-gw';
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}`;
const log = createLog('silent');

let dir: string;
let cert: TlsCertificate;
let server: TunnelServer;
let url: string;
let sshd: { port: number; hostPublicKey: string; proc: Spawned };
/** The same user through PAM's keyboard-interactive prompts. */
let kbdSshd: { port: number; proc: Spawned };
/** Counts the connections it gets: a target no grant names must get none. */
let canary: net.Server;
let canaryConnections = 0;
const targets = new Map<string, { host: string; port: number }>();
/** Tokens whose grant has a registered host key (the ADR 0029 check at the gateway). */
const registered = new Map<string, string[]>();
const ended = new Map<string, { reason: string; bytesUp: number; bytesDown: number }>();
const closers = new Map<string, (reason: string) => void>();

const admit: Admit = async (_listener, token) => {
  const target = targets.get(token);
  if (!target) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
  targets.delete(token); // single use
  const admitted: Admitted = {
    ok: true,
    grantId: `grant-${token}`,
    target,
    onClose: (close) => void closers.set(token, close),
    countBytes: () => {},
    ended: (o) => void (ended.has(token) || ended.set(token, o)),
  };
  return admitted;
};

let next = 0;
/** A fresh grant to the sshd (or `target`), and a client that opened the terminal with it. */
function open(first: Record<string, unknown> = {}, opts: { target?: { host: string; port: number }; hostKeys?: string[] } = {}) {
  const token = `token${++next}`.padEnd(32, 'x');
  targets.set(token, opts.target ?? { host: '127.0.0.1', port: sshd.port });
  if (opts.hostKeys) registered.set(token, opts.hostKeys);
  return { token, c: new SshTerminalClient(url, { token, cols: 80, rows: 24, ...first }, cert.pair.cert) };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-webssh-'));
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  sshd = await startPasswordSshd(fs.mkdtempSync(path.join(dir, 'ssh-')), await freePort(), USER, PASSWORD);
  kbdSshd = await startPasswordSshd(fs.mkdtempSync(path.join(dir, 'kbd-')), await freePort(), USER, PASSWORD, { keyboardInteractive: true });
  canary = await new Promise<net.Server>((resolve) => {
    const s = net.createServer((sock) => (canaryConnections++, sock.destroy()));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  server = new TunnelServer({
    port: 0,
    host: '127.0.0.1',
    certificate: cert,
    admit,
    healthy: () => true,
    log,
    modes: { 'ssh-terminal': (s) => runSshTerminal({ ...s, knownHostKeys: registered.get(s.admitted.grantId.slice('grant-'.length)) ?? [] }) },
  });
  url = `wss://127.0.0.1:${await server.start()}/tunnel`;
});

afterAll(async () => {
  await sshd?.proc.stop();
  await kbdSshd?.proc.stop();
  await server?.close();
  cert?.close();
  canary?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Answer the login prompts as a user would, in the terminal. */
async function signIn(c: SshTerminalClient, password = PASSWORD): Promise<void> {
  // The host key comes first, before anything the user types is sent anywhere.
  const key = await c.message('host-key');
  expect(key.known).toBe('unknown');
  expect(c.output).toBe('');
  c.control({ type: 'host-key-answer', accept: true });
  await c.text(/login as: $/);
  c.type(`${USER}\r`);
  await c.text(/password: $/);
  c.type(`${password}\r`);
}

describe('ssh-terminal mode', () => {
  it('signs in with the workstation password typed in the terminal, runs commands, applies resizes, and reports the session when the shell exits', async () => {
    const { token, c } = open({ cols: 100, rows: 30 });
    await signIn(c);
    await c.message('shell');
    // The password was not echoed.
    expect(c.output).not.toContain(PASSWORD);
    const marker = `mark-${Math.random().toString(36).slice(2)}`;
    let from = c.output.length;
    c.type(`echo ${marker}-\u00fc\u2713 && stty size\r`);
    // UTF-8 both ways, and the size from the first message.
    await c.text(new RegExp(`${marker}-\u00fc\u2713\\r?\\n30 100`), from);
    c.control({ type: 'resize', cols: 132, rows: 43 });
    from = c.output.length;
    c.type('stty size; echo $TERM\r');
    await c.text(/43 132\r?\nxterm-256color/, from);
    c.type('exit\r');
    expect(await c.closedWith()).toEqual({ code: 1000, reason: 'the shell exited' });
    // Reported after both sides closed, which may be after the client saw its close: polled.
    await waitFor('the session report', () => ended.has(token), 30_000, 20);
    expect(ended.get(token)).toMatchObject({ reason: 'shell-exited' });
    expect(ended.get(token)!.bytesUp).toBeGreaterThan(0);
    expect(ended.get(token)!.bytesDown).toBeGreaterThan(0);
  });

  it('answers keyboard-interactive prompts in the words the workstation (PAM) chose', async () => {
    const { c } = open({ username: USER }, { target: { host: '127.0.0.1', port: kbdSshd.port } });
    await c.message('host-key');
    c.control({ type: 'host-key-answer', accept: true });
    // PAM's own prompt, not the gateway's "user@host's password:".
    await c.until('PAM\'s prompt', () => /(^|\n)Password: $/.test(c.output));
    expect(c.output).not.toMatch(/'s password: /);
    c.type(`${PASSWORD}\r`);
    await c.message('shell');
    const from = c.output.length;
    c.type('echo kbd-$((40+2))\r');
    await c.text(/kbd-42\r?\n/, from);
    c.type('exit\r');
    expect((await c.closedWith()).code).toBe(1000);
  });

  it('refuses a wrong password with the workstation\'s answer, after asking again as OpenSSH does', async () => {
    const { c } = open({ username: USER });
    await c.message('host-key');
    c.control({ type: 'host-key-answer', accept: true });
    const count = (re: RegExp) => c.output.match(re)?.length ?? 0;
    for (let i = 1; i <= 3; i++) {
      await c.until(`password prompt ${i}`, () => count(/'s password: /g) === i && c.output.endsWith('password: '));
      c.type('wrong-password\r');
    }
    const closed = await c.closedWith();
    expect(closed.code).toBe(SSH_TERMINAL_CLOSE.authFailed);
    // The methods the workstation still offers are its own words.
    expect(closed.reason).toMatch(/^sd-webssh-gw@127\.0\.0\.1: Permission denied \(publickey,password\)\.$/);
    expect(count(/Permission denied, please try again\./g)).toBe(2);
    expect(c.messages.some((m) => 'type' in m && m.type === 'shell')).toBe(false);
  });

  it('reaches the grant\'s target only: a host and port in the first message are ignored', async () => {
    const canaryPort = (canary.address() as net.AddressInfo).port;
    const { c } = open({ host: '127.0.0.1', port: canaryPort, target: `127.0.0.1:${canaryPort}` });
    const key = await c.message('host-key');
    // The key is sshd's own: the connection went to the grant's target.
    expect(key.fingerprint).toBe(sshFingerprint(Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64')));
    c.close();
    await c.closedWith();
    expect(canaryConnections).toBe(0);
    // And a grant whose target is the canary reaches it (the count above can fail).
    const other = open({}, { target: { host: '127.0.0.1', port: canaryPort } });
    await other.c.closedWith();
    expect(canaryConnections).toBe(1);
  });

  it('ends without asking for a password when the user refuses the host key', async () => {
    const { c } = open({ username: USER });
    await c.message('host-key');
    c.control({ type: 'host-key-answer', accept: false });
    const closed = await c.closedWith();
    expect(closed.code).toBe(SSH_TERMINAL_CLOSE.hostKeyRejected);
    expect(c.output).not.toMatch(/password:/);
  });

  it('checks a registered host key: the right one is a match, another one refuses the desktop', async () => {
    const fingerprint = sshFingerprint(Buffer.from(sshd.hostPublicKey.split(' ')[1]!, 'base64'));
    const good = open({ username: USER }, { hostKeys: [sshd.hostPublicKey] });
    expect(await good.c.message('host-key')).toMatchObject({ known: 'match', fingerprint, algorithm: 'ssh-ed25519' });
    await good.c.text(/password: $/); // no question asked of the user
    good.c.close();
    const other = execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, `other-${next}`)]) && fs.readFileSync(path.join(dir, `other-${next}.pub`), 'utf8');
    const bad = open({ username: USER }, { hostKeys: [other] });
    const closed = await bad.c.closedWith();
    expect(closed.code).toBe(SSH_TERMINAL_CLOSE.hostKeyRejected);
    expect(bad.c.output).toContain(`(ssh-ed25519 ${fingerprint}) is not the one registered for it`);
  });

  it('closes the terminal at once when the broker revokes the grant (an admin Disconnect)', async () => {
    const { token, c } = open();
    await signIn(c);
    await c.message('shell');
    closers.get(token)!('revoked');
    const closed = await c.closedWith();
    expect(closed).toEqual({ code: TUNNEL_CLOSE.closed, reason: REFUSAL_MESSAGES.revoked });
    // Reported after both sides closed, which may be after the client saw its close: polled.
    await waitFor('the session report', () => ended.has(token), 30_000, 20);
    expect(ended.get(token)!.reason).toBe('revoked');
  });

  it('refuses a control frame it does not know', async () => {
    const { c } = open({ username: USER });
    await c.message('host-key');
    c.ws.send('{"type":"exec","command":"id"}');
    expect((await c.closedWith()).code).toBe(TUNNEL_CLOSE.badRequest);
  });
});
