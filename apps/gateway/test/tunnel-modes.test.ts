import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TUNNEL_CLOSE } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../../../test/support/ports.ts';
import { closeMessageFor, type ModeHandler, type ModeSession } from '../src/browser/modes.ts';
import { createLog } from '../src/log.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';
import { RecordTap } from '../src/routed/record-tap.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';

/**
 * The tunnel's first-message `mode` dispatch (ADR 0028): `tcp` (or no mode) is the relay; another
 * mode goes to its registered handler after the same admission, with the first message's options and
 * the frames that came early; a mode the gateway does not offer is refused before the admission, so
 * the grant is not used up. The handler here is a stand-in for the browser modes (ssh-terminal,
 * rdcleanpath): it answers text frames and reports its end as a real mode must.
 */
const TOKEN = 'modetokenaaaaaaaaaaaaaaaaaaaaaaa';
const log = createLog('silent');
let dir: string;
let cert: TlsCertificate;
let server: TunnelServer;
let url: string;
let echo: net.Server;
const asked: string[] = [];
const ended: { reason: string; bytesUp: number; bytesDown: number }[] = [];
let revoke: ((why: string) => void) | null = null;
const sessions: ModeSession[] = [];

const admit: Admit = async (_listener, token) => {
  asked.push(token);
  if (token !== TOKEN) return { ok: false, reason: 'used', message: REFUSAL_MESSAGES.used };
  let done = false;
  const admitted: Admitted = {
    ok: true,
    grantId: 'grant-mode',
    target: { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port },
    onClose: (close) => void (revoke = close),
    countBytes: () => {},
    ended: (o) => {
      if (!done) ended.push(o);
      done = true;
    },
  };
  return admitted;
};

/** Answers each text frame with `echo:<frame>`; on a revoke it closes as a real mode must. */
const terminal: ModeHandler = (s) => {
  sessions.push(s);
  let up = 0;
  const answer = (data: Buffer) => {
    up += data.length;
    s.ws.send(`echo:${data.toString('utf8')}`);
  };
  s.admitted.onClose((why) => s.ws.close(TUNNEL_CLOSE.closed, closeMessageFor(why)));
  s.ws.send(JSON.stringify({ ok: true, options: s.options }));
  for (const f of s.takeEarly()) answer(f.data);
  s.ws.on('message', (data: Buffer) => answer(data));
  s.ws.on('close', () => s.ended({ reason: 'client-closed', bytesUp: up, bytesDown: 0 }));
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-modes-'));
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  echo = await new Promise((resolve) => {
    const s = net.createServer((c) => c.pipe(c));
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: { 'ssh-terminal': terminal } });
  url = `wss://127.0.0.1:${await server.start()}/tunnel`;
});

afterAll(async () => {
  await server?.close();
  cert?.close();
  echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A client that records its messages and its close. */
function open(first: unknown, thenSend: string[] = [], to = url) {
  const ws = new WebSocket(to, { rejectUnauthorized: false });
  const messages: string[] = [];
  const closed: { code: number; reason: string }[] = [];
  ws.on('open', () => {
    ws.send(JSON.stringify(first));
    for (const m of thenSend) ws.send(m);
  });
  ws.on('message', (d: Buffer) => void messages.push(d.toString('utf8')));
  ws.on('close', (code, reason) => void closed.push({ code, reason: reason.toString() }));
  return { ws, messages, closed };
}

describe('HTTPS tunnel: the first message picks the mode', () => {
  it('a mode this gateway does not offer is refused before the admission', async () => {
    const before = asked.length;
    const c = open({ token: TOKEN, mode: 'rdcleanpath' });
    await waitFor('the close', () => c.closed.length > 0, 10_000);
    expect(c.closed[0]).toEqual({ code: TUNNEL_CLOSE.badRequest, reason: 'this gateway does not offer rdcleanpath sessions: ask your administrator to update it' });
    expect(asked.length).toBe(before);
  });

  it('an unknown mode is a bad first message', async () => {
    const before = asked.length;
    const c = open({ token: TOKEN, mode: 'telnet' });
    await waitFor('the close', () => c.closed.length > 0, 10_000);
    expect(c.closed[0]).toEqual({ code: TUNNEL_CLOSE.badRequest, reason: REFUSAL_MESSAGES['bad-request'] });
    expect(asked.length).toBe(before);
  });

  it('mode tcp is the relay, as with no mode', async () => {
    const c = open({ token: TOKEN, mode: 'tcp' });
    await waitFor('ok', () => c.messages.includes('{"ok":true}'), 10_000);
    c.ws.send(Buffer.from('ping'), { binary: true });
    await waitFor('the echo', () => c.messages.includes('ping'), 10_000);
    const n = ended.length;
    c.ws.close();
    await waitFor('the end reported', () => ended.length > n, 10_000);
  });

  it('a registered mode gets the admitted grant, its options and early frames, and reports its end once', async () => {
    const before = ended.length;
    const c = open({ token: TOKEN, mode: 'ssh-terminal', cols: 80, rows: 24 }, ['early-1', 'early-2']);
    await waitFor('the mode ready', () => c.messages.length >= 3, 10_000);
    expect(JSON.parse(c.messages[0]!)).toEqual({ ok: true, options: { cols: 80, rows: 24 } });
    expect(c.messages.slice(1, 3)).toEqual(['echo:early-1', 'echo:early-2']);
    expect(sessions.at(-1)!.admitted.grantId).toBe('grant-mode');
    c.ws.close();
    await waitFor('the end reported', () => ended.length > before, 10_000);
    expect(ended.at(-1)).toEqual({ reason: 'client-closed', bytesUp: 14, bytesDown: 0 });
    sessions.at(-1)!.ended({ reason: 'again', bytesUp: 0, bytesDown: 0 });
    expect(ended.length).toBe(before + 1);
  });

  it('a revoke closes a mode session with the reason in plain words', async () => {
    revoke = null;
    const c = open({ token: TOKEN, mode: 'ssh-terminal' });
    await waitFor('the mode ready', () => c.messages.length >= 1 && revoke !== null, 10_000);
    revoke!('revoked');
    await waitFor('the close', () => c.closed.length > 0, 10_000);
    expect(c.closed[0]).toEqual({ code: TUNNEL_CLOSE.closed, reason: REFUSAL_MESSAGES.revoked });
  });

  it('a refused grant closes with the admission message, whatever the mode', async () => {
    const c = open({ token: 'othertokenaaaaaaaaaaaaaaaaaaaaaa', mode: 'ssh-terminal' });
    await waitFor('the close', () => c.closed.length > 0, 10_000);
    expect(c.closed[0]).toEqual({ code: TUNNEL_CLOSE.refused, reason: REFUSAL_MESSAGES.used });
  });
});

describe('HTTPS tunnel on the native relay engine: a session Node keeps', () => {
  it('holds none of the TLS records the tap keeps for a handoff (a browser session would hold them for its whole life)', async () => {
    // As a gateway on the native engine serves it: every connection's TLS runs over a RecordTap.
    const native = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, modes: { 'ssh-terminal': terminal }, nativeRelay: true });
    // Calls through: it only finds the connection's tap (every tap writes the server's handshake).
    const writes = vi.spyOn(RecordTap.prototype, '_write');
    try {
      const c = open({ token: TOKEN, mode: 'ssh-terminal' }, ['a', 'b', 'c'], `wss://127.0.0.1:${await native.start()}/tunnel`);
      await waitFor('the mode ready and the early frames answered', () => c.messages.length >= 4, 10_000);
      for (let i = 0; i < 5; i++) c.ws.send(`more-${i}`);
      await waitFor('the answers', () => c.messages.length >= 9, 10_000);
      const taps = new Set(writes.mock.contexts as RecordTap[]);
      expect(taps.size).toBe(1);
      const [tap] = [...taps] as [RecordTap];
      // Handshake tickets, the first message and eight more frames each way: far under the 24 a tap keeps, had it not stopped.
      expect({ fromClient: tap.fromClient.records.length, toClient: tap.toClient.records.length }).toEqual({ fromClient: 0, toClient: 0 });
      expect(tap.quiet).toBe(false); // and it can never be handed off
      c.ws.close();
    } finally {
      writes.mockRestore();
      await native.close();
    }
  });
});

