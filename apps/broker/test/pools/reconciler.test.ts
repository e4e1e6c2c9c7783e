import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CreatePool } from '@stagedoor/contract';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { Database } from '../../src/db/database.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { hashToken } from '../../src/domain/identity/tokens.ts';
import { PlanExecutor } from '../../src/domain/pools/executor.ts';
import { PoolLauncher } from '../../src/domain/pools/launcher.ts';
import { countMembers, LAUNCH_GRACE_MS } from '../../src/domain/pools/plan.ts';
import { PoolsRepository } from '../../src/domain/pools/pools.repository.ts';
import { FOLLOW_DEADLINE_MS } from '../../src/domain/providers/follow-plan.ts';
import { PoolLaunchesRepository } from '../../src/domain/pools/pool-launches.repository.ts';
import { POKE_CHANNEL } from '../../src/domain/pools/reconciler.ts';
import { WorkstationsRepository } from '../../src/domain/workstations/workstations.repository.ts';
import { ProvidersRepository } from '../../src/domain/providers/providers.repository.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { createServices, type Services } from '../../src/services.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { providerFor, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';
import { waitFor } from '../../../../test/support/ports.ts';

const SECRET_KEY = 'ab'.repeat(32);
const silent = pino({ level: 'silent' });

describe.each(DRIVERS)('pool reconciler against the EC2 emulator [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let clock: ManualClock;
  let providerId: string;
  let subnets: string[];
  let azOf: Map<string, string>;
  let adminId: string;
  const pools = () => b.services.pools;

  beforeAll(async () => {
    emu = await startTestEmulator();
    clock = new ManualClock('2026-03-04T10:00:00Z');
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    const net = emu.control.defaultNetwork();
    subnets = net.subnets.map((s) => s.subnetId);
    azOf = new Map(net.subnets.map((s) => [s.subnetId, s.availabilityZone]));
    const provider = await b.services.providers.create(systemActor, {
      kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, tagFilter: { studio: ['test'] }, syncIntervalSeconds: 300, enabled: true,
      credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET },
    });
    providerId = provider.id;
    adminId = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from users where username = 'admin'`))[0]!.id;
  });
  afterEach(async () => {
    await pools().idle();
    emu.control.setCapacity([]);
    emu.control.clearFaults();
  });
  afterAll(async () => {
    await b?.services.pools.stop();
    await b?.close();
    await emu?.close();
  });

  async function newPool(name: string, over: Record<string, unknown> = {}, template: Record<string, unknown> = {}) {
    const input = CreatePool.parse({
      name,
      providerId,
      template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge', 'g4dn.xlarge'], subnetIds: subnets, tags: { studio: 'test' }, namePattern: `${name}-{seq:03}`, userData: '#!/bin/sh\nagent enroll --name {{workstation.name}} --pool {{pool.name}} --token {{agent.token}}\n', ...template },
      launchRatePerMinute: 100,
      ...over,
    });
    const pool = await pools().create(systemActor, input);
    await pools().idle();
    return pool;
  }
  const instancesOf = (poolId: string) => emu.control.instances().filter((i) => i.tags.some((t) => t.key === 'stagedoor:pool' && t.value === poolId));
  const live = (poolId: string) => instancesOf(poolId).filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down');
  const rows = async (poolId: string) =>
    rowsOf<{ id: string; name: string; external_id: string | null; power_state: string; subnet_id: string | null; instance_type: string | null; agent_token_hash: string; launch_token: string }>(
      await b.database.db.execute(sql`select * from workstations where launched_by_pool_id = ${poolId} order by name`),
    );
  const runInstancesCalls = () => emu.control.callCounts().byAction.RunInstances ?? 0;
  const assign = (workstationId: string) =>
    b.database.db.execute(sql`insert into assignments (user_id, workstation_id, mode, since, updated_at) values (${adminId}, ${workstationId}, 'floating', ${clock.now()}, ${clock.now()})`);

  it('a pool with minAvailable 3 fills to 3 available, spread over the AZs, named, tagged and enrolled', async () => {
    const p = await newPool('edit', { minAvailable: 3 });
    expect(await pools().availability(p.id)).toEqual({ total: 3, available: 3, assigned: 0, starting: 3, failed: 0 });
    const inst = instancesOf(p.id);
    expect(inst).toHaveLength(3);
    expect(new Set(inst.map((i) => i.availabilityZone)).size).toBe(3);
    const rs = await rows(p.id);
    expect(rs.map((r) => r.name)).toEqual(['edit-001', 'edit-002', 'edit-003']);
    for (const r of rs) {
      const i = inst.find((x) => x.instanceId === r.external_id)!;
      expect(i.clientToken).toBe(r.launch_token);
      const tags = Object.fromEntries(i.tags.map((t) => [t.key, t.value]));
      expect(tags).toMatchObject({ Name: r.name, studio: 'test', 'stagedoor:pool': p.id, 'stagedoor:workstation': r.id, 'stagedoor:managed': 'true' });
      const userData = Buffer.from(i.userData!, 'base64').toString('utf8');
      const token = /--token (\S+)/.exec(userData)![1]!;
      expect(userData).toContain(`--name ${r.name} --pool edit`);
      expect(hashToken(token)).toBe(r.agent_token_hash);
    }
    const pool = await pools().get(p.id);
    expect(pool).toMatchObject({ lastReconcileOutcome: 'ok', lastReconcileError: null, consecutiveFailures: 0, nameSequence: 3 });
    expect(pool.lastReconcileSummary).toMatchObject({ launched: 3, desired: 3 });
    // They boot; a pass follows them to running, each with its power history.
    emu.control.advanceTime(10_000);
    expect(await pools().reconcile(p.id)).toMatchObject({ outcome: 'ok' });
    expect(await pools().availability(p.id)).toEqual({ total: 3, available: 3, assigned: 0, starting: 0, failed: 0 });
    const hist = rowsOf<{ state: string; open: boolean }>(await b.database.db.execute(sql`select h.state, h.to_at is null as open from workstation_power_history h join workstations w on w.id = h.workstation_id where w.launched_by_pool_id = ${p.id} order by h.id`));
    expect(hist.filter((h) => h.open).map((h) => h.state)).toEqual(['running', 'running', 'running']);
    // An assignment, then a poke: the pool refills at once.
    await assign(rs[0]!.id);
    pools().poke(p.id);
    await pools().idle();
    expect(await pools().availability(p.id)).toMatchObject({ total: 4, available: 3, assigned: 1 });
  });

  it('adopts an instance launched just before a crash instead of launching again, and relaunches one that never reached the cloud', async () => {
    const p = await newPool('crash', { minAvailable: 0 });
    const reserve = () => b.database.db.transaction((tx) => pools().reservePendingLaunch(p.id, tx));
    const launchedThenCrashed = await reserve();
    const neverLaunched = await reserve();
    if (!launchedThenCrashed.ok || !neverLaunched.ok) throw new Error('reservation refused');
    const row = launchedThenCrashed.workstation;
    // The dying broker's RunInstances went through; its answer was never written.
    const [orphan] = await providerFor(emu).launch({
      imageId: DEMO_AMI_ID, subnetId: row.subnetId!, instanceType: 'g5.xlarge', name: row.name, clientToken: row.launchToken!,
      tags: { studio: 'test', 'stagedoor:pool': p.id, 'stagedoor:workstation': row.id },
    });
    // Within the grace period the launches count as members and nothing else happens.
    expect(await pools().reconcile(p.id)).toMatchObject({ summary: { adopted: 0, launched: 0 } });
    clock.advance(LAUNCH_GRACE_MS + 1000);
    const calls = runInstancesCalls();
    expect(await pools().reconcile(p.id)).toMatchObject({ outcome: 'ok', summary: { adopted: 1, launched: 1 } });
    expect(runInstancesCalls() - calls).toBe(1);
    const inst = instancesOf(p.id);
    expect(inst).toHaveLength(2);
    const rs = await rows(p.id);
    expect(rs.find((r) => r.id === row.id)!.external_id).toBe(orphan!.id);
    const relaunched = inst.find((i) => i.instanceId === rs.find((r) => r.id === neverLaunched.workstation.id)!.external_id)!;
    expect(relaunched.clientToken).toBe(neverLaunched.workstation.launchToken);
  });

  it('executeLaunch is claimed once: two at the same time launch one instance', async () => {
    const p = await newPool('twice', { minAvailable: 0 });
    const r = await b.database.db.transaction((tx) => pools().reservePendingLaunch(p.id, tx));
    if (!r.ok) throw new Error(r.reason);
    await Promise.all([pools().executeLaunch(r.workstation.id), pools().executeLaunch(r.workstation.id), pools().executeLaunch(r.workstation.id)]);
    expect(instancesOf(p.id)).toHaveLength(1);
    expect((await rows(p.id))[0]!.external_id).toBe(instancesOf(p.id)[0]!.instanceId);
  });

  it('capacity in one AZ: the launch lands in the next subnet, then the next instance type; the full subnet is tried last for a while', async () => {
    emu.control.setCapacity([{ availabilityZone: azOf.get(subnets[0]!)!, max: 0 }]);
    const p = await newPool('cap', { minAvailable: 1 }, { subnetIds: [subnets[0], subnets[1]] });
    const [first] = instancesOf(p.id);
    expect(first!.subnetId).toBe(subnets[1]);
    expect((await pools().get(p.id)).lastReconcileSummary!.capacityFailures).toEqual([{ subnetId: subnets[0], instanceType: 'g5.xlarge', at: expect.any(String) }]);
    expect((await pools().get(p.id)).lastReconcileOutcome).toBe('ok');
    // The next launch does not knock on the full AZ again.
    const errors = emu.control.callCounts().errorsByCode.InsufficientInstanceCapacity ?? 0;
    await b.database.db.execute(sql`update pools set min_available = 2 where id = ${p.id}`);
    await pools().reconcile(p.id);
    expect(emu.control.callCounts().errorsByCode.InsufficientInstanceCapacity ?? 0).toBe(errors);
    expect(instancesOf(p.id).map((i) => i.subnetId)).toEqual([subnets[1], subnets[1]]);
    // No g5.xlarge left in either AZ: the next type.
    emu.control.setCapacity([
      { availabilityZone: azOf.get(subnets[0]!)!, max: 0 },
      { availabilityZone: azOf.get(subnets[1]!)!, instanceType: 'g5.xlarge', max: 2 },
    ]);
    await b.database.db.execute(sql`update pools set min_available = 3 where id = ${p.id}`);
    await pools().reconcile(p.id);
    const third = instancesOf(p.id)[2]!;
    expect({ subnet: third.subnetId, type: third.instanceType }).toEqual({ subnet: subnets[1], type: 'g4dn.xlarge' });
  });

  it('repeated failures back off, the pool says why, and a success clears it', async () => {
    emu.control.setCapacity(subnets.map((s) => ({ availabilityZone: azOf.get(s)!, max: 0 })));
    const p = await newPool('full', { minAvailable: 1 });
    let pool = await pools().get(p.id);
    expect(pool).toMatchObject({ lastReconcileOutcome: 'error', consecutiveFailures: 1 });
    expect(pool.lastReconcileError).toMatch(/no capacity for "full-001".*InsufficientInstanceCapacity/);
    expect(pool.backoffUntil!.getTime() - clock.now().getTime()).toBe(30_000);
    expect((await rows(p.id)).map((r) => r.power_state)).toEqual(['terminated']);
    // Backing off: a poke does not call the cloud.
    const calls = runInstancesCalls();
    pools().poke(p.id);
    await pools().idle();
    expect(runInstancesCalls()).toBe(calls);
    pool = await pools().get(p.id);
    expect(pool).toMatchObject({ consecutiveFailures: 1, lastReconcileOutcome: 'error' });
    expect(pool.lastReconcileSummary!.notes!.join()).toMatch(/backing off until/);
    clock.advance(31_000);
    await pools().reconcile(p.id);
    pool = await pools().get(p.id);
    expect(pool.consecutiveFailures).toBe(2);
    expect(pool.backoffUntil!.getTime() - clock.now().getTime()).toBe(60_000);
    // Shown on the pool in the API.
    const res = await b.app.inject({ url: `/api/v1/pools/${p.id}`, headers: await adminHeaders() });
    expect(res.json()).toMatchObject({ consecutiveFailures: 2, backoffUntil: pool.backoffUntil!.toISOString(), lastReconcileOutcome: 'error', lastReconcileError: expect.stringContaining('InsufficientInstanceCapacity') });
    // Capacity is back; after the back-off the pool fills and forgets its failures.
    emu.control.setCapacity([]);
    clock.advance(61_000);
    await pools().reconcile(p.id);
    expect(await pools().get(p.id)).toMatchObject({ lastReconcileOutcome: 'ok', consecutiveFailures: 0, backoffUntil: null, lastReconcileError: null });
    expect(live(p.id)).toHaveLength(1);
  });

  it('a launch on login that fails ends terminated and the pool records the error', async () => {
    const p = await newPool('login', { minAvailable: 0 });
    emu.control.setCapacity(subnets.map((s) => ({ availabilityZone: azOf.get(s)!, max: 0 })));
    const r = await b.database.db.transaction((tx) => pools().reservePendingLaunch(p.id, tx));
    if (!r.ok) throw new Error(r.reason);
    await pools().executeLaunch(r.workstation.id);
    expect((await b.services.workstations.get(r.workstation.id)).powerState).toBe('terminated');
    expect(await pools().get(p.id)).toMatchObject({ consecutiveFailures: 1, lastReconcileOutcome: 'error', lastReconcileError: expect.stringContaining('no capacity') });
  });

  it('terminates the surplus above maxAvailable, never an assigned machine', async () => {
    const p = await newPool('scale', { minAvailable: 4 });
    emu.control.advanceTime(10_000);
    const rs = await rows(p.id);
    await assign(rs[1]!.id);
    await pools().update(systemActor, p.id, { minAvailable: 0, maxAvailable: 0 });
    await pools().idle();
    const after = await rows(p.id);
    expect(after.map((r) => r.power_state)).toEqual(['terminated', 'running', 'terminated', 'terminated']);
    expect(live(p.id).map((i) => i.instanceId)).toEqual([rs[1]!.external_id]);
    expect(await pools().availability(p.id)).toMatchObject({ total: 1, assigned: 1, available: 0 });
    const audit = await b.services.audit.list({ action: 'workstation.terminate' }, 10, 0);
    expect(audit.items.filter((a) => a.details.pool === 'scale')).toHaveLength(3);
  });

  it('a stale plan that names an assigned machine still does not terminate it (checked under the row lock)', async () => {
    const p = await newPool('stale', { minAvailable: 1 });
    const [row] = await rows(p.id);
    await assign(row!.id);
    const db = b.database.db;
    const repo = new PoolsRepository(db);
    const workstations = new WorkstationsRepository(db);
    const launcher = new PoolLauncher({ db, pools: repo, launches: new PoolLaunchesRepository(db), workstations, providers: new ProvidersRepository(db), registry: b.services.registry, audit: b.services.audit, clock, log: silent, follower: b.services.follower });
    const executor = new PlanExecutor({ db, pools: repo, workstations, launcher, audit: b.services.audit, clock, log: silent, follower: b.services.follower });
    const pool = await pools().get(p.id);
    const cloud = providerFor(emu);
    const report = await executor.execute(pool, { thresholds: { minAvailable: 0, maxAvailable: 0, maxTotal: null, window: null }, counts: { total: 1, available: 1, warm: 1, startable: 0, terminable: 1, assigned: 0, starting: 0, launching: 0, orphans: 0 }, actions: [{ kind: 'terminate', workstationIds: [row!.id] }], notes: [], backingOff: false }, cloud);
    expect(report).toMatchObject({ terminated: 0, errors: [] });
    expect(live(p.id)).toHaveLength(1);
  });

  it('the counts the job decides from (SQL) are the planner\'s counts of the members (JS)', async () => {
    const p = await newPool('mixed', { minAvailable: 6 });
    // The states below are written by hand over machines that are booting in the cloud: past its
    // deadline, the power follower lets them go instead of writing the cloud's answer over them.
    clock.advance(FOLLOW_DEADLINE_MS);
    await waitFor('the power follower to let the machines go', () => b.services.follower.following().length === 0, 20_000);
    const rs = await rows(p.id);
    await assign(rs[0]!.id);
    await b.database.db.execute(sql`update workstations set power_state = 'stopped' where id in (${rs[1]!.id}, ${rs[2]!.id})`);
    await b.database.db.execute(sql`update workstations set maintenance = true where id = ${rs[3]!.id}`);
    await b.database.db.execute(sql`update workstations set health = 'unhealthy' where id = ${rs[4]!.id}`);
    await b.database.db.execute(sql`update workstations set power_state = 'terminated' where id = ${rs[5]!.id}`);
    await b.database.db.transaction((tx) => pools().reservePendingLaunch(p.id, tx));
    clock.advance(LAUNCH_GRACE_MS);
    await b.database.db.transaction((tx) => pools().reservePendingLaunch(p.id, tx));
    const repo = new PoolsRepository(b.database.db);
    const now = clock.now();
    const since = new Date(now.getTime() - 60_000);
    const fromSql = (await repo.counts(p.id, since, new Date(now.getTime() - LAUNCH_GRACE_MS))).get(p.id)!;
    const snap = await repo.snapshot(p.id, since);
    expect(fromSql.counts).toEqual(countMembers(snap.members, now));
    expect(fromSql.counts).toEqual({ total: 7, available: 4, warm: 2, startable: 2, terminable: 2, assigned: 1, starting: 5, launching: 2, orphans: 1 });
    expect(fromSql.recentLaunches).toBe(snap.recentLaunches);
    const all = await repo.counts(null, since, new Date(now.getTime() - LAUNCH_GRACE_MS));
    expect(all.get(p.id)).toEqual(fromSql);
  });

  describe('two broker nodes on one database', () => {
    let other: { services: Services; database: Database; owned: boolean };
    beforeAll(async () => {
      const database = driver === 'pglite' ? b.database : await openPostgres({ url: b.testDb.url!, poolSize: 10, log: silent });
      const config = loadConfig({}, { STAGEDOOR_SECRET_KEY: SECRET_KEY, STAGEDOOR_NODE_ID: 'node-b' });
      other = { services: createServices({ config, database, clock, log: silent, metrics: new Metrics(() => database.poolStats()) }), database, owned: driver === 'postgres' };
    });
    afterAll(async () => {
      await other?.services.pools.stop();
      await other?.services.follower.stop();
      if (other?.owned) await other.database.close();
    });

    it('two reconcilers on the same pool at once never launch twice', async () => {
      const p = await newPool('race', { minAvailable: 0 });
      await b.database.db.execute(sql`update pools set min_available = 5 where id = ${p.id}`);
      const a = pools();
      const c = other.services.pools;
      await Promise.all([a.reconcileAll(), c.reconcileAll(), a.reconcile(p.id), c.reconcile(p.id), a.reconcileAll(), c.reconcileAll()]);
      a.poke(p.id);
      c.poke(p.id);
      await Promise.all([a.idle(), c.idle()]);
      expect(instancesOf(p.id)).toHaveLength(5);
      expect(await rows(p.id)).toHaveLength(5);
    });

    it('concurrent reservations from both nodes respect maxTotal', async () => {
      const p = await newPool('cap-total', { minAvailable: 0, maxTotal: 3 });
      const nodes = [pools(), other.services.pools];
      const dbs = [b.database.db, other.database.db];
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => dbs[i % 2]!.transaction((tx) => nodes[i % 2]!.reservePendingLaunch(p.id, tx))));
      expect(results.filter((r) => r.ok)).toHaveLength(3);
      expect(results.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.reason))).toEqual(Array(5).fill('pool "cap-total" is at its maximum of 3 machine(s)'));
    });

    it('a NOTIFY from another node makes this node reconcile the pool', async () => {
      const p = await newPool('notified', { minAvailable: 0 });
      await b.database.db.execute(sql`update pools set min_available = 1 where id = ${p.id}`);
      await other.database.notify(POKE_CHANNEL, `node-b-instance ${p.id}`);
      await waitFor('the launch triggered by the notification', () => instancesOf(p.id).length === 1, 30_000, 20);
    });
  });

  async function adminHeaders() {
    const { ADMIN_PASSWORD, login, as } = await import('../../../../test/support/broker.ts');
    return as(await login(b.app, 'admin', ADMIN_PASSWORD));
  }
});
