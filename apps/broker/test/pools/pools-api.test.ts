import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatePool } from '@stagedoor/contract';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';

describe.each(DRIVERS)('pools API [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let operator: Session;
  let auditor: Session;
  let awsId: string;
  let staticId: string;
  let subnets: string[];
  const clock = new ManualClock('2026-03-04T10:00:00Z');

  const req = (s: Session, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => b.app.inject({ method, url, headers: as(s), payload: payload as never });
  const template = (over: Record<string, unknown> = {}) => ({ imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets, tags: { studio: 'main' }, ...over });

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    for (const role of ['operator', 'auditor'] as const) await b.services.users.create(systemActor, { username: role, password: 'password-123', role, disabled: false, groupIds: [] });
    operator = await login(b.app, 'operator', 'password-123');
    auditor = await login(b.app, 'auditor', 'password-123');
    subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
    awsId = (await b.services.providers.create(systemActor, {
      kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, tagFilter: { studio: ['main'] }, syncIntervalSeconds: 300, enabled: true,
      credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET },
    })).id;
    staticId = (await b.services.providers.create(systemActor, { kind: 'static', name: 'onprem', enabled: true })).id;
    for (const [i, team] of ['edit', 'edit', 'color', 'vfx'].entries()) {
      await b.services.staticHosts.register(systemActor, staticId, { name: `host-${i + 1}`, address: `10.9.0.${i + 1}`, protocols: [{ protocol: 'rdp' }], tags: { team } });
    }
  });
  afterAll(async () => {
    await b?.services.pools.stop();
    await b?.close();
    await emu?.close();
  });

  const membersOf = async (poolId: string) =>
    rowsOf<{ name: string }>(await b.database.db.execute(sql`select name from workstations where pool_id = ${poolId} order by name`)).map((r) => r.name);

  it('creates a pool (201) with its availability, thresholds in force and reconcile status; audited', async () => {
    const res = await req(operator, 'POST', '/api/v1/pools', {
      name: 'Editors', providerId: awsId, template: template({ namePattern: 'edit-{seq:03}' }), minAvailable: 0, maxAvailable: 4, maxTotal: 10,
      timeZone: 'Europe/London', scheduleWindows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '18:00', minAvailable: 2 }],
    });
    expect(res.statusCode, res.body).toBe(201);
    const pool = res.json();
    expect(pool).toMatchObject({
      name: 'Editors', provisioning: 'running', launchRatePerMinute: 10,
      thresholdsNow: { minAvailable: 2, maxAvailable: 4, maxTotal: 10, window: 0 }, // Wednesday 10:00 in London
      availability: { assigned: 0, failed: 0 }, // the standby may already be launching: creation pokes the reconciler
      backoffUntil: null, consecutiveFailures: 0,
    });
    await b.services.pools.idle();
    const after = (await req(auditor, 'GET', `/api/v1/pools/${pool.id}`)).json();
    expect(after).toMatchObject({ nameSequence: 2, availability: { total: 2, available: 2, starting: 2 }, lastReconcileOutcome: 'ok', lastReconcileSummary: { desired: 2 } });
    const audit = await b.services.audit.list({ action: 'pool.create' }, 5, 0);
    expect(audit.items[0]).toMatchObject({ actorName: 'operator', targetId: pool.id, outcome: 'success' });
  });

  it('lists pools with their counts; filters by provider', async () => {
    const res = await req(auditor, 'GET', `/api/v1/pools?providerId=${awsId}`);
    expect(res.statusCode).toBe(200);
    expect(res.json().items.map((p: { name: string; availability: { total: number } }) => [p.name, p.availability.total])).toEqual([['Editors', 2]]);
  });

  it('refuses bad input with the path of every bad field, and writes nothing', async () => {
    const count = async () => rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from pools`))[0]!.n;
    const before = await count();
    const cases: [unknown, string[]][] = [
      [{ name: 'x', providerId: awsId, timeZone: 'Mars/Olympus' }, ['body.timeZone']],
      [{ name: 'x', providerId: awsId, template: template({ userData: 'join {{domain.password}}' }) }, ['body.template.userData']],
      [{ name: 'x', providerId: awsId, template: template({ namePattern: 'edit' }) }, ['body.template.namePattern']],
      [{ name: 'x', providerId: awsId, scheduleWindows: [{ days: ['mon'], start: '25:00', end: '08:00' }] }, ['body.scheduleWindows.0.start']],
      [{ name: 'x', providerId: awsId, minAvailable: 5, maxAvailable: 2 }, ['minAvailable']],
      [{ name: 'x', providerId: awsId, maxTotal: 3, scheduleWindows: [{ days: ['sat'], start: '10:00', end: '11:00', minAvailable: 4 }] }, ['scheduleWindows[0].minAvailable']],
      [{ name: 'x', providerId: awsId, template: template({ subnetIds: [subnets[0], 'subnet-0123456789abcdef0'] }) }, ['template.subnetIds[1]']],
      [{ name: 'x', providerId: awsId, template: template({ imageId: 'ami-0000000000000dead', securityGroupIds: ['sg-00000000000000bad'] }) }, ['template.imageId', 'template.securityGroupIds']],
      [{ name: 'x', providerId: awsId, template: template({ tags: { team: 'edit' } }) }, ['template.tags.studio']],
      [{ name: 'x', providerId: staticId, template: template() }, ['template']],
      [{ name: 'x', providerId: '00000000-0000-4000-8000-000000000000' }, ['providerId']],
    ];
    for (const [payload, paths] of cases) {
      const res = await req(admin, 'POST', '/api/v1/pools', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.details.fields.map((f: { path: string }) => f.path), res.body).toEqual(paths);
    }
    expect(await count()).toBe(before);
  });

  it('a second pool of the same name (any case) is a 409', async () => {
    const res = await req(admin, 'POST', '/api/v1/pools', { name: 'editors', providerId: awsId });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toBe('a pool named "editors" already exists');
  });

  it('roles: operators change pools, auditors only read, users neither', async () => {
    expect((await req(auditor, 'POST', '/api/v1/pools', { name: 'nope', providerId: staticId })).statusCode).toBe(403);
    const user = await b.services.users.create(systemActor, { username: 'artist', password: 'password-123', role: 'user', disabled: false, groupIds: [] });
    const s = await login(b.app, user.username, 'password-123');
    expect((await req(s, 'GET', '/api/v1/pools')).statusCode).toBe(403);
  });

  it('membership: tag rules and an explicit list resolve into pool_id; an existing membership wins; changes re-resolve', async () => {
    const edit = (await req(admin, 'POST', '/api/v1/pools', { name: 'onprem-edit', providerId: staticId, membership: { tags: { team: ['edit'] }, externalIds: ['host-4'] } })).json();
    expect(await membersOf(edit.id)).toEqual(['host-1', 'host-2', 'host-4']);
    const all = (await req(admin, 'POST', '/api/v1/pools', { name: 'onprem-all', providerId: staticId, membership: { tags: { team: [] } } })).json();
    expect(await membersOf(all.id)).toEqual(['host-3']);
    expect((await req(admin, 'PATCH', `/api/v1/pools/${edit.id}`, { membership: { tags: { team: ['color'] } } })).statusCode).toBe(200);
    expect(await membersOf(edit.id)).toEqual([]); // host-3 stays where it was; host-1, 2, 4 left
    await b.services.pools.reconcileAll();
    expect(await membersOf(all.id)).toEqual(['host-1', 'host-2', 'host-3', 'host-4']);
    const view = (await req(admin, 'GET', `/api/v1/pools/${all.id}`)).json();
    expect(view.availability).toMatchObject({ total: 4, available: 4, starting: 0 });
  });

  it('POST /pools/{id}/reconcile runs a pass now and answers with its outcome', async () => {
    const pool = (await req(admin, 'POST', '/api/v1/pools', { name: 'manual', providerId: awsId, template: template(), minAvailable: 1 })).json();
    await b.services.pools.idle();
    await b.database.db.execute(sql`update pools set min_available = 2 where id = ${pool.id}`);
    const res = await req(operator, 'POST', `/api/v1/pools/${pool.id}/reconcile`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ outcome: 'ok', error: null, summary: { launched: 1 }, pool: { availability: { total: 2 } } });
    expect((await b.services.audit.list({ action: 'pool.reconcile' }, 1, 0)).items[0]).toMatchObject({ actorName: 'operator', outcome: 'success' });
  });

  it('reservePendingLaunch refuses with a reason: no template, paused, over the launch rate, at maxTotal', async () => {
    const reserve = (poolId: string) => b.database.db.transaction((tx) => b.services.pools.reservePendingLaunch(poolId, tx));
    const plain = await b.services.pools.create(systemActor, CreatePool.parse({ name: 'plain', providerId: staticId }));
    expect(await reserve(plain.id)).toEqual({ ok: false, reason: 'pool "plain" has no provisioning template, so it cannot launch machines' });
    const p = await b.services.pools.create(systemActor, CreatePool.parse({ name: 'limited', providerId: awsId, template: template(), launchRatePerMinute: 2, provisioning: 'paused' }));
    expect(await reserve(p.id)).toEqual({ ok: false, reason: 'provisioning of pool "limited" is paused' });
    await b.services.pools.update(systemActor, p.id, { provisioning: 'running' });
    expect((await reserve(p.id)).ok).toBe(true);
    expect((await reserve(p.id)).ok).toBe(true);
    expect(await reserve(p.id)).toMatchObject({ ok: false, reason: expect.stringMatching(/launched 2 machine\(s\) in the last minute/) });
    clock.advance(61_000);
    await b.services.pools.update(systemActor, p.id, { maxTotal: 2 });
    expect(await reserve(p.id)).toEqual({ ok: false, reason: 'pool "limited" is at its maximum of 2 machine(s)' });
    await b.services.pools.idle();
  });

  it('create and update nest in a caller\'s transaction (apply): visible inside, gone on rollback', async () => {
    await expect(
      b.database.db.transaction(async (tx) => {
        await b.services.pools.create(systemActor, CreatePool.parse({ name: 'in-tx', providerId: staticId }), tx);
        expect(await b.services.pools.findByName('IN-TX', tx)).toMatchObject({ name: 'in-tx' });
        // A refused change inside the transaction does not spoil it.
        await expect(b.services.pools.create(systemActor, CreatePool.parse({ name: 'in-tx', providerId: staticId }), tx)).rejects.toThrow(/already exists/);
        const found = await b.services.pools.findByName('in-tx', tx);
        await b.services.pools.update(systemActor, found!.id, { minAvailable: 1 }, tx);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await b.services.pools.idle();
    expect(await b.services.pools.findByName('in-tx')).toBeUndefined();
  });

  it('delete: 409 while a user holds a machine, 409 while a policy offers it, then 204 leaving machines unpooled', async () => {
    const pool = (await req(admin, 'POST', '/api/v1/pools', { name: 'doomed', providerId: staticId, membership: { externalIds: ['host-1'] } })).json();
    // host-1 belongs to "onprem-all" already: explicit lists do not take machines from other pools.
    await b.database.db.execute(sql`update workstations set pool_id = ${pool.id} where name = 'host-1'`);
    const adminId = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from users where username = 'admin'`))[0]!.id;
    const wsId = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from workstations where name = 'host-1'`))[0]!.id;
    await b.database.db.execute(sql`insert into assignments (user_id, workstation_id, pool_id, mode, since, updated_at) values (${adminId}, ${wsId}, ${pool.id}, 'persistent', ${clock.now()}, ${clock.now()})`);
    let res = await req(admin, 'DELETE', `/api/v1/pools/${pool.id}`);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toBe('pool "doomed" has 1 active assignment(s): release them before deleting the pool');
    await b.database.db.execute(sql`update assignments set state = 'released', released_at = ${clock.now()}, release_reason = 'admin' where workstation_id = ${wsId}`);
    const policyId = rowsOf<{ id: string }>(await b.database.db.execute(sql`insert into policies (name, position) values ('p', 1) returning id`))[0]!.id;
    await b.database.db.execute(sql`insert into policy_pools (policy_id, pool_id, position) values (${policyId}, ${pool.id}, 1)`);
    res = await req(admin, 'DELETE', `/api/v1/pools/${pool.id}`);
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toBe('pool "doomed" is still offered by a policy: remove it from the policy before deleting the pool');
    await b.database.db.execute(sql`delete from policies where id = ${policyId}`);
    expect((await req(admin, 'DELETE', `/api/v1/pools/${pool.id}`)).statusCode).toBe(204);
    expect(rowsOf<{ pool_id: string | null }>(await b.database.db.execute(sql`select pool_id from workstations where id = ${wsId}`))[0]!.pool_id).toBeNull();
    expect((await req(admin, 'GET', `/api/v1/pools/${pool.id}`)).statusCode).toBe(404);
    expect((await b.services.audit.list({ action: 'pool.delete' }, 1, 0)).items[0]).toMatchObject({ targetId: pool.id });
  });
});
