/**
 * The pool reconciler at scale: N workstations (default 10,000) in P pools (default 100) of one
 * aws-ec2 provider, against the EC2 emulator — on the embedded database and on a real PostgreSQL
 * server. Measures a full reconciler pass (wall time and EC2 calls) when nothing is to do, when every
 * pool is short (launches), and when the launched machines are booting (follow-up); then the time
 * from a demand change to the launch (poke → RunInstances), in-process and through NOTIFY.
 *
 * Run: npm run bench:reconciler [-- N P]
 */
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { CreatePool } from '@stagedoor/contract';
import { DEMO_AMI_ID, startEc2Emulator, type Ec2Emulator } from '../packages/ec2-emulator/src/index.ts';
import { loadConfig } from '../apps/broker/src/config/config.ts';
import type { Database } from '../apps/broker/src/db/database.ts';
import { rowsOf, runMigrations } from '../apps/broker/src/db/migrate.ts';
import { openPglite } from '../apps/broker/src/db/pglite.ts';
import { openPostgres } from '../apps/broker/src/db/postgres.ts';
import { systemClock } from '../apps/broker/src/domain/clock.ts';
import { systemActor } from '../apps/broker/src/domain/identity/actor.ts';
import { POKE_CHANNEL } from '../apps/broker/src/domain/pools/reconciler.ts';
import { Metrics } from '../apps/broker/src/observability/metrics.ts';
import { AwsEc2Provider } from '../apps/broker/src/providers/cloud/aws-ec2.ts';
import { createServices } from '../apps/broker/src/services.ts';
import { startPostgres } from '../test/support/postgres-server.ts';

const N = Number(process.argv[2] ?? 10_000);
const P = Number(process.argv[3] ?? 100);
const PER_POOL = Math.floor(N / P);
const KEY = { accessKeyId: 'AKIABENCH00000000000', secretAccessKey: 'bench-secret-bench-secret' };
const log = pino({ level: 'silent' });

interface Row {
  db: string;
  what: string;
  ms: number;
  calls: string;
  note: string;
}
const table: Row[] = [];

async function seed(emu: Ec2Emulator): Promise<string[]> {
  emu.control.reset();
  emu.control.setDelays({ pendingMs: 5_000 });
  const subnets = emu.control.seedSubnets(['a', 'b', 'c'].map((z, i) => ({ availabilityZone: `us-east-1${z}`, cidrBlock: `10.${i + 1}.0.0/16` }))).map((s) => s.subnetId);
  const ec2 = new AwsEc2Provider({ region: emu.region, endpoint: emu.url, credentials: KEY });
  for (let p = 0; p < P; p++) {
    await ec2.launch({ imageId: DEMO_AMI_ID, subnetId: subnets[p % 3], instanceType: 'g5.xlarge', name: `seed-${p}`, tags: { studio: 'bench', team: team(p) }, clientToken: `seed-${p}`, count: PER_POOL });
  }
  emu.control.advanceTime(60_000);
  return subnets;
}
const team = (p: number) => `t${String(p).padStart(3, '0')}`;

function calls(emu: Ec2Emulator, before: Record<string, number>): string {
  const after = emu.control.callCounts().byAction;
  const diff = Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)] as const).filter(([, v]) => v > 0);
  return diff.length ? diff.map(([k, v]) => `${v} ${k}`).join(', ') : '0';
}

async function timed<T>(emu: Ec2Emulator, fn: () => Promise<T>): Promise<{ ms: number; calls: string; value: T }> {
  const before = { ...emu.control.callCounts().byAction };
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, calls: calls(emu, before), value };
}

/** Poll the emulator's counters until a RunInstances call arrives; the time from `start`. */
async function untilRunInstances(emu: Ec2Emulator, start: () => void): Promise<number> {
  const before = emu.control.callCounts().byAction.RunInstances ?? 0;
  const t0 = performance.now();
  start();
  while ((emu.control.callCounts().byAction.RunInstances ?? 0) === before) {
    if (performance.now() - t0 > 10_000) throw new Error('no launch within 10 s');
    await new Promise((r) => setImmediate(r));
  }
  return performance.now() - t0;
}

async function bench(kind: 'pglite' | 'postgres', emu: Ec2Emulator, pgUrl: string | null) {
  const subnets = await seed(emu);
  const database: Database = kind === 'pglite' ? await openPglite({}) : await openPostgres({ url: pgUrl!, poolSize: 10, log });
  await runMigrations(database);
  const config = loadConfig({}, { STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) });
  const services = createServices({ config, database, clock: systemClock, log, metrics: new Metrics(() => database.poolStats()) });
  const provider = await services.providers.create(systemActor, {
    kind: 'aws-ec2', name: 'bench', region: 'us-east-1', endpoint: emu.url, tagFilter: { studio: ['bench'] }, syncIntervalSeconds: 300, enabled: true, credentials: { mode: 'access-key', ...KEY },
  });
  const sync = await services.inventory.syncNow(provider.id);
  if (sync.status !== 'ok') throw new Error(sync.message ?? 'sync failed');
  const poolIds: string[] = [];
  for (let p = 0; p < P; p++) {
    const pool = await services.pools.create(
      systemActor,
      CreatePool.parse({
        name: `pool-${team(p)}`, providerId: provider.id, membership: { tags: { team: [team(p)] } }, minAvailable: PER_POOL, launchRatePerMinute: 100,
        template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets, tags: { studio: 'bench', team: team(p) }, namePattern: `${team(p)}-{seq:04}` },
      }),
    );
    poolIds.push(pool.id);
  }
  await services.pools.idle();
  const [counts] = rowsOf<{ ws: number; pooled: number }>(await database.db.execute(sql`select count(*)::int as ws, count(pool_id)::int as pooled from workstations`));
  const db = kind === 'pglite' ? 'PGlite' : 'PostgreSQL';

  // 1. Steady state: every pool at its standby.
  const steady: number[] = [];
  let steadyCalls = '';
  for (let i = 0; i < 3; i++) {
    const r = await timed(emu, () => services.pools.reconcileAll());
    steady.push(r.ms);
    steadyCalls = r.calls;
  }
  table.push({ db, what: `full pass, nothing to do (${counts!.ws} ws, ${counts!.pooled} pooled, ${P} pools)`, ms: median(steady), calls: steadyCalls, note: `median of 3 (${steady.map((s) => s.toFixed(0)).join(', ')} ms)` });

  // 2. Demand in every pool: two machines of each are taken → the pass launches 2 per pool.
  await takeMachines(database, 2);
  const demand = await timed(emu, () => services.pools.reconcileAll());
  table.push({ db, what: `full pass, every pool 2 short`, ms: demand.ms, calls: demand.calls, note: `launched ${demand.value.launched}` });

  // 3. The launched machines boot: the next pass follows them (one DescribeInstances per 200, per provider).
  emu.control.advanceTime(10_000);
  const follow = await timed(emu, () => services.pools.reconcileAll());
  table.push({ db, what: `full pass, ${demand.value.launched} booting machines followed`, ms: follow.ms, calls: follow.calls, note: `running now: ${follow.value.refreshed}` });

  // 4. Demand → launch: an assignment commits, the connect flow pokes, RunInstances follows.
  const local: number[] = [];
  for (const poolId of poolIds.slice(0, 20)) {
    await takeOne(database, poolId);
    local.push(await untilRunInstances(emu, () => services.pools.poke(poolId)));
    await services.pools.idle();
  }
  table.push({ db, what: 'poke → RunInstances (same node)', ms: median(local), calls: '1 RunInstances', note: `p50 of 20; max ${Math.max(...local).toFixed(1)} ms` });

  // 5. The same through the database signal from another node (NOTIFY → LISTEN → pass).
  let other: Database | null = null;
  if (kind === 'postgres') other = await openPostgres({ url: pgUrl!, poolSize: 2, log });
  const remote: number[] = [];
  for (const poolId of poolIds.slice(20, 40)) {
    await takeOne(database, poolId);
    remote.push(await untilRunInstances(emu, () => void (other ?? database).notify(POKE_CHANNEL, `another-node ${poolId}`)));
    await services.pools.idle();
  }
  table.push({ db, what: `NOTIFY from ${other ? 'another connection' : 'the embedded database'} → RunInstances`, ms: median(remote), calls: '1 RunInstances', note: `p50 of 20; max ${Math.max(...remote).toFixed(1)} ms` });

  await services.pools.stop();
  await services.follower.stop();
  await other?.close();
  await database.close();
}

/** Assign `n` available machines of every pool to a bench user (as the connect flow would), each in its own desktop slot. */
async function takeMachines(database: Database, n: number): Promise<void> {
  const userId = await benchUser(database);
  await database.db.execute(sql`
    insert into assignments (user_id, workstation_id, pool_id, mode, slot)
    select ${userId}, id, pool_id, 'floating',
      k + coalesce((select max(slot) from assignments h where h.user_id = ${userId} and h.pool_id = x.pool_id and h.state = 'active'), 0) from (
      select w.id, w.pool_id, row_number() over (partition by w.pool_id order by w.id) as k
      from workstations w where w.pool_id is not null and w.power_state = 'running'
        and not exists (select 1 from assignments a where a.workstation_id = w.id and a.state = 'active')
    ) x where k <= ${n}`);
}

async function takeOne(database: Database, poolId: string): Promise<void> {
  const userId = await benchUser(database);
  await database.db.execute(sql`
    insert into assignments (user_id, workstation_id, pool_id, mode, slot)
    select ${userId}, w.id, w.pool_id, 'floating',
      1 + coalesce((select max(slot) from assignments h where h.user_id = ${userId} and h.pool_id = w.pool_id and h.state = 'active'), 0) from workstations w
    where w.pool_id = ${poolId} and w.power_state in ('running', 'pending')
      and not exists (select 1 from assignments a where a.workstation_id = w.id and a.state = 'active')
    limit 1`);
}

async function benchUser(database: Database): Promise<string> {
  const [u] = rowsOf<{ id: string }>(await database.db.execute(sql`insert into users (username) values ('bench') on conflict do nothing returning id`));
  return u?.id ?? rowsOf<{ id: string }>(await database.db.execute(sql`select id from users where username = 'bench'`))[0]!.id;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const emu = await startEc2Emulator({ onError: () => undefined });
  const pg = await startPostgres();
  try {
    console.log(`Pool reconciler: ${PER_POOL * P} workstations in ${P} pools, one aws-ec2 provider (EC2 emulator)\n`);
    await bench('pglite', emu, null);
    await bench('postgres', emu, pg.url);
  } finally {
    pg.stop();
    await emu.close();
  }
  const w = { db: 10, what: Math.max(...table.map((r) => r.what.length)), ms: 9, calls: Math.max(9, ...table.map((r) => r.calls.length)) };
  console.log(`${'database'.padEnd(w.db)} | ${'measure'.padEnd(w.what)} | ${'ms'.padStart(w.ms)} | ${'EC2 calls'.padEnd(w.calls)} | note`);
  console.log(`${'-'.repeat(w.db)}-|-${'-'.repeat(w.what)}-|-${'-'.repeat(w.ms)}-|-${'-'.repeat(w.calls)}-|-----`);
  for (const r of table) console.log(`${r.db.padEnd(w.db)} | ${r.what.padEnd(w.what)} | ${r.ms.toFixed(1).padStart(w.ms)} | ${r.calls.padEnd(w.calls)} | ${r.note}`);
}

await main();
