import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import * as schema from './schema/index.ts';
import { lockId, type Database, type Db } from './database.ts';

/** node-postgres pool for a real PostgreSQL server; required when more than one broker node runs. */
export async function openPostgres(opts: { url: string; poolSize: number; log: Logger; applicationName?: string }): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    application_name: opts.applicationName ?? 'stagedoor',
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', (err) => opts.log.warn({ err }, 'idle database connection failed'));
  const client = await pool.connect().catch(async (err: unknown) => {
    await pool.end().catch(() => undefined);
    throw err;
  });
  client.release();
  const db = drizzle(pool, { schema }) as unknown as Db;

  async function onLockedClient<T>(key: string, wait: boolean, fn: (db: Db) => Promise<T>): Promise<{ acquired: true; value: T } | { acquired: false }> {
    const id = await lockId(key);
    const conn = await pool.connect();
    let broken: Error | undefined;
    try {
      if (wait) {
        await conn.query('select pg_advisory_lock($1::bigint)', [id]);
      } else {
        const r = await conn.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [id]);
        if (!r.rows[0]?.ok) return { acquired: false };
      }
      try {
        return { acquired: true, value: await fn(drizzle(conn, { schema }) as unknown as Db) };
      } finally {
        await conn.query('select pg_advisory_unlock($1::bigint)', [id]).catch((err: Error) => {
          broken = err; // destroy the connection below so the lock cannot linger on a pooled session
        });
      }
    } finally {
      conn.release(broken);
    }
  }

  return {
    kind: 'postgres',
    db,
    tryWithAdvisoryLock: (key, fn) => onLockedClient(key, false, () => fn()),
    withAdvisoryLock: async (key, fn) => {
      const r = await onLockedClient(key, true, fn);
      if (!r.acquired) throw new Error('unreachable: waiting advisory lock not acquired');
      return r.value;
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => pool.end(),
  };
}
