import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { inject } from 'vitest';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { runMigrations } from '../../apps/broker/src/db/migrate.ts';
import { openPglite } from '../../apps/broker/src/db/pglite.ts';
import { openPostgres } from '../../apps/broker/src/db/postgres.ts';
import { TEST_DB_TIME_ZONE } from './postgres-server.ts';

/** Storage and service tests run once per driver; the test names carry it, so the output shows both. */
export const DRIVERS = ['pglite', 'postgres'] as const;
export type Driver = (typeof DRIVERS)[number];

export interface TestDatabase {
  database: Database;
  /** For postgres: the URL of this test's own database (e.g. for broker processes). */
  url: string | null;
  close(): Promise<void>;
}

export const silentLog = pino({ level: 'silent' });

/** A fresh, migrated database: in-memory PGlite, or a new database on the harness's server. */
export async function createTestDatabase(driver: Driver): Promise<TestDatabase> {
  if (driver === 'pglite') {
    const database = await openPglite({ timeZone: TEST_DB_TIME_ZONE });
    await runMigrations(database);
    return { database, url: null, close: () => database.close() };
  }
  const url = await createPostgresDatabase();
  const database = await openPostgres({ url, poolSize: 10, log: silentLog });
  await runMigrations(database);
  return { database, url, close: () => database.close() };
}

/** A new empty database on the harness's server; returns its URL. */
export async function createPostgresDatabase(): Promise<string> {
  const serverUrl = inject('postgresUrl');
  const name = `sd_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
