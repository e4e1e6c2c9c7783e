import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';
import { fakeChannel } from '../gateways/fixtures.ts';


const CERT = Array.from({ length: 32 }, () => 'CD').join(':');

/**
 * "Open in browser" on the broker's side (issue 17, ADR 0028): the protocol plan's `browser` flag and
 * its checks, the instructions' `browser`, POST /api/v1/connections/{id}/browser (the owner only, the
 * same grant as the native instructions, plain 409s), and the CSP naming the gateways' tunnels.
 */
describe.each(DRIVERS)('browser sessions on the broker [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let b: TestBroker;
  let admin: Session;
  let artists: MintedUser[];
  let next = 0;
  let channel: ReturnType<typeof fakeChannel>;
  let poolId: string;

  const call = async (method: 'GET' | 'POST', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const connect = (u: MintedUser, protocol: string) => b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(u), payload: { poolId, protocol }, remoteAddress: '203.0.113.7' });
  const browser = (u: MintedUser | Session, id: string) => b.app.inject({ method: 'POST', url: `/api/v1/connections/${id}/browser`, headers: 'username' in u && 'token' in u ? bearer(u as MintedUser) : as(u as Session), remoteAddress: '203.0.113.7' });

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: randomBytes(32).toString('hex'), STAGEDOOR_GATEWAY_STALE_SECONDS: '3600' } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'racks' });
    const hosts = Array.from({ length: 6 }, (_, i) => `bw-${i},10.8.0.${i + 1},rdp;ssh;vnc,rack=b`).join('\n');
    await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, { csv: `name,address,protocols,tags\n${hosts}\n` });
    const plan = await call('POST', '/api/v1/protocol-plans', {
      name: 'browser',
      protocols: [
        { protocol: 'vnc', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 60, clientOptions: { viewOnly: true } },
        { protocol: 'ssh', viaGateway: true, gatewayMode: 'routed', browser: true, reconnectWindowSeconds: 0 },
        { protocol: 'rdp', viaGateway: true, gatewayMode: 'routed' },
      ],
    });
    const pool = await call('POST', '/api/v1/pools', { name: 'browser', providerId: provider.id, membership: { tags: { rack: ['b'] } }, gatewayCluster: 'web' });
    await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
    poolId = pool.id;
    artists = await mintUsers(b.database, 6, 'bartist', 'BrowserArtists');
    const group = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'BrowserArtists');
    await call('POST', '/api/v1/policies', { name: 'browser-artists', groupIds: [group.id], pools: [{ poolId: pool.id, desktops: 1 }], protocolPlanId: plan.id });
    const { token } = await b.services.gateways.createEnrollment(systemActor, { cluster: 'web', name: 'web-1', publicAddress: 'gw.browser.test', routedPorts: { tunnel: 8444 }, expiresInMinutes: 5 });
    const { gateway } = await b.services.gateways.enroll({ token, name: 'web-1', portRangeStart: 22000, portRangeEnd: 22099 }, '192.0.2.19');
    channel = fakeChannel(b, gateway);
    await channel.hello([], { sshHostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl gw', tlsCertificateSha256: CERT, listeners: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 8444 } });
  }, 180_000);
  afterAll(async () => {
    channel?.close();
    b?.services.gateways.channels.close();
    await b?.close();
  });

  it('a plan offers browser only through a routed gateway, and only for vnc, ssh and rdp: clear 400s', async () => {
    const bad = [
      [{ protocol: 'vnc', viaGateway: true, browser: true }, 'needs viaGateway: true and gatewayMode "routed"'],
      [{ protocol: 'vnc', viaGateway: false, browser: true }, 'needs viaGateway: true and gatewayMode "routed"'],
      [{ protocol: 'dcv', viaGateway: true, gatewayMode: 'routed', browser: true }, 'there is no browser client for dcv'],
    ] as const;
    for (const [entry, message] of bad) {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/protocol-plans', headers: as(admin), payload: { name: 'bad-browser', protocols: [entry] } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toContain(message);
    }
    expect((await call('GET', '/api/v1/protocol-plans')).items.map((p: { name: string }) => p.name)).not.toContain('bad-browser');
    // Absent means false: plans written before browser sessions keep their meaning.
    const plain = await call('POST', '/api/v1/protocol-plans', { name: 'plain', protocols: [{ protocol: 'vnc', viaGateway: true, gatewayMode: 'routed' }] });
    expect(plain.protocols[0].browser).toBe(false);
  });

  it('the owner gets the tunnel URL, the token (in the body), the desktop name and view-only', async () => {
    const u = artists[next++]!;
    const c = (await connect(u, 'vnc')).json();
    expect(c.instructions.browser).toEqual({ viewOnly: true });
    const res = await browser(u, c.id);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      connectionId: c.id,
      protocol: 'vnc',
      desktopName: c.workstation.name,
      url: 'wss://gw.browser.test:8444/tunnel',
      token: c.instructions.token,
      mode: 'tcp',
      viewOnly: true,
      connectBy: c.grant.connectBy,
      singleUse: false,
    });
    expect(res.headers['cache-control']).toBe('no-store');
    // Nobody else: another artist, an admin.
    expect((await browser(artists[next++]!, c.id)).statusCode).toBe(404);
    expect((await browser(admin, c.id)).statusCode).toBe(404);
    expect(b.logLines.join('\n')).not.toContain(c.instructions.token);
  });

  it('ssh maps to the ssh-terminal mode; rdp without browser: true is a 409 that says why', async () => {
    const u = artists[next++]!;
    const ssh = (await connect(u, 'ssh')).json();
    expect((await browser(u, ssh.id)).json()).toMatchObject({ mode: 'ssh-terminal', viewOnly: false, singleUse: true });
    const v = artists[next++]!;
    const rdp = (await connect(v, 'rdp')).json();
    expect(rdp.instructions.browser).toBeNull();
    const res = await browser(v, rdp.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toBe(`${rdp.workstation.name} is not offered in a browser: its protocol plan needs browser: true for rdp`);
  });

  it('a single-use grant whose session is over is a 409 in plain words', async () => {
    const u = artists[next++]!;
    const c = (await connect(u, 'ssh')).json();
    const grantId = c.grant.id;
    expect(await channel.claim(grantId, '203.0.113.7', 'tunnel')).toEqual({ ok: true, reason: null });
    await channel.report({ type: 'session-started', grantId, clientAddress: '203.0.113.7', at: clock.now().toISOString() });
    expect((await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}`, headers: bearer(u) })).json().grant.state).toBe('in-use');
    // In use: the token is still shown (the gateway refuses a second session with its own words).
    expect((await browser(u, c.id)).statusCode).toBe(200);
    await channel.report({ type: 'session-ended', grantId, reason: 'client-closed', bytesUp: 1, bytesDown: 1, at: clock.now().toISOString() });
    const res = await browser(u, c.id);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toBe("this connection is over (client-closed): connect again from your Stagedoor portal");
  });

  it("the pages' CSP allows WebSocket connections to this origin and to each gateway's tunnel, by name", async () => {
    const res = await b.app.inject({ method: 'GET', url: '/' });
    const csp = String(res.headers['content-security-policy']);
    const connectSrc = csp.split(';').find((d) => d.trim().startsWith('connect-src'))!.trim();
    expect(connectSrc).toBe("connect-src 'self' wss://gw.browser.test:8444");
  });
});
