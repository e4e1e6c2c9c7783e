import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { MIGRATIONS_FOLDER, rowsOf, runMigrations } from '../../src/db/migrate.ts';
import { openPglite } from '../../src/db/pglite.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { createPostgresDatabase, DRIVERS, silentLog, type Driver } from '../../../../test/support/database.ts';
import { TEST_DB_TIME_ZONE } from '../../../../test/support/postgres-server.ts';

/** The migrations folder as it was before the migration tagged `*_<tag>` (the lead renumbers them; the name stays). */
function migrationsBefore(tag: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-migrations-'));
  fs.cpSync(MIGRATIONS_FOLDER, dir, { recursive: true });
  const journalFile = path.join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(fs.readFileSync(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((e) => e.tag.endsWith(`_${tag}`));
  expect(at, `a migration tagged *_${tag}`).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, at);
  fs.writeFileSync(journalFile, JSON.stringify(journal));
  return dir;
}

async function open(driver: Driver): Promise<Database> {
  if (driver === 'pglite') return openPglite({ timeZone: TEST_DB_TIME_ZONE });
  return openPostgres({ url: await createPostgresDatabase(), poolSize: 2, log: silentLog });
}

describe.each(DRIVERS)('upgrading auth servers stored before the transport settings [%s]', { timeout: 120_000 }, (driver) => {
  let database: Database;
  const dirs: string[] = [];
  afterAll(async () => {
    await database?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('existing servers keep their behaviour: plain ldap:// gets allowInsecure, RADIUS keeps accepting answers without Message-Authenticator', async () => {
    database = await open(driver);
    const before = migrationsBefore('auth_server_transport');
    dirs.push(before);
    if (database.kind === 'pglite') await migratePglite(database.db as unknown as PgliteDatabase<Record<string, never>>, { migrationsFolder: before });
    else await migratePg(database.db as unknown as NodePgDatabase<Record<string, never>>, { migrationsFolder: before });

    const ldap = (urls: string[], startTls: boolean) => ({ urls, startTls, userSearchBase: 'dc=x', userFilter: '(uid={username})', groupMembership: 'group-of-names', connectTimeoutMs: 5000, searchTimeoutMs: 10000 });
    const rows: [string, string, object][] = [
      ['plain', 'ldap', ldap(['ldaps://dc1.example', 'ldap://dc2.example'], false)],
      ['starttls', 'ldap', ldap(['ldap://dc1.example'], true)],
      ['ldaps', 'ldap', ldap(['ldaps://dc1.example'], false)],
      ['radius', 'radius', { servers: [{ host: '10.0.0.5', port: 1812 }], timeoutMs: 3000, retries: 2, nasIdentifier: 'stagedoor', secondFactorRequest: 'password' }],
    ];
    for (const [i, [name, kind, config]] of rows.entries()) {
      await database.db.execute(
        sql`insert into auth_servers (name, kind, purpose, position, config) values (${name}, ${kind}, ${kind === 'radius' ? 'second-factor' : 'primary'}, ${i + 1}, ${JSON.stringify(config)}::jsonb)`,
      );
    }

    const status = await runMigrations(database);
    expect(status.upToDate).toBe(true);
    const after = Object.fromEntries(
      rowsOf<{ name: string; config: Record<string, unknown> }>(await database.db.execute(sql`select name, config from auth_servers`)).map((r) => [r.name, r.config]),
    );
    expect(after.plain).toMatchObject({ allowInsecure: true, startTls: false });
    expect(after.starttls).toMatchObject({ allowInsecure: false, startTls: true });
    expect(after.ldaps).toMatchObject({ allowInsecure: false });
    expect(after.radius).toMatchObject({ requireMessageAuthenticator: false, servers: [{ host: '10.0.0.5', port: 1812 }] });
  });
});
