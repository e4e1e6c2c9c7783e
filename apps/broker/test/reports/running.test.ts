import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { ManualClock } from '../../src/domain/clock.ts';
import { assignments, connections, pools, providers, users, workstations } from '../../src/db/schema/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';

const NOW = '2026-11-24T10:00:00.000Z';

/**
 * "Why is it still running?": running machines with their live sessions and pending plan timers.
 * Timers are written the way the power plans write them (kind `power.*`/`release.*`, key = the
 * machine, payload.workstationId and payload.reason) through the timers service.
 */
describe.each(DRIVERS)('why is it still running? [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  const ids = {} as Record<string, string>;

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock: new ManualClock(NOW) });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const db = b.database.db;
    const [prov] = await db.insert(providers).values({ name: 'use1', kind: 'aws-ec2', region: 'us-east-1', credentialsMode: 'default-chain' }).returning();
    const [pool] = await db.insert(pools).values({ name: 'edit', providerId: prov!.id }).returning();
    ids.pool = pool!.id;
    const [ana] = await db.insert(users).values({ username: 'ana', role: 'user' }).returning();
    ids.ana = ana!.id;
    const ws = async (name: string, powerState: string, poolId: string | null = pool!.id) =>
      (await db.insert(workstations).values({ name, providerId: prov!.id, externalId: `i-${name}`, instanceType: 'g5.xlarge', poolId, powerState, powerStateChangedAt: new Date('2026-11-24T08:00:00Z') }).returning())[0]!.id;
    for (const [n, s, p] of [['a-in-use', 'running'], ['b-stopping-soon', 'running'], ['c-standby', 'running'], ['d-forgotten', 'running'], ['e-stopped', 'stopped'], ['f-unpooled', 'running', null]] as const) ids[n] = await ws(n, s, p);
    // Assignments: a, b and d belong to ana.
    for (const [i, w] of ['a-in-use', 'b-stopping-soon', 'd-forgotten'].entries()) {
      const [asg] = await db.insert(assignments).values({ workstationId: ids[w]!, userId: ana!.id, poolId: pool!.id, mode: 'persistent', slot: i + 1, since: new Date('2026-11-24T08:00:00Z') }).returning();
      await db.update(workstations).set({ assignmentId: asg!.id }).where(eq(workstations.id, ids[w]!));
    }
    // a: a live session, and a stale timer that the session makes moot.
    await db.insert(connections).values({ userId: ana!.id, workstationId: ids['a-in-use']!, protocol: 'rdp', state: 'connected', requestedAt: new Date('2026-11-24T09:00:00Z'), connectedAt: new Date('2026-11-24T09:00:05Z') });
    await db.insert(connections).values({ userId: ana!.id, workstationId: ids['a-in-use']!, protocol: 'rdp', state: 'closed', closedAt: new Date('2026-11-24T08:30:00Z'), requestedAt: new Date('2026-11-24T08:00:00Z') });
    const timer = (kind: string, w: string, due: string, reason: string) => b.services.timers.schedule({ kind, key: ids[w]!, dueAt: new Date(due), payload: { workstationId: ids[w]!, reason } });
    await timer('power.disconnect', 'a-in-use', '2026-11-24T10:30:00Z', 'disconnect + 15 min → stop');
    // b: disconnected; the plan stops it at 10:15, and releases it at 10:05.
    await timer('power.disconnect', 'b-stopping-soon', '2026-11-24T10:15:00Z', 'disconnect + 15 min → stop');
    await timer('release.disconnect', 'b-stopping-soon', '2026-11-24T10:05:00Z', 'disconnect + 5 min → release');
    // Timers that are not about a running machine's plans are not shown.
    await timer('power.disconnect', 'e-stopped', '2026-11-24T10:15:00Z', 'stopped already');
    await b.services.timers.schedule({ kind: 'inventory.refresh', key: ids['d-forgotten']!, dueAt: new Date('2026-11-24T11:00:00Z'), payload: { workstationId: ids['d-forgotten']!, reason: 'not a plan' } });
    const done = await timer('power.idle', 'd-forgotten', '2026-11-24T09:00:00Z', 'idle');
    await b.services.timers.cancel(done.kind, done.key);
  });
  afterAll(async () => b?.close());

  it('lists every running machine with its sessions, pending plan timers and a verdict, in one page', async () => {
    const res = await b.app.inject({ method: 'GET', url: '/api/v1/reports/running', headers: as(admin) });
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json();
    expect(page.total).toBe(5);
    const by = Object.fromEntries(page.items.map((w: { name: string }) => [w.name, w]));
    expect(Object.keys(by)).toEqual(['a-in-use', 'b-stopping-soon', 'c-standby', 'd-forgotten', 'f-unpooled']);
    expect(by['a-in-use']).toMatchObject({
      verdict: 'in-use',
      sessions: [{ username: 'ana', state: 'connected', protocol: 'rdp', connectedAt: '2026-11-24T09:00:05.000Z' }],
      timers: [{ kind: 'power.disconnect', dueAt: '2026-11-24T10:30:00.000Z', reason: 'disconnect + 15 min → stop' }],
      assignedTo: { username: 'ana', mode: 'persistent' },
      poolName: 'edit',
      runningSince: '2026-11-24T08:00:00.000Z',
    });
    expect(by['b-stopping-soon'].verdict).toBe('action-pending');
    expect(by['b-stopping-soon'].timers.map((t: { kind: string }) => t.kind)).toEqual(['release.disconnect', 'power.disconnect']); // soonest first
    expect(by['b-stopping-soon'].why).toBe('release.disconnect due at 2026-11-24T10:05:00.000Z (disconnect + 5 min → release)');
    expect(by['c-standby']).toMatchObject({ verdict: 'standby', sessions: [], timers: [], assignedTo: null });
    expect(by['d-forgotten']).toMatchObject({ verdict: 'no-plan', timers: [] });
    expect(by['f-unpooled']).toMatchObject({ verdict: 'no-plan', poolId: null });
  });

  it('filters by pool, pages, and answers for one machine (404 when it is not running)', async () => {
    const page = (await b.app.inject({ method: 'GET', url: `/api/v1/reports/running?poolId=${ids.pool}&limit=2&offset=2`, headers: as(admin) })).json();
    expect(page.items.map((w: { name: string }) => w.name)).toEqual(['c-standby', 'd-forgotten']);
    expect(page.total).toBe(4);
    const past = (await b.app.inject({ method: 'GET', url: `/api/v1/reports/running?limit=2&offset=10`, headers: as(admin) })).json();
    expect(past).toMatchObject({ items: [], total: 5 });
    const one = await b.app.inject({ method: 'GET', url: `/api/v1/reports/running/${ids['b-stopping-soon']}`, headers: as(admin) });
    expect(one.json()).toMatchObject({ name: 'b-stopping-soon', verdict: 'action-pending' });
    const stopped = await b.app.inject({ method: 'GET', url: `/api/v1/reports/running/${ids['e-stopped']}`, headers: as(admin) });
    expect(stopped.statusCode).toBe(404);
    const bad = await b.app.inject({ method: 'GET', url: '/api/v1/reports/running?limit=0', headers: as(admin) });
    expect(bad.statusCode).toBe(400);
  });
});
