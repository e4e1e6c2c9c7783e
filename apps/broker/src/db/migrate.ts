import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { Database, Db } from './database.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

export interface MigrationStatus {
  expected: number;
  applied: number;
  upToDate: boolean;
}

/**
 * Apply pending migrations. Several broker nodes may start at once: an advisory lock makes the
 * others wait and then find nothing left to do.
 */
export async function runMigrations(database: Database): Promise<MigrationStatus> {
  await database.withAdvisoryLock('migrations', async (db) => {
    const config = { migrationsFolder: MIGRATIONS_FOLDER };
    if (database.kind === 'pglite') await migratePglite(db as unknown as PgliteDatabase<Record<string, never>>, config);
    else await migratePg(db as unknown as NodePgDatabase<Record<string, never>>, config);
  });
  return migrationStatus(database.db);
}

/** What `/readyz` asks: has this database applied every migration this build ships? */
export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  const files = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
  const last = files.at(-1)?.folderMillis ?? 0;
  const exists = await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations')::text as t`);
  if (!rowsOf<{ t: string | null }>(exists)[0]?.t) return { expected: files.length, applied: 0, upToDate: files.length === 0 };
  const r = await db.execute(
    sql`select count(*)::int as n, max(created_at)::text as newest from drizzle.__drizzle_migrations`,
  );
  const row = rowsOf<{ n: number; newest: string | null }>(r)[0];
  const applied = Number(row?.n ?? 0);
  return { expected: files.length, applied, upToDate: Number(row?.newest ?? 0) >= last };
}

/** node-postgres and PGlite both answer `execute` with `{ rows }`. */
export function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}
