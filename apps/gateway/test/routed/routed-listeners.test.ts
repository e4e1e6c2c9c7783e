import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBroker } from '../../../../bench/gateway/fake-broker.ts';
import { makeTestCa } from '../../../../test/support/directory/tls.ts';
import { waitFor } from '../../../../test/support/ports.ts';
import { AddressList } from '../../src/addresses.ts';
import { Gateway } from '../../src/gateway.ts';
import { createLog } from '../../src/log.ts';
import { buildProxyV2 } from '../../src/proxy-protocol.ts';
import { buildRdpConnectionRequest, rdpNegotiationFailure } from '../../src/routed/rdp-routing.ts';

/**
 * The routed RDP and TLS listeners of a real gateway on loopback, driven by a control-channel peer
 * that speaks the real protocol (bench/gateway/fake-broker.ts answers claims as ADR 0017's broker
 * does for first use). The end-to-end test with the real broker comes with the broker's claims.
 */
const TOKEN = 'abcdefghijklmnopqrstuvwxyz234567';
const token = (n: number) => `${TOKEN.slice(0, 30)}${'abcdefgh'[n]}${'234567'[n % 6]}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-routed-'));

/** A target that records what each connection sent first, and answers with `reply`. */
async function recordingServer(reply: Buffer) {
  const firsts: Buffer[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', (d) => {
      firsts.push(d);
      s.end(reply);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, firsts, close: () => server.close() };
}

/** Send `bytes`, collect everything until the gateway closes; resolves with what came back. */
function exchange(port: number, bytes: Buffer, localAddress = '127.0.0.1'): Promise<{ data: Buffer; error: string | null }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.on('connect', () => s.write(bytes));
    s.on('data', (c) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(chunks), error: e.code ?? e.message }));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), error: null }));
  });
}

async function startGateway(broker: FakeBroker, opts: { claimTimeoutMs?: number; proxy?: string[] } = {}) {
  const gateway = new Gateway({
    brokerUrls: [broker.url],
    credential: broker.credential,
    listenHost: '127.0.0.1',
    proxyProtocol: { enabled: Boolean(opts.proxy), sources: new AddressList(opts.proxy ?? []) },
    failClosedMs: 60_000,
    lingerMs: 1000,
    connectTimeoutMs: 3000,
    log: createLog('error', {}, () => undefined),
    backoffMs: { min: 50, max: 500 },
    routed: { rdpPort: 0, tlsPort: 0, claimTimeoutMs: opts.claimTimeoutMs },
  }).start();
  await gateway.listening;
  await waitFor('the gateway to be welcomed', () => gateway.channel.connected, 30_000, 25);
  return gateway;
}

describe('routed RDP and TLS listeners (loopback, real sockets)', () => {
  let broker: FakeBroker;
  let gateway: Gateway;
  let rdp: number;
  let tlsPort: number;

  beforeAll(async () => {
    broker = new FakeBroker();
    broker.recordReports = true;
    await broker.start();
    gateway = await startGateway(broker);
    rdp = gateway.listeners!.portOf('rdp')!;
    tlsPort = gateway.listeners!.portOf('tls')!;
  });
  afterAll(async () => {
    gateway?.stop();
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the hello names the listeners\' ports', async () => {
    await waitFor('the hello', () => broker.hello !== null, 30_000, 25);
    expect(broker.hello!.identity).toEqual({ sshHostKey: null, tlsCertificateSha256: null, listeners: { rdp, ssh: null, tls: tlsPort, tunnel: null } });
  });

  it('RDP: the workstation gets the request without the token; a reused, wrong and missing token never reach it', async () => {
    const confirm = Buffer.from('confirm-from-workstation');
    const ws = await recordingServer(confirm);
    const id = broker.grantRouted(TOKEN, { host: '127.0.0.1', port: ws.port });
    await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
    const first = await exchange(rdp, buildRdpConnectionRequest({ line: TOKEN }));
    expect(first.data).toEqual(confirm);
    expect(ws.firsts).toEqual([buildRdpConnectionRequest()]);
    await waitFor('the session end report', () => broker.reports.some((r) => r.type === 'session-ended' && r.grantId === id), 30_000, 25);

    const refusal = rdpNegotiationFailure();
    expect((await exchange(rdp, buildRdpConnectionRequest({ line: TOKEN }))).data).toEqual(refusal); // the broker says used
    expect((await exchange(rdp, buildRdpConnectionRequest({ line: token(1) }))).data).toEqual(refusal);
    expect((await exchange(rdp, buildRdpConnectionRequest({ line: 'Cookie: mstshash=artist' }))).data).toEqual(refusal);
    expect((await exchange(rdp, Buffer.from('GET / HTTP/1.1\r\n\r\n'))).data.length).toBe(0); // not RDP: reset, no answer
    await waitFor('the refusals', () => broker.refusals(id).includes('used') && broker.refusals(null).filter((r) => ['no-grant', 'no-token', 'bad-request'].includes(r)).length === 3, 30_000, 25);
    expect(ws.firsts.length).toBe(1);
    expect(broker.claimsSeen.filter((c) => c.grantId === id).map((c) => c.listener)).toEqual(['rdp', 'rdp']);
    ws.close();
  });

  it('RDP from another client address is refused before any claim', async () => {
    const ws = await recordingServer(Buffer.from('x'));
    const id = broker.grantRouted(token(2), { host: '127.0.0.1', port: ws.port }, '127.0.0.2');
    await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
    expect((await exchange(rdp, buildRdpConnectionRequest({ line: token(2) }))).data).toEqual(rdpNegotiationFailure());
    await waitFor('the refusal', () => broker.refusals(id).includes('wrong-client'), 30_000, 25);
    expect(broker.claimsSeen.some((c) => c.grantId === id)).toBe(false);
    // The granted address gets its session.
    expect((await exchange(rdp, buildRdpConnectionRequest({ line: token(2) }), '127.0.0.2')).data).toEqual(Buffer.from('x'));
    ws.close();
  });

  it('TLS: relayed by SNI without terminating it (the client verifies the workstation\'s certificate); unknown names and no SNI get unrecognized_name', async () => {
    const ca = makeTestCa(dir, { dns: ['*.gw.test'], ips: [] });
    const server = tls.createServer({ cert: fs.readFileSync(ca.certFile), key: fs.readFileSync(ca.keyFile) }, (s) => s.end('hello over tls'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const id = broker.grantRouted(token(3), { host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
    const dial = (servername?: string) =>
      new Promise<{ data: string; error: string | null }>((resolve) => {
        let data = '';
        const c = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: ca.caPem, ...(servername ? { servername } : { checkServerIdentity: () => undefined }) });
        c.on('data', (d) => (data += d));
        c.on('error', (e) => resolve({ data, error: e.message }));
        c.on('close', () => resolve({ data, error: null }));
      });
    const before = broker.refusals(null).length;
    expect(await dial(`${token(3).toUpperCase()}.gw.test`)).toEqual({ data: 'hello over tls', error: null });
    const unknown = await dial(`${token(4)}.gw.test`);
    expect(unknown.error).toMatch(/unrecognized name/i);
    expect((await dial()).error).toMatch(/unrecognized name/i);
    await waitFor('the refusals', () => broker.refusals(null).length === before + 2, 30_000, 25);
    expect(broker.refusals(null).slice(before)).toEqual(['no-grant', 'no-token']);
    server.close();
  });

  it('the heartbeat snapshot carries a live routed session', async () => {
    const held = net.createServer((s) => s.on('error', () => undefined).write('hi'));
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    const id = broker.grantRouted(token(5), { host: '127.0.0.1', port: (held.address() as AddressInfo).port });
    await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
    const c = net.connect({ port: rdp, host: '127.0.0.1' });
    c.on('error', () => undefined);
    c.write(buildRdpConnectionRequest({ line: token(5) }));
    await new Promise((r) => c.once('data', r));
    await waitFor('the session in the snapshot', () => gateway.routedGrants.sessions().some((s) => s.grantId === id && s.bytesDown === 2 && s.bytesUp === buildRdpConnectionRequest().length), 30_000, 25);
    broker.revoke([id]);
    await waitFor('the revoke to end it', () => broker.reports.some((r) => r.type === 'session-ended' && r.grantId === id && r.reason.startsWith('revoked')), 30_000, 25);
    c.destroy();
    held.close();
  });
});

describe('routed claims fail closed', () => {
  it('no answer within the claim timeout: refused claim-timeout, the workstation untouched', async () => {
    const broker = new FakeBroker();
    broker.recordReports = true;
    broker.claims = 'silent';
    await broker.start();
    const gateway = await startGateway(broker, { claimTimeoutMs: 300 });
    try {
      const ws = await recordingServer(Buffer.from('x'));
      const id = broker.grantRouted(TOKEN, { host: '127.0.0.1', port: ws.port });
      await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
      expect((await exchange(gateway.listeners!.portOf('rdp')!, buildRdpConnectionRequest({ line: TOKEN }))).data).toEqual(rdpNegotiationFailure());
      await waitFor('the refusal', () => broker.refusals(id).includes('claim-timeout'), 30_000, 25);
      expect(broker.claimsSeen.length).toBe(1);
      expect(ws.firsts.length).toBe(0);
      ws.close();
      // No channel at all: no claim can be made, so none is waited for.
      expect(await new Gateway({ brokerUrls: ['http://127.0.0.1:9'], credential: 'x', listenHost: '127.0.0.1', proxyProtocol: { enabled: false, sources: new AddressList([]) }, failClosedMs: 60_000, lingerMs: 1000, connectTimeoutMs: 1000, log: createLog('error', {}, () => undefined) }).channel.claim(id, '127.0.0.1', 'rdp')).toEqual({ ok: false, reason: 'claim-timeout' });
    } finally {
      gateway.stop();
      await broker.close();
    }
  });

  it('behind PROXY v2 the header names the client; a peer outside the sources is refused unread', async () => {
    const broker = new FakeBroker();
    broker.recordReports = true;
    await broker.start();
    const gateway = await startGateway(broker, { proxy: ['127.0.0.1'] });
    try {
      const ws = await recordingServer(Buffer.from('via-balancer'));
      const id = broker.grantRouted(TOKEN, { host: '127.0.0.1', port: ws.port }, '203.0.113.9');
      await waitFor('the grant', () => gateway.routedGrants.has(id), 30_000, 25);
      const port = gateway.listeners!.portOf('rdp')!;
      const header = buildProxyV2({ address: '203.0.113.9', port: 50000 }, { address: '127.0.0.1', port });
      expect((await exchange(port, Buffer.concat([header, buildRdpConnectionRequest({ line: TOKEN })]))).data).toEqual(Buffer.from('via-balancer'));
      expect(ws.firsts).toEqual([buildRdpConnectionRequest()]);
      const stranger = await exchange(port, Buffer.concat([header, buildRdpConnectionRequest({ line: TOKEN })]), '127.0.0.3');
      expect(stranger.data.length).toBe(0);
      await waitFor('the refusal', () => broker.refusals(null).includes('proxy-protocol'), 30_000, 25);
      ws.close();
    } finally {
      gateway.stop();
      await broker.close();
    }
  });
});
