import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import { expect } from 'vitest';
import type { Database } from '../src/db/database.ts';
import { MIGRATIONS_FOLDER } from '../src/db/migrate.ts';
import { openPglite } from '../src/db/pglite.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { createPostgresDatabase, silentLog, type Driver } from '../../../test/support/database.ts';
import { TEST_DB_TIME_ZONE } from '../../../test/support/postgres-server.ts';

/**
 * Upgrade tests of one migration: a database migrated up to just before it, rows written the old
 * way, then the migration run on them. Found by its tag's name, not its number (numbers change when
 * branches are merged; the name stays). The caller removes the folder.
 */
export function migrationsBefore(tag: string): string {
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

/** An empty database of the driver, not migrated. */
export async function openUnmigrated(driver: Driver): Promise<Database> {
  if (driver === 'pglite') return openPglite({ timeZone: TEST_DB_TIME_ZONE });
  return openPostgres({ url: await createPostgresDatabase(), poolSize: 2, log: silentLog });
}

/** Runs the migrations of `folder` (from migrationsBefore) on the database. */
export async function migrateFrom(database: Database, folder: string): Promise<void> {
  if (database.kind === 'pglite') await migratePglite(database.db as unknown as PgliteDatabase<Record<string, never>>, { migrationsFolder: folder });
  else await migratePg(database.db as unknown as NodePgDatabase<Record<string, never>>, { migrationsFolder: folder });
}
