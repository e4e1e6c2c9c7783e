import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { frozenClock, providerFor, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';

const SECRET_KEY = 'ab'.repeat(32);

describe.each(DRIVERS)('inventory sync [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let providerId: string;

  beforeAll(async () => {
    emu = await startTestEmulator({ clock: frozenClock() }); // time moves by advanceTime only
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    // A big subnet, so that a thousand instances fit in one.
    const [subnet] = emu.control.seedSubnets([{ cidrBlock: '10.20.0.0/16', availabilityZone: 'us-east-1a' }]);
    const ec2 = providerFor(emu);
    for (let i = 0; i < 4; i++) await ec2.launch({ imageId: DEMO_AMI_ID, subnetId: subnet!.subnetId, name: `edit-${i}`, tags: { studio: 'main' }, clientToken: `seed-${i}`, count: 250 });
    await ec2.launch({ imageId: DEMO_AMI_ID, name: 'not-ours', tags: { studio: 'other' }, clientToken: 'other' });
    const res = await b.app.inject({
      method: 'POST',
      url: '/api/v1/providers',
      headers: as(admin),
      payload: { kind: 'aws-ec2', name: 'aws-main', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET }, tagFilter: { studio: ['main'] } },
    });
    expect(res.statusCode).toBe(201);
    providerId = res.json().id;
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  async function countRows(where = sql`true`) {
    return rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from workstations where provider_id = ${providerId} and ${where}`))[0]!.n;
  }

  it('imports 1,000 matching instances as 1,000 workstations in one sync, and records the outcome', async () => {
    const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${providerId}/sync`, headers: as(admin) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', counts: { seen: 1000, created: 1000, updated: 0, terminated: 0 } });
    expect(res.json().counts.apiCalls).toBe(1);
    expect(await countRows()).toBe(1000);
    const history = rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from workstation_power_history h join workstations w on w.id = h.workstation_id where w.provider_id = ${providerId} and h.to_at is null`));
    expect(history[0]!.n).toBe(1000);
    const provider = (await b.app.inject({ url: `/api/v1/providers/${providerId}`, headers: as(admin) })).json();
    expect(provider.lastSync).toMatchObject({ status: 'ok', counts: { created: 1000 } });
  });

  it('a second sync changes nothing', async () => {
    const before = rowsOf<{ t: string }>(await b.database.db.execute(sql`select max(updated_at)::text as t from workstations where provider_id = ${providerId}`))[0]!.t;
    const result = await b.services.providers.syncNow(systemActor, providerId);
    expect(result.counts).toMatchObject({ seen: 1000, created: 0, updated: 0, terminated: 0 });
    const after = rowsOf<{ t: string }>(await b.database.db.execute(sql`select max(updated_at)::text as t from workstations where provider_id = ${providerId}`))[0]!.t;
    expect(after).toBe(before);
    expect(await countRows()).toBe(1000);
  });

  it('follows power changes and marks terminated instances terminated, closing their history', async () => {
    emu.control.advanceTime(10_000); // pending → running for all
    let result = await b.services.providers.syncNow(systemActor, providerId);
    expect(result.counts.updated).toBe(1000);
    const ec2 = providerFor(emu);
    const [victim, stopped] = (await ec2.listInstances({ tags: { studio: ['main'] } })).slice(0, 2);
    await ec2.terminate([victim!.id]);
    await ec2.stop([stopped!.id]);
    emu.control.advanceTime(10_000);
    result = await b.services.providers.syncNow(systemActor, providerId);
    expect(result.counts).toMatchObject({ created: 0, updated: 2, terminated: 0 });
    const rows = rowsOf<{ external_id: string; power_state: string }>(await b.database.db.execute(sql`select external_id, power_state from workstations where external_id in (${victim!.id}, ${stopped!.id})`));
    expect(Object.fromEntries(rows.map((r) => [r.external_id, r.power_state]))).toEqual({ [victim!.id]: 'terminated', [stopped!.id]: 'stopped' });
    const hist = rowsOf<{ state: string; open: boolean }>(await b.database.db.execute(sql`select h.state, h.to_at is null as open from workstation_power_history h join workstations w on w.id = h.workstation_id where w.external_id = ${victim!.id} order by h.from_at, h.id`));
    expect(hist.map((h) => [h.state, h.open])).toEqual([['pending', false], ['running', false], ['terminated', true]]);
    // Past the retention the instance disappears from EC2: still terminated, not duplicated, not deleted.
    emu.control.advanceTime(2 * 3_600_000);
    result = await b.services.providers.syncNow(systemActor, providerId);
    expect(result.counts).toMatchObject({ seen: 999, created: 0, updated: 0, terminated: 0 });
    expect(await countRows(sql`power_state = 'terminated'`)).toBe(1);
  });

  it('never duplicates a workstation when two syncs race', async () => {
    const ec2 = providerFor(emu);
    await ec2.launch({ imageId: DEMO_AMI_ID, name: 'late', tags: { studio: 'main' }, clientToken: 'late', count: 3 });
    const results = await Promise.allSettled([b.services.inventory.syncNow(providerId), b.services.inventory.syncNow(providerId)]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toContain('already running');
    expect(await countRows()).toBe(1003);
  });

  it('records a failed sync on the provider with the cloud\'s message', async () => {
    emu.control.refuseAccessKey(TEST_ACCESS_KEY);
    try {
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${providerId}/sync`, headers: as(admin) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'error', message: expect.stringContaining('AuthFailure') });
      const provider = (await b.app.inject({ url: `/api/v1/providers/${providerId}`, headers: as(admin) })).json();
      expect(provider.lastSync).toMatchObject({ status: 'error', message: expect.stringContaining('AuthFailure') });
    } finally {
      emu.control.allowAccessKey(TEST_ACCESS_KEY);
    }
  });
});
