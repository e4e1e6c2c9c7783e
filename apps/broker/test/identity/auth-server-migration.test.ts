import fs from 'node:fs';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.ts';
import { rowsOf, runMigrations } from '../../src/db/migrate.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { migrateFrom, migrationsBefore, openUnmigrated } from '../migration-upgrade.ts';

describe.each(DRIVERS)('upgrading auth servers stored before the transport settings [%s]', { timeout: 120_000 }, (driver) => {
  let database: Database;
  const dirs: string[] = [];
  afterAll(async () => {
    await database?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('existing servers keep their behaviour: plain ldap:// gets allowInsecure, RADIUS keeps accepting answers without Message-Authenticator', async () => {
    database = await openUnmigrated(driver);
    const before = migrationsBefore('auth_server_transport');
    dirs.push(before);
    await migrateFrom(database, before);

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
