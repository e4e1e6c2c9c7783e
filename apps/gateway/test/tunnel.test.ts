import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TUNNEL_CLOSE } from '@stagedoor/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { openTunnel, type TunnelEvent } from '../../cli/src/tunnel-client.ts';
import { freePort, waitFor } from '../../../test/support/ports.ts';
import type { Spawned } from '../../../test/support/processes.ts';
import { AddressList } from '../src/addresses.ts';
import { createLog } from '../src/log.ts';
import { buildProxyV2 } from '../src/proxy-protocol.ts';
import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';
import { TlsCertificate } from '../src/routed/tls-certificate.ts';
import { TunnelServer } from '../src/routed/tunnel.ts';
import { nativeStats, useRelayEngine } from '../src/native-relay.ts';
import { startLocalSshd } from '../../../test/support/sshd.ts';
import { startTinyproxy, startXvncOnLoopback } from './tunnel-peers.ts';

/**
 * The HTTPS tunnel end to end on loopback: the gateway's TunnelServer and the CLI's tunnel client,
 * with real OpenSSH, a real Xvnc and vncsnapshot, and a real HTTP CONNECT proxy (tinyproxy). The
 * admission is a table of token → target (the module boundary the routed modes share); what it was
 * asked and what was reported ended is recorded.
 */
const TOKENS = { ssh: 'sshtokenaaaaaaaaaaaaaaaaaaaaaaaa', vnc: 'vnctokenaaaaaaaaaaaaaaaaaaaaaaaa', canary: 'canarytokenaaaaaaaaaaaaaaaaaaaaa', echo: 'echotokenaaaaaaaaaaaaaaaaaaaaaaa' };

let dir: string;
let cert: TlsCertificate;
/** One tunnel server per byte mover; `url` is the one the running describe block uses. */
const ENGINES = ['js', 'native'] as const;
const servers = new Map<(typeof ENGINES)[number], { server: TunnelServer; url: string }>();
let url: string;
let healthy = true;
let sshd: { port: number; clientKey: string; proc: Spawned };
let xvnc: { port: number; proc: Spawned };
let proxy: { port: number; proc: Spawned };
const targets = new Map<string, { host: string; port: number }>();
const asked: { token: string; client: string }[] = [];
const ended: { token: string; reason: string; bytesUp: number; bytesDown: number }[] = [];
const closers = new Map<string, (reason: string) => void>();
/** Sessions admitted and not ended yet (one engine's blocks start once the other's are all over). */
let live = 0;
/** A TCP server behind a grant: it counts the connections it gets (a refused tunnel must bring none). */
let canary: net.Server;
let canaryConnections = 0;
let echo: net.Server;

const admit: Admit = async (listener, token, clientAddress) => {
  asked.push({ token, client: clientAddress });
  const target = listener === 'tunnel' ? targets.get(token) : undefined;
  if (!target) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
  let done = false;
  live++;
  const admitted: Admitted = {
    ok: true,
    grantId: `grant-${token.slice(0, 6)}`,
    target,
    onClose: (close) => void closers.set(token, close),
    countBytes: () => {},
    ended: (o) => {
      if (!done) {
        ended.push({ token, ...o });
        live--;
      }
      done = true;
    },
  };
  return admitted;
};

const log = createLog('silent');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-tunnel-'));
  cert = await TlsCertificate.load({ files: null, dataDir: path.join(dir, 'gateway'), log, hostnames: ['127.0.0.1'] });
  expect(useRelayEngine('native', 1).engine).toBe('native');
  for (const engine of ENGINES) {
    const server = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => healthy, log, firstMessageTimeoutMs: 2000, connectTimeoutMs: 5000, nativeRelay: engine === 'native' });
    servers.set(engine, { server, url: `wss://127.0.0.1:${await server.start()}/tunnel` });
  }
  canary = await listen(net.createServer((s) => (canaryConnections++, s.destroy())));
  echo = await listen(net.createServer((s) => s.pipe(s)));
  targets.set(TOKENS.canary, { host: '127.0.0.1', port: (canary.address() as net.AddressInfo).port });
  targets.set(TOKENS.echo, { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port });
  [sshd, xvnc, proxy] = await Promise.all([freePort().then((port) => startLocalSshd(fs.mkdtempSync(path.join(dir, 'ssh-')), port)), startXvncOnLoopback(dir), startTinyproxy(dir)]);
  targets.set(TOKENS.ssh, { host: '127.0.0.1', port: sshd.port });
  targets.set(TOKENS.vnc, { host: '127.0.0.1', port: xvnc.port });
});

afterAll(async () => {
  await Promise.all([sshd?.proc.stop(), xvnc?.proc.stop(), proxy?.proc.stop()]);
  for (const { server } of servers.values()) await server.close();
  cert?.close();
  canary?.close();
  echo?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function listen(s: net.Server): Promise<net.Server> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

/** The CLI's tunnel with its events recorded. */
async function tunnel(token: string, opts: { pin?: string | null; proxy?: string; ca?: boolean; url?: string; transport?: 'auto' | 'websocket' } = {}) {
  const events: TunnelEvent[] = [];
  const t = await openTunnel({
    url: opts.url ?? url,
    token,
    certificateSha256: opts.pin === undefined ? cert.fingerprint256 : opts.pin,
    proxy: opts.proxy ?? null,
    ...(opts.ca ? { ca: cert.pair.cert } : {}),
    ...(opts.transport ? { transport: opts.transport } : {}),
    onEvent: (e) => void events.push(e),
  });
  return Object.assign(t, { events });
}

// Asynchronous: the gateway and the CLI's tunnel run in this process, so a blocking call would stall them.
const run = promisify(execFile);

async function ssh(port: number): Promise<string> {
  const r = await run(
    'ssh',
    ['-p', String(port), '-i', sshd.clientKey, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'echo hello'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return r.stdout;
}

async function vncsnapshot(port: number, out: string): Promise<void> {
  await run('vncsnapshot', ['-allowblank', '-encodings', 'raw', '-quiet', `127.0.0.1::${port}`, out], { timeout: 60_000 });
}

describe.each(ENGINES)('[%s relay]', (engine) => {
beforeAll(async () => {
  await waitFor("the other engine's sessions to end", () => live === 0, 30_000);
  url = servers.get(engine)!.url;
  ended.length = 0;
  asked.length = 0;
  closers.clear();
});

describe('HTTPS tunnel: real clients through stagedoor connect --tunnel', () => {
  it('ssh runs a command on a real sshd through the tunnel (certificate pinned)', async () => {
    const t = await tunnel(TOKENS.ssh);
    try {
      expect((await ssh(t.port)).trim()).toBe('hello');
      // The native mode (ADR 0032): the relay threads carry it on the native server (tunnel-native.test.ts tests that path).
      expect(t.events).toContainEqual(expect.objectContaining({ kind: 'open', transport: 'native' }));
      await waitFor('the session to be reported ended', () => ended.some((e) => e.token === TOKENS.ssh), 30_000);
      const e = ended.find((x) => x.token === TOKENS.ssh)!;
      expect(e.bytesUp).toBeGreaterThan(0);
      expect(e.bytesDown).toBeGreaterThan(0);
      expect(asked.find((a) => a.token === TOKENS.ssh)?.client).toBe('127.0.0.1');
    } finally {
      await t.close();
    }
  });

  it('vncsnapshot grabs a frame from a real Xvnc through the tunnel (certificate checked against a CA)', async () => {
    const t = await tunnel(TOKENS.vnc, { pin: null, ca: true });
    try {
      const out = path.join(dir, 'direct.jpg');
      await vncsnapshot(t.port, out);
      expect(fs.statSync(out).size).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });

  it('both go through a real HTTP CONNECT proxy, which never sees the token', async () => {
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const tSsh = await tunnel(TOKENS.ssh, { proxy: proxyUrl });
    const tVnc = await tunnel(TOKENS.vnc, { proxy: proxyUrl });
    try {
      expect((await ssh(tSsh.port)).trim()).toBe('hello');
      const out = path.join(dir, 'proxied.jpg');
      await vncsnapshot(tVnc.port, out);
      expect(fs.statSync(out).size).toBeGreaterThan(0);
      // The native mode made its own CONNECT (tunnel-native.ts), not the WebSocket's agent.
      for (const t of [tSsh, tVnc]) expect(t.events).toContainEqual(expect.objectContaining({ kind: 'open', transport: 'native' }));
    } finally {
      await Promise.all([tSsh.close(), tVnc.close()]);
    }
    const gatewayPort = new URL(url).port;
    await waitFor('the proxy to log the CONNECTs', () => proxy.proc.stdout.concat(proxy.proc.stderr).filter((l) => l.includes(`CONNECT 127.0.0.1:${gatewayPort}`)).length >= 2, 30_000);
    const logText = [...proxy.proc.stdout, ...proxy.proc.stderr].join('\n');
    for (const token of Object.values(TOKENS)) expect(logText).not.toContain(token);
  });

  it('ssh and vncsnapshot through the WebSocket transport (what a TLS-inspecting proxy leaves), by the relay threads on the native server', async () => {
    // The sessions of the tests before end on the relay threads' time: wait for them, then count.
    await waitFor('the relay threads to hold no session', () => nativeStats()!.live === 0, 30_000);
    const sshEnded = ended.filter((e) => e.token === TOKENS.ssh).length;
    const tSsh = await tunnel(TOKENS.ssh, { transport: 'websocket' });
    const tVnc = await tunnel(TOKENS.vnc, { transport: 'websocket' });
    try {
      // Open the local connection and keep it: its session is live while the count is read.
      const local = net.connect(tSsh.port, '127.0.0.1');
      local.on('error', () => {});
      const banner = await new Promise<string>((resolve) => local.once('data', (d: Buffer) => resolve(d.toString())));
      expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
      expect(nativeStats()!.live).toBe(engine === 'native' ? 1 : 0);
      local.destroy();
      expect((await ssh(tSsh.port)).trim()).toBe('hello');
      const out = path.join(dir, `websocket-${engine}.jpg`);
      await vncsnapshot(tVnc.port, out);
      expect(fs.statSync(out).size).toBeGreaterThan(0);
      for (const t of [tSsh, tVnc]) expect(t.events).toContainEqual(expect.objectContaining({ kind: 'open', transport: 'websocket' }));
      await waitFor('both ssh sessions to be reported ended', () => ended.filter((e) => e.token === TOKENS.ssh).length === sshEnded + 2, 30_000);
    } finally {
      await Promise.all([tSsh.close(), tVnc.close()]);
    }
  });
});

describe('HTTPS tunnel: refusals, health, pinning', () => {
  it('a wrong token: the client reports the plain reason and the target sees no connection', async () => {
    const t = await tunnel('wrongtokenaaaaaaaaaaaaaaaaaaaaaa');
    try {
      const local = net.connect(t.port, '127.0.0.1');
      local.on('error', () => {});
      await waitFor('the refusal', () => t.events.some((e) => e.kind === 'refused'), 30_000);
      const r = t.events.find((e) => e.kind === 'refused') as Extract<TunnelEvent, { kind: 'refused' }>;
      expect(r.code).toBe(TUNNEL_CLOSE.refused);
      expect(r.message).toBe(REFUSAL_MESSAGES['no-grant']);
      await waitFor('the local connection to be closed', () => local.destroyed || local.readableEnded, 30_000);
      expect(canaryConnections).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('a token in the URL is ignored, and no first message closes the tunnel', async () => {
    for (const suffix of [`?token=${TOKENS.canary}`, '']) {
      const before = asked.length;
      const ws = new WebSocket(`${url}${suffix}`, { ca: cert.pair.cert });
      const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      ws.on('error', () => {});
      const { code, reason } = await closed;
      expect(code).toBe(TUNNEL_CLOSE.timeout);
      expect(reason).toBe(REFUSAL_MESSAGES['no-token']);
      expect(asked.length).toBe(before);
    }
    expect(canaryConnections).toBe(0);
  });

  it('a first message that is not a token frame is refused as a bad request', async () => {
    const ws = new WebSocket(url, { ca: cert.pair.cert });
    ws.on('open', () => ws.send(Buffer.from('SSH-2.0-OpenSSH\r\n')));
    ws.on('error', () => {});
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    expect(code).toBe(TUNNEL_CLOSE.badRequest);
  });

  it('/healthz answers 200 while healthy and 503 otherwise; any other path is 404', async () => {
    const get = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${new URL(url).port}${p}`, { ca: cert.pair.cert }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          })
          .on('error', reject);
      });
    healthy = true;
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    healthy = false;
    expect((await get('/healthz')).status).toBe(503);
    healthy = true;
    expect((await get('/')).status).toBe(404);
    expect((await get('/tunnel')).status).toBe(404); // a plain GET, not an upgrade
  });

  it('a certificate that is not the pinned one: the client never sends the token', async () => {
    const before = asked.length;
    const t = await tunnel(TOKENS.canary, { pin: 'AB:'.repeat(31) + 'AB' });
    try {
      const local = net.connect(t.port, '127.0.0.1');
      local.on('error', () => {});
      await waitFor('the pin mismatch', () => t.events.some((e) => e.kind === 'error'), 30_000);
      expect((t.events.find((e) => e.kind === 'error') as { message: string }).message).toMatch(/not the pinned one.*token was not sent/);
      expect(asked.length).toBe(before);
      expect(canaryConnections).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('a revoke (onClose) ends the tunnel at once, and ended is reported once', async () => {
    // The WebSocket carries the reason in its close frame (the native mode's stream has no room for one).
    const t = await tunnel(TOKENS.echo, { transport: 'websocket' });
    try {
      const local = net.connect(t.port, '127.0.0.1');
      local.on('error', () => {});
      let got = '';
      local.on('data', (c: Buffer) => (got += c.toString()));
      local.write('ping');
      await waitFor('the echo through the tunnel', () => got === 'ping', 30_000);
      closers.get(TOKENS.echo)!('revoked');
      await waitFor('the revoke to reach the client', () => t.events.some((e) => e.kind === 'refused'), 30_000);
      expect((t.events.find((e) => e.kind === 'refused') as { code: number; message: string }).message).toBe(REFUSAL_MESSAGES.revoked);
      await waitFor('the session to be reported ended', () => ended.some((e) => e.token === TOKENS.echo), 30_000);
      expect(ended.filter((e) => e.token === TOKENS.echo)).toEqual([{ token: TOKENS.echo, reason: 'revoked', bytesUp: 4, bytesDown: 4 }]);
    } finally {
      await t.close();
    }
  });
});

describe('HTTPS tunnel behind a load balancer (PROXY v2)', () => {
  it('the client address admitted is the PROXY header source; a peer outside the sources is refused', async () => {
    const behind = new TunnelServer({ port: 0, host: '127.0.0.1', certificate: cert, admit, healthy: () => true, log, proxyProtocol: { sources: new AddressList(['127.0.0.1']) }, nativeRelay: engine === 'native' });
    const port = await behind.start();
    // The balancer: prepend the header, then pass bytes through (as an NLB with PROXY v2 does).
    const balancer = await listen(
      net.createServer((down) => {
        const up = net.connect(port, '127.0.0.1');
        up.write(buildProxyV2({ address: '203.0.113.9', port: 40000 }, { address: '127.0.0.1', port })); // queued ahead of the client's bytes
        for (const s of [up, down]) s.on('error', () => (up.destroy(), down.destroy()));
        down.pipe(up).pipe(down);
      }),
    );
    // The WebSocket path: its client address comes through the HTTPS side (the native mode's is tunnel-native's).
    const t = await tunnel(TOKENS.echo, { url: `wss://127.0.0.1:${(balancer.address() as net.AddressInfo).port}/tunnel`, transport: 'websocket' });
    try {
      const local = net.connect(t.port, '127.0.0.1');
      local.on('error', () => {});
      let got = '';
      local.on('data', (c: Buffer) => (got += c.toString()));
      local.write('via balancer');
      await waitFor('the echo through the balancer', () => got === 'via balancer', 30_000);
      expect(asked.at(-1)).toEqual({ token: TOKENS.echo, client: '203.0.113.9' });
      local.destroy();
      // 127.0.0.2 is loopback but not a configured source: reset before anything is read.
      const before = asked.length;
      const direct = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      const error = await new Promise<string>((resolve) => {
        direct.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        direct.on('close', () => resolve('closed'));
      });
      expect(error).toBe('ECONNRESET');
      expect(asked.length).toBe(before);
    } finally {
      await t.close();
      balancer.close();
      await behind.close();
    }
  });
});
});
