import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { isUniqueViolation } from '../../src/domain/errors.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { SESSION_EVENT_KIND } from '../../src/domain/gateways/session-events.ts';
import { assignments, connections, grants, timers } from '../../src/db/schema/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';
import { fakeChannel, waitUntil } from '../gateways/fixtures.ts';
import { waitFor } from '../../../../test/support/ports.ts';

/**
 * The connect/release invariants of docs/connect-flow.md, each against the attack or fault that
 * broke it: per user (the policy's count), per grant (only while its assignment lives and belongs to
 * its user), and no ghost after a retry or a crash. The multi-process proofs are in test/system.
 */
describe.each(DRIVERS)('connect and release invariants [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let b: TestBroker;
  let admin: Session;
  let channel: ReturnType<typeof fakeChannel>;
  const ids: Record<string, string> = {};
  let artists: MintedUser[];
  let next = 0;
  const artist = () => artists[next++]!;

  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.statusCode === 204 ? null : res.json();
  };
  const connect = (u: MintedUser, body: Record<string, unknown> = {}, headers: Record<string, string> = {}, from = '203.0.113.5') =>
    b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: { ...bearer(u), ...headers }, payload: { poolId: ids.pool, ...body }, remoteAddress: from });
  const active = async (userId: string) => b.database.db.select().from(assignments).where(and(eq(assignments.userId, userId), eq(assignments.state, 'active')));
  const grantsOf = async (connectionId: string) => b.database.db.select().from(grants).where(eq(grants.connectionId, connectionId));
  const connectionById = async (id: string) => (await b.database.db.select().from(connections).where(eq(connections.id, id)))[0]!;

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: 'racks' });
    const hosts = Array.from({ length: 12 }, (_, i) => `ws-${i},10.9.0.${i + 1},rdp;ssh,rack=a`).join('\n');
    await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, { csv: `name,address,protocols,tags\n${hosts}\nspare-1,10.9.1.1,rdp;ssh,rack=b\n` });
    const pool = await call('POST', '/api/v1/pools', { name: 'studio', providerId: provider.id, membership: { tags: { rack: ['a'] } }, gatewayCluster: 'studio' });
    const other = await call('POST', '/api/v1/pools', { name: 'spare', providerId: provider.id, membership: { tags: { rack: ['b'] } }, gatewayCluster: 'studio' });
    for (const p of [pool, other]) await call('POST', `/api/v1/pools/${p.id}/reconcile`);
    [ids.pool, ids.other] = [pool.id, other.id];
    const plan = await call('POST', '/api/v1/protocol-plans', { name: 'through-the-gateway', protocols: [{ protocol: 'ssh', viaGateway: true }, { protocol: 'rdp', viaGateway: true }] });
    ids.plan = plan.id;
    artists = await mintUsers(b.database, 20, 'artist', 'Artists');
    const group = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Artists');
    ids.group = group.id;
    const policy = await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [group.id], pools: [{ poolId: pool.id, desktops: 1 }], protocolPlanId: plan.id, maxSessionMinutes: 90 });
    ids.policy = policy.id;
    const { token } = await b.services.gateways.createEnrollment(systemActor, { cluster: 'studio', name: 'edge', publicAddress: 'edge.example.test', expiresInMinutes: 5 });
    const { gateway } = await b.services.gateways.enroll({ token, name: 'edge', portRangeStart: 21000, portRangeEnd: 21099, version: 'test' }, '192.0.2.9');
    channel = fakeChannel(b, gateway);
    await channel.hello();
  }, 180_000);
  afterAll(async () => {
    channel?.close();
    b?.services.gateways.channels.close();
    await b?.close();
  });

  it('a double click holds one desktop: overlapping connects of one user get one machine and one connection', async () => {
    const u = artist();
    const [r1, r2] = await Promise.all([connect(u), connect(u)]);
    expect([r1.statusCode, r2.statusCode].sort()).toEqual([200, 201]);
    expect(r1.json().workstation.id).toBe(r2.json().workstation.id);
    expect(r1.json().id).toBe(r2.json().id);
    expect(await active(u.id)).toHaveLength(1);
  });

  it('a retry with the same Idempotency-Key gets the first connection back, never a second; the key reused for another request is refused', async () => {
    const u = artist();
    const first = await connect(u, {}, { 'idempotency-key': 'click-1' });
    expect(first.statusCode).toBe(201);
    const again = await connect(u, {}, { 'idempotency-key': 'click-1' });
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    // Even after it ended, the key answers with what it did, and opens nothing new.
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${first.json().id}`, headers: bearer(u) })).statusCode).toBe(204);
    const late = await connect(u, {}, { 'idempotency-key': 'click-1' });
    expect(late.json()).toMatchObject({ id: first.json().id, state: 'closed' });
    expect(await active(u.id)).toHaveLength(0);
    const misuse = await connect(u, { protocol: 'rdp' }, { 'idempotency-key': 'click-1' });
    expect(misuse.statusCode).toBe(400);
    expect(misuse.json().error.message).toContain('different connect request');
    const bad = await connect(u, {}, { 'idempotency-key': 'has spaces in it' });
    expect(bad.statusCode).toBe(400);
    expect(await active(u.id)).toHaveLength(0);
  });

  it("releasing one tab ends every connection on the desktop and revokes all their grants (the other tab's grant cannot reach the next user's desktop)", async () => {
    const u = artist();
    const tab1 = (await connect(u, { protocol: 'ssh' })).json();
    const tab2 = (await connect(u, { protocol: 'rdp' })).json();
    expect(tab1.workstation.id).toBe(tab2.workstation.id);
    expect(tab1.id).not.toBe(tab2.id);
    const [g2] = await grantsOf(tab2.id);
    expect(g2).toMatchObject({ state: 'issued' });
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${tab1.id}`, headers: bearer(u) })).statusCode).toBe(204);
    expect(await connectionById(tab2.id)).toMatchObject({ state: 'closed', endReason: 'released: user' });
    expect((await grantsOf(tab2.id))[0]).toMatchObject({ state: 'revoked' });
    expect(channel.sent).toContainEqual(expect.objectContaining({ type: 'revoke', grantId: g2!.id }));
    // The gateway reports a session on the leftover grant: refused, so it closes it.
    const before = channel.sent.length;
    await channel.report({ type: 'session-started', grantId: g2!.id, clientAddress: '203.0.113.5', at: clock.now().toISOString() });
    expect(channel.sent.slice(before)).toContainEqual(expect.objectContaining({ type: 'revoke', grantId: g2!.id }));
  });

  it('a release racing a grant being issued never leaves a usable grant behind (it is read and revoked inside the release)', async () => {
    for (let i = 0; i < 8; i++) {
      const u = artists[next]!; // the same artist every round: each round releases
      const c = (await connect(u)).json();
      const conn = await connectionById(c.id);
      clock.advance(1000);
      const issue = b.services.gateways
        .issueGrant({ connectionId: c.id, cluster: 'studio', clientAddress: '203.0.113.5', targetAddress: '10.9.0.1', targetPort: 22, connectBy: new Date(clock.now().getTime() + 60_000) })
        .catch((err: Error) => err);
      await Promise.all([issue, b.services.connections.release({ ...systemActor, userId: u.id }, conn)]);
      const live = (await grantsOf(c.id)).filter((g) => g.state === 'issued' || g.state === 'used');
      expect(live).toEqual([]);
    }
    next++;
  });

  it('a grant must be used within two minutes by default: a shorter window for a colleague behind the same office address', async () => {
    const u = artist();
    const c = (await connect(u)).json();
    const [g] = await grantsOf(c.id);
    expect(g!.validUntil.getTime() - clock.now().getTime()).toBe(120_000);
    expect(new Date(c.instructions.connectBy).getTime()).toBe(g!.validUntil.getTime());
  });

  it("a grant carries the policy's maximum session length to the gateway", async () => {
    const u = artist();
    const c = (await connect(u)).json();
    const [g] = await grantsOf(c.id);
    expect(g!.sessionUntil?.toISOString()).toBe(new Date(clock.now().getTime() + 90 * 60_000).toISOString());
    await waitUntil(() => channel.sent.some((m) => m.type === 'grant' && m.grant.id === g!.id && m.grant.sessionUntil === g!.sessionUntil!.toISOString()));
  });

  it("a disabled user loses their desktops and grants at once, not at their next sign-in", async () => {
    const u = artist();
    const c = (await connect(u)).json();
    await call('PATCH', `/api/v1/users/${u.id}`, { disabled: true });
    expect(await active(u.id)).toHaveLength(0);
    expect(await connectionById(c.id)).toMatchObject({ state: 'closed', endReason: 'released: admin' });
    const [g] = await grantsOf(c.id);
    expect(g).toMatchObject({ state: 'revoked' });
    expect(channel.sent).toContainEqual(expect.objectContaining({ type: 'revoke', grantId: g!.id }));
    const audit = await b.services.audit.list({ action: 'assignment.release' }, 50, 0);
    const assignmentId = (await connectionById(c.id)).assignmentId;
    expect(audit.items.find((a) => a.targetId === assignmentId)).toMatchObject({ reason: 'access ended: user-disabled' });
  });

  it('leaving the group that gave the desktop ends the access it gave', async () => {
    const u = artist();
    const c = (await connect(u)).json();
    await call('DELETE', `/api/v1/groups/${ids.group}/members/${u.id}`);
    expect(await active(u.id)).toHaveLength(0);
    expect((await grantsOf(c.id))[0]).toMatchObject({ state: 'revoked' });
  });

  it('a policy that stops offering a pool ends the sessions it gave; a persistent desktop stays its user\'s', async () => {
    const [u] = await mintUsers(b.database, 1, 'keeper', 'Keepers');
    const group = (await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Keepers');
    const policy = await call('POST', '/api/v1/policies', { name: 'keepers', groupIds: [group.id], pools: [{ poolId: ids.pool }], assignmentMode: 'persistent', protocolPlanId: ids.plan });
    const c = (await connect(u!)).json();
    await call('PATCH', `/api/v1/policies/${policy.id}`, { pools: [{ poolId: ids.other }] });
    expect(await active(u!.id)).toHaveLength(1);
    expect(await connectionById(c.id)).toMatchObject({ state: 'closed', endReason: 'access ended: policy-changed' });
    expect((await grantsOf(c.id))[0]).toMatchObject({ state: 'revoked' });
    // Deleting the user releases even the persistent desktop: nothing may point at a deleted user.
    await call('DELETE', `/api/v1/users/${u!.id}`);
    const rows = await b.database.db.select().from(assignments).where(eq(assignments.workstationId, c.workstation.id));
    expect(rows.filter((r) => r.state === 'active')).toHaveLength(0);
  });

  it('stagedoor apply that moves a pool between policies keeps the desktops of users entitled in the end (no release on the way)', async () => {
    const [u] = await mintUsers(b.database, 1, 'mover', 'Movers');
    await call('POST', '/api/v1/policies', { name: 'movers', groupIds: [(await call('GET', '/api/v1/groups')).items.find((g: { name: string }) => g.name === 'Movers').id], pools: [{ poolId: ids.pool }], protocolPlanId: ids.plan, position: 1000 });
    const c = (await connect(u!)).json();
    // The file first takes the pool away from "movers", then gives it back through a new policy placed before it.
    const document = {
      policies: [
        { name: 'movers', groups: ['Movers'], pools: [{ pool: 'spare' }], protocolPlan: 'through-the-gateway' },
        { name: 'movers-first', position: 999, groups: ['Movers'], pools: [{ pool: 'studio' }], protocolPlan: 'through-the-gateway' },
      ],
    };
    await call('POST', '/api/v1/apply', { document });
    expect(await active(u!.id)).toHaveLength(1);
    expect(await connectionById(c.id)).toMatchObject({ state: 'ready' });
  });

  it("an admin reading someone's connection issues no grant and moves nothing", async () => {
    const u = artist();
    const c = (await connect(u)).json();
    clock.advance(10 * 60_000); // past the connect-by time: the owner's next read would issue a new grant
    await channel.heartbeat([]); // the gateway is still there
    const seen = await b.app.inject({ url: `/api/v1/connections/${c.id}`, headers: as(admin) });
    expect(seen.statusCode).toBe(200);
    expect(await grantsOf(c.id)).toHaveLength(1);
    const own = await b.app.inject({ url: `/api/v1/connections/${c.id}`, headers: bearer(u) });
    expect(own.json().instructions.connectBy).not.toBe(c.instructions.connectBy);
    expect(await grantsOf(c.id)).toHaveLength(2);
  });

  it('a broker that dies between a session report and its delivery loses no disconnect: the timers job delivers it', async () => {
    const u = artist();
    const c = (await connect(u)).json();
    const [g] = await grantsOf(c.id);
    const seen: string[] = [];
    const off = b.services.gateways.onSessionEvent((e) => void seen.push(`${e.type}:${e.grantId}`));
    // The node "dies" after the commit: nothing runs the event in-process.
    const fireNow = b.services.timers.fireNow.bind(b.services.timers);
    b.services.timers.fireNow = async () => 'absent';
    try {
      await channel.report({ type: 'session-started', grantId: g!.id, clientAddress: '203.0.113.5', at: clock.now().toISOString() });
      await channel.report({ type: 'session-ended', grantId: g!.id, reason: 'client-closed', bytesUp: 10, bytesDown: 20, at: clock.now().toISOString() });
    } finally {
      b.services.timers.fireNow = fireNow;
    }
    expect(seen).toEqual([]);
    const pending = await b.database.db.select().from(timers).where(and(eq(timers.kind, SESSION_EVENT_KIND), eq(timers.state, 'pending')));
    expect(pending.map((t) => t.key).sort()).toEqual([`${g!.id}:ended`, `${g!.id}:started`]);
    // Any node's timers job picks them up.
    await b.services.timers.fireDue();
    expect(seen.sort()).toEqual([`ended:${g!.id}`, `started:${g!.id}`]);
    off();
  });

  it('a connect that answered 503 (no gateway) leaves no ghost: the reaper closes it after the connect-by window', async () => {
    const u = artist();
    channel.close();
    // The hub records the closed channel (the gateway turns unhealthy) just after: wait for it.
    await waitFor('the gateway to be unhealthy', async () => (await b.services.gateways.list({}, 10, 0)).items.every((g) => g.health === 'unhealthy'), 30_000, 20);
    const failed = await connect(u);
    expect(failed.statusCode).toBe(503);
    const [row] = await b.database.db.select().from(connections).where(and(eq(connections.userId, u.id), eq(connections.state, 'ready')));
    expect(row).toBeDefined();
    expect(await b.services.connectionReaper.reap()).toEqual({ closed: 0 });
    clock.advance(4 * 60_000);
    await b.services.gateways.reports.reconcile(); // the gateway's unused grants expire meanwhile
    expect((await b.services.connectionReaper.reap()).closed).toBeGreaterThanOrEqual(1);
    expect(await connectionById(row!.id)).toMatchObject({ state: 'closed', endReason: 'reaped: unused' });
    channel = fakeChannel(b, (await b.services.gateways.list({}, 10, 0)).items[0]!);
    await channel.hello();
  });

  it('a live connection left on a released assignment (an older version, a crash) is closed by the reaper', async () => {
    const u = artist();
    const c = (await connect(u)).json();
    // What a release before this change could leave behind: the assignment released, the connection live.
    await b.database.db.execute(sql`update assignments set state = 'released', released_at = now(), release_reason = 'user' where id = ${(await connectionById(c.id)).assignmentId}`);
    await b.database.db.execute(sql`update workstations set assignment_id = null where id = ${c.workstation.id}`);
    await b.services.connectionReaper.reap();
    expect(await connectionById(c.id)).toMatchObject({ state: 'closed', endReason: 'reaped: assignment-ended' });
    expect((await grantsOf(c.id))[0]).toMatchObject({ state: 'revoked' });
  });

  it('the database refuses a second active assignment of one user in one slot, whatever the code does', async () => {
    const u = artist();
    const c = (await connect(u)).json();
    const a = (await active(u.id))[0]!;
    const spare = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from workstations where assignment_id is null and pool_id = ${ids.pool} limit 1`))[0]!;
    const err = await b.database.db
      .insert(assignments)
      .values({ userId: u.id, workstationId: spare.id, poolId: ids.pool, policyId: ids.policy, mode: 'floating', slot: a.slot })
      .then(() => null, (e: unknown) => e);
    expect(isUniqueViolation(err, 'assignments_active_user_slot_key')).toBe(true);
    expect(c.workstation.id).toBe(a.workstationId);
  });
});
