import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';
import { waitFor } from '../../../../test/support/ports.ts';

/**
 * The connect flow against the EC2 emulator: standby, launch on login, refill, release, scale-in.
 */
describe('pool provisioning and the connect flow, with the EC2 emulator', () => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let users: MintedUser[];
  let poolId: string;
  let providerId: string;

  const call = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  /** The machines boot (emulated time), the broker learns it (sync), the pool reconciles. */
  const settle = async () => {
    emu.control.advanceTime(10_000);
    await b.services.providers.syncNow(systemActor, providerId);
    return call('POST', `/api/v1/pools/${poolId}/reconcile`);
  };
  const availability = async () => (await call('GET', `/api/v1/pools/${poolId}`)).availability;

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: 'ef'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
    providerId = (await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } })).id;
    const pool = await call('POST', '/api/v1/pools', {
      name: 'edit',
      providerId,
      template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.2xlarge'], subnetIds: subnets.slice(0, 2), namePattern: 'edit-{seq:03}' },
      minAvailable: 3,
      maxAvailable: 4,
      maxTotal: 10,
      launchRatePerMinute: 100,
    });
    poolId = pool.id;
    users = await mintUsers(b.database, 5, 'artist', 'Artists');
    const groups = (await call('GET', '/api/v1/groups')).items as { id: string; name: string }[];
    await call('POST', '/api/v1/policies', { name: 'artists', groupIds: [groups.find((g) => g.name === 'Artists')!.id], pools: [{ poolId }], assignmentMode: 'floating', launchOnLogin: true });
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('a pool with minAvailable 3 fills to 3 available, spread over the subnets', async () => {
    await call('POST', `/api/v1/pools/${poolId}/reconcile`);
    await settle();
    expect(await availability()).toMatchObject({ total: 3, available: 3, assigned: 0 });
    const subnets = new Set(emu.control.instances().map((i) => i.subnetId));
    expect(subnets.size).toBe(2);
  });

  it('5 users connect at once: 5 distinct machines, 2 launched on login; the pool refills to 3 available', async () => {
    const results = await Promise.all(users.map((u) => b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(u), payload: { poolId } })));
    expect(results.map((r) => r.statusCode)).toEqual([201, 201, 201, 201, 201]);
    const machines = results.map((r) => r.json().workstation.id);
    expect(new Set(machines).size).toBe(5);
    const launched = results.filter((r) => ['launching', 'booting'].includes(r.json().progress.stage));
    expect(launched).toHaveLength(2);
    expect(results.filter((r) => r.json().state === 'ready')).toHaveLength(3);
    // The launches on login reach the cloud after the commit; then the machines boot.
    await new Promise((r) => setTimeout(r, 500));
    await settle();
    await settle();
    const conns = await Promise.all(results.map((r) => b.app.inject({ url: `/api/v1/connections/${r.json().id}`, headers: bearer(users[results.indexOf(r)]!) })));
    for (const c of conns) {
      expect(c.json()).toMatchObject({ state: 'ready', progress: { stage: 'ready' } });
      expect(c.json().instructions.file).toMatch(/full address:s:172\.31\.\d+\.\d+:3389/);
    }
    expect(await availability()).toMatchObject({ assigned: 5, available: 3, total: 8 });
  });

  it('releases return machines, and the surplus above maxAvailable is terminated — never an assigned one', async () => {
    const open = rowsOf<{ id: string; user_id: string }>(await b.database.db.execute(sql`select c.id, c.user_id from connections c where c.state in ('starting','ready','connected')`));
    for (const c of open.slice(0, 4)) {
      const u = users.find((x) => x.id === c.user_id)!;
      expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/connections/${c.id}`, headers: bearer(u) })).statusCode).toBe(204);
    }
    // A release pokes the pool's reconciler at once: the surplus above maxAvailable (4) goes.
    await waitFor('the pool to scale in', async () => (await availability()).available === 4, 30_000);
    await settle();
    expect(await availability()).toMatchObject({ assigned: 1, available: 4, total: 5 });
    const gone = emu.control.instances().filter((i) => i.state !== 'running');
    expect(gone.map((i) => i.state).every((s) => s === 'terminated' || s === 'shutting-down')).toBe(true);
    expect(gone).toHaveLength(3);
    const assignedStill = rowsOf<{ power_state: string }>(await b.database.db.execute(sql`select w.power_state from assignments a join workstations w on w.id = a.workstation_id where a.state = 'active'`));
    expect(assignedStill.map((r) => r.power_state)).toEqual(['running']);
  });
});
