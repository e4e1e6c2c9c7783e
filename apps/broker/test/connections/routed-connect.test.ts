import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRANT_TOKEN_PATTERN } from '@stagedoor/contract';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';
import { fakeChannel } from '../gateways/fixtures.ts';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl gw';
const CERT = Array.from({ length: 32 }, () => 'AB').join(':');

/**
 * The connect flow with a routed protocol plan, through the HTTP API: what the owner gets (the token,
 * the files and commands of each routed mode, the grant's state) and what nobody else gets.
 */
describe.each(DRIVERS)('connecting in the routed gateway mode [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let b: TestBroker;
  let admin: Session;
  let artists: MintedUser[];
  let next = 0;
  let channel: ReturnType<typeof fakeChannel>;
  let gatewayId: string;
  const pools: Record<string, string> = {};

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'PUT', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const connect = (u: MintedUser, pool: string, protocol: string) =>
    b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(u), payload: { poolId: pools[pool], protocol }, remoteAddress: '203.0.113.5' });

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: randomBytes(32).toString('hex'), STAGEDOOR_GATEWAY_STALE_SECONDS: '3600' } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'racks' });
    const hosts = Array.from({ length: 8 }, (_, i) => `ws-${i},10.9.0.${i + 1},rdp;ssh;dcv;vnc,rack=a`).join('\n');
    await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, { csv: `name,address,protocols,tags\n${hosts}\n` });
    const plan = await call('POST', '/api/v1/protocol-plans', {
      name: 'routed',
      protocols: [
        { protocol: 'rdp', viaGateway: true, gatewayMode: 'routed' },
        { protocol: 'ssh', viaGateway: true, gatewayMode: 'routed', reconnectWindowSeconds: 0 },
        { protocol: 'dcv', viaGateway: true, gatewayMode: 'routed' },
        { protocol: 'vnc', viaGateway: true, gatewayMode: 'routed' },
      ],
    });
    const pool = await call('POST', '/api/v1/pools', { name: 'routed', providerId: provider.id, membership: { tags: { rack: ['a'] } }, gatewayCluster: 'edge' });
    await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
    pools.routed = pool.id;
    artists = await mintUsers(b.database, 8, 'artist', 'Artists');
    const group = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Artists');
    await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [group.id], pools: [{ poolId: pool.id, desktops: 1 }], protocolPlanId: plan.id });
    const { token } = await b.services.gateways.createEnrollment(systemActor, { cluster: 'edge', name: 'edge-1', publicAddress: 'gw.example.test', expiresInMinutes: 5 });
    const { gateway } = await b.services.gateways.enroll({ token, name: 'edge-1', portRangeStart: 21000, portRangeEnd: 21099 }, '192.0.2.9');
    gatewayId = gateway.id;
    channel = fakeChannel(b, gateway);
    await channel.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 } });
  }, 180_000);
  afterAll(async () => {
    channel?.close();
    b?.services.gateways.channels.close();
    await b?.close();
  });

  it('refuses a routed plan entry without the gateway, with a clear 400 and nothing written', async () => {
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/protocol-plans', headers: as(admin), payload: { name: 'bad', protocols: [{ protocol: 'rdp', viaGateway: false, gatewayMode: 'routed' }] } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('needs viaGateway: true');
    expect((await call('GET', '/api/v1/protocol-plans')).items.map((p: { name: string }) => p.name)).not.toContain('bad');
  });

  it('rdp: the owner gets the token in an .rdp routing token and the tunnel; the grant is unused until its connect-by time', async () => {
    const u = artists[next++]!;
    const res = await connect(u, 'routed', 'rdp');
    expect(res.statusCode).toBe(201);
    const c = res.json();
    const token: string = c.instructions.token;
    expect(token).toMatch(GRANT_TOKEN_PATTERN);
    expect(c.grant).toMatchObject({ mode: 'routed', state: 'unused', singleUse: false, reconnectUntil: null });
    expect(c.instructions).toMatchObject({ gatewayMode: 'routed', host: 'gw.example.test', port: 3389, connectBy: c.grant.connectBy });
    const lines = (c.instructions.file as string).split('\r\n');
    expect(lines).toContain('full address:s:gw.example.test:3389');
    expect(lines).toContain(`loadbalanceinfo:s:${token}`);
    expect(lines).toContain('autoreconnection enabled:i:1');
    expect(c.instructions.tunnel).toEqual({ url: 'wss://gw.example.test:443/tunnel', token, certificateSha256: CERT, command: `stagedoor connect --tunnel ${c.id}` });
    // Their own later GET and the file show it again; an admin looking sees no token.
    const again = await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}`, headers: bearer(u) });
    expect(again.json().instructions.token).toBe(token);
    const file = await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}/file`, headers: bearer(u) });
    expect(file.statusCode).toBe(200);
    expect(file.body).toContain(`loadbalanceinfo:s:${token}`);
    const byAdmin = await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}`, headers: as(admin) });
    expect(byAdmin.json().instructions).toMatchObject({ token: null, tunnel: null, file: null });
    expect(byAdmin.body).not.toContain(token);
    // Never in the log or the audit trail.
    expect(b.logLines.join('\n')).not.toContain(token);
    const audit = await call('GET', '/api/v1/audit?limit=200');
    expect(JSON.stringify(audit)).not.toContain(token);
    // After the connect-by time, unused: expired, and no token any more.
    clock.advance(3600_000);
    const late = (await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}`, headers: as(admin) })).json();
    expect(late.grant).toMatchObject({ state: 'expired' });
  });

  it('ssh: the exact jump command, a config snippet and the known_hosts line; single use when the window is 0', async () => {
    const u = artists[next++]!;
    const c = (await connect(u, 'routed', 'ssh')).json();
    const token: string = c.instructions.token;
    expect(c.instructions.command).toMatch(new RegExp(`^ssh -J ${token}@gw\\.example\\.test:22 ${u.username}@10\\.9\\.0\\.\\d+$`));
    expect(c.instructions.sshConfig).toContain(`ProxyJump ${token}@gw.example.test:22`);
    expect(c.instructions.knownHosts).toBe('gw.example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl');
    expect(c.grant).toMatchObject({ state: 'unused', singleUse: true });
    const file = await b.app.inject({ method: 'GET', url: `/api/v1/connections/${c.id}/file`, headers: bearer(u) });
    expect(file.statusCode).toBe(409);
  });

  it('ssh on a gateway listening on another port, public ports never set: the command names the port it listens on', async () => {
    await channel.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 3389, ssh: 2222, tls: 8443, tunnel: 443 } });
    try {
      const u = artists[next++]!;
      const c = (await connect(u, 'routed', 'ssh')).json();
      expect(c.instructions.command).toMatch(new RegExp(`^ssh -J ${c.instructions.token}@gw\\.example\\.test:2222 `));
      expect(c.instructions.sshConfig).toContain(`ProxyJump ${c.instructions.token}@gw.example.test:2222`);
    } finally {
      await channel.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 } });
    }
  });

  it('dcv: 409 while no gateway of the cluster has an SNI domain; then a .dcv naming <token>.<domain> on the TLS port', async () => {
    const u = artists[next++]!;
    const first = await connect(u, 'routed', 'dcv');
    expect(first.statusCode).toBe(409);
    expect(first.body).toContain('sniDomain');
    await call('PATCH', `/api/v1/gateways/${gatewayId}`, { sniDomain: 'gw.example.test', routedPorts: { tls: 9443 } });
    const again = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(u), payload: { poolId: pools.routed, protocol: 'dcv' }, remoteAddress: '203.0.113.5' });
    expect(again.statusCode).toBe(200);
    const c = again.json();
    const lines = (c.instructions.file as string).split('\r\n');
    expect(lines).toContain(`host=${c.instructions.token}.gw.example.test`);
    expect(lines).toContain('port=9443');
  });

  it('vnc: the tunnel command and no file', async () => {
    const u = artists[next++]!;
    const c = (await connect(u, 'routed', 'vnc')).json();
    expect(c.instructions).toMatchObject({ file: null, fileName: null, command: `stagedoor connect --tunnel ${c.id}`, port: 443 });
    expect(c.instructions.tunnel.token).toBe(c.instructions.token);
  });

  it('a refused report of a routed listener (no token) is stored like any refusal', async () => {
    await channel.report({ type: 'refused', port: 3389, clientAddress: '198.51.100.4', reason: 'no-token', grantId: null, at: clock.now().toISOString() });
    await channel.report({ type: 'refused', port: 443, clientAddress: '198.51.100.4', reason: 'claim-timeout', grantId: null, at: clock.now().toISOString() });
    const audit = await call('GET', '/api/v1/audit?action=gateway.connection_refused&limit=10');
    expect(audit.items.map((a: { reason: string }) => a.reason)).toEqual(expect.arrayContaining(['no-token', 'claim-timeout']));
  });
});
