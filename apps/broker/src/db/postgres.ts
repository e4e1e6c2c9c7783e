import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import * as schema from './schema/index.ts';
import { checkChannel, lockId, type Database, type Db } from './database.ts';

/** node-postgres pool for a real PostgreSQL server; required when more than one broker node runs. */
export async function openPostgres(opts: { url: string; poolSize: number; log: Logger; applicationName?: string }): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize,
    application_name: opts.applicationName ?? 'stagedoor',
    connectionTimeoutMillis: 10_000,
    // Only Stagedoor's own named statements are prepared (the hot lookups and the connect fast
    // path, all small index lookups). Left to choose, PostgreSQL re-plans them on every call
    // (0.2–0.6 ms each, most of their cost); their generic plans are the same index scans.
    options: '-c plan_cache_mode=force_generic_plan',
  });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', (err) => opts.log.warn({ err }, 'idle database connection failed'));
  // Neither may a checked-out one: pg-pool listens for errors only on idle clients, and a client
  // between two statements of a transaction, or holding a job's advisory lock while the job runs on
  // other connections, emits 'error' when the server goes away (a crash, a failover) — unhandled,
  // that ended the process. The error also fails the client's query or its next one, and pg-pool
  // discards a client that is no longer queryable when it is released, so nothing more is needed here.
  pool.on('connect', (client) => client.on('error', (err) => opts.log.debug({ err }, 'database connection in use failed')));
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

  // LISTEN needs a connection of its own that stays out of the pool (a pooled one would lose it).
  const listeners = new Map<string, Set<(payload: string) => void>>();
  let listenClient: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;
  let relistenTimer: NodeJS.Timeout | undefined;

  function listenConnection(): Promise<pg.Client> {
    if (listenClient) return Promise.resolve(listenClient);
    connecting ??= (async () => {
      const c = new pg.Client({ connectionString: opts.url, application_name: `${opts.applicationName ?? 'stagedoor'} listen`, connectionTimeoutMillis: 10_000 });
      c.on('notification', (msg) => {
        for (const fn of listeners.get(msg.channel) ?? []) fn(msg.payload ?? '');
      });
      c.on('error', (err) => {
        opts.log.warn({ err }, 'database LISTEN connection failed; reconnecting');
        lost(c);
      });
      c.on('end', () => lost(c));
      try {
        await c.connect();
        for (const channel of listeners.keys()) await c.query(`listen ${channel}`);
      } catch (err) {
        c.end().catch(() => undefined);
        throw err;
      }
      listenClient = c;
      return c;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  function lost(c: pg.Client): void {
    if (listenClient !== c) return;
    listenClient = undefined;
    c.end().catch(() => undefined);
    relisten(1000);
  }

  /**
   * LISTEN again until it works: the server may be away for a while (a restart, a failover), and a
   * node that gave up after one try would never hear another node's signal again. Signals sent
   * meanwhile are lost; the listeners' interval jobs cover that gap.
   */
  function relisten(delayMs: number): void {
    if (closed || listeners.size === 0 || relistenTimer) return;
    relistenTimer = setTimeout(() => {
      relistenTimer = undefined;
      if (closed || listenClient) return;
      listenConnection().then(
        () => opts.log.info({ channels: [...listeners.keys()] }, 'database LISTEN restored'),
        (err: unknown) => {
          opts.log.warn({ err, retryInMs: Math.min(delayMs * 2, 10_000) }, 'database LISTEN reconnect failed; trying again');
          relisten(Math.min(delayMs * 2, 10_000));
        },
      );
    }, delayMs);
    relistenTimer.unref();
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
    notify: async (channel, payload) => {
      await pool.query('select pg_notify($1, $2)', [checkChannel(channel), payload]);
    },
    listen: async (channel, onMessage) => {
      checkChannel(channel);
      let set = listeners.get(channel);
      if (!set) listeners.set(channel, (set = new Set()));
      set.add(onMessage);
      try {
        const c = await listenConnection();
        await c.query(`listen ${channel}`);
      } catch (err) {
        // Registered all the same: the connection is retried until it works, and LISTENs on every
        // registered channel when it does.
        opts.log.warn({ err, channel }, 'database LISTEN failed; retrying in the background');
        relisten(1000);
      }
      return async () => {
        set.delete(onMessage);
        if (set.size || listeners.get(channel) !== set) return;
        listeners.delete(channel);
        await listenClient?.query(`unlisten ${channel}`).catch(() => undefined);
      };
    },
    close: async () => {
      closed = true;
      clearTimeout(relistenTimer);
      const c = listenClient;
      listenClient = undefined;
      await c?.end().catch(() => undefined);
      await pool.end();
    },
  };
}
