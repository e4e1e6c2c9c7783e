import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { TUNNEL_CLOSE, TUNNEL_NATIVE_ALPN } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNative } from '../../cli/src/tunnel-native.ts';
import { openTunnel, type TunnelEvent } from '../../cli/src/tunnel-client.ts';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import { startLocalSshd } from '../../../test/support/sshd.ts';
import { createLog } from '../src/log.ts';
import { DEFAULT_HALF_CLOSE_SECONDS, nativeInjectFaults, nativeStats, setHalfCloseSeconds, useRelayEngine } from '../src/native-relay.ts';
import { REFUSAL_MESSAGES } from '../src/routed/admission.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { NATIVE_SUITES, readKeylogLine, sealRecord, trafficKeys, type TrafficSecrets } from '../src/routed/tls13-keys.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';
import { admitTable, tableAdmit } from './tunnel-admit.ts';

/**
 * The HTTPS tunnel's native mode with the native relay (ADR 0032): after the token line the relay
 * threads seal and open the TLS records themselves. Real TLS clients (Node's, and OpenSSH through
 * `stagedoor connect --tunnel`), real byte streams; the attacks a record layer must stop are sent as
 * records sealed with the client's own keys (from its key log), then altered.
 */

const log = createLog('silent');
let dir: string;
let cert: TlsCertificate;
let server: TunnelServer;
let port: number;
let sshd: Awaited<ReturnType<typeof startLocalSshd>>;
const table = admitTable();
const { targets, ended, closers, counters } = table;
/** What each target server received, by token, and how many connections it got. */
const received = new Map<string, Buffer[]>();
const connections = new Map<string, number>();

const admit = tableAdmit(table);

const token = () => crypto.randomBytes(16).toString('hex');

/** A grant whose workstation runs `behave` on each connection (and records what it got). */
async function grantTo(behave: (s: net.Socket) => void): Promise<string> {
  const t = token();
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    connections.set(t, (connections.get(t) ?? 0) + 1);
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => void (received.get(t) ?? received.set(t, []).get(t)!).push(d));
    behave(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  targets.set(t, { host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port });
  return t;
}

beforeAll(async () => {
  expect(useRelayEngine('native', 1).engine).toBe('native');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-tunnel-native-'));
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, firstMessageTimeoutMs: 5000, connectTimeoutMs: 5000, nativeRelay: true });
  port = await server.start();
  sshd = await startLocalSshd(fs.mkdtempSync(path.join(dir, 'ssh-')), await freePort());
});

afterAll(async () => {
  await sshd?.proc.stop();
  await server?.close();
  cert?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const open = (t: string) => openNative({ host: '127.0.0.1', port, token: t, pin: cert.fingerprint256, timeoutMs: 10_000 });

/** Read from `socket` until `n` bytes came (or it ended). */
function readBytes(socket: net.Socket, n: number, first: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts = [first];
    let have = first.length;
    const done = () => resolve(Buffer.concat(parts));
    if (have >= n) return done();
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      have += d.length;
      if (have >= n) done();
    });
    socket.once('end', done);
    socket.resume();
  });
}

describe('HTTPS tunnel native mode: the relay threads carry the TLS records', () => {
  it('carries 16 MiB each way byte for byte, handed to the native relay, and counts the bytes while it runs', async () => {
    const t = await grantTo((s) => s.pipe(s));
    const before = nativeStats()!.live;
    const r = await open(t);
    expect(r.kind).toBe('open');
    if (r.kind !== 'open') return;
    expect(r.socket.alpnProtocol).toBe(TUNNEL_NATIVE_ALPN);
    expect(nativeStats()!.live).toBe(before + 1); // the relay threads hold it, not Node
    const data = crypto.randomBytes(16 * 1024 * 1024);
    // Writes of odd sizes: records of every length, split across reads.
    for (let at = 0, k = 1; at < data.length; at += k * 7919, k = (k % 13) + 1) r.socket.write(data.subarray(at, at + k * 7919));
    const back = await readBytes(r.socket, data.length, r.head);
    expect(back.length).toBe(data.length);
    expect(crypto.createHash('sha256').update(back).digest('hex')).toBe(crypto.createHash('sha256').update(data).digest('hex'));
    expect(counters.get(t)!()).toEqual({ bytesUp: data.length, bytesDown: data.length });
    r.socket.end();
    await waitFor('the session to end', () => ended.has(t), 30_000);
    expect(ended.get(t)).toEqual({ reason: 'client-closed', bytesUp: data.length, bytesDown: data.length });
  });

  it("half-close: the client's close_notify reaches the workstation as its end, and the workstation's answer after it still arrives", async () => {
    const t = await grantTo((s) => s.on('end', () => s.end('bye after your end')));
    const r = await open(t);
    if (r.kind !== 'open') throw new Error(r.kind);
    r.socket.write('last words');
    r.socket.end();
    const back = await readBytes(r.socket, Infinity, r.head);
    expect(back.toString()).toBe('bye after your end');
    expect(Buffer.concat(received.get(t) ?? []).toString()).toBe('last words');
    await waitFor('the session to end', () => ended.has(t), 30_000);
    expect(ended.get(t)).toMatchObject({ bytesUp: 10, bytesDown: 18 });
  });

  it("a workstation that keeps its side open and silent after the client's close_notify: the relay threads end the session after the half-close bound", async () => {
    setHalfCloseSeconds(1);
    try {
      const t = await grantTo((s) => s.resume()); // reads, never answers, never ends
      const r = await open(t);
      if (r.kind !== 'open') throw new Error(r.kind);
      expect(nativeStats()!.live).toBeGreaterThan(0);
      r.socket.end('last words');
      await waitFor('the session to end without the workstation', () => ended.has(t), 30_000, 50);
      expect(ended.get(t)).toEqual({ reason: 'client-closed', bytesUp: 10, bytesDown: 0 });
    } finally {
      setHalfCloseSeconds(DEFAULT_HALF_CLOSE_SECONDS);
    }
  });

  it('a revoke ends a native session at once; its end and bytes are reported once', async () => {
    const t = await grantTo((s) => s.pipe(s));
    const r = await open(t);
    if (r.kind !== 'open') throw new Error(r.kind);
    r.socket.write('ping');
    expect((await readBytes(r.socket, 4, r.head)).toString()).toBe('ping');
    const closed = new Promise((resolve) => r.socket.once('close', resolve));
    closers.get(t)!('revoked');
    await closed;
    await waitFor('the session to be reported ended', () => ended.has(t), 30_000);
    expect(ended.get(t)).toEqual({ reason: 'revoked', bytesUp: 4, bytesDown: 4 });
  });

  it('the relay cannot take the session (an allocation fails): Node relays the same wire, and the client sees no difference', async () => {
    const t = await grantTo((s) => s.pipe(s));
    // The sessions of the tests before end on the relay threads' time: wait for them, then count.
    await waitFor('the relay threads to hold no session', () => nativeStats()!.live === 0, 30_000, 20);
    nativeInjectFaults('alloc', 0, 1); // the session's state in `add`
    let r;
    try {
      r = await open(t);
    } finally {
      nativeInjectFaults('alloc', 0, 0);
    }
    if (r.kind !== 'open') throw new Error(r.kind);
    expect(nativeStats()!.live).toBe(0);
    r.socket.write('still here');
    expect((await readBytes(r.socket, 10, r.head)).toString()).toBe('still here');
    r.socket.end();
    await waitFor('the session to end', () => ended.has(t), 30_000);
    expect(ended.get(t)).toEqual({ reason: 'client-closed', bytesUp: 10, bytesDown: 10 });
  });

  it('stagedoor connect says who ended a native session: the gateway (a revoke) or the local client', async () => {
    for (const ender of ['gateway', 'client'] as const) {
      const t = await grantTo((s) => s.pipe(s));
      const events: TunnelEvent[] = [];
      const tunnel = await openTunnel({ url: `wss://127.0.0.1:${port}/tunnel`, token: t, certificateSha256: cert.fingerprint256, onEvent: (e) => void events.push(e) });
      try {
        const local = net.connect(tunnel.port, '127.0.0.1');
        local.on('error', () => undefined);
        local.write('ping');
        expect((await readBytes(local, 4)).toString()).toBe('ping');
        if (ender === 'gateway') closers.get(t)!('revoked');
        else local.end();
        await waitFor('the session end to be reported to the user', () => events.some((e) => e.kind === 'closed'), 30_000);
        expect(events.find((e) => e.kind === 'closed')).toMatchObject({ kind: 'closed', bytesUp: 4, bytesDown: 4, endedBy: ender });
      } finally {
        await tunnel.close();
      }
    }
  });

  it('ssh runs a command on a real sshd through stagedoor connect --tunnel in the native mode', async () => {
    const t = token();
    targets.set(t, { host: '127.0.0.1', port: sshd.port });
    const events: TunnelEvent[] = [];
    const tunnel = await openTunnel({ url: `wss://127.0.0.1:${port}/tunnel`, token: t, certificateSha256: cert.fingerprint256, onEvent: (e) => void events.push(e) });
    try {
      const out = await promisify(execFile)(
        'ssh',
        ['-p', String(tunnel.port), '-i', sshd.clientKey, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'echo hello'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(out.stdout.trim()).toBe('hello');
      expect(events).toContainEqual(expect.objectContaining({ kind: 'open', transport: 'native' }));
      await waitFor('the session to end', () => ended.has(t), 30_000);
      expect(ended.get(t)!.bytesDown).toBeGreaterThan(0);
    } finally {
      await tunnel.close();
    }
  });
});

/** A native-mode client on a socket of our own, with its traffic keys from its key log: to send records we make. */
async function keyedClient(t: string) {
  const raw = net.connect(port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  const secrets: TrafficSecrets = { client: null, server: null };
  const s = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: [TUNNEL_NATIVE_ALPN] });
  s.on('keylog', (line) => readKeylogLine(line, secrets));
  s.on('error', () => undefined);
  await new Promise((r) => s.once('secureConnect', r));
  s.write(`${JSON.stringify({ token: t })}\n`);
  const answer = await readBytes(s, 12);
  expect(answer.toString()).toBe('{"ok":true}\n');
  const suite = NATIVE_SUITES[s.getCipher().standardName]!;
  const keys = trafficKeys(suite, secrets.client!);
  // Record 0 was the token line: the next one the gateway expects is number 1.
  return { raw, s, seal: (seq: number, text: string, innerType = 23) => sealRecord(suite, keys, seq, Buffer.from(text), innerType) };
}

describe('HTTPS tunnel native mode: what the record layer refuses', () => {
  it('a record sealed with the right key and number reaches the workstation (the check below can pass)', async () => {
    const t = await grantTo(() => undefined);
    const c = await keyedClient(t);
    c.raw.write(c.seal(1, 'made by hand'));
    await waitFor('the record to reach the workstation', () => Buffer.concat(received.get(t) ?? []).toString() === 'made by hand', 30_000);
    c.s.destroy();
  });

  for (const [attack, make] of [
    ['a tampered record (one bit of its ciphertext flipped)', (c: Awaited<ReturnType<typeof keyedClient>>) => {
      const r = c.seal(1, 'transfer 100 to alice');
      r[8]! ^= 1;
      return r;
    }],
    ['a replayed record (the token line sent again as record 0)', (c: Awaited<ReturnType<typeof keyedClient>>) => c.seal(0, 'replayed')],
    ['a record sealed with a skipped number (reordering)', (c: Awaited<ReturnType<typeof keyedClient>>) => c.seal(2, 'out of order')],
    ['a KeyUpdate or other handshake message after the handoff', (c: Awaited<ReturnType<typeof keyedClient>>) => c.seal(1, '\x18\x00\x00\x01\x00', 22)],
  ] as const) {
    it(`${attack}: the session ends, and no byte of it reaches the workstation`, async () => {
      const t = await grantTo(() => undefined);
      const c = await keyedClient(t);
      const closed = new Promise((r) => c.raw.once('close', r));
      c.raw.write(make(c));
      await closed;
      await waitFor('the session to be reported ended', () => ended.has(t), 30_000);
      expect(ended.get(t)!.reason).toMatch(/^client-error: (EBADMSG|EPROTO)$/);
      expect(ended.get(t)!.bytesUp).toBe(0);
      expect(received.get(t)).toBeUndefined();
    });
  }

  it('bytes sent with the token line, before the answer: refused as a bad request, the workstation never connected', async () => {
    const t = await grantTo(() => undefined);
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: [TUNNEL_NATIVE_ALPN] });
    await new Promise((r) => s.once('secureConnect', r));
    s.write(`${JSON.stringify({ token: t })}\nearly bytes`);
    const answer = JSON.parse((await readBytes(s, Infinity)).toString()) as { ok: boolean; code: number };
    expect(answer).toMatchObject({ ok: false, code: TUNNEL_CLOSE.badRequest });
    expect(connections.get(t)).toBeUndefined();
  });

  it('an unknown token: the answer says why, and nothing is connected', async () => {
    const r = await open(token());
    expect(r).toEqual({ kind: 'refused', code: TUNNEL_CLOSE.refused, message: REFUSAL_MESSAGES['no-grant'] });
  });

  it('a client offering only ChaCha20 gets no native session (the relay seals AES-GCM only)', async () => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: [TUNNEL_NATIVE_ALPN], ciphers: 'TLS_CHACHA20_POLY1305_SHA256', minVersion: 'TLSv1.3' });
    const err = await new Promise<Error>((resolve) => s.once('error', resolve));
    expect(err.message).toMatch(/handshake failure|no shared cipher|alert/i);
  });

  it('stagedoor connect falls back to the WebSocket when the gateway does not select the native mode', async () => {
    const plain = tls.createServer({ ...cert.pair }, (s) => s.destroy());
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const r = await openNative({ host: '127.0.0.1', port: (plain.address() as net.AddressInfo).port, token: token(), pin: cert.fingerprint256, timeoutMs: 10_000 });
      expect(r.kind).toBe('unsupported');
    } finally {
      plain.close();
    }
  });
});
