// Profiling aid: the connect call in-process (app.inject) on PostgreSQL, to see where time goes.
// node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile/connect-inprocess.ts
import pino from 'pino';
import pg from 'pg';
import { loadConfig } from '../../apps/broker/src/config/config.ts';
import { runMigrations } from '../../apps/broker/src/db/migrate.ts';
import { openPostgres } from '../../apps/broker/src/db/postgres.ts';
import { assembleBroker } from '../../apps/broker/src/main.ts';
import { startPostgres } from '../../test/support/postgres-server.ts';
import { seedRackPool } from '../../test/support/racks.ts';
import { mintUsers } from '../../test/support/studio.ts';

const N = Number(process.argv[2] ?? 500);
const server = await startPostgres({ settings: ['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track_planning=on'] });
try {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  await c.query('create database prof');
  await c.end();
  const url = server.url.replace(/\/postgres$/, '/prof');
  const log = pino({ level: 'warn' });
  const database = await openPostgres({ url, poolSize: 20, log });
  await runMigrations(database);
  const config = loadConfig({}, { STAGEDOOR_ADMIN_PASSWORD: 'profile-password', STAGEDOOR_JOBS: 'off', DATABASE_URL: url });
  const broker = await assembleBroker(config, database, { log });
  const res = await broker.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'admin', password: 'profile-password' } });
  const admin = { cookie: `stagedoor_session=${res.cookies[0]!.value}`, csrf: res.json().csrfToken, userId: '' };
  const { pool } = await seedRackPool((o) => broker.app.inject(o as never) as never, admin, { hosts: N, groupName: 'Prof' });
  const users = await mintUsers(database, N, 'prof', 'Prof');
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < users.length) {
        const u = users[next++]!;
        const r = await broker.app.inject({ method: 'POST', url: '/api/v1/connections', headers: { authorization: `Bearer ${u.token}` }, payload: { poolId: pool.id } });
        if (r.statusCode !== 201) console.log(r.statusCode, r.body);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  console.log(`${N} connects in ${s.toFixed(2)} s: ${(N / s).toFixed(0)}/s`);
  const stats = new pg.Client({ connectionString: url });
  await stats.connect();
  await stats.query('create extension if not exists pg_stat_statements');
  const top = await stats.query(`select calls, round(total_exec_time::numeric, 1) as ms, round(mean_exec_time::numeric, 3) as mean, round((total_plan_time / nullif(calls, 0))::numeric, 3) as plan, plans, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) as q from pg_stat_statements order by calls desc, total_exec_time desc limit 40`);
  for (const r of top.rows) console.log(String(r.calls).padStart(6), String(r.ms).padStart(9), String(r.mean).padStart(8), String(r.plan).padStart(8), String(r.plans).padStart(5), r.q);
  await stats.end();
  await broker.close();
} finally {
  server.stop();
}
