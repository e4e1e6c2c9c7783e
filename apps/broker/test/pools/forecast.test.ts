import { describe, expect, it } from 'vitest';
import { DEFAULT_STANDBY, type StandbySetting } from '../../src/db/schema/pools.ts';
import { dayProfile, demandOf, expectedArrivals, localMs, weightedQuantile, WEEK_MS } from '../../src/domain/pools/forecast.ts';
import { decide, planPool, type DesiredPool, type ObservedMember } from '../../src/domain/pools/plan.ts';
import { NO_COUNTS } from '../../src/domain/pools/pools.repository.ts';
import { predictiveTarget } from '../../src/domain/pools/standby.ts';

const MIN = 60_000;
const at = (iso: string) => new Date(iso);
/** `n` arrivals at the instant `iso`. */
const burst = (iso: string, n: number) => Array.from({ length: n }, () => at(iso));
/** The same local moment over several Mondays, each with its own count (instants given per week, so DST is explicit). */
const weeks = (entries: [string, number][]) => entries.flatMap(([iso, n]) => burst(iso, n));

describe('localMs: the wall-clock time line', () => {
  it('09:00 on the Mondays either side of the spring change in London are exactly a week apart', () => {
    // 2026-03-29: GMT → BST. 09:00 GMT = 09:00Z; 09:00 BST = 08:00Z.
    expect(localMs(at('2026-03-30T08:00:00Z'), 'Europe/London') - localMs(at('2026-03-23T09:00:00Z'), 'Europe/London')).toBe(WEEK_MS);
  });
  it('Los Angeles across the autumn change: 08:00 PDT and 08:00 PST a week apart', () => {
    // 2026-11-01: PDT (−7) → PST (−8).
    expect(localMs(at('2026-11-02T16:00:00Z'), 'America/Los_Angeles') - localMs(at('2026-10-26T15:00:00Z'), 'America/Los_Angeles')).toBe(WEEK_MS);
  });
});

describe('weightedQuantile', () => {
  const cases: { name: string; samples: [number, number][]; q: number; want: number }[] = [
    { name: 'no samples → 0', samples: [], q: 0.9, want: 0 },
    { name: 'one week', samples: [[7, 1]], q: 0.9, want: 7 },
    { name: 'a holiday week (0) does not pull the 0.9 quantile down', samples: [[10, 1], [0, 0.75], [11, 0.56], [10, 0.42]], q: 0.9, want: 11 },
    { name: 'the median of equal weights', samples: [[1, 1], [5, 1], [9, 1]], q: 0.5, want: 5 },
    { name: 'a heavy recent week wins the median', samples: [[2, 3], [9, 1], [9, 1]], q: 0.5, want: 2 },
  ];
  for (const c of cases) it(c.name, () => expect(weightedQuantile(c.samples.map(([value, weight]) => ({ value, weight })), c.q)).toBe(c.want));
});

describe('expectedArrivals', () => {
  const tz = 'Europe/London';
  const since = at('2026-03-09T00:00:00Z');
  // Five Mondays of a 09:00 rush (local time): 6, 5, 0 (a holiday), 6, 7 — the last two in BST.
  const history = weeks([
    ['2026-03-09T09:00:30Z', 6],
    ['2026-03-16T09:00:30Z', 5],
    ['2026-03-23T09:00:30Z', 0],
    ['2026-03-30T08:00:30Z', 6],
    ['2026-04-06T08:00:30Z', 7],
  ]);
  const demand = demandOf(history, since, tz);
  const cases: { name: string; now: string; horizonMin: number; q: number; want: number | null; samples?: number[] }[] = [
    { name: 'the Monday after: 08:59 BST sees the 09:00 rush of every past week (DST-aligned)', now: '2026-04-13T07:59:00Z', horizonMin: 2, q: 0.9, want: 7, samples: [7, 6, 0, 5, 6] },
    { name: 'the same instant in UTC terms (09:59 BST) sees nothing: no rush at 10:00 local', now: '2026-04-13T08:59:00Z', horizonMin: 2, q: 0.9, want: 0 },
    { name: 'the median ignores the holiday week', now: '2026-04-13T07:59:00Z', horizonMin: 2, q: 0.5, want: 6 },
    { name: 'a Tuesday at 09:00: no arrivals on Tuesdays', now: '2026-04-14T07:59:00Z', horizonMin: 2, q: 0.9, want: 0 },
    { name: 'a horizon that ends before the rush counts none', now: '2026-04-13T07:55:00Z', horizonMin: 5, q: 0.9, want: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const f = expectedArrivals(demand, at(c.now), c.horizonMin * MIN, c.q);
      expect(f.expected).toBe(c.want);
      if (c.samples) expect(f.samples.map((s) => s.count)).toEqual(c.samples);
    });
  }

  it('a pool with no history: no forecast (cold start), not a forecast of zero', () => {
    const empty = demandOf([], at('2026-04-10T00:00:00Z'), tz);
    expect(expectedArrivals(empty, at('2026-04-13T07:59:00Z'), 2 * MIN, 0.9)).toEqual({ expected: null, quantile: 0.9, samples: [] });
  });

  it('weeks before the history began are left out, not counted as zero', () => {
    const young = demandOf(weeks([['2026-04-06T08:00:30Z', 4]]), at('2026-04-01T00:00:00Z'), tz);
    const f = expectedArrivals(young, at('2026-04-13T07:59:00Z'), 2 * MIN, 0.9);
    expect(f.samples.map((s) => s.weeksAgo)).toEqual([1]);
    expect(f.expected).toBe(4);
  });
});

describe('dayProfile: the chart of a day', () => {
  it('the autumn change day in Los Angeles has 100 slots, the spring one 92, others 96', () => {
    const d = demandOf([], at('2026-01-01T00:00:00Z'), 'America/Los_Angeles');
    const slots = (iso: string) => dayProfile(d, [], at(iso), at(iso), 0.9);
    expect(slots('2026-11-01T20:00:00Z')).toHaveLength(100);
    expect(slots('2026-03-08T20:00:00Z')).toHaveLength(92);
    const ordinary = slots('2026-11-03T20:00:00Z');
    expect(ordinary).toHaveLength(96);
    expect(ordinary[0]!.local).toBe('00:00');
    expect(ordinary[0]!.at.toISOString()).toBe('2026-11-03T08:00:00.000Z');
  });

  it('forecast from past weeks, actual only up to now', () => {
    const tz = 'Europe/London';
    const history = weeks([['2026-11-09T09:05:00Z', 3], ['2026-11-16T09:05:00Z', 5], ['2026-11-23T09:01:00Z', 2], ['2026-11-23T10:20:00Z', 1]]);
    const d = demandOf(history, at('2026-11-01T00:00:00Z'), tz);
    const day = dayProfile(d, history.map((h) => h.getTime()), at('2026-11-23T10:00:00Z'), at('2026-11-23T10:00:00Z'), 0.9);
    const nine = day.find((s) => s.local === '09:00')!;
    expect(nine).toMatchObject({ forecast: 5, actual: 2 });
    expect(day.find((s) => s.local === '10:15')).toMatchObject({ actual: null });
    expect(day.find((s) => s.local === '08:45')).toMatchObject({ forecast: 0, actual: 0 });
  });
});

describe('predictiveTarget and the planner', () => {
  // Lead 0: these cases pin down the one-boot warm target; the start lead has its own table below.
  const standby: StandbySetting = { ...DEFAULT_STANDBY, mode: 'predictive', quantile: 0.9, bootSeconds: 105, leadMinutes: 0 };
  const tz = 'Europe/London';
  // Three Mondays: 8 arrivals within two minutes of 09:00, and 4 more at 09:10.
  const history = [1, 2, 3].flatMap((k) => [...burst(new Date(Date.parse('2026-11-30T09:01:00Z') - k * WEEK_MS).toISOString(), 8), ...burst(new Date(Date.parse('2026-11-30T09:10:00Z') - k * WEEK_MS).toISOString(), 4)]);
  const demand = demandOf(history, at('2026-11-09T00:00:00Z'), tz);
  const pool = (over: Partial<DesiredPool & { standby: StandbySetting }> = {}) => ({ minAvailable: 1, maxAvailable: null, maxTotal: null, scheduleWindows: [], timeZone: tz, standby, ...over });

  const cases: { name: string; over?: Parameters<typeof pool>[0]; now: string; noHistory?: boolean; warm: number; available: number; reason: RegExp }[] = [
    { name: 'before the learned peak: the warm standby rises to the arrivals within one boot', now: '2026-11-30T08:59:30Z', warm: 8, available: 8, reason: /^8 warm: q0.9 of arrivals in the next 2 min \(boot 105 s \+ tick\) at mon 08:59 .* \[8, 8, 8\] = 8/ },
    { name: 'quiet hours: the pool minimum is the floor', now: '2026-11-30T03:00:00Z', warm: 1, available: 1, reason: /= 0; raised to the minimum 1/ },
    { name: 'maxAvailable caps it', over: { maxAvailable: 5 }, now: '2026-11-30T08:59:30Z', warm: 5, available: 5, reason: /capped at maxAvailable 5/ },
    { name: 'a stopped reserve covers the next 15 min beyond the boot', over: { standby: { ...standby, reserveMinutes: 15 } }, now: '2026-11-30T08:59:30Z', warm: 8, available: 12, reason: /4 more kept stopped for the 15 min after/ },
    { name: 'a pool with no history: cold start on its own minimum', noHistory: true, now: '2026-11-30T08:59:30Z', warm: 1, available: 1, reason: /no full week of history yet: the minimum 1 applies \(cold start\)/ },
    {
      name: 'no history and a schedule window open: the window applies',
      noHistory: true,
      over: { scheduleWindows: [{ days: ['mon'], start: '08:00', end: '10:00', minAvailable: 6 }] },
      now: '2026-11-30T08:59:30Z',
      warm: 6,
      available: 6,
      reason: /window 0 minimum 6 applies/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const t = predictiveTarget(pool({ standby: { ...standby, holdMinutes: 0 }, ...c.over }), c.noHistory ? demandOf([], at('2026-11-29T00:00:00Z'), tz) : demand, at(c.now));
      expect({ warm: t.warm, available: t.available }).toEqual({ warm: c.warm, available: c.available });
      expect(t.reason).toMatch(c.reason);
    });
  }

  // The hold window: running standby kept for what the next `holdMinutes` expect (stops only above it).
  const holdCases: { name: string; holdMinutes?: number; over?: Parameters<typeof pool>[0]; now: string; warm: number; hold: number; reason?: RegExp }[] = [
    { name: 'default (15 min) before the peak: holds the 09:00 and the 09:10 arrivals', now: '2026-11-30T08:59:30Z', warm: 8, hold: 12, reason: /running standby held up to 12 \(q0.9 of arrivals in the next 15 min \[12, 12, 12\] = 12\)/ },
    { name: 'after the 09:00 rush, before 09:10: nothing to start yet, but 4 held for 09:10', holdMinutes: 15, now: '2026-11-30T09:03:00Z', warm: 1, hold: 4, reason: /^1 warm: .*= 0; raised to the minimum 1; running standby held up to 4/ },
    { name: 'a 5 min hold does not reach 09:10 from 09:03: only the minimum is held', holdMinutes: 5, now: '2026-11-30T09:03:00Z', warm: 1, hold: 1 },
    { name: 'hold 0: surplus is stopped at once (the hold is the warm target)', holdMinutes: 0, now: '2026-11-30T09:03:00Z', warm: 1, hold: 1 },
    { name: 'a hold shorter than one boot changes nothing', holdMinutes: 1, now: '2026-11-30T08:59:30Z', warm: 8, hold: 8 },
    { name: 'maxAvailable caps the hold too', holdMinutes: 15, over: { maxAvailable: 10 }, now: '2026-11-30T08:59:30Z', warm: 8, hold: 10 },
    { name: 'after the wave: nothing expected, the hold falls to the minimum', holdMinutes: 15, now: '2026-11-30T09:12:00Z', warm: 1, hold: 1 },
  ];
  for (const c of holdCases) {
    it(`hold: ${c.name}`, () => {
      const s = c.holdMinutes === undefined ? DEFAULT_STANDBY : { ...DEFAULT_STANDBY, holdMinutes: c.holdMinutes };
      const t = predictiveTarget(pool({ ...c.over, standby: { ...s, mode: 'predictive', bootSeconds: 105, leadMinutes: 0 } }), demand, at(c.now));
      expect({ warm: t.warm, hold: t.hold }).toEqual({ warm: c.warm, hold: c.hold });
      if (c.reason) expect(t.reason).toMatch(c.reason);
    });
  }
  // The start lead: machines are started for the arrivals expected over the next `leadMinutes` (at
  // least one boot + tick), so one started on an earlier pass is running when its artist comes.
  const leadCases: { name: string; leadMinutes?: number; now: string; warm: number; reason: RegExp }[] = [
    { name: 'default (5 min) four minutes before the 09:01 wave: all 8 started now', now: '2026-11-30T08:57:00Z', warm: 8, reason: /^8 warm: q0.9 of arrivals in the next 5 min \(start lead\) at mon 08:57 .*\[8, 8, 8\] = 8/ },
    { name: 'lead 10 eight minutes before the wave: all 8 started now', leadMinutes: 10, now: '2026-11-30T08:53:00Z', warm: 8, reason: /next 10 min \(start lead\)/ },
    { name: 'lead 0 at the same moment: the wave is beyond one boot, only the minimum', leadMinutes: 0, now: '2026-11-30T08:53:00Z', warm: 1, reason: /next 2 min \(boot 105 s \+ tick\).*raised to the minimum 1/ },
    { name: 'lead 10 just after the wave: the 09:10 arrivals are started for', leadMinutes: 10, now: '2026-11-30T09:03:00Z', warm: 4, reason: /next 10 min \(start lead\).*= 4/ },
    { name: 'lead 5 does not reach 09:10 from 09:03', leadMinutes: 5, now: '2026-11-30T09:03:00Z', warm: 1, reason: /next 5 min \(start lead\)/ },
    { name: 'a lead shorter than one boot is one boot + tick', leadMinutes: 1, now: '2026-11-30T08:59:30Z', warm: 8, reason: /next 2 min \(boot 105 s \+ tick\)/ },
  ];
  // Surprise: arrivals in the last lead minutes above what the forecast expected for them are added.
  const surpriseCases: { name: string; now: string; recent: number; warm: number; reason?: RegExp }[] = [
    { name: 'an evening nobody has seen before: 3 came in the last 5 min, 0 expected → 3 warm', now: '2026-11-30T20:00:00Z', recent: 3, warm: 3, reason: /= 0; \+3 for arrivals above the forecast in the last 5 min \(3 came, q0.9 expected 0\)/ },
    { name: 'the learned wave as forecast: 8 came, 8 expected → no extra', now: '2026-11-30T09:03:00Z', recent: 8, warm: 0 },
    { name: 'more than the learned wave: 11 came, 8 expected → +3', now: '2026-11-30T09:03:00Z', recent: 11, warm: 3, reason: /\+3 for arrivals above the forecast/ },
  ];
  for (const c of surpriseCases) {
    it(`surprise: ${c.name}`, () => {
      const s: StandbySetting = { ...DEFAULT_STANDBY, mode: 'predictive', bootSeconds: 105, holdMinutes: 0, leadMinutes: 5 };
      const t = predictiveTarget(pool({ standby: s, minAvailable: 0 }), demand, at(c.now), c.recent);
      expect(t.warm).toBe(c.warm);
      if (c.reason) expect(t.reason).toMatch(c.reason);
    });
  }
  for (const c of leadCases) {
    it(`lead: ${c.name}`, () => {
      const s: StandbySetting = { ...DEFAULT_STANDBY, mode: 'predictive', bootSeconds: 105, holdMinutes: 0, ...(c.leadMinutes === undefined ? {} : { leadMinutes: c.leadMinutes }) };
      const t = predictiveTarget(pool({ standby: s }), demand, at(c.now));
      expect(t.warm).toBe(c.warm);
      expect(t.reason).toMatch(c.reason);
    });
  }

  it('hold: a pool with no history holds its minimum only (cold start)', () => {
    const t = predictiveTarget(pool(), demandOf([], at('2026-11-29T00:00:00Z'), tz), at('2026-11-30T08:59:30Z'));
    expect({ warm: t.warm, hold: t.hold }).toEqual({ warm: 1, hold: 1 });
  });

  const desired = (forecast: DesiredPool['forecast']): DesiredPool => ({
    ...pool(),
    forecast,
    provisioning: 'running',
    template: { subnetIds: ['subnet-0000000a'], instanceTypes: ['g5.xlarge'] },
    launchRatePerMinute: 100,
    backoffUntil: null,
    consecutiveFailures: 0,
    capacityFailures: [],
  });
  const now = at('2026-11-30T08:59:30Z');
  it('decide: the warm target starts stopped machines, the reserve stays stopped', () => {
    const d = decide(desired({ warm: 8, available: 12, reason: 'r' }), { ...NO_COUNTS, total: 20, available: 20, warm: 1, startable: 19 }, 0, now);
    expect({ start: d.start, launch: d.launch, desired: d.thresholds.minAvailable }).toEqual({ start: 7, launch: 0, desired: 8 });
  });
  it('decide: a reserve the pool lacks is launched', () => {
    const d = decide(desired({ warm: 2, available: 5, reason: 'r' }), { ...NO_COUNTS, total: 3, available: 3, warm: 2, startable: 1 }, 0, now);
    expect({ start: d.start, launch: d.launch }).toEqual({ start: 0, launch: 2 });
  });
  it('decide: without a forecast the thresholds in force apply as before', () => {
    const d = decide(desired(null), { ...NO_COUNTS, total: 3, available: 3, warm: 0, startable: 3 }, 0, now);
    expect({ start: d.start, launch: d.launch, desired: d.thresholds.minAvailable }).toEqual({ start: 1, launch: 0, desired: 1 });
  });
  it('decide: warm standby above a predictive target is stopped (windows pools never stop)', () => {
    const counts = { ...NO_COUNTS, total: 6, available: 6, warm: 5, startable: 1 };
    expect(decide(desired({ warm: 2, available: 2, reason: 'r' }), counts, 0, now)).toMatchObject({ stop: 3, start: 0, launch: 0 });
    expect(decide(desired(null), counts, 0, now)).toMatchObject({ stop: 0, start: 0, launch: 0 });
  });
  it('planPool: only running, available machines are stopped (not booting, not assigned)', () => {
    const member = (id: string, over: Partial<ObservedMember>): ObservedMember => ({ id, externalId: `i-${id}`, powerState: 'running', health: 'unknown', maintenance: false, assigned: false, launchedByPool: true, subnetId: 'subnet-0000000a', launchedAt: now, claimedAt: now, ...over });
    const members = [member('a', {}), member('b', { powerState: 'pending' }), member('c', { assigned: true }), member('d', {}), member('e', { powerState: 'stopped' })];
    const p = planPool({ pool: desired({ warm: 0, available: 0, reason: 'r' }), members, recentLaunches: 0, now });
    expect(p.actions).toEqual([{ kind: 'stop', workstationIds: ['a', 'd'] }]);
  });
});
