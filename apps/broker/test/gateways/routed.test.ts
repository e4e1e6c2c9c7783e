import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRANT_TOKEN_PATTERN, type ChannelGrant } from '@stagedoor/contract';
import { ManualClock } from '../../src/domain/clock.ts';
import { UnavailableError } from '../../src/domain/errors.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { grantTokenHash } from '../../src/domain/gateways/grant-tokens.ts';
import type { SessionEvent } from '../../src/domain/gateways/types.ts';
import { gateways, grants } from '../../src/db/schema/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { connectionRow, fakeChannel, insertConnection, waitUntil } from './fixtures.ts';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl stagedoor-gateway';
const CERT = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');

/**
 * The broker side of the routed modes (ADR 0017) through the channel hub, on both drivers: routed
 * grants, claims (single use across gateways, wrong client, expiry), reconnects within the plan's
 * window, and the gateway's identity from its hello.
 */
describe.each(DRIVERS)('routed grants and claims [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let broker: TestBroker;
  const events: SessionEvent[] = [];
  const connectBy = () => new Date(clock.now().getTime() + 60_000);

  beforeAll(async () => {
    broker = await createTestBroker(driver, { clock, env: { STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', STAGEDOOR_GATEWAY_STALE_SECONDS: '3600', STAGEDOOR_SECRET_KEY: randomBytes(32).toString('hex') } });
    broker.services.gateways.onSessionEvent((e) => void events.push(e));
  });
  afterAll(async () => {
    broker.services.gateways.channels.close();
    await broker?.close();
  });

  async function gatewayIn(cluster: string, name: string) {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster, name, publicAddress: `${name}.example.test`, expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name, portRangeStart: 24000, portRangeEnd: 24009, version: 'test' }, '192.0.2.9');
    const ch = fakeChannel(broker, gateway);
    await ch.hello();
    return { gateway, ch };
  }

  async function routedGrant(cluster: string, reconnectWindowSeconds = 0, clientAddress = '203.0.113.7') {
    const { connectionId } = await insertConnection(broker.database, { workstationAddress: '10.1.0.5', clientAddress, protocol: 'rdp' });
    const issued = await broker.services.gateways.issueGrant({ connectionId, cluster, clientAddress, targetAddress: '10.1.0.5', targetPort: 3389, connectBy: connectBy(), mode: 'routed', reconnectWindowSeconds });
    const [row] = await broker.database.db.select().from(grants).where(eq(grants.id, issued.grantId));
    return { issued, row: row!, connectionId, token: broker.services.gateways.grantToken(row!)! };
  }

  const started = (grantId: string, clientAddress = '203.0.113.7') => ({ type: 'session-started', grantId, clientAddress, at: clock.now().toISOString() });
  const ended = (grantId: string) => ({ type: 'session-ended', grantId, reason: 'client-closed', bytesUp: 10, bytesDown: 20, at: clock.now().toISOString() });

  it('a routed grant has no port and a token; gateways get only its hash; the audit log never the token', async () => {
    const { ch } = await gatewayIn('routed-a', 'routed-a1');
    const { issued, row, token } = await routedGrant('routed-a');
    expect(issued).toMatchObject({ mode: 'routed', port: null });
    expect(token).toMatch(GRANT_TOKEN_PATTERN);
    expect(row).toMatchObject({ mode: 'routed', gatewayPort: null, tokenHash: grantTokenHash(token) });
    expect(row.tokenSealed).toMatch(/^v2:/);
    expect(row.tokenSealed).not.toContain(token);
    const delivered = ch.sent.find((m): m is { type: 'grant'; grant: ChannelGrant } => m.type === 'grant' && m.grant.id === issued.grantId);
    expect(delivered?.grant).toMatchObject({ mode: 'routed', port: null, tokenHash: grantTokenHash(token), inUse: false });
    const audit = await broker.services.audit.list({ action: 'grant.issue' }, 50, 0);
    expect(JSON.stringify(audit.items)).not.toContain(token);
    expect(broker.logLines.join('\n')).not.toContain(token);
    ch.close();
  });

  it('claims: wrong client and another cluster are refused; one session at a time; only the claimant starts it', async () => {
    const a = await gatewayIn('routed-b', 'routed-b1');
    const b = await gatewayIn('routed-b', 'routed-b2');
    const elsewhere = await gatewayIn('routed-other', 'routed-x1');
    const { issued, connectionId } = await routedGrant('routed-b');
    expect(await a.ch.claim(issued.grantId, '198.51.100.1')).toEqual({ ok: false, reason: 'wrong-client' });
    expect(await a.ch.claim(issued.grantId, 'not-an-address')).toEqual({ ok: false, reason: 'wrong-client' });
    expect(await elsewhere.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'no-grant' });
    expect(await a.ch.claim('00000000-0000-4000-8000-000000000000', '203.0.113.7')).toEqual({ ok: false, reason: 'no-grant' });
    // The gateway may present the client as IPv4-mapped IPv6: one client.
    expect(await a.ch.claim(issued.grantId, '::ffff:203.0.113.7')).toEqual({ ok: true, reason: null });
    expect(await b.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'in-use' });
    // B never had the claim: its session report is refused and it is told to close it.
    await b.ch.report(started(issued.grantId));
    expect(b.ch.sent).toContainEqual({ type: 'revoke', grantId: issued.grantId, reason: 'used-elsewhere' });
    await a.ch.report(started(issued.grantId));
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected', gatewayId: a.gateway.id });
    // Single use (no reconnect window): after the session, the grant is closed and a claim says so.
    await a.ch.report(ended(issued.grantId));
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'closed', endReason: 'client-closed' });
    expect(await a.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'used' });
    for (const g of [a, b, elsewhere]) g.ch.close();
  });

  it('an unused routed grant past its connect-by time is refused as expired', async () => {
    const { ch } = await gatewayIn('routed-c', 'routed-c1');
    const { issued } = await routedGrant('routed-c');
    clock.advance(61_000);
    expect(await ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'expired' });
    ch.close();
  });

  it('reconnects: within the window the same client starts a new session (through any gateway), each a session event; then the window closes it', async () => {
    const a = await gatewayIn('routed-d', 'routed-d1');
    const b = await gatewayIn('routed-d', 'routed-d2');
    const { issued, connectionId } = await routedGrant('routed-d', 600);
    const mine = () => events.filter((e) => e.grantId === issued.grantId).map((e) => `${e.type}:${e.session ?? 1}`);

    expect(await a.ch.claim(issued.grantId, '203.0.113.7')).toMatchObject({ ok: true });
    await a.ch.report(started(issued.grantId));
    clock.advance(5_000);
    await a.ch.report(ended(issued.grantId));
    // Between sessions: the grant stays in use, the connection is live but not connected, and the
    // disconnect (the session's end) was delivered like any other.
    const between = (await broker.database.db.select().from(grants).where(eq(grants.id, issued.grantId)))[0]!;
    expect(between).toMatchObject({ state: 'used', sessions: 1 });
    expect(between.sessionEndedAt).not.toBeNull();
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'ready' });
    await waitUntil(() => mine().includes('ended:1'));
    // Another client, even within the window: refused.
    expect(await b.ch.claim(issued.grantId, '198.51.100.9')).toEqual({ ok: false, reason: 'wrong-client' });

    clock.advance(60_000);
    expect(await b.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: true, reason: null });
    expect(await a.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'in-use' });
    await b.ch.report(started(issued.grantId));
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected', gatewayId: b.gateway.id });
    await waitUntil(() => mine().includes('started:2'));
    // A repeat of the start changes nothing.
    await b.ch.report(started(issued.grantId));
    expect(mine().filter((k) => k === 'started:2')).toHaveLength(1);

    clock.advance(5_000);
    await b.ch.report(ended(issued.grantId));
    await waitUntil(() => mine().includes('ended:2'));
    expect(mine()).toEqual(['started:1', 'ended:1', 'started:2', 'ended:2']);

    // Past the window: refused, and the reconciliation pass ends the grant and the connection.
    clock.advance(601_000);
    expect(await a.ch.claim(issued.grantId, '203.0.113.7')).toEqual({ ok: false, reason: 'used' });
    const r = await broker.services.gateways.reports.reconcile();
    expect(r.reconnectWindowsClosed).toBeGreaterThanOrEqual(1);
    expect((await broker.database.db.select().from(grants).where(eq(grants.id, issued.grantId)))[0]).toMatchObject({ state: 'closed' });
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'closed', endReason: 'reconnect-window-over' });
    a.ch.close();
    b.ch.close();
  });

  it('a reconnecting grant\'s bytes are the sum of its sessions; a late report of session 1 neither ends nor double-counts session 2', async () => {
    const a = await gatewayIn('routed-h', 'routed-h1');
    const b = await gatewayIn('routed-h', 'routed-h2');
    const { issued, connectionId } = await routedGrant('routed-h', 600);
    const id = issued.grantId;
    const mine = () => events.filter((e) => e.grantId === id);
    const lastClaimed = (ch: typeof a.ch) => ch.sent.filter((m) => m.type === 'claimed').at(-1);
    const bytesOf = async () => {
      const c = await connectionRow(broker.database, connectionId);
      return [c.bytesUp, c.bytesDown];
    };
    const end = (session: number, up: number, down: number) => ({ type: 'session-ended', grantId: id, session, reason: 'client-closed', bytesUp: up, bytesDown: down, at: clock.now().toISOString() });

    expect(await a.ch.claim(id, '203.0.113.7')).toMatchObject({ ok: true });
    expect(lastClaimed(a.ch)).toMatchObject({ ok: true, session: 1 });
    await a.ch.report({ ...started(id), session: 1 });
    await a.ch.heartbeat([{ grantId: id, bytesUp: 50, bytesDown: 500, session: 1 }]);
    expect(await bytesOf()).toEqual([50, 500]);
    await a.ch.report(end(1, 100, 1000));
    expect(await bytesOf()).toEqual([100, 1000]);

    // The reconnect goes through the other gateway; its figures count from zero and add to session 1's.
    clock.advance(10_000);
    expect(await b.ch.claim(id, '203.0.113.7')).toMatchObject({ ok: true });
    expect(lastClaimed(b.ch)).toMatchObject({ ok: true, session: 2 });
    await b.ch.report({ ...started(id), session: 2 });
    await b.ch.heartbeat([{ grantId: id, bytesUp: 7, bytesDown: 70, session: 2 }]);
    expect(await bytesOf()).toEqual([107, 1070]);

    // Gateway A never got its acknowledgement: it sends session 1's start and end again, and a stale
    // figure of it. Session 2 keeps running, and session 1's bytes are not counted twice.
    await a.ch.report({ ...started(id), session: 1 });
    await a.ch.report(end(1, 100, 1000));
    await a.ch.heartbeat([{ grantId: id, bytesUp: 5000, bytesDown: 5000, session: 1 }]);
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected', gatewayId: b.gateway.id, bytesUp: 107, bytesDown: 1070 });
    const during = (await broker.database.db.select().from(grants).where(eq(grants.id, id)))[0]!;
    expect(during).toMatchObject({ state: 'used', sessions: 2, sessionEndedAt: null, endedBytesUp: 100, endedBytesDown: 1000, bytesSession: 1 });
    expect(await a.ch.claim(id, '203.0.113.7')).toEqual({ ok: false, reason: 'in-use' });
    // The reconciliation pass does not take session 2 for lost or lapsed either.
    await broker.services.gateways.reports.reconcile();
    expect(await connectionRow(broker.database, connectionId)).toMatchObject({ state: 'connected' });

    clock.advance(5_000);
    await b.ch.report(end(2, 20, 200));
    await b.ch.report(end(2, 20, 200)); // a repeat
    expect(await bytesOf()).toEqual([120, 1200]);
    await waitUntil(() => mine().some((e) => e.type === 'ended' && e.session === 2));
    expect(mine().map((e) => `${e.type}:${e.session}`)).toEqual(['started:1', 'ended:1', 'started:2', 'ended:2']);
    expect(mine().find((e) => e.type === 'ended' && e.session === 2)).toMatchObject({ bytesUp: 120, bytesDown: 1200 });
    a.ch.close();
    b.ch.close();
  });

  it('a reconnect right after the end is not refused while that end still waits in the channel queue', async () => {
    const a = await gatewayIn('routed-e', 'routed-e1');
    const { issued } = await routedGrant('routed-e', 600);
    expect(await a.ch.claim(issued.grantId, '203.0.113.7')).toMatchObject({ ok: true });
    await a.ch.report(started(issued.grantId));
    // The end and the reconnect's claim arrive back to back; the claim does not wait for the queue first.
    const handlers = a.ch as unknown as { report(b: Record<string, unknown>): Promise<void> };
    const endDone = handlers.report(ended(issued.grantId));
    const answer = await a.ch.claim(issued.grantId, '203.0.113.7');
    await endDone;
    expect(answer).toEqual({ ok: true, reason: null });
    a.ch.close();
  });

  it('the hello stores what clients pin, and the API shows it with the routed settings', async () => {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'routed-f', name: 'routed-f1', publicAddress: 'gw.example.test', routedPorts: { rdp: 13389 }, sniDomain: 'gw.example.test', expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name: 'routed-f1', portRangeStart: 24000, portRangeEnd: 24009 }, null);
    const ch = fakeChannel(broker, gateway);
    await ch.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 3389, ssh: 2222, tls: 8443, tunnel: 8444 } });
    const [row] = await broker.database.db.select().from(gateways).where(eq(gateways.id, gateway.id));
    expect(row).toMatchObject({ sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, routedPorts: { rdp: 13389, ssh: 22, tls: 8443, tunnel: 443 }, sniDomain: 'gw.example.test' });
    const admin = await login(broker.app, 'admin', ADMIN_PASSWORD);
    const patched = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { routedPorts: { ssh: 2222 }, sniDomain: 'GW2.Example.test' } });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({ sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, routedPorts: { rdp: 13389, ssh: 2222, tls: 8443, tunnel: 443 }, sniDomain: 'gw2.example.test' });
    const bad = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { routedPorts: { ssh: 70000 }, sniDomain: 'no_dots' } });
    expect(bad.statusCode).toBe(400);
    const list = await broker.app.inject({ method: 'GET', url: '/api/v1/gateways?cluster=routed-f', headers: as(admin) });
    expect(list.json().items[0]).toMatchObject({ sshHostKey: SSH_KEY, routedPorts: { ssh: 2222 } });
    ch.close();
  });

  it('the hello stores the listener ports; until an admin sets the public ports, clients are sent to those', async () => {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'routed-i', name: 'routed-i1', publicAddress: 'gwi.example.test', expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name: 'routed-i1', portRangeStart: 24000, portRangeEnd: 24009 }, null);
    const admin = await login(broker.app, 'admin', ADMIN_PASSWORD);
    const get = async () => (await broker.app.inject({ method: 'GET', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin) })).json();
    expect(await get()).toMatchObject({ routedPorts: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 }, routedPortsSet: false, listenerPorts: null });
    const ch = fakeChannel(broker, gateway);
    await ch.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 13389, ssh: 2222, tls: null, tunnel: 8444 } });
    // The TLS listener is off here: its port stays the default, and the console says it is off.
    expect(await get()).toMatchObject({ routedPorts: { rdp: 13389, ssh: 2222, tls: 8443, tunnel: 8444 }, routedPortsSet: false, listenerPorts: { rdp: 13389, ssh: 2222, tls: null, tunnel: 8444 } });
    // An admin names the balancer's ports: from then on those, whatever the gateway reports.
    const patched = await broker.app.inject({ method: 'PATCH', url: `/api/v1/gateways/${gateway.id}`, headers: as(admin), payload: { routedPorts: { ssh: 22 } } });
    expect(patched.json()).toMatchObject({ routedPorts: { rdp: 13389, ssh: 22, tls: 8443, tunnel: 8444 }, routedPortsSet: true });
    await ch.hello([], { sshHostKey: SSH_KEY, tlsCertificateSha256: CERT, listeners: { rdp: 3390, ssh: 2223, tls: 8443, tunnel: 8445 } });
    expect(await get()).toMatchObject({ routedPorts: { rdp: 13389, ssh: 22, tls: 8443, tunnel: 8444 }, listenerPorts: { rdp: 3390, ssh: 2223, tls: 8443, tunnel: 8445 } });
    ch.close();
  });

  it('a routed grant needs the secret key', async () => {
    const plain = await createTestBroker(driver, { clock });
    try {
      const { connectionId } = await insertConnection(plain.database, { workstationAddress: '10.1.0.5', clientAddress: '203.0.113.7' });
      await expect(plain.services.gateways.issueGrant({ connectionId, cluster: 'x', clientAddress: '203.0.113.7', targetAddress: '10.1.0.5', targetPort: 22, connectBy: connectBy(), mode: 'routed' })).rejects.toThrow(UnavailableError);
    } finally {
      await plain.close();
    }
  });

  // PostgreSQL only: PGlite is one connection, so two claims cannot race on it (skipped there).
  it.runIf(driver === 'postgres')('two gateways claiming one grant at once: exactly one is ok, every time', async () => {
    const a = await gatewayIn('routed-g', 'routed-g1');
    const b = await gatewayIn('routed-g', 'routed-g2');
    for (let i = 0; i < 20; i++) {
      const { issued } = await routedGrant('routed-g', 600);
      const answers = await Promise.all([a.ch.claim(issued.grantId, '203.0.113.7'), b.ch.claim(issued.grantId, '203.0.113.7')]);
      expect(answers.filter((x) => x.ok)).toHaveLength(1);
      expect(answers.find((x) => !x.ok)).toEqual({ ok: false, reason: 'in-use' });
      const [row] = await broker.database.db.select().from(grants).where(eq(grants.id, issued.grantId));
      expect(row).toMatchObject({ state: 'used', sessions: 1 });
    }
    a.ch.close();
    b.ch.close();
  });
});
