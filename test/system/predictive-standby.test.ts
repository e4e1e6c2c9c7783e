import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatePool } from '@stagedoor/contract';
import { DEMO_AMI_ID, startEc2Emulator, type Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../apps/broker/src/db/migrate.ts';
import { ManualClock } from '../../apps/broker/src/domain/clock.ts';
import { systemActor } from '../../apps/broker/src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { DRIVERS } from '../support/database.ts';
import { TEST_ACCESS_KEY, TEST_SECRET } from '../support/ec2.ts';

/**
 * Issue 19 acceptance: a predictive pool learns its Monday 09:00 rush from three past weeks of
 * arrivals and raises its warm standby *before* the rush — launching in time for the machines to be
 * running at 09:00 — on the EC2 emulator's clock, which is the broker's ManualClock. Nothing sleeps:
 * the test moves the clock and runs the reconciler job's pass.
 */
const MIN = 60_000;
const WEEK = 7 * 24 * 60 * MIN;
const PEAK = Date.parse('2026-11-30T09:00:00Z'); // a Monday; Europe/London is on GMT
const RUSH = 6;

describe.each(DRIVERS)('predictive standby on the emulator clock [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let clock: ManualClock;
  let poolId: string;

  beforeAll(async () => {
    clock = new ManualClock(new Date(PEAK - 30 * MIN));
    // Boots of 60 s on the shared clock: the pool's bootSeconds below says the same.
    emu = await startEc2Emulator({ clock: () => clock.now().getTime(), delays: { pendingMs: 60_000, stoppingMs: 5_000, shuttingDownMs: 5_000 }, onError: () => undefined });
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    const provider = await b.services.providers.create(systemActor, {
      kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, tagFilter: {}, syncIntervalSeconds: 300, enabled: true,
      credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET },
    });
    const subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
    const pool = await b.services.pools.create(
      systemActor,
      CreatePool.parse({
        name: 'edit', providerId: provider.id, timeZone: 'Europe/London', minAvailable: 0, launchRatePerMinute: 100,
        // Lead 0: the warm target looks exactly one boot + tick ahead, so the rise is timed to the
        // boot (the default 10-min start lead is in the planner's table tests and the bench).
        standby: { mode: 'predictive', quantile: 0.9, bootSeconds: 60, leadMinutes: 0 },
        template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets, namePattern: 'edit-{seq:03}' },
      }),
    );
    poolId = pool.id;
    await b.services.pools.idle();
    // Three past Mondays: RUSH artists took a machine between 09:00:10 and 09:00:40, and one at 14:00.
    // (The pool's history starts when it was created: it is dated back to before them.)
    await b.database.db.execute(sql`update pools set created_at = ${new Date(PEAK - 4 * WEEK).toISOString()} where id = ${poolId}`);
    for (let k = 1; k <= 3; k++) {
      const times = [...Array.from({ length: RUSH }, (_, i) => PEAK - k * WEEK + 10_000 + i * 5_000), PEAK - k * WEEK + 5 * 60 * MIN];
      for (const t of times) {
        await b.database.db.execute(sql`insert into assignments (pool_id, mode, state, since, released_at, release_reason)
          values (${poolId}, 'floating', 'released', ${new Date(t).toISOString()}, ${new Date(t + 3_600_000).toISOString()}, 'logout')`);
      }
    }
  });
  afterAll(async () => {
    await b?.services.pools.stop();
    await b?.close();
    await emu?.close();
  });

  const live = () => emu.control.instances().filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down');
  const tick = async (to: number) => {
    clock.set(to);
    await b.services.pools.reconcileAll();
    await b.services.pools.idle();
  };

  it('keeps no standby at 08:30, raises it to the rush before 09:00, and the machines run by 09:00', async () => {
    await tick(PEAK - 30 * MIN);
    expect(live()).toHaveLength(0);
    let pool = await b.services.pools.get(poolId);
    expect(pool.lastReconcileSummary?.standby).toMatchObject({ mode: 'predictive', warm: 0 });

    // From 08:58 the clock moves in 5 s steps, the reconciler job's pass on each 15 s tick. The
    // standby rises one boot + tick (75 s) ahead of each learned arrival (09:00:10, :15, … :35),
    // so each arrival of the rush finds its machine running on the emulator.
    const arrivals = Array.from({ length: RUSH }, (_, i) => PEAK + 10_000 + i * 5_000);
    const seen: Record<string, number> = {};
    for (let t = PEAK - 2 * MIN; t <= PEAK + MIN; t += 5_000) {
      if (t % 15_000 === 0) await tick(t);
      else clock.set(t);
      seen[new Date(t).toISOString().slice(11, 19)] = live().length;
      if (t === PEAK - 30_000) {
        const standby = (await b.services.pools.get(poolId)).lastReconcileSummary?.standby;
        expect(standby).toMatchObject({ mode: 'predictive', warm: RUSH, available: RUSH });
        expect(standby?.reason).toMatch(/^6 warm: q0.9 of arrivals in the next 75 s .* at mon 08:59 Europe\/London over the last 3 week\(s\) \[6, 6, 6\] = 6/);
      }
      const i = arrivals.indexOf(t);
      if (i >= 0) {
        // The arrival takes a running machine out of the standby. (Marked in maintenance, which removes
        // it from the standby as an assignment does, without a user and a connect flow.)
        const free = rowsOf<{ id: string }>(await b.database.db.execute(sql`select id from workstations where pool_id = ${poolId} and power_state = 'running' and not maintenance limit 1`));
        expect(free, `a running machine for arrival ${i + 1} of the rush`).toHaveLength(1);
        await b.database.db.execute(sql`update workstations set maintenance = true where id = ${free[0]!.id}`);
      }
    }
    // Nothing before the rush came within 75 s; the first machine before 09:00, all six by 09:00; the
    // rush took them all, so nothing was left over to stop.
    expect(seen['08:58:00']).toBe(0);
    expect(seen['08:58:45']).toBe(0);
    expect(seen['08:59:00']).toBeGreaterThanOrEqual(1);
    expect(seen['09:00:00']).toBe(RUSH);
    expect(emu.control.instances().filter((i) => i.state === 'stopped' || i.state === 'stopping')).toHaveLength(0);
    pool = await b.services.pools.get(poolId);
    expect(pool.lastReconcileSummary?.standby?.mode).toBe('predictive');

    // The API shows the same decision and today's forecast against what happened.
    const session = await login(b.app, 'admin', ADMIN_PASSWORD);
    const res = await b.app.inject({ method: 'GET', url: `/api/v1/pools/${poolId}/forecast`, headers: as(session) });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.target).toMatchObject({ mode: 'predictive' });
    expect(body.today).toHaveLength(96);
    expect(body.today.find((s: { local: string }) => s.local === '09:00')).toMatchObject({ forecast: RUSH, actual: 0 });
    expect(body.today.find((s: { local: string }) => s.local === '14:00')).toMatchObject({ forecast: 1 });
    expect(body.today.find((s: { local: string }) => s.local === '08:00')).toMatchObject({ forecast: 0, actual: 0 });
  });

  it('stops warm standby above the target: machines back in the standby at 09:05 with nobody expected are stopped', async () => {
    // The six artists "leave" (their machines come back to the standby, running); the forecast expects nobody.
    await b.database.db.execute(sql`update workstations set maintenance = false where pool_id = ${poolId}`);
    await tick(PEAK + 5 * MIN);
    expect(emu.control.instances().filter((i) => i.state === 'stopping' || i.state === 'stopped')).toHaveLength(RUSH);
    const pool = await b.services.pools.get(poolId);
    expect(pool.lastReconcileSummary).toMatchObject({ stopped: RUSH, standby: { warm: 0 } });
  });

  it('refuses a bad standby setting with a 400 naming the field, and writes nothing', async () => {
    const session = await login(b.app, 'admin', ADMIN_PASSWORD);
    const res = await b.app.inject({ method: 'PATCH', url: `/api/v1/pools/${poolId}`, headers: as(session), payload: { standby: { mode: 'predictive', quantile: 1.5 } } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/standby\.quantile/);
    expect((await b.services.pools.get(poolId)).standby).toMatchObject({ mode: 'predictive', quantile: 0.9, bootSeconds: 60 });
  });
});
