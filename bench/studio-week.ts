/**
 * A simulated studio week (issue #7): 100 artists on shifts (bench/studio-week/shifts.ts) against the
 * real broker — connect flow, pool reconciler with schedule windows, agent events, power and release
 * plans on durable timers, the cost report — and the EC2 emulator with boots of 60–120 s, on a
 * throwaway PostgreSQL (`--db pglite`: the embedded one).
 *
 * Time is a ManualClock (shared with the emulator), moved event to event: the next artist action, the
 * next due timer, the reconciler tick (15 s grid, as the job) after the next boot or stop completes,
 * the next schedule-window edge. Nothing sleeps. Prints instance-hours billed (running, from the cost
 * report) against always-on and against the ideal (running only while in use), billed/ideal, and the
 * wait for a desktop (connect → the broker says ready).
 *
 * Predictive standby (issue 19): `--standby predictive` sizes the standby from the pool's forecast,
 * with no windows. The forecast needs history: `--train N` weeks before the measured one are written
 * as the pool's arrivals (new assignments) straight into the database, from the same shift model
 * with other seeds — only the measured week runs through the broker. `--scenario` changes the
 * measured week (crunch: 30 % of the day shift back for an evening session; holiday: half absent)
 * or the last training week (after-holiday: that week was the holiday, the measured one is normal).
 *
 * Run: npm run bench:studio-week [-- --seed N] [-- --standby windows|morning|flat|predictive]
 *      [-- --scenario studio|crunch|holiday|after-holiday] [-- --train 4] [-- --quantile 0.9] [-- --reserve 0] [-- --hold 15] [-- --lead 5] [-- --db postgres|pglite]
 * The last line is `RESULT {json}` for bench/studio-week/matrix.ts.
 */
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { CreatePool, PolicyBody, PowerPlanBody, ReleasePlanBody, type ScheduleWindow } from '@stagedoor/contract';
import type { z } from 'zod';
import { DEMO_AMI_ID, startEc2Emulator } from '../packages/ec2-emulator/src/index.ts';
import { delaysFor } from '../packages/ec2-emulator/src/lifecycle.ts';
import { loadConfig } from '../apps/broker/src/config/config.ts';
import { rowsOf, runMigrations } from '../apps/broker/src/db/migrate.ts';
import { openPglite } from '../apps/broker/src/db/pglite.ts';
import { openPostgres } from '../apps/broker/src/db/postgres.ts';
import { startPostgres } from '../test/support/postgres-server.ts';
import { ManualClock } from '../apps/broker/src/domain/clock.ts';
import { systemActor } from '../apps/broker/src/domain/identity/actor.ts';
import { assembleBroker } from '../apps/broker/src/main.ts';
import { bearer, mintUsers, type MintedUser } from '../test/support/studio.ts';
import { planWeek, STUDIO, type Action, type WeekVariant } from './studio-week/shifts.ts';

if (process.argv.includes('--matrix')) {
  await import('./studio-week/matrix.ts');
  process.exit(0);
}

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const SEED = Number(arg('seed', '7'));
/** `windows` (the tuned setting), `morning` (a morning window only) or `flat` (minAvailable 4 always): what the windows buy. */
const STANDBY = arg('standby', 'windows');
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const WEEK = Date.parse('2026-11-23T00:00:00Z'); // Monday; Europe/London is UTC in November
const END = WEEK + 7 * DAY;
const JOB_TICK_MS = 15_000; // the pool-reconciler job's interval
const ARTISTS = STUDIO.reduce((n, s) => n + s.count, 0);
const FLEET = 100;
const SCENARIO = arg('scenario', 'studio');
const TRAIN = Number(arg('train', '4'));
const QUANTILE = Number(arg('quantile', '0.9'));
const RESERVE = Number(arg('reserve', '0'));
/** The stop hold window (minutes): running standby above the arrivals expected over it is stopped. */
const HOLD = Number(arg('hold', '15'));
/** The start lead (minutes): machines are started for the arrivals expected over it (at least one boot). */
const LEAD = Number(arg('lead', '5'));
/** `postgres` (a throwaway server, as the other benches use) runs the week about 1.4× faster than PGlite; the model is the same. */
const DB = arg('db', 'postgres');
const BOOT_SECONDS = 120; // the emulator's slowest boot (60 s + up to 60 s jitter)
const HOLIDAY: WeekVariant = { absentP: 0.5 };
const SCENARIOS: Record<string, { measured: WeekVariant; lastTraining: WeekVariant }> = {
  studio: { measured: {}, lastTraining: {} },
  crunch: { measured: { eveningP: 0.3 }, lastTraining: {} },
  holiday: { measured: HOLIDAY, lastTraining: {} },
  'after-holiday': { measured: {}, lastTraining: HOLIDAY },
};

if (!['windows', 'morning', 'flat', 'predictive'].includes(STANDBY)) throw new Error('--standby windows|morning|flat|predictive');
if (!SCENARIOS[SCENARIO]) throw new Error(`--scenario ${Object.keys(SCENARIOS).join('|')}`);
const PREDICTIVE = STANDBY === 'predictive';
type Window = z.input<typeof ScheduleWindow> & { minAvailable: number };
const WEEKDAYS: Window['days'] = ['mon', 'tue', 'wed', 'thu', 'fri'];

/** The settings under test (printed with the result). */
const SETTINGS = {
  boot: { pendingMs: 60_000, pendingJitterMs: 60_000, stoppingMs: 30_000 },
  pool: {
    minAvailable: STANDBY === 'flat' ? 4 : PREDICTIVE ? 0 : 1,
    maxTotal: 130,
    // More standby while the day shift arrives and comes back from lunch, little in the afternoon, a
    // little more when the night shift arrives; minAvailable 1 otherwise.
    scheduleWindows: (STANDBY === 'flat' || PREDICTIVE
      ? []
      : STANDBY === 'morning'
        ? [
            { days: WEEKDAYS, start: '08:20', end: '09:45', minAvailable: 12 },
            { days: WEEKDAYS, start: '09:45', end: '14:30', minAvailable: 4 },
            { days: WEEKDAYS, start: '14:30', end: '18:00', minAvailable: 2 },
          ]
        : [
          { days: WEEKDAYS, start: '08:20', end: '09:45', minAvailable: 12 },
          { days: WEEKDAYS, start: '09:45', end: '12:15', minAvailable: 3 },
          { days: WEEKDAYS, start: '12:15', end: '14:15', minAvailable: 6 },
          { days: WEEKDAYS, start: '14:15', end: '18:00', minAvailable: 2 },
          { days: ['sun', 'mon', 'tue', 'wed', 'thu'], start: '21:40', end: '22:30', minAvailable: 3 },
        ]) as Window[],
  },
  powerPlan: { onDisconnect: { action: 'stop', delaySeconds: 900 }, onLogout: { action: 'stop', delaySeconds: 900 } },
  releasePlan: { releaseOnLogout: true, releaseAfterDisconnectSeconds: 900 },
} as const;

const silent = pino({ level: 'silent' });

async function main() {
  const t0 = performance.now();
  const clock = new ManualClock(WEEK - 12 * HOUR);
  const emu = await startEc2Emulator({ clock: () => clock.now().getTime(), delays: SETTINGS.boot, onError: () => undefined });
  const pg = DB === 'postgres' ? await startPostgres() : undefined;
  const database = pg ? await openPostgres({ url: pg.url, poolSize: 4, log: silent }) : await openPglite({});
  await runMigrations(database);
  const config = loadConfig({}, { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32), STAGEDOOR_JOBS: 'off', STAGEDOOR_ADMIN_PASSWORD: 'bench-admin-password', STAGEDOOR_NODE_ID: 'bench' });
  const broker = await assembleBroker(config, database, { log: silent, clock });
  const { services, app } = broker;

  // Instrumentation only: the connect flow starts and launches machines after its commit without
  // waiting; the simulation must see those calls finish before it moves the clock.
  const inflight = new Set<Promise<unknown>>();
  const track = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => (...a: A): Promise<R> => {
    const p = fn(...a);
    inflight.add(p);
    void p.catch(() => undefined).finally(() => inflight.delete(p));
    return p;
  };
  services.workstations.start = track(services.workstations.start.bind(services.workstations));
  services.pools.executeLaunch = track(services.pools.executeLaunch.bind(services.pools));
  const quiesce = async () => {
    for (let i = 0; i < 100; i++) {
      await services.pools.idle();
      await Promise.allSettled([...inflight]);
      await new Promise((r) => setImmediate(r));
      if (inflight.size === 0) {
        await new Promise((r) => setTimeout(r, 0));
        await services.pools.idle();
        if (inflight.size === 0) return;
      }
    }
    throw new Error('the broker does not settle');
  };

  // ---- the studio: provider, plans, pool, policy, artists ----
  const subnets = emu.control.defaultNetwork().subnets.map((s) => s.subnetId);
  const provider = await services.providers.create(systemActor, {
    kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, tagFilter: {}, syncIntervalSeconds: 300, enabled: true,
    credentials: { mode: 'access-key', accessKeyId: 'AKIABENCHSTUDIOWEEK1', secretAccessKey: 'bench-secret-bench-secret' },
  });
  const power = await services.plans.create(systemActor, 'power', PowerPlanBody.parse({ name: 'stop-15', ...SETTINGS.powerPlan }));
  const release = await services.plans.create(systemActor, 'release', ReleasePlanBody.parse({ name: 'release-on-logout', ...SETTINGS.releasePlan }));
  const pool = await services.pools.create(
    systemActor,
    CreatePool.parse({
      name: 'edit', providerId: provider.id, timeZone: 'Europe/London', minAvailable: FLEET, maxTotal: SETTINGS.pool.maxTotal, launchRatePerMinute: 200,
      template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge'], subnetIds: subnets, namePattern: 'edit-{seq:03}', userData: 'STAGEDOOR_AGENT_TOKEN={{agent.token}}\n' },
    }),
  );
  const users = await mintUsers(database, ARTISTS, 'artist', 'Artists');
  const group = (await services.groups.list(500, 0)).items.find((g) => g.name === 'Artists')!;
  await services.policies.create(systemActor, PolicyBody.parse({ name: 'artists', groupIds: [group.id], pools: [{ poolId: pool.id }], assignmentMode: 'floating', startStoppedOnLogin: true, launchOnLogin: true, powerPlanId: power.id, releasePlanId: release.id }));

  // ---- warm-up (Sunday noon): the fleet exists and is stopped, as after any ordinary weekend ----
  // Minute by minute until the broker has seen every machine boot, then stop them all and wait until
  // it has seen every one stopped. (Stopping "whatever runs" 3 min after the launch found most machines
  // still pending in the broker's view: they ran unassigned into Monday, and a windows or flat pool,
  // which never stops standby, billed them — about 800 h, 1.43x ideal instead of 1.21x.)
  const fleetIn = async (state: string) => rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from workstations where power_state = ${state}`))[0]!.n;
  const settle = async (state: string) => {
    for (let i = 0; i < 30 && (await fleetIn(state)) < FLEET; i++) {
      clock.advance(MIN);
      await services.pools.reconcileAll();
      await quiesce();
    }
    if ((await fleetIn(state)) < FLEET) throw new Error(`warm-up: only ${await fleetIn(state)} of ${FLEET} machines ${state}`);
  };
  await quiesce();
  await settle('running');
  await services.pools.update(systemActor, pool.id, { minAvailable: 0 }); // or it starts them again
  for (const w of rowsOf<{ id: string }>(await database.db.execute(sql`select id from workstations where power_state = 'running'`))) await services.workstations.power(systemActor, w.id, 'stop');
  await settle('stopped');
  // ---- the training weeks: arrivals written as the pool's history (see the header) ----
  const trained = trainingArrivals();
  await database.db.execute(sql`update pools set created_at = ${new Date(WEEK - (TRAIN + 1) * 7 * DAY).toISOString()} where id = ${pool.id}`);
  for (let i = 0; i < trained.length; i += 1000) {
    const chunk = JSON.stringify(trained.slice(i, i + 1000).map((at) => new Date(at).toISOString()));
    await database.db.execute(sql`insert into assignments (pool_id, mode, state, since, released_at, release_reason)
      select ${pool.id}::uuid, 'floating', 'released', t::timestamptz, t::timestamptz + interval '1 hour', 'logout' from jsonb_array_elements_text(${chunk}::jsonb) as t`);
  }
  await services.pools.update(systemActor, pool.id, {
    minAvailable: SETTINGS.pool.minAvailable,
    scheduleWindows: SETTINGS.pool.scheduleWindows as never,
    ...(PREDICTIVE ? { standby: { mode: 'predictive', quantile: QUANTILE, bootSeconds: BOOT_SECONDS, reserveMinutes: RESERVE, holdMinutes: HOLD, leadMinutes: LEAD } } : {}),
  });
  await quiesce();

  // ---- the week ----
  const { actions } = planWeek(WEEK, SEED, SCENARIOS[SCENARIO]!.measured);
  const tokens = new Map<string, string>(); // workstation id → agent token (from the instance's user data)
  const agentToken = async (workstationId: string): Promise<string> => {
    const known = tokens.get(workstationId);
    if (known) return known;
    const [w] = rowsOf<{ external_id: string }>(await database.db.execute(sql`select external_id from workstations where id = ${workstationId}`));
    const inst = emu.control.instances().find((i) => i.instanceId === w?.external_id);
    const data = inst?.userData ? Buffer.from(inst.userData, 'base64').toString('utf8') : '';
    const token = /STAGEDOOR_AGENT_TOKEN=(\S+)/.exec(data)?.[1];
    if (!token) throw new Error(`no agent token in the user data of ${workstationId}`);
    tokens.set(workstationId, token);
    return token;
  };
  const agent = async (workstationId: string, type: string, user: string) => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/agent/events', headers: { authorization: `Bearer ${await agentToken(workstationId)}` }, payload: { agentVersion: 'bench', os: 'windows', events: [{ type, user }] } });
    if (res.statusCode !== 200) throw new Error(`agent ${type}: ${res.statusCode} ${res.body}`);
  };

  // The agent on a running machine reports every 60 s (power.wiring.ts), and a machine whose agent
  // falls silent for 3 min is unhealthy: no connect takes it, and the standby does not count it. The
  // bench posts the agent's login/logout events through the API; its heartbeats, which only say "still
  // here", are written as their effect, one statement per step (as the training weeks are), not 100
  // HTTP calls a minute. Without them a machine fell unhealthy 3 min after its agent's last event
  // (a logout, say), and no arrival could take it while the power plan's 15 min ran.
  const heartbeats = async (now: number) => {
    await database.db.execute(sql`update workstations set agent_last_seen_at = ${new Date(now).toISOString()}::timestamptz where power_state = 'running' and agent_last_seen_at is not null`);
  };

  type ArtistState = { user: MintedUser; state: 'off' | 'waiting' | 'working' | 'break'; conn?: string; since?: number; machine?: string; lastMachine?: string; why?: string; stage?: string; held?: boolean };
  const artists: ArtistState[] = users.map((user) => ({ user, state: 'off' }));
  const waits: { ms: number; why: string; cold: boolean; held: boolean; at: number; stage: string }[] = [];
  const inUse: [number, number][] = [];
  let retries = 0;
  let skipped = 0;

  const ready = async (a: ArtistState, t: number) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/connections/${a.conn}`, headers: bearer(a.user) });
    const c = res.json();
    if (c.state === 'failed' || c.state === 'closed') throw new Error(`connection ${c.state}: ${c.progress?.message}`);
    if (!c.instructions) return;
    waits.push({ ms: t - a.since!, why: a.why!, cold: t - a.since! > 10_000, held: a.held!, at: a.since!, stage: a.stage! });
    await agent(c.workstation.id, c.workstation.id === a.lastMachine ? 'reconnect' : 'login', a.user.username);
    Object.assign(a, { state: 'working', since: t, machine: c.workstation.id });
  };
  const apply = async (act: Action, t: number) => {
    const a = artists[act.artist]!;
    if (act.kind === 'connect') {
      if (a.state === 'waiting' || a.state === 'working') return void skipped++;
      // Does the artist still hold a machine (a break shorter than the release plan's delay)?
      const [held] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from assignments where user_id = ${a.user.id} and state = 'active'`));
      a.held = held!.n > 0;
      const res = await app.inject({ method: 'POST', url: '/api/v1/connections', headers: bearer(a.user), payload: { poolId: pool.id } });
      if (res.statusCode === 409) {
        retries++;
        insertAction({ ...act, at: t + 30_000 });
        return;
      }
      // 200: the artist's own live connection to the machine they still hold (a return from a short
      // break — no gateway here closes the connection on a disconnect), answered again.
      if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`connect at ${new Date(t).toISOString()} (artist ${act.artist}, ${a.state}, ${act.note}): ${res.statusCode} ${res.body.slice(0, 200)}`);
      Object.assign(a, { state: 'waiting', conn: res.json().id, since: t, why: act.note, stage: res.json().progress.stage });
      return;
    }
    if (a.state !== 'working') return void skipped++;
    inUse.push([a.since!, t]);
    await agent(a.machine!, act.kind, a.user.username);
    Object.assign(a, { state: act.kind === 'logout' ? 'off' : 'break', lastMachine: act.kind === 'logout' ? undefined : a.machine, machine: undefined });
  };
  const queue = actions.slice();
  const insertAction = (act: Action) => {
    let i = queue.findIndex((q) => q.at > act.at);
    if (i < 0) i = queue.length;
    queue.splice(i, 0, act);
  };

  const edges = [...windowEdges(), ...(PREDICTIVE ? forecastEdges(trained) : [])].sort((a, b) => a - b);
  let t = clock.now().getTime();
  let steps = 0;
  let day = 0;
  while (t < END) {
    const nextTimer = rowsOf<{ due: Date | string | null }>(await database.db.execute(sql`select min(due_at) as due from timers where state = 'pending'`))[0]?.due;
    const candidates = [queue[0]?.at ?? Infinity, nextTimer ? new Date(nextTimer).getTime() : Infinity, nextSettle(emu, t), edges.find((e) => e > t) ?? Infinity, END];
    t = Math.max(t + 1, Math.min(...candidates));
    if (t >= END) break;
    clock.set(t);
    steps++;
    await heartbeats(t);
    if (Math.floor(t / DAY) !== day) {
      day = Math.floor(t / DAY);
      process.stderr.write(`  ${new Date(t).toISOString().slice(0, 10)}: ${steps} steps, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    await services.timers.fireDue();
    while (queue.length && queue[0]!.at <= t) await apply(queue.shift()!, t);
    await quiesce();
    if (t % JOB_TICK_MS === 0) await services.pools.reconcileAll();
    await services.timers.fireDue();
    await quiesce();
    for (const a of artists) if (a.state === 'waiting') await ready(a, t);
  }
  clock.set(END);
  for (const a of artists) if (a.state === 'working') inUse.push([a.since!, END]);

  // ---- figures ----
  const report = await services.reports.cost({ from: new Date(WEEK), to: new Date(END), groupBy: 'pool' });
  const ideal = inUse.reduce((s, [a, b]) => s + Math.max(0, Math.min(b, END) - Math.max(a, WEEK)), 0) / HOUR;
  const billed = report.total.runningHours;
  const sorted = waits.map((w) => w.ms).sort((x, y) => x - y);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! / 1000;
  const calls = emu.control.callCounts().byAction;
  const [machines] = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from workstations where power_state <> 'terminated'`));
  const cold = waits.filter((w) => w.cold);
  const byUser = await services.reports.cost({ from: new Date(WEEK), to: new Date(END), groupBy: 'user' });
  const unassigned = byUser.groups.find((g) => g.key === null && g.label === '(unassigned)')?.runningHours ?? 0;
  console.log(`Studio week ${new Date(WEEK).toISOString().slice(0, 10)} → ${new Date(END).toISOString().slice(0, 10)}: ${ARTISTS} artists, seed ${SEED}, scenario ${SCENARIO}, ${TRAIN} training week(s) (${trained.length} arrivals), standby ${STANDBY}${PREDICTIVE ? ` (q${QUANTILE}, boot ${BOOT_SECONDS} s, reserve ${RESERVE} min, hold ${HOLD} min, lead ${LEAD} min)` : ''}, ${DB === 'postgres' ? 'PostgreSQL' : 'PGlite'}, EC2 emulator (boot ${SETTINGS.boot.pendingMs / 1000}–${(SETTINGS.boot.pendingMs + SETTINGS.boot.pendingJitterMs) / 1000} s)`);
  for (const s of STUDIO) console.log(`  ${String(s.count).padStart(3)} × ${s.name}, long break ${s.breakMin[0]}–${s.breakMin[1]} min, short break p=${s.shortBreakP}, absent p=${s.absentP}`);
  console.log(`  pool: ${machines!.n} g5.xlarge (fleet ${FLEET} stopped at the start), minAvailable ${SETTINGS.pool.minAvailable}, windows (Europe/London): ${SETTINGS.pool.scheduleWindows.map((w) => `${w.days[0]}–${w.days.at(-1)} ${w.start}–${w.end} → ${w.minAvailable}`).join('; ') || 'none'}`);
  console.log(`  power plan: stop ${SETTINGS.powerPlan.onDisconnect.delaySeconds / 60} min after disconnect and after logout; release plan: on logout, and ${SETTINGS.releasePlan.releaseAfterDisconnectSeconds / 60} min after a disconnect (floating)`);
  console.log('');
  const rows: [string, string][] = [
    ['instance-hours billed (running, cost report)', billed.toFixed(1)],
    ['instance-hours always-on (cost report)', report.total.alwaysOnHours.toFixed(1)],
    ['instance-hours ideal (running only while in use)', ideal.toFixed(1)],
    ['billed / ideal', `${(billed / ideal).toFixed(3)}  (target ≤ 1.25)`],
    ['billed / always-on', (billed / report.total.alwaysOnHours).toFixed(3)],
    ['  of which assigned to an artist (in use, on a break, before the plan acts)', (billed - unassigned).toFixed(1)],
    ['  of which unassigned (warm standby, and the plan\'s 15 min after a release)', unassigned.toFixed(1)],
    ['hours saved against always-on (cost report)', report.total.savedHours.toFixed(1)],
    ['cost at the shipped g5.xlarge us-east-1 price', report.total.cost.map((c) => `${c.amount.toFixed(2)} ${c.currency}`).join(' + ')],
    [`wait for a desktop, ${waits.length} requests: p50 / p95 / p99 / max (s)`, `${pct(50).toFixed(1)} / ${pct(95).toFixed(1)} / ${pct(99).toFixed(1)} / ${(sorted.at(-1)! / 1000).toFixed(1)}  (target p95 < 10)`],
    ['cold starts (wait > 10 s): start of shift / after a break', `${cold.filter((w) => w.why === 'start of shift').length} / ${cold.length - cold.filter((w) => w.why === 'start of shift').length}`],
    ['  … the machine they still held, stopped by the plan while they were away', String(cold.filter((w) => w.held).length)],
    ['  … standby used up: a stopped machine started / a machine launched', `${cold.filter((w) => !w.held && w.stage !== 'launching').length} / ${cold.filter((w) => !w.held && w.stage === 'launching').length}`],
    ['  … by hour of day (UTC = London)', hist(cold.map((w) => new Date(w.at).getUTCHours()))],
    ['EC2 calls', Object.entries(calls).map(([k, v]) => `${v} ${k}`).join(', ')],
    ['simulation', `${steps} steps, ${retries} retries (409), ${skipped} actions skipped, ${((performance.now() - t0) / 1000).toFixed(0)} s wall`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log(`RESULT ${JSON.stringify({ scenario: SCENARIO, standby: STANDBY, seed: SEED, quantile: PREDICTIVE ? QUANTILE : null, reserve: RESERVE, hold: PREDICTIVE ? HOLD : null, lead: PREDICTIVE ? LEAD : null, billed, ideal, ratio: billed / ideal, p95: pct(95), max: sorted.at(-1)! / 1000, cold: cold.length, requests: waits.length })}`);

  await broker.close();
  await emu.close();
  pg?.stop();
}

const hist = (hours: number[]) => {
  const n = new Map<number, number>();
  for (const h of hours) n.set(h, (n.get(h) ?? 0) + 1);
  return [...n.entries()].sort(([a], [b]) => a - b).map(([h, k]) => `${String(h).padStart(2, '0')}h:${k}`).join(' ') || 'none';
};

/** When the next boot or stop completes, rounded up to the reconciler tick that will see it. */
function nextSettle(emu: Awaited<ReturnType<typeof startEc2Emulator>>, now: number): number {
  const delays = emu.control.getDelays();
  let next = Infinity;
  for (const i of emu.control.instances()) {
    let at = Infinity;
    if (i.state === 'pending') {
      const d = delaysFor(delays, i.seq, i.stateSince);
      at = i.stateSince + d.pendingMs + (d.pendingJitterMs ?? 0);
    } else if (i.state === 'stopping') at = i.stateSince + delays.stoppingMs;
    if (at < Infinity) next = Math.min(next, Math.ceil(Math.max(at, now + 1) / JOB_TICK_MS) * JOB_TICK_MS);
  }
  return next;
}

/**
 * The training weeks' arrivals (UTC ms; Europe/London is UTC from 25 October, so a week is 7 × 24 h):
 * every connect that takes a new machine — the start of a shift, the return from a long break (the
 * release plan gave the machine back after 15 min), an evening session; not a short break's return.
 */
function trainingArrivals(): number[] {
  const out: number[] = [];
  for (let k = 1; k <= TRAIN; k++) {
    const start = WEEK - k * 7 * DAY;
    const variant = k === 1 ? SCENARIOS[SCENARIO]!.lastTraining : {};
    for (const a of planWeek(start, SEED * 1000 + k, variant).actions) if (a.kind === 'connect' && a.note !== 'after a short break' && a.at >= start && a.at < start + 7 * DAY) out.push(a.at);
  }
  return out.sort((a, b) => a - b);
}

/**
 * When a predictive pool's target can rise: a past arrival, moved to this week, comes within the
 * warm horizon (or the reserve's). The simulation visits the reconciler tick at or after each, as
 * the job would (it runs every 15 s; the bench only stops the clock where something can change).
 */
function forecastEdges(trained: number[]): number[] {
  const horizons = [BOOT_SECONDS * 1000 + JOB_TICK_MS, BOOT_SECONDS * 1000 + JOB_TICK_MS + RESERVE * MIN];
  const out = new Set<number>();
  for (const a of trained) {
    for (let k = 1; k <= TRAIN; k++) {
      for (const h of horizons) {
        const t = Math.ceil((a + k * 7 * DAY - h) / JOB_TICK_MS) * JOB_TICK_MS;
        if (t >= WEEK - DAY && t < END) out.add(t);
      }
    }
  }
  return [...out];
}

/** Schedule-window edges (the reconciler runs at its next tick; edges are on whole minutes). */
function windowEdges(): number[] {
  const out: number[] = [];
  for (let d = -1; d < 7; d++) {
    for (const w of SETTINGS.pool.scheduleWindows) {
      for (const hhmm of [w.start, w.end]) {
        const [h, m] = hhmm.split(':').map(Number);
        out.push(WEEK + d * DAY + h! * HOUR + m! * MIN);
      }
    }
  }
  return out.sort((a, b) => a - b);
}

await main();
