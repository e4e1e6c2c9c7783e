import fs from 'node:fs';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { isUniqueViolation } from '../../src/domain/errors.ts';
import { rowsOf, runMigrations } from '../../src/db/migrate.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { migrateFrom, migrationsBefore, openUnmigrated } from '../migration-upgrade.ts';

describe.each(DRIVERS)('upgrading an inventory that overlapping providers doubled [%s]', { timeout: 120_000 }, (driver) => {
  let database: Database;
  const dirs: string[] = [];
  afterAll(async () => {
    await database?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('the first provider keeps each instance, the copies lose their scope, and the constraint holds from then on', async () => {
    database = await openUnmigrated(driver);
    const before = migrationsBefore('instance_owner_and_health');
    dirs.push(before);
    await migrateFrom(database, before);

    const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await database.db.execute(query));
    const provider = async (name: string, at: string) =>
      (await q<{ id: string }>(sql`insert into providers (name, kind, region, endpoint, credentials_mode, created_at) values (${name}, 'aws-ec2', 'us-east-1', 'http://127.0.0.1:4599', 'default-chain', ${at}::timestamptz) returning id`))[0]!.id;
    const sandbox = await provider('sandbox', '2026-01-01T00:00:00Z');
    const main = await provider('aws-main', '2026-02-01T00:00:00Z');
    const ws = async (providerId: string, externalId: string | null, name: string) =>
      database.db.execute(sql`insert into workstations (provider_id, external_id, launch_token, name, health, agent_last_seen_at) values (${providerId}, ${externalId}, ${externalId ? null : `t-${name}`}, ${name}, ${name === 'agent' ? 'healthy' : 'unknown'}, ${name === 'agent' ? new Date() : null})`);
    await ws(sandbox, 'i-1', 'one');
    await ws(main, 'i-1', 'one-again');
    await ws(main, 'i-2', 'agent');
    await ws(main, null, 'launching');

    expect((await runMigrations(database)).upToDate).toBe(true);
    const rows = await q<{ name: string; instance_scope: string | null; health_source: string | null }>(sql`select name, instance_scope, health_source from workstations order by name`);
    const scope = 'ec2 http://127.0.0.1:4599 us-east-1';
    expect(rows).toEqual([
      { name: 'agent', instance_scope: scope, health_source: 'agent' },
      { name: 'launching', instance_scope: scope, health_source: null },
      { name: 'one', instance_scope: scope, health_source: null },
      { name: 'one-again', instance_scope: null, health_source: null },
    ]);
    // From now on a second row for an owned instance is refused, and new rows get their scope.
    const refused = await ws(sandbox, 'i-2', 'two').then(() => null, (err: unknown) => err);
    expect(isUniqueViolation(refused, 'workstations_instance_scope_external_key')).toBe(true);
    await ws(sandbox, 'i-3', 'three');
    expect(await q(sql`select instance_scope from workstations where name = 'three'`)).toEqual([{ instance_scope: scope }]);
  });
});
