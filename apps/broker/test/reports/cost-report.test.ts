import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { ManualClock } from '../../src/domain/clock.ts';
import { assignments, auditEvents, pools, priceTable, providers, users, workstationPowerHistory, workstations } from '../../src/db/schema/index.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';

/**
 * The cost report on a scripted week, hand-computed. Window: Mon 2026-11-23 00:00Z → Mon 11-30 00:00Z
 * (168 h); the clock says Tue 12-01 12:00Z, so open intervals are clipped at `to`.
 *
 *  A g5.xlarge us-east-1 (default 1.006 USD/h), pool edit, ana's since 11-01:
 *    stopped 11-20 00:00 → Mon 09:00 (crosses `from`: 9 h in the window) · running Mon 09:00–18:00 (9 h)
 *    stopped Mon 18:00 → Tue 09:00 (15 h) · running Tue 09:00–17:30 (8.5 h) · stopped Tue 17:30 → open (126.5 h to `to`)
 *    running 17.5 h, stopped 9 + 15 + 126.5 = 150.5 h, always-on 168 h; cost 17.5 × 1.006 = 17.605 → 17.61
 *  B g4dn.xlarge us-east-1 (default 0.526), pool edit, floating:
 *    running Sun 11-22 20:00 → Mon 02:00 (2 h in the window) · stopped Mon 02:00 → Wed 08:54 (54.9 h)
 *    pending Wed 08:54–09:00 (0.1 h) · running Wed 09:00–21:00 (12 h) · terminated from Wed 21:00 (not always-on)
 *    running 14 h, stopped 54.9, other 0.1, always-on 69; cost 14 × 0.526 = 7.364
 *    bea Sun 19:00 → Mon 01:00 (1 h running in the window), cy Wed 09:30–20:00 (10.5 h running); the rest unassigned
 *  C g6e.xlarge ap-south-1 (no price), pool render: running Fri 10:00 → open (62 h to `to`): cost unknown
 *  D m5.large eu-west-1 (admin price 0.25 EUR/h), no pool, created Sat 00:00: stopped Sat 00:00 → Sun 20:00 (44 h),
 *    running Sun 20:00 → Mon 11-30 04:00 (crosses `to`: 4 h); dan's from Sun 19:00 (stopped 1 h + running 4 h)
 */
const FROM = '2026-11-23T00:00:00.000Z';
const TO = '2026-11-30T00:00:00.000Z';
const NOW = '2026-12-01T12:00:00.000Z';
const d = (s: string) => new Date(s);

describe.each(DRIVERS)('cost report on a scripted week [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  let auditor: Session;
  let operator: Session;
  const ids = {} as Record<string, string>;

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock: new ManualClock(NOW) });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const role of ['auditor', 'operator'] as const) {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: role, password: `password-${role}`, role } });
      expect(res.statusCode).toBe(201);
    }
    auditor = await login(b.app, 'auditor', 'password-auditor');
    operator = await login(b.app, 'operator', 'password-operator');
    const db = b.database.db;
    const prov = async (name: string, region: string) => (await db.insert(providers).values({ name, kind: 'aws-ec2', region, credentialsMode: 'default-chain' }).returning())[0]!.id;
    const use1 = await prov('use1', 'us-east-1');
    const aps1 = await prov('aps1', 'ap-south-1');
    const euw1 = await prov('euw1', 'eu-west-1');
    ids.edit = (await db.insert(pools).values({ name: 'edit', providerId: use1 }).returning())[0]!.id;
    ids.render = (await db.insert(pools).values({ name: 'render', providerId: aps1 }).returning())[0]!.id;
    for (const u of ['ana', 'bea', 'cy', 'dan']) ids[u] = (await db.insert(users).values({ username: u, role: 'user' }).returning())[0]!.id;
    const ws = async (name: string, providerId: string, instanceType: string, poolId: string | null, powerState: string) =>
      (await db.insert(workstations).values({ name, providerId, externalId: `i-${name}`, instanceType, poolId, powerState }).returning())[0]!.id;
    ids.A = await ws('A', use1, 'g5.xlarge', ids.edit, 'stopped');
    ids.B = await ws('B', use1, 'g4dn.xlarge', ids.edit, 'terminated');
    ids.C = await ws('C', aps1, 'g6e.xlarge', ids.render, 'running');
    ids.D = await ws('D', euw1, 'm5.large', null, 'stopped');
    const h = (w: string, state: string, from: string, to: string | null, o: { instanceType: string; poolId: string | null }) => ({ workstationId: ids[w]!, state, fromAt: d(from), toAt: to ? d(to) : null, ...o });
    const A = { instanceType: 'g5.xlarge', poolId: ids.edit! };
    const B = { instanceType: 'g4dn.xlarge', poolId: ids.edit! };
    const C = { instanceType: 'g6e.xlarge', poolId: ids.render! };
    const D = { instanceType: 'm5.large', poolId: null };
    await db.insert(workstationPowerHistory).values([
      h('A', 'stopped', '2026-11-20T00:00:00Z', '2026-11-23T09:00:00Z', A),
      h('A', 'running', '2026-11-23T09:00:00Z', '2026-11-23T18:00:00Z', A),
      h('A', 'stopped', '2026-11-23T18:00:00Z', '2026-11-24T09:00:00Z', A),
      h('A', 'running', '2026-11-24T09:00:00Z', '2026-11-24T17:30:00Z', A),
      h('A', 'stopped', '2026-11-24T17:30:00Z', null, A),
      h('B', 'running', '2026-11-22T20:00:00Z', '2026-11-23T02:00:00Z', B),
      h('B', 'stopped', '2026-11-23T02:00:00Z', '2026-11-25T08:54:00Z', B),
      h('B', 'pending', '2026-11-25T08:54:00Z', '2026-11-25T09:00:00Z', B),
      h('B', 'running', '2026-11-25T09:00:00Z', '2026-11-25T21:00:00Z', B),
      h('B', 'terminated', '2026-11-25T21:00:00Z', null, B),
      h('C', 'running', '2026-11-27T10:00:00Z', null, C),
      h('D', 'stopped', '2026-11-28T00:00:00Z', '2026-11-29T20:00:00Z', D),
      h('D', 'running', '2026-11-29T20:00:00Z', '2026-11-30T04:00:00Z', D),
      h('D', 'stopped', '2026-11-30T04:00:00Z', null, D),
    ]);
    const asg = (w: string, u: string, since: string, released: string | null) => ({
      workstationId: ids[w]!, userId: ids[u]!, poolId: ids.edit!, mode: 'floating', since: d(since),
      ...(released ? { state: 'released', releasedAt: d(released), releaseReason: 'user' } : { state: 'active' }),
    });
    await db.insert(assignments).values([
      { ...asg('A', 'ana', '2026-11-01T00:00:00Z', null), mode: 'persistent' },
      asg('B', 'bea', '2026-11-22T19:00:00Z', '2026-11-23T01:00:00Z'),
      asg('B', 'cy', '2026-11-25T09:30:00Z', '2026-11-25T20:00:00Z'),
      { ...asg('D', 'dan', '2026-11-29T19:00:00Z', null), poolId: null },
    ]);
    // D's price: an admin's, in euros, over the shipped default.
    const put = await b.app.inject({ method: 'PUT', url: '/api/v1/prices/eu-west-1/m5.large', headers: as(admin), payload: { hourlyPrice: 0.25, currency: 'EUR' } });
    expect(put.statusCode, put.body).toBe(200);
  });
  afterAll(async () => b?.close());

  const report = async (query: string, session = admin) => {
    const res = await b.app.inject({ method: 'GET', url: `/api/v1/reports/cost?${query}`, headers: as(session) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  // [label, machines, running, stopped, other, always-on, saved, cost, unpriced running]
  const rows = (r: { groups: Row[]; total: Row }) => [...r.groups, r.total].map((g) => [g.label, g.machines, g.runningHours, g.stoppedHours, g.otherHours, g.alwaysOnHours, g.savedHours, g.cost, g.unpricedRunningHours]);
  type Row = { label: string; machines: number; runningHours: number; stoppedHours: number; otherHours: number; alwaysOnHours: number; savedHours: number; cost: unknown; unpricedRunningHours: number };
  const usd = (amount: number) => [{ currency: 'USD', amount }];
  const eur = (amount: number) => [{ currency: 'EUR', amount }];

  it('groupBy=pool matches the hand-computed hours', async () => {
    expect(rows(await report(`from=${FROM}&to=${TO}&groupBy=pool`))).toEqual([
      // edit = A + B: running 17.5 + 14, stopped 150.5 + 54.9, other 0.1, always-on 168 + 69 = 237, saved 237 − 31.5;
      // cost 17.605 + 7.364 = 24.969
      ['edit', 2, 31.5, 205.4, 0.1, 237, 205.5, usd(24.97), 0],
      ['render', 1, 62, 0, 0, 62, 0, [], 62], // C: no price in ap-south-1 → unknown, not 0
      ['(no pool)', 1, 4, 44, 0, 48, 44, eur(1), 0], // D: 4 h × 0.25 EUR
      ['total', 4, 97.5, 249.4, 0.1, 347, 249.5, [...eur(1), ...usd(24.97)], 62],
    ]);
  });

  it('groupBy=user attributes running hours to the assignment holder, the rest to (unassigned)', async () => {
    expect(rows(await report(`from=${FROM}&to=${TO}&groupBy=user`))).toEqual([
      ['ana', 1, 17.5, 150.5, 0, 168, 150.5, usd(17.61), 0], // all of A: 17.5 × 1.006 = 17.605
      ['bea', 1, 1, 0, 0, 1, 0, usd(0.53), 0], // B Mon 00:00–01:00: 0.526
      ['cy', 1, 10.5, 0, 0, 10.5, 0, usd(5.52), 0], // B Wed 09:30–20:00: 10.5 × 0.526 = 5.523
      ['dan', 1, 4, 1, 0, 5, 1, eur(1), 0], // D from Sun 19:00: stopped 1 h, running 4 h
      // B: running Mon 01–02 + Wed 09:00–09:30 + 20:00–21:00 = 2.5 h (× 0.526 = 1.315), stopped 54.9, pending 0.1;
      // C: 62 h unpriced; D: stopped Sat 00:00 → Sun 19:00 = 43 h. Always-on 57.5 + 62 + 43 = 162.5
      ['(unassigned)', 3, 64.5, 97.9, 0.1, 162.5, 98, usd(1.32), 62],
      ['total', 4, 97.5, 249.4, 0.1, 347, 249.5, [...eur(1), ...usd(24.97)], 62],
    ]);
  });

  it('groupBy=instanceType', async () => {
    expect(rows(await report(`from=${FROM}&to=${TO}&groupBy=instanceType`)).map((r) => r.slice(0, 4))).toEqual([
      ['g4dn.xlarge', 1, 14, 54.9],
      ['g5.xlarge', 1, 17.5, 150.5],
      ['g6e.xlarge', 1, 62, 0],
      ['m5.large', 1, 4, 44],
      ['total', 4, 97.5, 249.4],
    ]);
  });

  it('open intervals end at now when the window reaches past it; auditors may read', async () => {
    // Mon 11-30 00:00 → Wed 12-02 00:00 with now = Tue 12:00: A stopped 36 h; C running 36 h (unpriced);
    // D running Mon 00:00–04:00 then stopped 04:00 → now (32 h). B is terminated: nothing.
    const r = await report('from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z&groupBy=pool', auditor);
    expect(rows(r).at(-1)).toEqual(['total', 3, 40, 68, 0, 108, 68, eur(1), 36]);
    expect(r.generatedAt).toBe(NOW);
  });

  it('bad report queries get 400 with field paths', async () => {
    const cases: [string, string][] = [
      ['to=2026-11-30T00:00:00Z', 'querystring.from'],
      [`from=${TO}&to=${FROM}`, 'querystring.to'],
      [`from=${FROM}&to=${FROM}`, 'querystring.to'],
      ['from=2025-01-01T00:00:00Z&to=2026-06-01T00:00:00Z', 'querystring.to'],
      [`from=23-11-2026&to=${TO}`, 'querystring.from'],
      [`from=${FROM}&to=${TO}&groupBy=team`, 'querystring.groupBy'],
      [`from=${FROM}&to=${TO}&currency=USD`, 'querystring'],
    ];
    for (const [q, path] of cases) {
      const res = await b.app.inject({ method: 'GET', url: `/api/v1/reports/cost?${q}`, headers: as(admin) });
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.details.fields.map((f: { path: string }) => f.path), q).toContain(path);
    }
  });

  describe('the price table', () => {
    const get = async (url: string, session = admin) => b.app.inject({ method: 'GET', url, headers: as(session) });

    it('ships documented defaults, marked default; an admin price replaces one and is audited', async () => {
      const res = await get('/api/v1/prices?region=us-east-1&instanceType=g5.xlarge', auditor);
      expect(res.statusCode).toBe(200);
      expect(res.json().items).toEqual([expect.objectContaining({ instanceType: 'g5.xlarge', region: 'us-east-1', hourlyPrice: '1.006000', currency: 'USD', source: 'default' })]);
      const all = (await get('/api/v1/prices?source=default')).json().items as { instanceType: string; region: string }[];
      for (const family of ['g4dn', 'g5', 'g6', 'g6e', 'p3', 'm5', 'm6i', 'm7i', 'c5', 'c6i', 't3']) expect(all.some((p) => p.instanceType.startsWith(`${family}.`)), family).toBe(true);
      expect(new Set(all.map((p) => p.region))).toEqual(new Set(['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1']));
      const euw = (await get('/api/v1/prices/eu-west-1/m5.large', operator)).json();
      expect(euw).toMatchObject({ hourlyPrice: '0.250000', currency: 'EUR', source: 'admin' });
      const [row] = await b.database.db.select().from(auditEvents).where(eq(auditEvents.action, 'price.set'));
      expect(row).toMatchObject({ outcome: 'success', targetId: 'eu-west-1/m5.large', actorName: 'admin' });
    });

    it('installing the defaults again (every start) never overwrites an admin price', async () => {
      await b.services.prices.installDefaults();
      expect((await get('/api/v1/prices/eu-west-1/m5.large')).json()).toMatchObject({ hourlyPrice: '0.250000', source: 'admin' });
    });

    it('deleting an admin price brings the shipped default back; a default itself cannot be deleted', async () => {
      await b.app.inject({ method: 'PUT', url: '/api/v1/prices/us-west-2/t3.medium', headers: as(admin), payload: { hourlyPrice: 0.05 } });
      const del = await b.app.inject({ method: 'DELETE', url: '/api/v1/prices/us-west-2/t3.medium', headers: as(admin) });
      expect(del.statusCode, del.body).toBe(200);
      expect(del.json().restored).toMatchObject({ hourlyPrice: '0.041600', source: 'default' });
      const again = await b.app.inject({ method: 'DELETE', url: '/api/v1/prices/us-west-2/t3.medium', headers: as(admin) });
      expect(again.statusCode).toBe(409);
      // A pair with no default goes away entirely.
      await b.app.inject({ method: 'PUT', url: '/api/v1/prices/ap-south-1/g6e.xlarge', headers: as(admin), payload: { hourlyPrice: 2.5 } });
      const gone = await b.app.inject({ method: 'DELETE', url: '/api/v1/prices/ap-south-1/g6e.xlarge', headers: as(admin) });
      expect(gone.json()).toEqual({ restored: null });
      expect((await get('/api/v1/prices/ap-south-1/g6e.xlarge')).statusCode).toBe(404);
    });

    it('bad price edits get 400 with field paths and change nothing', async () => {
      const before = await b.database.db.select().from(priceTable);
      const auditBefore = (await b.database.db.select().from(auditEvents)).length;
      const cases: [string, unknown, string][] = [
        ['/api/v1/prices/us-east-1/g5.xlarge', { hourlyPrice: -1 }, 'body.hourlyPrice'],
        ['/api/v1/prices/us-east-1/g5.xlarge', { hourlyPrice: '1.2' }, 'body.hourlyPrice'],
        ['/api/v1/prices/us-east-1/g5.xlarge', { hourlyPrice: 1.0000001 }, 'body.hourlyPrice'],
        ['/api/v1/prices/us-east-1/g5.xlarge', { hourlyPrice: 1, currency: 'usd' }, 'body.currency'],
        ['/api/v1/prices/us-east-1/g5.xlarge', { hourlyPrice: 1, note: 'x' }, 'body'],
        ['/api/v1/prices/us-east-1/g5.xlarge', {}, 'body.hourlyPrice'],
        ['/api/v1/prices/US-EAST-1/g5.xlarge', { hourlyPrice: 1 }, 'params.region'],
        ['/api/v1/prices/us-east-1/g5', { hourlyPrice: 1 }, 'params.instanceType'],
      ];
      for (const [url, payload, path] of cases) {
        const res = await b.app.inject({ method: 'PUT', url, headers: as(admin), payload: payload as object });
        expect(res.statusCode, `${url} ${JSON.stringify(payload)}`).toBe(400);
        expect(res.json().error.details.fields.map((f: { path: string }) => f.path)).toContain(path);
      }
      expect(await b.database.db.select().from(priceTable)).toEqual(before);
      expect((await b.database.db.select().from(auditEvents)).length).toBe(auditBefore);
    });

    it('auditors and operators read prices but cannot change them', async () => {
      for (const s of [auditor, operator]) {
        const put = await b.app.inject({ method: 'PUT', url: '/api/v1/prices/us-east-1/g5.xlarge', headers: as(s), payload: { hourlyPrice: 0 } });
        expect(put.statusCode).toBe(403);
        const del = await b.app.inject({ method: 'DELETE', url: '/api/v1/prices/eu-west-1/m5.large', headers: as(s) });
        expect(del.statusCode).toBe(403);
      }
      expect((await get('/api/v1/prices/us-east-1/g5.xlarge')).json().hourlyPrice).toBe('1.006000');
    });
  });
});
