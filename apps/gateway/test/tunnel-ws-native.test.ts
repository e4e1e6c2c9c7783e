import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { TUNNEL_CLOSE, TUNNEL_TEXT_FRAME_CLOSE } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../../../test/support/ports.ts';
import { createLog } from '../src/log.ts';
import { nativeStats, useRelayEngine } from '../src/native-relay.ts';
import { REFUSAL_MESSAGES } from '../src/routed/admission.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';
import { admitTable, tableAdmit } from './tunnel-admit.ts';

/**
 * The tunnel's WebSocket path taken by the relay threads (ADR 0035): after the token message and the
 * workstation's answer, the relay threads open the TLS records and unmask the client's frames, and
 * frame the workstation's bytes. A real WebSocket client (ws, as `stagedoor connect --transport
 * websocket` and the browsers speak it) and raw frames for what a client must not send.
 */

const log = createLog('silent');
let dir: string;
let cert: TlsCertificate;
let server: TunnelServer;
let url: string;
const table = admitTable();
const { targets, ended, closers, counters } = table;
/** What each workstation received, by token, and whether its client's end (FIN) came. */
const received = new Map<string, Buffer[]>();
const finished = new Set<string>();

const admit = tableAdmit(table);

/** A grant whose workstation runs `behave` on its connection (and records what it got). */
async function grantTo(behave: (s: net.Socket) => void): Promise<string> {
  const t = crypto.randomBytes(16).toString('hex');
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => void (received.get(t) ?? received.set(t, []).get(t)!).push(d));
    s.on('end', () => finished.add(t));
    behave(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  targets.set(t, { host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port });
  return t;
}

/**
 * A workstation that reads and ends its side when the client ends (as RDP and VNC servers do): the
 * relay passes a client's end on and waits for the workstation's, so a target that never ends would
 * keep the session (half-closed) and the count of the relay threads' sessions.
 */
function endsWithTheClient(s: net.Socket): void {
  s.resume();
  s.once('end', () => s.end());
}

interface Client {
  ws: WebSocket;
  messages: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Open, send the token, and wait for `ok` (what every client of the tcp mode does). */
async function open(token: string, opts: { early?: Buffer } = {}): Promise<Client> {
  const ws = new WebSocket(url, { ca: cert.pair.cert });
  ws.on('error', () => undefined);
  const messages: Buffer[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((r) => ws.once('open', r));
  const ok = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
  ws.send(JSON.stringify({ token }));
  if (opts.early) ws.send(opts.early); // before the answer: Node relays it
  expect(await ok).toBe('{"ok":true}');
  ws.on('message', (d: Buffer) => void messages.push(d));
  return { ws, messages, closed };
}

const bytesOf = (parts: Buffer[]) => parts.reduce((n, p) => n + p.length, 0);

beforeAll(async () => {
  expect(useRelayEngine('native', 1).engine).toBe('native');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-tunnel-ws-'));
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, firstMessageTimeoutMs: 5000, connectTimeoutMs: 5000, nativeRelay: true });
  url = `wss://127.0.0.1:${await server.start()}/tunnel`;
});

afterAll(async () => {
  await server?.close();
  cert?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('HTTPS tunnel, WebSocket path: the relay threads carry the frames', () => {
  it('carries 16 MiB each way byte for byte in messages of odd sizes, counts while it runs, and ends on the close', async () => {
    const t = await grantTo((s) => s.pipe(s));
    const before = nativeStats()!.live;
    const c = await open(t);
    expect(nativeStats()!.live).toBe(before + 1); // the relay threads hold it, not Node
    const data = crypto.randomBytes(16 * 1024 * 1024);
    // Messages of every size class: 7-bit, 16-bit and 64-bit lengths, split across records.
    for (let at = 0, k = 1; at < data.length; k = (k % 29) + 1) {
      const n = k % 3 === 0 ? k : k % 3 === 1 ? k * 997 : k * 70_001;
      c.ws.send(data.subarray(at, at + n));
      at += n;
    }
    await waitFor('the echo', () => bytesOf(c.messages) >= data.length, 60_000, 20);
    expect(Buffer.concat(c.messages).equals(data)).toBe(true);
    // Every server frame fits one TLS record (16 KiB less its header).
    expect(Math.max(...c.messages.map((m) => m.length))).toBeLessThanOrEqual(16 * 1024 - 4);
    expect(counters.get(t)!()).toEqual({ bytesUp: data.length, bytesDown: data.length });
    c.ws.close(1000, 'done');
    expect((await c.closed).code).toBe(1000); // the relay answered the close with its code
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toEqual({ reason: 'client-closed', bytesUp: data.length, bytesDown: data.length });
    expect(finished.has(t)).toBe(true); // the close reached the workstation as its end
    await waitFor('the relay threads to let it go', () => nativeStats()!.live === before, 30_000, 20);
  });

  it('a message in fragments arrives whole, and pings are answered with their payload between them', async () => {
    const t = await grantTo(endsWithTheClient);
    const c = await open(t);
    const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
    c.ws.send(Buffer.from('frag-'), { fin: false, binary: true });
    c.ws.ping(Buffer.from('are you there'));
    c.ws.send(Buffer.from('ment'), { fin: true, binary: true });
    expect((await pong).toString()).toBe('are you there');
    await waitFor('the message at the workstation', () => Buffer.concat(received.get(t) ?? []).toString() === 'frag-ment', 30_000, 20);
    c.ws.terminate();
  });

  it("a workstation that keeps its side after the client's close: the relay passes the end on, then ends the session after its wait", async () => {
    const t = await grantTo((s) => s.resume()); // reads, and never ends its side
    const c = await open(t);
    c.ws.send(Buffer.from('last words'));
    c.ws.close(1000, 'bye');
    expect((await c.closed).code).toBe(1000);
    await waitFor('the client\'s end at the workstation', () => finished.has(t), 30_000, 20);
    // Node's relay gave the workstation 5 s as well (tunnel-relay.ts): the end comes after that wait.
    await waitFor('the session to end without the workstation', () => ended.has(t), 30_000, 50);
    expect(ended.get(t)).toEqual({ reason: 'client-closed', bytesUp: 10, bytesDown: 0 });
  });

  it("the workstation's end: what it said before, then a close frame that says so", async () => {
    const t = await grantTo((s) => s.end('bye from the desktop'));
    const c = await open(t);
    expect(await c.closed).toEqual({ code: 1000, reason: 'the desktop closed the connection' });
    expect(Buffer.concat(c.messages).toString()).toBe('bye from the desktop');
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toMatchObject({ reason: 'target-closed', bytesDown: 20 });
  });

  it('a revoke ends it at once with the close frame the JavaScript relay sends; its end is reported once', async () => {
    const t = await grantTo((s) => s.pipe(s));
    const c = await open(t);
    c.ws.send(Buffer.from('ping'));
    await waitFor('the echo', () => bytesOf(c.messages) === 4, 30_000, 20);
    closers.get(t)!('revoked: assignment released');
    expect(await c.closed).toEqual({ code: TUNNEL_CLOSE.closed, reason: REFUSAL_MESSAGES.revoked });
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toEqual({ reason: 'revoked: assignment released', bytesUp: 4, bytesDown: 4 });
  });

  it('frames sent before the answer: Node relays the session (the relay threads do not take it), and nothing is lost', async () => {
    const t = await grantTo((s) => s.pipe(s));
    // The sessions of the tests before end on the relay threads' time: wait for them, then count.
    await waitFor('the relay threads to hold no session', () => nativeStats()!.live === 0, 30_000, 20);
    const c = await open(t, { early: Buffer.from('eager ') });
    c.ws.send(Buffer.from('client'));
    await waitFor('the echo', () => Buffer.concat(c.messages).toString() === 'eager client', 30_000, 20);
    expect(nativeStats()!.live).toBe(0);
    c.ws.close();
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
  });
});

describe('HTTPS tunnel, WebSocket path: what the relay threads refuse', () => {
  it('a text frame after the answer: closed with 1003, nothing of it reaches the workstation', async () => {
    const t = await grantTo((s) => s.resume());
    const c = await open(t);
    c.ws.send('not binary');
    expect(await c.closed).toEqual(TUNNEL_TEXT_FRAME_CLOSE);
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toMatchObject({ reason: 'client-error: EPROTO', bytesUp: 0 });
    expect(received.get(t)).toBeUndefined();
  });

  it('a text frame to a session Node relays (frames came before the answer): the same close code and words', async () => {
    const t = await grantTo((s) => s.on('end', () => s.end()).resume());
    await waitFor('the relay threads to hold no session', () => nativeStats()!.live === 0, 30_000, 20);
    const c = await open(t, { early: Buffer.from('eager') });
    expect(nativeStats()!.live).toBe(0); // Node's relay, not the threads
    c.ws.send('not binary');
    expect(await c.closed).toEqual(TUNNEL_TEXT_FRAME_CLOSE);
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toMatchObject({ reason: 'client-error: text frame', bytesUp: 5 });
  });

  it.each([
    ['an unmasked frame', (payload: Buffer) => Buffer.concat([Buffer.from([0x82, payload.length]), payload])],
    ['a frame with a reserved bit (compression was not agreed)', (payload: Buffer) => masked(0xc2, payload)],
    ['a fragmented ping', (payload: Buffer) => masked(0x09, payload)],
    ['a continuation with no message to continue', (payload: Buffer) => masked(0x80, payload)],
  ])('%s: closed with 1002 (protocol error), nothing of it relayed', async (_what, frame) => {
    const t = await grantTo((s) => s.resume());
    const raw = await rawSession(t);
    raw.socket.write(frame(Buffer.from('sneaky')));
    expect(await raw.closeFrame).toMatchObject({ code: 1002 });
    await waitFor('the end to be reported', () => ended.has(t), 30_000, 20);
    expect(ended.get(t)).toMatchObject({ reason: 'client-error: EPROTO', bytesUp: 0 });
    expect(received.get(t)).toBeUndefined();
  });

  it('a well-formed masked binary frame from the same raw client reaches the workstation (the checks above can pass)', async () => {
    const t = await grantTo(endsWithTheClient);
    const raw = await rawSession(t);
    raw.socket.write(masked(0x82, Buffer.from('welcome')));
    await waitFor('the bytes at the workstation', () => Buffer.concat(received.get(t) ?? []).toString() === 'welcome', 30_000, 20);
    raw.socket.destroy();
  });
});

/** A client frame (masked with a random key) with first byte `b0`: FIN, RSV and opcode. */
function masked(b0: number, payload: Buffer): Buffer {
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([Buffer.from([b0, 0x80 | payload.length]), key, body]);
}

/**
 * A WebSocket spoken by hand over TLS, admitted and answered (so the relay threads hold it): the
 * socket to write frames on, and the first close frame the gateway sends back.
 */
async function rawSession(token: string): Promise<{ socket: tls.TLSSocket; closeFrame: Promise<{ code: number; reason: string }> }> {
  const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(url).port), ca: cert.pair.cert, servername: 'localhost', checkServerIdentity: () => undefined });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('secureConnect', r));
  const key = crypto.randomBytes(16).toString('base64');
  socket.write(`GET /tunnel HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let got = Buffer.alloc(0);
  const frames: { op: number; payload: Buffer }[] = [];
  let headerDone = false;
  const closeFrame = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!headerDone) {
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        expect(got.subarray(0, end).toString()).toMatch(/^HTTP\/1\.1 101/);
        got = got.subarray(end + 4);
        headerDone = true;
      }
      // Server frames here are small (the answer, a close): 7-bit lengths.
      while (got.length >= 2 && got.length >= 2 + (got[1]! & 0x7f)) {
        const n = got[1]! & 0x7f;
        frames.push({ op: got[0]! & 0x0f, payload: got.subarray(2, 2 + n) });
        got = got.subarray(2 + n);
        const close = frames.find((f) => f.op === 0x8);
        if (close) resolve({ code: close.payload.readUInt16BE(0), reason: close.payload.subarray(2).toString() });
      }
    });
  });
  socket.write(masked(0x81, Buffer.from(JSON.stringify({ token }))));
  await waitFor('the answer', () => frames.some((f) => f.op === 0x1 && f.payload.toString() === '{"ok":true}'), 30_000, 10);
  return { socket, closeFrame };
}
