import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationStatus, rowsOf, runMigrations } from '../src/db/migrate.ts';
import { isUniqueViolation } from '../src/domain/errors.ts';
import { assignments, gateways, grants, connections, providers, users, workstations } from '../src/db/schema/index.ts';
import { createTestDatabase, DRIVERS, type TestDatabase } from '../../../test/support/database.ts';
import { TEST_DB_TIME_ZONE } from '../../../test/support/postgres-server.ts';
import { waitFor } from '../../../test/support/ports.ts';

describe.each(DRIVERS)('storage [%s]', (driver) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(driver);
  });
  afterAll(async () => t?.close());

  it(`runs on ${driver} in a non-UTC time zone, and reports it`, async () => {
    const r = rowsOf<{ tz: string; v: string }>(await t.database.db.execute(sql`select current_setting('TimeZone') as tz, version() as v`));
    expect(r[0]!.tz).toBe(TEST_DB_TIME_ZONE);
    expect(t.database.kind).toBe(driver);
    console.log(`[storage] driver=${driver} server=${r[0]!.v.split(' on ')[0]} zone=${r[0]!.tz}`);
  });

  it('has applied every migration, and applying again is a no-op', async () => {
    const before = await migrationStatus(t.database.db);
    expect(before.upToDate).toBe(true);
    expect(before.applied).toBe(before.expected);
    const again = await runMigrations(t.database);
    expect(again.applied).toBe(before.applied);
  });

  it('keeps timestamps exact across the zone (timestamptz)', async () => {
    const at = new Date('2026-03-08T10:30:00.123Z');
    const [u] = await t.database.db.insert(users).values({ username: `tz-${driver}`, createdAt: at, updatedAt: at }).returning();
    expect(u!.createdAt.toISOString()).toBe(at.toISOString());
  });

  describe('invariants live in the schema', () => {
    let userA: string, userB: string, workstationId: string, providerId: string;
    beforeAll(async () => {
      const db = t.database.db;
      const [a] = await db.insert(users).values({ username: 'inv-a' }).returning();
      const [b] = await db.insert(users).values({ username: 'inv-b' }).returning();
      const [p] = await db.insert(providers).values({ name: 'racks', kind: 'static', credentialsMode: 'none' }).returning();
      const [w] = await db.insert(workstations).values({ providerId: p!.id, externalId: 'edit-001', name: 'edit-001' }).returning();
      userA = a!.id;
      userB = b!.id;
      providerId = p!.id;
      workstationId = w!.id;
    });

    it('refuses a second active assignment of one workstation', async () => {
      const db = t.database.db;
      await db.insert(assignments).values({ userId: userA, workstationId, mode: 'floating' });
      const second = db.insert(assignments).values({ userId: userB, workstationId, mode: 'floating' });
      const err = await second.then(() => null, (e: unknown) => e);
      expect(isUniqueViolation(err, 'assignments_active_workstation_key')).toBe(true);
    });

    it('allows a new assignment once the old one is released', async () => {
      const db = t.database.db;
      await db
        .update(assignments)
        .set({ state: 'released', releasedAt: new Date(), releaseReason: 'user' })
        .where(sql`${assignments.workstationId} = ${workstationId} and ${assignments.state} = 'active'`);
      await expect(db.insert(assignments).values({ userId: userB, workstationId, mode: 'floating' })).resolves.toBeDefined();
    });

    it('refuses usernames that differ only in case', async () => {
      const err = await t.database.db.insert(users).values({ username: 'INV-A' }).then(() => null, (e: unknown) => e);
      expect(isUniqueViolation(err, 'users_username_lower_key')).toBe(true);
    });

    it('refuses states outside the enum', async () => {
      const err = await t.database.db
        .insert(workstations)
        .values({ providerId, externalId: 'x-1', name: 'x-1', powerState: 'exploded' })
        .then(() => null, (e: unknown) => e);
      expect(err).not.toBeNull();
    });

    it('refuses two live grants on one gateway port', async () => {
      const db = t.database.db;
      const [g] = await db.insert(gateways).values({ name: 'gw1', publicAddress: 'gw.example.test', portRangeStart: 40000, portRangeEnd: 40100, credentialHash: 'h1' }).returning();
      const [c] = await db.insert(connections).values({ userId: userA, workstationId, protocol: 'rdp' }).returning();
      const grant = { connectionId: c!.id, gatewayId: g!.id, gatewayCluster: 'default', clientAddress: '203.0.113.7', targetAddress: '10.0.1.5', targetPort: 3389, gatewayPort: 40001, validUntil: new Date(Date.now() + 60_000) };
      await db.insert(grants).values(grant);
      const err = await db.insert(grants).values(grant).then(() => null, (e: unknown) => e);
      expect(isUniqueViolation(err)).toBe(true);
    });
  });

  it('serialises holders of one advisory lock and lets others run', async () => {
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = t.database.tryWithAdvisoryLock('test:lock', async () => {
      order.push('first in');
      await held;
      order.push('first out');
    });
    // Wait for the condition (the first holds the lock), not a fixed time: on a loaded machine the
    // first may take longer than any fixed pause to get its connection and the lock.
    await waitFor('the first holder to be in', () => order.includes('first in'), 30_000, 5);
    const second = await t.database.tryWithAdvisoryLock('test:lock', async () => order.push('second ran'));
    const other = await t.database.tryWithAdvisoryLock('test:other', async () => 'ran');
    release();
    await first;
    expect(second.acquired).toBe(false);
    expect(other).toEqual({ acquired: true, value: 'ran' });
    expect(order).toEqual(['first in', 'first out']);
    const third = await t.database.tryWithAdvisoryLock('test:lock', async () => 'again');
    expect(third).toEqual({ acquired: true, value: 'again' });
  });
});
