import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { WorkstationsRepository } from '../../src/domain/workstations/workstations.repository.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { providerFor, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';
import { waitFor } from '../../../../test/support/ports.ts';
import { bearer, mintUsers } from '../../../../test/support/studio.ts';

/**
 * The power follower against the EC2 emulator, with boots and stops that take a couple of seconds
 * and no inventory sync or reconciler job running (test brokers run no jobs): what the database
 * says must follow the cloud within a few seconds of each transition, from the follower alone.
 */
describe.each(DRIVERS)('power follower [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let providerId: string;
  let subnets: string[];

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are checked by the caller
  const call = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown): Promise<any> => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const row = async (id: string) => rowsOf<{ power_state: string; private_address: string | null }>(await b.database.db.execute(sql`select power_state, host(private_address) as private_address from workstations where id = ${id}`))[0]!;
  const history = async (id: string) =>
    rowsOf<{ state: string; open: boolean }>(await b.database.db.execute(sql`select state, to_at is null as open from workstation_power_history where workstation_id = ${id} order by from_at, id`)).map((h) => `${h.state}${h.open ? ' (open)' : ''}`);
  const reaches = (id: string, state: string) => waitFor(`${id} ${state} in the database`, async () => (await row(id)).power_state === state, 30_000);
  const describes = () => emu.control.callCounts().byAction.DescribeInstances ?? 0;
  const launch = async (name: string) => (await call('POST', '/api/v1/workstations', { providerId, name, imageId: DEMO_AMI_ID, instanceType: 'g5.xlarge', subnetId: subnets[0] })).id as string;
  const neverSynced = async () => expect((await call('GET', `/api/v1/providers/${providerId}`)).lastSync).toBeFalsy();

  beforeAll(async () => {
    emu = await startTestEmulator({ delays: { pendingMs: 2_000, stoppingMs: 2_000, shuttingDownMs: 2_000 } });
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
    providerId = (await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } })).id;
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('a launch is followed to running, with its address and power history, without any sync pass', async () => {
    const id = await launch('follow-launch');
    expect((await row(id)).power_state).toBe('pending');
    await reaches(id, 'running');
    expect((await row(id)).private_address).toMatch(/^172\.31\./);
    expect(await history(id)).toEqual(['pending', 'running (open)']);
    await waitFor('the follower to let the machine go', () => !b.services.follower.following().includes(id), 10_000);
    await neverSynced();
  }, 60_000);

  it('a stop is followed to stopped and a start to running, each with its power history, without any sync pass', async () => {
    const id = await launch('follow-power');
    await reaches(id, 'running');
    expect((await call('POST', `/api/v1/workstations/${id}/stop`, {})).current).toBe('stopping');
    await reaches(id, 'stopped');
    expect((await call('POST', `/api/v1/workstations/${id}/start`)).current).toBe('pending');
    await reaches(id, 'running');
    expect(await history(id)).toEqual(['pending', 'running', 'stopping', 'stopped', 'pending', 'running (open)']);
    await neverSynced();
  }, 60_000);

  it('batches: one DescribeInstances per provider per tick, however many machines it follows', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await launch(`batch-${i}`));
    for (const id of ids) await reaches(id, 'running');
    await waitFor('the follower to be idle', () => b.services.follower.following().length === 0, 10_000);
    emu.control.setDelays({ stoppingMs: 3_600_000 }); // they stay `stopping` until the test moves emulated time
    const before = { describes: describes(), ...b.services.follower.stats };
    await Promise.all(ids.map((id) => call('POST', `/api/v1/workstations/${id}/stop`, {})));
    expect([...b.services.follower.following()].sort()).toEqual([...ids].sort());
    // A tick planned after the last stop describes all six at once.
    const ticks = b.services.follower.stats.ticks;
    await waitFor('a tick with all six machines', () => b.services.follower.stats.ticks > ticks + 1, 20_000);
    expect(b.services.follower.stats.largestBatch).toBe(6);
    emu.control.advanceTime(3_600_000);
    for (const id of ids) await reaches(id, 'stopped');
    await waitFor('the follower to be idle', () => b.services.follower.following().length === 0, 10_000);
    const after = { describes: describes(), ...b.services.follower.stats };
    expect(after.ticks - before.ticks).toBeGreaterThanOrEqual(2);
    expect(after.describes - before.describes).toBe(after.ticks - before.ticks);
    expect(after.describeCalls - before.describeCalls).toBe(after.ticks - before.ticks);
    emu.control.setDelays({ stoppingMs: 2_000 });
  }, 60_000);

  it('a connection launched on login becomes ready when its machine boots, without any sync or reconciler pass', async () => {
    const pool = await call('POST', '/api/v1/pools', { name: 'edit', providerId, template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets.slice(0, 1), namePattern: 'edit-{seq:03}' }, minAvailable: 0, launchRatePerMinute: 100 });
    const [user] = await mintUsers(b.database, 1, 'artist', 'Artists');
    const groups = (await call('GET', '/api/v1/groups')).items as { id: string; name: string }[];
    await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [groups.find((g) => g.name === 'Artists')!.id], pools: [{ poolId: pool.id }], assignmentMode: 'floating', launchOnLogin: true });
    const opened = await b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(user!), payload: { poolId: pool.id } });
    expect(opened.statusCode).toBe(201);
    expect(['launching', 'booting']).toContain(opened.json().progress.stage);
    const status = async () => (await b.app.inject({ url: `/api/v1/connections/${opened.json().id}`, headers: bearer(user!) })).json();
    await waitFor('the connection to be ready', async () => (await status()).state === 'ready', 30_000, 250);
    expect((await status()).instructions.file).toMatch(/full address:s:172\.31\.\d+\.\d+:3389/);
    await neverSynced();
  }, 60_000);

  it('a pool machine that dies while booting is replaced at once, not at the next safety-net pass', async () => {
    emu.control.setDelays({ pendingMs: 3_600_000 }); // it would boot for an hour
    const pool = await call('POST', '/api/v1/pools', { name: 'refill', providerId, template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets.slice(0, 1), namePattern: 'refill-{seq:03}' }, minAvailable: 1, launchRatePerMinute: 100 });
    await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
    const ofPool = () => emu.control.instances().filter((i) => i.tags.some((t) => t.key === 'stagedoor:pool' && t.value === pool.id));
    expect(ofPool()).toHaveLength(1);
    await providerFor(emu).terminate([ofPool()[0]!.instanceId]); // out of band: a spot reclaim, a failed boot
    await waitFor('a replacement launched for the pool', () => ofPool().filter((i) => i.state === 'pending').length === 1 && ofPool().length === 2, 30_000);
    const rows = rowsOf<{ name: string; power_state: string }>(await b.database.db.execute(sql`select name, power_state from workstations where launched_by_pool_id = ${pool.id} order by name`));
    expect(rows).toEqual([{ name: 'refill-001', power_state: 'terminated' }, { name: 'refill-002', power_state: 'pending' }]);
    emu.control.setDelays({ pendingMs: 2_000 });
  }, 60_000);

  it('a write made while the cloud was answering (even at the same clock instant) or a row held by someone else is never written over', async () => {
    const id = await launch('guarded');
    await reaches(id, 'running');
    await waitFor('the follower to let the machine go', () => !b.services.follower.following().includes(id), 10_000);
    const repo = new WorkstationsRepository(b.database.db);
    const lock = () => b.database.db.transaction((tx) => repo.lockKnown([id], tx));
    const asked = (await repo.versions([id])).get(id);
    expect((await lock()).map((k) => k.version)).toEqual([asked]); // locking is not writing
    // A write that changes no field and no timestamp still changes the version the follower compares.
    await b.database.db.execute(sql`update workstations set power_state = power_state where id = ${id}`);
    expect((await lock()).map((k) => k.version)).not.toEqual([asked]);
    if (driver === 'postgres') {
      // Held by another transaction (a power operation, a sync): skipped at once, never waited for.
      await b.database.db.transaction(async (holder) => {
        await holder.execute(sql`select 1 from workstations where id = ${id} for update`);
        expect(await lock()).toEqual([]);
      });
    }
  }, 60_000);
});
