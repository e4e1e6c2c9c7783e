import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../broker/src/domain/identity/actor.ts';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import type { TestBroker } from '../../../test/support/broker.ts';
import { freePortRange, waitFor } from '../../../test/support/ports.ts';
import type { PortForwarder } from '../src/port-forward.ts';
import { echoServer, grantFor, listeningBroker, liveSession, RELAY_ENGINES, roundTrip, sha256, startTestGateway, type GatewayUnderTest } from './harness.ts';

/**
 * Port-forward mode end to end in one process: a real broker (HTTP + control channel), a real
 * gateway, loopback clients. The same checks run with real SSH/VNC/RDP clients in network
 * namespaces in test/system/gateway-netns.test.ts.
 */
describe.each(RELAY_ENGINES)('port-forward relay through a broker-authorised grant [%s relay]', (engine) => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;

  beforeAll(async () => {
    broker = await listeningBroker();
    gw = await startTestGateway(broker, [broker.baseUrl], { relay: engine });
    echo = await echoServer();
  });

  it('relays with the engine asked for', () => {
    expect((gw.gateway.forwarder as PortForwarder).nativeRelay).toBe(engine === 'native');
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await broker?.close();
  });

  async function ready(grant: { grantId: string }) {
    await waitFor('the gateway to hold the grant', () => gw.gateway.forwarder.isReady(grant.grantId), 30_000, 10);
  }
  async function refusal(grantId: string, reason: string) {
    await waitFor(`a refusal (${reason}) in the audit log`, async () => {
      const page = await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: grantId }, 50, 0);
      return page.items.some((i) => i.reason === reason);
    }, 30_000, 25);
    const page = await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: grantId }, 50, 0);
    return page.items.find((i) => i.reason === reason)!;
  }

  it('relays byte-exact both ways when the client half-closes (no tail lost), and reports bytes and end', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await ready(grant);
    const payload = randomBytes(24 * 1024 * 1024);
    const r = await roundTrip(grant.port, payload, { timeoutMs: 30_000 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.data.length).toBe(payload.length);
    expect(sha256(r.data)).toBe(sha256(payload));
    await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, grant.connectionId)).state === 'closed', 30_000, 25);
    const row = await connectionRow(broker.database, grant.connectionId);
    expect(row).toMatchObject({ state: 'closed', endReason: 'client-closed', bytesUp: payload.length, bytesDown: payload.length, gatewayId: gw.gatewayId });
    expect(row.connectedAt).not.toBeNull();
  });

  it('relays byte-exact when the workstation half-closes first and the client keeps sending', async () => {
    const tail = randomBytes(8 * 1024 * 1024);
    const upload = randomBytes(6 * 1024 * 1024);
    let received: Buffer[] = [];
    const done = new Promise<Buffer>((resolve) => {
      const server = net.createServer({ allowHalfOpen: true }, (s) => {
        received = [];
        s.on('data', (c) => received.push(c));
        s.on('end', () => {
          resolve(Buffer.concat(received));
          s.end();
          server.close();
        });
        s.end(tail); // the workstation says all it has to say and half-closes at once
      });
      server.listen(0, '127.0.0.1', () => void start((server.address() as AddressInfo).port));
    });
    let clientGot = Buffer.alloc(0);
    const start = async (port: number) => {
      const grant = await grantFor(broker, { host: '127.0.0.1', port });
      await ready(grant);
      const c = net.connect({ port: grant.port, host: '127.0.0.1', allowHalfOpen: true });
      const chunks: Buffer[] = [];
      c.on('data', (d) => chunks.push(d));
      c.on('end', () => {
        clientGot = Buffer.concat(chunks);
        // The far side is done talking; this side still has its upload to finish.
        c.end(upload.subarray(3 * 1024 * 1024));
      });
      c.write(upload.subarray(0, 3 * 1024 * 1024));
    };
    const atServer = await done;
    expect(sha256(clientGot)).toBe(sha256(tail));
    expect(atServer.length).toBe(upload.length);
    expect(sha256(atServer)).toBe(sha256(upload));
  });

  it('relays many sessions at once byte-exact, with live byte counts while they run', async () => {
    const grants = await Promise.all(Array.from({ length: 12 }, () => grantFor(broker, { host: '127.0.0.1', port: echo.port })));
    for (const g of grants) await ready(g);
    const { socket, closed } = await liveSession(broker, grants[0]!);
    socket.write(Buffer.alloc(100_000, 7));
    await waitFor('live bytes to count the burst', () => (gw.gateway.forwarder.sessions().find((x) => x.grantId === grants[0]!.grantId)?.bytesDown ?? 0) >= 100_004, 5000, 10);
    socket.end();
    await closed;
    const payloads = grants.slice(1).map((_, i) => randomBytes((1 + (i % 4)) * 1024 * 1024 + i * 4099));
    const results = await Promise.all(grants.slice(1).map((g, i) => roundTrip(g.port, payloads[i]!, { timeoutMs: 30_000 })));
    for (const [i, r] of results.entries()) {
      expect(r.ok).toBe(true);
      if (r.ok) expect(sha256(r.data)).toBe(sha256(payloads[i]!));
    }
    for (const [i, g] of grants.slice(1).entries()) {
      await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, g.connectionId)).state === 'closed', 30_000, 25);
      expect(await connectionRow(broker.database, g.connectionId)).toMatchObject({ bytesUp: payloads[i]!.length, bytesDown: payloads[i]!.length, endReason: 'client-closed' });
    }
  });

  it('a workstation that resets the connection ends the session as a target error, and the client is let go', async () => {
    const server = net.createServer((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const grant = await grantFor(broker, { host: '127.0.0.1', port: (server.address() as AddressInfo).port });
      await ready(grant);
      const client = net.connect({ port: grant.port, host: '127.0.0.1' });
      client.on('error', () => undefined);
      const gone = new Promise<void>((r) => client.once('close', () => r()));
      await new Promise((r) => client.once('connect', r));
      client.write('hello?');
      await gone;
      await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, grant.connectionId)).state === 'closed', 30_000, 25);
      expect((await connectionRow(broker.database, grant.connectionId)).endReason).toBe('target-error: ECONNRESET');
    } finally {
      server.close();
    }
  });

  it('refuses another client address and audits it; the right client still gets its one session', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { client: '127.0.0.1' });
    await ready(grant);
    const wrong = await roundTrip(grant.port, Buffer.from('let me in'), { localAddress: '127.0.0.2' });
    expect(wrong.ok && wrong.data.length > 0).toBe(false);
    const row = await refusal(grant.grantId, 'wrong-client');
    expect(row.sourceAddress).toBe('127.0.0.2');
    expect(row.outcome).toBe('denied');
    const right = await roundTrip(grant.port, Buffer.from('hello'));
    expect(right).toMatchObject({ ok: true, data: Buffer.from('hello') });
  });

  it('refuses a second connection on a used grant and audits it', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await ready(grant);
    const { socket: live } = await liveSession(broker, grant);
    const second = await roundTrip(grant.port, Buffer.from('me too'));
    expect(second.ok && second.data.length > 0).toBe(false);
    await refusal(grant.grantId, 'used');
    live.end();
    await waitFor('the first session to end', async () => (await connectionRow(broker.database, grant.connectionId)).state === 'closed', 30_000, 25);
    // The port lingers for a while after the session, refusing (and reporting) every connection.
    const after = await roundTrip(grant.port, Buffer.from('again'));
    expect(after.ok && after.data.length > 0).toBe(false);
  });

  it('refuses an expired grant, audits it, and the broker expires the grant and its connection', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { connectByMs: 700 });
    await ready(grant);
    await new Promise((r) => setTimeout(r, 900));
    const late = await roundTrip(grant.port, Buffer.from('late'));
    expect(late.ok && late.data.length > 0).toBe(false);
    await refusal(grant.grantId, 'expired');
    const pass = await broker.jobs.runOnce('gateway-reconcile');
    expect(pass).toMatchObject({ outcome: 'ok' });
    expect(await connectionRow(broker.database, grant.connectionId)).toMatchObject({ state: 'closed', endReason: 'grant-expired' });
    const expired = await broker.services.audit.list({ action: 'grant.expire', targetId: grant.grantId }, 5, 0);
    expect(expired.total).toBe(1);
  });

  it('revoking closes the live session at once; the port then refuses with "revoked", audited', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await ready(grant);
    const { closed } = await liveSession(broker, grant);
    await broker.services.gateways.revokeGrant(grant.grantId, 'admin test');
    await closed; // within the test timeout: "at once" means no waiting for a heartbeat or a job
    expect(await connectionRow(broker.database, grant.connectionId)).toMatchObject({ state: 'closed', endReason: 'revoked: admin test' });
    const again = await roundTrip(grant.port, Buffer.from('back'));
    expect(again.ok && again.data.length > 0).toBe(false);
    await refusal(grant.grantId, 'revoked');
    await waitFor('the session end report', async () => (await broker.services.audit.list({ action: 'gateway.session_end', targetId: grant.grantId }, 5, 0)).total === 1, 30_000, 25);
  });

  it('a disabled gateway refuses new connections (audited) while its live session runs on; re-activated, it serves again', async () => {
    const live = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    const waiting = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await ready(live);
    await ready(waiting);
    const s = net.connect({ port: live.port, host: '127.0.0.1' });
    await new Promise((r) => s.once('connect', r));
    await broker.services.gateways.update(systemActor, gw.gatewayId, { status: 'disabled' });
    await waitFor('the gateway to learn it is disabled', () => gw.gateway.refusing() === 'disabled', 30_000, 10);
    const refused = await roundTrip(waiting.port, Buffer.from('now?'));
    expect(refused.ok && refused.data.length > 0).toBe(false);
    await refusal(waiting.grantId, 'disabled');
    const echoed = await new Promise<string>((resolve) => {
      s.once('data', (d) => resolve(d.toString()));
      s.write('still relaying');
    });
    expect(echoed).toBe('still relaying');
    s.end();
    await broker.services.gateways.update(systemActor, gw.gatewayId, { status: 'active' });
    await waitFor('active again', () => gw.gateway.refusing() === null, 30_000, 10);
    expect(await roundTrip(waiting.port, Buffer.from('now'))).toMatchObject({ ok: true, data: Buffer.from('now') });
  });

  it('a garbage first packet and a scan of the whole port range disturb no other session', async () => {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    const unused = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { client: '127.0.0.9' });
    await ready(grant);
    await ready(unused);
    const live = net.connect({ port: grant.port, host: '127.0.0.1' });
    await new Promise((r) => live.once('connect', r));
    const echoOnce = (msg: string) =>
      new Promise<string>((resolve) => {
        live.once('data', (d) => resolve(d.toString()));
        live.write(msg);
      });
    expect(await echoOnce('before')).toBe('before');

    const gwRow = await broker.services.gateways.get(gw.gatewayId);
    const scanned: string[] = [];
    for (let port = gwRow.portRangeStart; port <= gwRow.portRangeEnd; port++) {
      const r = await roundTrip(port, randomBytes(512), { localAddress: '127.0.0.3', timeoutMs: 2000 });
      scanned.push(r.ok ? `data:${r.data.length}` : r.error);
      expect(r.ok && r.data.length > 0, `port ${port} gave a scanner data`).toBe(false);
    }
    expect(scanned.length).toBe(gwRow.portRangeEnd - gwRow.portRangeStart + 1);
    expect(await echoOnce('after')).toBe('after');
    expect(gw.gateway.forwarder.sessions().map((s) => s.grantId)).toContain(grant.grantId);
    // The unused grant was not consumed by the scan: its own client still gets through.
    await refusal(unused.grantId, 'wrong-client');
    expect(await roundTrip(unused.port, Buffer.from('mine'), { localAddress: '127.0.0.9' })).toMatchObject({ ok: true, data: Buffer.from('mine') });
    live.end();
  });
});

describe('a granted port that another socket of this host holds', () => {
  it('is tried again until it is free, and its grant is then served (one warning, not one a try)', async () => {
    const broker = await listeningBroker();
    const [port] = await freePortRange(1);
    // A listener holds the number here; in production it is mostly an outgoing connection's local port.
    const holder = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    const gw = await startTestGateway(broker, [broker.baseUrl], { cluster: 'held', ports: [port, port] });
    const echo = await echoServer();
    const inUse = () => gw.logs.filter((l) => l.includes('the granted port is in use on this host'));
    try {
      const grant = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { cluster: 'held' });
      expect(grant.port).toBe(port);
      await waitFor('the in-use warning', () => inUse().length > 0, 30_000, 25);
      expect(gw.gateway.forwarder.isReady(grant.grantId)).toBe(false);
      await new Promise((r) => setTimeout(r, 1200)); // a few tries fail while it is held
      expect(gw.gateway.forwarder.isReady(grant.grantId)).toBe(false);
      await new Promise((r) => holder.close(r));
      await waitFor('the gateway to listen on the port', () => gw.gateway.forwarder.isReady(grant.grantId), 30_000, 25);
      const r = await roundTrip(port, Buffer.from('through at last'));
      expect(r.ok && r.data.toString()).toBe('through at last');
      expect(inUse()).toHaveLength(1);
      expect(gw.logs.some((l) => l.includes('the granted port is free again: listening'))).toBe(true);
    } finally {
      holder.close();
      gw.gateway.stop();
      await echo.close();
      await broker.close();
    }
  });
});
