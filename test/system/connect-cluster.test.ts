import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { rowsOf } from '../../apps/broker/src/db/migrate.ts';
import { openPostgres } from '../../apps/broker/src/db/postgres.ts';
import { createPostgresDatabase, silentLog } from '../support/database.ts';
import { fetchInject, httpLogin } from '../support/http.ts';
import { startBrokerNodes, type BrokerNode } from '../support/broker-nodes.ts';
import { seedRackPool } from '../support/racks.ts';
import { mintUsers, type MintedUser } from '../support/studio.ts';

const PASSWORD = 'race-admin-password';

describe('200 users race for 100 machines [postgres, two broker processes]', () => {
  const nodes: BrokerNode[] = [];
  let database: Database;
  let users: MintedUser[];
  let poolId: string;

  beforeAll(async () => {
    const url = await createPostgresDatabase();
    nodes.push(...(await startBrokerNodes(['race-a', 'race-b'], { DATABASE_URL: url, STAGEDOOR_ADMIN_PASSWORD: PASSWORD, STAGEDOOR_LOG_LEVEL: 'warn', STAGEDOOR_DB_POOL_SIZE: '20' })));
    const admin = await httpLogin(nodes[0]!.base, 'admin', PASSWORD);
    poolId = (await seedRackPool(fetchInject(nodes[0]!.base), admin, { hosts: 100, groupName: 'Crowd' })).pool.id;
    database = await openPostgres({ url, poolSize: 2, log: silentLog });
    users = await mintUsers(database, 200, 'crowd', 'Crowd');
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.stop('SIGKILL')));
    await database?.close();
  });

  it('exactly 100 distinct assignments across both nodes, no double assignment in the database', async () => {
    const results = await Promise.all(
      users.map((u, i) =>
        fetch(`${nodes[i % 2]!.base}/api/v1/connections`, { method: 'POST', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ poolId }) }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { workstation?: { id: string }; error?: { code: string } },
        })),
      ),
    );
    const ok = results.filter((r) => r.status === 201);
    expect(ok).toHaveLength(100);
    expect(results.filter((r) => r.status === 409 && r.body.error?.code === 'no_desktop_available')).toHaveLength(100);
    expect(new Set(ok.map((r) => r.body.workstation!.id)).size).toBe(100);
    const db = rowsOf<{ active: number; distinct: number }>(await database.db.execute(sql`select count(*)::int as active, count(distinct workstation_id)::int as distinct from assignments where state = 'active'`))[0]!;
    expect(db).toEqual({ active: 100, distinct: 100 });
  });
});
