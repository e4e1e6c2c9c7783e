/**
 * Login and connect storm: N users (default 1,000) sign in and connect at once against N running
 * machines, with one and with two broker processes on PostgreSQL. Prints throughput and p50/p99
 * latency of the login call and of the connect call. Run: npm run bench:connect [-- N]
 *
 * Everything shares this 2-core machine: the load generator, the broker processes and PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { hashPassword } from '../apps/broker/src/domain/identity/passwords.ts';
import { startPostgres } from '../test/support/postgres-server.ts';
import { fetchInject, httpLogin } from '../test/support/http.ts';
import { freePort, waitFor } from '../test/support/ports.ts';
import { spawnProcess, STAGEDOOR_BIN, type Spawned } from '../test/support/processes.ts';
import { seedRackPool } from '../test/support/racks.ts';

const N = Number(process.argv[2] ?? 1000);
// Little's law: 300 connects/s with a p99 under 100 ms leaves room for ~30 requests in flight.
const CONCURRENCY = 16;
const PASSWORD = 'storm-password-1';
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * CPU seconds (user + system) used so far by these processes and their children's threads — the
 * brokers' and PostgreSQL's cost per call, a figure the other processes on the machine disturb far
 * less than throughput.
 */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process has gone
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** The processes of the PostgreSQL server in `dir`: the postmaster and its backends. */
function postgresPids(dir: string): number[] {
  const postmaster = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === postmaster;
    } catch {
      return false;
    }
  });
  return [postmaster, ...children.map(Number)];
}

interface Stats {
  ok: number;
  failed: number;
  seconds: number;
  p50: number;
  p99: number;
  /** CPU milliseconds per call: the brokers, and PostgreSQL. */
  brokerCpuMs?: number;
  postgresCpuMs?: number;
}

async function storm<T>(items: T[], call: (item: T, i: number) => Promise<boolean>): Promise<Stats> {
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) {
        const i = next++;
        const s = performance.now();
        const ok = await call(items[i]!, i).catch(() => false);
        latencies.push(performance.now() - s);
        if (!ok) failed++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { ok: items.length - failed, failed, seconds, p50: q(0.5), p99: q(0.99) };
}

async function run(serverUrl: string, pgDir: string, nodes: number) {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  const dbName = `storm_${nodes}_${Date.now()}`;
  await admin.query(`create database ${dbName}`);
  await admin.end();
  const url = serverUrl.replace(/\/postgres$/, `/${dbName}`);
  const procs: { base: string; proc: Spawned }[] = [];
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      // STAGEDOOR_BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of each broker process there.
      const profile = process.env.STAGEDOOR_BENCH_CPU_PROFILE;
      const proc = spawnProcess(process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), STAGEDOOR_BIN, 'broker'], { DATABASE_URL: url, PORT: String(port), STAGEDOOR_ADMIN_PASSWORD: PASSWORD, STAGEDOOR_LOG_LEVEL: 'warn', STAGEDOOR_DB_POOL_SIZE: '20', STAGEDOOR_LOGIN_RATE_PER_MINUTE: '100000', STAGEDOOR_NODE_ID: `storm-${i}` });
      procs.push({ base: `http://127.0.0.1:${port}`, proc });
    }
    await Promise.all(procs.map((p) => waitFor('broker ready', async () => (await fetch(`${p.base}/readyz`)).status === 200, 60_000, 200)));
    const adminSession = await httpLogin(procs[0]!.base, 'admin', PASSWORD);
    await seedRackPool(fetchInject(procs[0]!.base), adminSession, { hosts: N, groupName: 'Storm' });
    const pools = (await (await fetch(`${procs[0]!.base}/api/v1/pools`, { headers: { cookie: adminSession.cookie } })).json()) as { items: { id: string }[] };
    const pool = pools.items[0]!;
    // N users with one password: hashed once (argon2id), so seeding does not dominate the run.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const hash = await hashPassword(PASSWORD);
    await db.query(
      `with u as (insert into users (username, password_hash, role) select 'storm' || lpad(g::text, 5, '0'), $1, 'user' from generate_series(1, $2) g returning id)
       insert into group_members (group_id, user_id) select (select id from groups where name = 'Storm'), id from u`,
      [hash, N],
    );
    await db.end();
    const usernames = Array.from({ length: N }, (_, i) => `storm${String(i + 1).padStart(5, '0')}`);
    const sessions: { cookie: string; csrf: string }[] = new Array(N);
    const brokerPids = procs.map((p) => p.proc.proc.pid!);
    // CPU per call of the brokers and of PostgreSQL, from /proc: far less disturbed by other load than rates.
    const measured = async (fn: () => Promise<Stats>): Promise<Stats> => {
      const before = { broker: cpuSeconds(brokerPids), pg: cpuSeconds(postgresPids(pgDir)) };
      const stats = await fn();
      stats.brokerCpuMs = ((cpuSeconds(brokerPids) - before.broker) * 1000) / N;
      stats.postgresCpuMs = ((cpuSeconds(postgresPids(pgDir)) - before.pg) * 1000) / N;
      return stats;
    };
    const login = await measured(() =>
      storm(usernames, async (u, i) => {
        sessions[i] = await httpLogin(procs[i % nodes]!.base, u, PASSWORD);
        return true;
      }),
    );
    const connect = await measured(() =>
      storm(usernames, async (_u, i) => {
        const s = sessions[i]!;
        // As the portal and the CLI do: every connect carries an Idempotency-Key.
        const res = await fetch(`${procs[i % nodes]!.base}/api/v1/connections`, {
          method: 'POST',
          headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({ poolId: pool.id }),
        });
        await res.arrayBuffer();
        return res.status === 201;
      }),
    );
    return { login, connect };
  } finally {
    await Promise.all(procs.map((p) => p.proc.stop('SIGTERM')));
  }
}

/** Broker plus PostgreSQL CPU per call, in ms. */
function cpuOf(s: Stats): number {
  return (s.brokerCpuMs ?? 0) + (s.postgresCpuMs ?? 0);
}

const server = await startPostgres();
try {
  console.log(`connect storm: ${N} users, ${N} running machines, ${CONCURRENCY} concurrent clients, PostgreSQL\n`);
  console.log(`load average before: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  console.log('brokers | call    |  ok  | failed | seconds | per second |  p50 ms |  p99 ms | broker CPU ms/call | PostgreSQL CPU ms/call');
  console.log('--------|---------|------|--------|---------|------------|---------|---------|--------------------|-----------------------');
  const ratios: string[] = [];
  for (const nodes of [1, 2]) {
    const r = await run(server.url, server.dir, nodes);
    for (const [name, s] of Object.entries(r)) {
      const cpu = s.brokerCpuMs === undefined ? ['', ''] : [s.brokerCpuMs.toFixed(2), s.postgresCpuMs!.toFixed(2)];
      console.log(`${String(nodes).padStart(7)} | ${name.padEnd(7)} | ${String(s.ok).padStart(4)} | ${String(s.failed).padStart(6)} | ${s.seconds.toFixed(2).padStart(7)} | ${(s.ok / s.seconds).toFixed(0).padStart(10)} | ${s.p50.toFixed(1).padStart(7)} | ${s.p99.toFixed(1).padStart(7)} | ${cpu[0]!.padStart(18)} | ${cpu[1]!.padStart(22)}`);
    }
    ratios.push(`${nodes} broker(s): a connect costs 1/${(cpuOf(r.login) / cpuOf(r.connect)).toFixed(1)} of an argon2id login in CPU (broker + PostgreSQL: ${cpuOf(r.connect).toFixed(2)} ms vs ${cpuOf(r.login).toFixed(2)} ms)`);
  }
  console.log(`\n${ratios.join('\n')}`);
  console.log(`\nload average after: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  server.stop();
}
