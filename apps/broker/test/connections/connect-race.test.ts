import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, createTestBroker, login, type TestBroker } from '../../../../test/support/broker.ts';
import { seedRackPool } from '../../../../test/support/racks.ts';
import { bearer, mintUsers, type MintedUser } from '../../../../test/support/studio.ts';

/** No machine ever goes to two users, whatever the concurrency (the database says so, not luck). */
describe('200 users race for a pool of 100 machines [pglite, one broker]', () => {
  let b: TestBroker;
  let users: MintedUser[];
  let poolId: string;
  beforeAll(async () => {
    b = await createTestBroker('pglite');
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const seeded = await seedRackPool((o) => b.app.inject(o as never) as never, admin, { hosts: 100, groupName: 'Crowd' });
    poolId = seeded.pool.id;
    users = await mintUsers(b.database, 200, 'crowd', 'Crowd');
  });
  afterAll(async () => b?.close());

  it('exactly 100 distinct assignments; the other 100 are told no desktop is available', async () => {
    const results = await Promise.all(users.map((u) => b.app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(u), payload: { poolId } })));
    const ok = results.filter((r) => r.statusCode === 201);
    const refused = results.filter((r) => r.statusCode !== 201);
    expect(ok).toHaveLength(100);
    expect(refused).toHaveLength(100);
    for (const r of refused) {
      expect(r.statusCode).toBe(409);
      expect(r.json().error).toMatchObject({ code: 'no_desktop_available', message: expect.stringContaining('no desktop available') });
    }
    const machines = new Set(ok.map((r) => r.json().workstation.id));
    expect(machines.size).toBe(100);
    const db = rowsOf<{ active: number; distinct: number; doubled: number }>(
      await b.database.db.execute(sql`
        select count(*)::int as active, count(distinct workstation_id)::int as distinct,
          (select count(*)::int from (select workstation_id from assignments where state = 'active' group by workstation_id having count(*) > 1) d) as doubled
        from assignments where state = 'active'`),
    )[0]!;
    expect(db).toEqual({ active: 100, distinct: 100, doubled: 0 });
  });
});
