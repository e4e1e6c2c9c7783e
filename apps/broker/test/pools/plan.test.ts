import { describe, expect, it } from 'vitest';
import { backoffMs, decide, LAUNCH_GRACE_MS, planPool, poolsToPoke, type DesiredPool, type ObservedMember, type PlanInput, type PoolAction } from '../../src/domain/pools/plan.ts';
import { effectiveThresholds, localTime, thresholdProblems } from '../../src/domain/pools/schedule.ts';

const NOW = new Date('2026-03-04T10:00:00Z'); // a Wednesday; 10:00 in UTC, 11:00 in Paris
const SUBNETS = ['subnet-0000000a', 'subnet-0000000b', 'subnet-0000000c'];

function pool(over: Partial<DesiredPool> = {}): DesiredPool {
  return {
    minAvailable: 3,
    maxAvailable: null,
    maxTotal: null,
    scheduleWindows: [],
    timeZone: 'UTC',
    provisioning: 'running',
    template: { subnetIds: SUBNETS, instanceTypes: ['g5.xlarge', 'g4dn.xlarge'] },
    launchRatePerMinute: 10,
    backoffUntil: null,
    consecutiveFailures: 0,
    capacityFailures: [],
    ...over,
  };
}

let n = 0;
function m(over: Partial<ObservedMember> = {}): ObservedMember {
  n++;
  return {
    id: `ws-${String(n).padStart(3, '0')}`,
    externalId: `i-${String(n).padStart(8, '0')}`,
    powerState: 'running',
    health: 'unknown',
    maintenance: false,
    assigned: false,
    launchedByPool: true,
    subnetId: SUBNETS[n % 3]!,
    launchedAt: new Date(NOW.getTime() - 3_600_000 + n * 1000),
    claimedAt: new Date(NOW.getTime() - 3_600_000),
    ...over,
  };
}
const many = (count: number, over: Partial<ObservedMember> = {}) => Array.from({ length: count }, () => m(over));

function plan(over: Partial<PlanInput> & { pool?: DesiredPool }) {
  return planPool({ pool: pool(), members: [], recentLaunches: 0, now: NOW, ...over });
}
const launches = (actions: PoolAction[]) => actions.filter((a) => a.kind === 'launch') as Extract<PoolAction, { kind: 'launch' }>[];
const kinds = (actions: PoolAction[]) => actions.map((a) => a.kind);

describe('planPool', () => {
  const cases: { name: string; input: Parameters<typeof plan>[0]; launch: number; start?: number; terminate?: number; note?: RegExp }[] = [
    { name: 'empty pool below minAvailable: launches the whole standby', input: {}, launch: 3 },
    { name: 'below minAvailable: launches only the difference', input: { members: many(2) }, launch: 1 },
    { name: 'assigned machines are not available: launches for them', input: { members: [...many(3, { assigned: true }), m()] }, launch: 2 },
    { name: 'maintenance and unhealthy machines are not available', input: { members: [m({ maintenance: true }), m({ health: 'unhealthy' }), m()] }, launch: 2 },
    { name: 'booting machines and pending launches count as available: nothing more', input: { members: [m({ powerState: 'pending' }), m({ externalId: null, powerState: 'pending', claimedAt: NOW })], pool: pool({ minAvailable: 2 }) }, launch: 0 },
    { name: 'at minAvailable: nothing to do', input: { members: many(3) }, launch: 0 },
    { name: 'stopped available machines are started before anything is launched', input: { members: [m(), ...many(3, { powerState: 'stopped' })] }, launch: 0, start: 2 },
    { name: 'one stopped machine short: starts it and launches nothing (it is available already)', input: { members: [m(), m(), m({ powerState: 'stopped' })] }, launch: 0, start: 1 },
    { name: 'stopping machines are available but not startable yet: no launch, no start', input: { members: [m(), m(), m({ powerState: 'stopping' })] }, launch: 0, start: 0 },
    { name: 'at maxTotal: no launch, and says why', input: { members: many(4, { assigned: true }), pool: pool({ maxTotal: 4 }) }, launch: 0, note: /at maxTotal \(4\): 3 launch/ },
    { name: 'near maxTotal: launches up to it', input: { members: many(4, { assigned: true }), pool: pool({ maxTotal: 5 }) }, launch: 1, note: /at maxTotal \(5\): 2 launch/ },
    { name: 'launch rate: what the last minute left', input: { recentLaunches: 9 }, launch: 1, note: /launch rate \(10\/min\): 2 launch/ },
    { name: 'launch rate used up: none', input: { recentLaunches: 10 }, launch: 0, note: /launch rate/ },
    { name: 'paused: nothing launched, started or terminated', input: { members: [m({ powerState: 'stopped' })], pool: pool({ provisioning: 'paused' }) }, launch: 0, start: 0, note: /paused/ },
    { name: 'paused above maxAvailable: no termination either', input: { members: many(5), pool: pool({ provisioning: 'paused', maxAvailable: 3 }) }, launch: 0, terminate: 0, note: /paused/ },
    { name: 'no template: nothing to launch from', input: { pool: pool({ template: null }) }, launch: 0, note: /no provisioning template/ },
    { name: 'backing off: no launch and no start', input: { members: [m({ powerState: 'stopped' })], pool: pool({ backoffUntil: new Date(NOW.getTime() + 60_000), consecutiveFailures: 3 }) }, launch: 0, start: 0, note: /backing off until .* after 3 failed/ },
    { name: 'back-off over: launches again', input: { pool: pool({ backoffUntil: new Date(NOW.getTime() - 1), consecutiveFailures: 3 }) }, launch: 3 },
    { name: 'forced pass ignores the back-off', input: { force: true, pool: pool({ backoffUntil: new Date(NOW.getTime() + 60_000), consecutiveFailures: 3 }) }, launch: 3 },
    { name: 'above maxAvailable: terminates the surplus', input: { members: many(6), pool: pool({ maxAvailable: 4 }) }, launch: 0, terminate: 2 },
    { name: 'above maxAvailable but most were not launched by the pool: only its own go', input: { members: [...many(5, { launchedByPool: false }), m()], pool: pool({ maxAvailable: 3 }) }, launch: 0, terminate: 1, note: /2 available machine\(s\) above maxAvailable/ },
    { name: 'assigned machines do not count towards the surplus and are never picked', input: { members: [...many(5, { assigned: true }), ...many(3)], pool: pool({ maxAvailable: 3 }) }, launch: 0, terminate: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = plan(c.input);
      expect(launches(p.actions)).toHaveLength(c.launch);
      const started = p.actions.find((a) => a.kind === 'start');
      expect(started && 'workstationIds' in started ? started.workstationIds.length : 0).toBe(c.start ?? 0);
      const terminated = p.actions.find((a) => a.kind === 'terminate');
      expect(terminated && 'workstationIds' in terminated ? terminated.workstationIds.length : 0).toBe(c.terminate ?? 0);
      if (c.note) expect(p.notes.join('\n')).toMatch(c.note);
    });
  }

  it('never terminates an assigned, in-maintenance or still-launching machine, and takes stopped ones first', () => {
    const stopped = m({ powerState: 'stopped' });
    const members = [m({ assigned: true }), m({ maintenance: true }), m({ externalId: null, powerState: 'pending', claimedAt: NOW }), m(), m(), stopped];
    const p = plan({ members, pool: pool({ minAvailable: 0, maxAvailable: 1 }) });
    const t = p.actions.find((a) => a.kind === 'terminate') as Extract<PoolAction, { kind: 'terminate' }>;
    expect(t.workstationIds).toHaveLength(3);
    expect(t.workstationIds[0]).toBe(stopped.id);
    for (const id of [members[0]!.id, members[1]!.id, members[2]!.id]) expect(t.workstationIds).not.toContain(id);
  });

  it('spreads launches over the subnets, fewest machines first', () => {
    const members = [m({ subnetId: SUBNETS[0] }), m({ subnetId: SUBNETS[0] }), m({ subnetId: SUBNETS[1] })];
    const p = plan({ members, pool: pool({ minAvailable: 7 }) });
    const placed = launches(p.actions).map((a) => a.subnetId);
    expect(placed).toHaveLength(4);
    const total = (s: string) => members.filter((x) => x.subnetId === s).length + placed.filter((x) => x === s).length;
    expect(SUBNETS.map(total).sort()).toEqual([2, 2, 3]);
    expect(placed[0]).toBe(SUBNETS[2]);
  });

  it('a failing subnet: a recent capacity error sends it to the back; an old one is forgotten', () => {
    const failing = [{ subnetId: SUBNETS[0]!, instanceType: 'g5.xlarge', at: new Date(NOW.getTime() - 60_000).toISOString() }];
    const recent = plan({ pool: pool({ minAvailable: 2, capacityFailures: failing }) });
    expect(launches(recent.actions).map((a) => a.subnetId)).toEqual([SUBNETS[1], SUBNETS[2]]);
    const old = [{ ...failing[0]!, at: new Date(NOW.getTime() - 3_600_000).toISOString() }];
    expect(launches(plan({ pool: pool({ minAvailable: 2, capacityFailures: old }) }).actions).map((a) => a.subnetId)).toEqual([SUBNETS[0], SUBNETS[1]]);
    // Every subnet failing: still launches (the executor tries them all, then the next type).
    const all = SUBNETS.map((s) => ({ ...failing[0]!, subnetId: s }));
    expect(launches(plan({ pool: pool({ minAvailable: 1, capacityFailures: all }) }).actions)).toHaveLength(1);
  });

  it('adoption after a crash: an unanswered launch counts as a member, and past the grace it is looked up', () => {
    const young = m({ externalId: null, powerState: 'pending', claimedAt: new Date(NOW.getTime() - 10_000) });
    const old = m({ externalId: null, powerState: 'pending', claimedAt: new Date(NOW.getTime() - LAUNCH_GRACE_MS) });
    const p = plan({ members: [young, old, m()] });
    expect(kinds(p.actions)).toEqual(['adopt']);
    expect(p.actions[0]).toEqual({ kind: 'adopt', workstationIds: [old.id], relaunchMissing: true });
    expect(p.counts).toMatchObject({ available: 3, launching: 2 });
    // Paused: adopt what exists, but clean up rather than relaunch what never reached the cloud.
    const paused = plan({ members: [old], pool: pool({ provisioning: 'paused' }) });
    expect(paused.actions).toEqual([{ kind: 'adopt', workstationIds: [old.id], relaunchMissing: false }]);
  });

  it('backs off 30 s after a failure, doubling, at most 15 minutes', () => {
    expect([0, 1, 2, 3, 10].map(backoffMs)).toEqual([0, 30_000, 60_000, 120_000, 900_000]);
  });
});

describe('schedule windows', () => {
  const week = { days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const, start: '08:00', end: '18:00', minAvailable: 6, maxAvailable: 10 };
  const base = { minAvailable: 1, maxAvailable: 2, maxTotal: 20, scheduleWindows: [{ ...week, days: [...week.days] }], timeZone: 'Europe/Paris' };

  it.each([
    ['Wednesday 07:59 Paris (06:59Z): before the window', '2026-03-04T06:59:00Z', 1, null],
    ['Wednesday 08:00 Paris (07:00Z): the window opens', '2026-03-04T07:00:00Z', 6, 0],
    ['Wednesday 17:59 Paris: still open', '2026-03-04T16:59:00Z', 6, 0],
    ['Wednesday 18:00 Paris: closed again', '2026-03-04T17:00:00Z', 1, null],
    ['Saturday 10:00 Paris: not a window day', '2026-03-07T09:00:00Z', 1, null],
  ] as const)('%s', (_name, at, min, window) => {
    expect(effectiveThresholds(base, new Date(at))).toEqual({ minAvailable: min, maxAvailable: window === null ? 2 : 10, maxTotal: 20, window });
  });

  it('a window switching changes the plan: launch at opening, scale in at closing', () => {
    const desired = pool({ ...base, template: { subnetIds: SUBNETS, instanceTypes: ['g5.xlarge'] } });
    const members = many(2);
    expect(launches(planPool({ pool: desired, members, recentLaunches: 0, now: new Date('2026-03-04T06:59:00Z') }).actions)).toHaveLength(0);
    expect(launches(planPool({ pool: desired, members, recentLaunches: 0, now: new Date('2026-03-04T07:00:00Z') }).actions)).toHaveLength(4);
    const evening = planPool({ pool: desired, members: many(6), recentLaunches: 0, now: new Date('2026-03-04T17:00:00Z') });
    expect(evening.actions).toEqual([{ kind: 'terminate', workstationIds: expect.any(Array) }]);
    expect((evening.actions[0] as { workstationIds: string[] }).workstationIds).toHaveLength(4);
  });

  it('a window past midnight belongs to the day it starts on, in the pool\'s zone across DST', () => {
    const night = { ...base, timeZone: 'America/New_York', scheduleWindows: [{ days: ['fri' as const], start: '22:00', end: '06:00', minAvailable: 0, maxAvailable: 0 }] };
    expect(effectiveThresholds(night, new Date('2026-03-07T04:00:00Z')).window).toBe(0); // Fri 23:00 EST
    expect(effectiveThresholds(night, new Date('2026-03-07T10:00:00Z')).window).toBe(0); // Sat 05:00 EST
    expect(effectiveThresholds(night, new Date('2026-03-07T12:00:00Z')).window).toBeNull(); // Sat 07:00
    expect(effectiveThresholds(night, new Date('2026-03-08T10:00:00Z')).window).toBeNull(); // Sun 06:00 EDT
    expect(localTime(new Date('2026-03-09T12:00:00Z'), 'America/New_York')).toEqual({ day: 'mon', minutes: 8 * 60 });
  });

  it('thresholds are checked for the pool and for every window over it', () => {
    expect(thresholdProblems({ minAvailable: 3, maxAvailable: 2, maxTotal: 10, scheduleWindows: [] })).toEqual([{ path: 'minAvailable', message: 'must not exceed maxAvailable (2)' }]);
    expect(thresholdProblems({ minAvailable: 1, maxAvailable: 4, maxTotal: 5, scheduleWindows: [{ days: ['mon'], start: '08:00', end: '09:00', minAvailable: 6 }] }).map((p) => p.path)).toEqual([
      'scheduleWindows[0].minAvailable',
      'scheduleWindows[0].minAvailable',
    ]);
  });
});

describe('poolsToPoke: which pools a followed power change sends to the reconciler at once', () => {
  it.each([
    { what: 'a booted machine changes nothing (booting counted as warm standby already)', changes: [{ poolId: 'p1', powerState: 'running' as const }], pools: [] },
    { what: 'a machine still booting changes nothing', changes: [{ poolId: 'p1', powerState: 'pending' as const }], pools: [] },
    { what: 'a stopped machine left the warm standby: its pool', changes: [{ poolId: 'p1', powerState: 'stopped' as const }], pools: ['p1'] },
    { what: 'a stopping machine left the warm standby: its pool', changes: [{ poolId: 'p1', powerState: 'stopping' as const }], pools: ['p1'] },
    { what: 'a launch that died while booting leaves the pool short: its pool, once', changes: [{ poolId: 'p1', powerState: 'terminated' as const }, { poolId: 'p1', powerState: 'unknown' as const }], pools: ['p1'] },
    { what: 'a machine in no pool: nothing', changes: [{ poolId: null, powerState: 'terminated' as const }], pools: [] },
    { what: 'several pools', changes: [{ poolId: 'p1', powerState: 'stopped' as const }, { poolId: 'p2', powerState: 'running' as const }, { poolId: 'p3', powerState: 'terminated' as const }], pools: ['p1', 'p3'] },
  ])('$what', ({ changes, pools }) => {
    expect(poolsToPoke(changes)).toEqual(pools);
  });
});

describe('predictive standby: the hold window for stops', () => {
  // decide() and planPool() with a forecast target: `warm` is what to keep running or booting (starts),
  // `hold` how many running ones to keep when they already run (stops only above it).
  const counts = (warm: number, stopped = 0) => ({ total: warm + stopped, available: warm + stopped, warm, startable: stopped, terminable: warm + stopped, assigned: 0, starting: 0, launching: 0, orphans: 0 });
  const cases: { name: string; forecast: DesiredPool['forecast']; minAvailable?: number; warm: number; stopped?: number; stop: number; start: number; launch?: number }[] = [
    { name: 'no hold (an older target): surplus above the warm target is stopped at once', forecast: { warm: 2, available: 2, reason: 'r' }, warm: 6, stop: 4, start: 0 },
    { name: 'hold 0 below warm: surplus above the warm target is stopped', forecast: { warm: 2, available: 2, hold: 0, reason: 'r' }, warm: 6, stop: 4, start: 0 },
    { name: 'running standby within the hold is kept', forecast: { warm: 2, available: 2, hold: 6, reason: 'r' }, warm: 6, stop: 0, start: 0 },
    { name: 'only what is above the hold is stopped', forecast: { warm: 2, available: 2, hold: 4, reason: 'r' }, warm: 6, stop: 2, start: 0 },
    { name: 'the hold never starts a machine: starts follow the warm target', forecast: { warm: 2, available: 2, hold: 8, reason: 'r' }, warm: 1, stopped: 5, stop: 0, start: 1 },
    { name: 'the hold launches nothing either', forecast: { warm: 2, available: 2, hold: 8, reason: 'r' }, warm: 2, stop: 0, start: 0, launch: 0 },
    { name: 'the minimum in force is held even when the hold is lower', forecast: { warm: 3, available: 3, hold: 1, reason: 'r' }, warm: 5, stop: 2, start: 0 },
    { name: 'a windows pool (no forecast) never stops, whatever runs', forecast: null, minAvailable: 1, warm: 6, stop: 0, start: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = pool({ forecast: c.forecast, minAvailable: c.minAvailable ?? 0 });
      const d = decide(p, counts(c.warm, c.stopped ?? 0), 0, NOW);
      expect({ stop: d.stop, start: d.start, launch: d.launch }).toEqual({ stop: c.stop, start: c.start, launch: c.launch ?? 0 });
    });
  }
  it('planPool: stops the surplus above the hold, running unassigned machines only', () => {
    const members = [...many(3), m({ powerState: 'pending' }), m({ assigned: true })];
    const p = planPool({ pool: pool({ minAvailable: 0, forecast: { warm: 1, available: 1, hold: 2, reason: 'r' } }), members, recentLaunches: 0, now: NOW });
    expect(p.actions).toEqual([{ kind: 'stop', workstationIds: [members[0]!.id, members[1]!.id] }]);
  });
});
