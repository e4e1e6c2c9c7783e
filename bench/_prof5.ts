import { sql } from 'drizzle-orm';
import { runMigrations, rowsOf } from '../apps/broker/src/db/migrate.ts';
import { openPglite } from '../apps/broker/src/db/pglite.ts';
import { PoolsRepository } from '../apps/broker/src/domain/pools/pools.repository.ts';
const database = await openPglite({});
await runMigrations(database);
const db = database.db;
await db.execute(sql`insert into providers (name, kind, credentials_mode) values ('s','static','none')`);
await db.execute(sql`insert into pools (name, provider_id) select 'p'||g, (select id from providers) from generate_series(1,100) g`);
await db.execute(sql`insert into workstations (provider_id, external_id, name, pool_id, power_state, launched_by_pool_id, launch_token, launched_at)
  select (select id from providers), 'i-'||g, 'w'||g, p.id, 'running', p.id, 'tok'||g, now() - interval '1 hour' from generate_series(1,10000) g join (select id, row_number() over () as k from pools) p on p.k = 1 + (g % 100)`);
const pool = rowsOf<{id:string}>(await db.execute(sql`select id from pools limit 1`))[0]!.id;
const repo = new PoolsRepository(db);
const since = new Date(Date.now() - 60000);
const t = async (what: string, fn: () => Promise<unknown>, n = 20) => { const t0 = performance.now(); for (let i = 0; i < n; i++) await fn(); console.log(what, ((performance.now() - t0) / n).toFixed(2), 'ms'); };
await t('snapshot one', () => repo.snapshot(pool, since));
await t('launchContext', () => repo.launchContext(pool, since, db));
await t('snapshot all', () => repo.snapshot(null, since), 3);
await t('resolveMembership all', () => repo.resolveMembership(null, new Date()), 3);
await t('availability one', () => repo.availability([pool]));
for (const q of [
  sql`explain analyze select w.id from workstations w where (w.pool_id = ${pool} and w.power_state <> 'terminated') or (w.launched_by_pool_id = ${pool} and w.launched_at > ${since})`,
]) console.log(rowsOf<any>(await db.execute(q)).map(r=>Object.values(r)[0]).join('\n'));
await db.execute(sql`analyze`);
await t('snapshot one (analyzed)', () => repo.snapshot(pool, since));
await t('launchContext (analyzed)', () => repo.launchContext(pool, since, db));
await t('snapshot all (analyzed)', () => repo.snapshot(null, since), 3);
await database.close();
