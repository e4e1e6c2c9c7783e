import { describe, expect, it } from 'vitest';
import { WEEK_MS } from '../../src/domain/pools/forecast.ts';
import { arrivalsOf, prestartDecision, prestartUnused, PRESTART_COOLDOWN_MS, PRESTART_UNUSED_MS, userDemand, type UserConnection } from '../../src/domain/power/prestart.ts';

const MIN = 60_000;
const at = (iso: string) => new Date(iso);
const shift = (iso: string, ms: number) => new Date(Date.parse(iso) + ms);
/** A working day's connection: `iso` to `hours` later. */
const day = (iso: string, hours = 8): UserConnection => ({ requestedAt: at(iso), closedAt: shift(iso, hours * 60 * MIN) });

describe('arrivalsOf: which connects are arrivals', () => {
  const cases: { name: string; connections: UserConnection[]; want: string[] }[] = [
    { name: 'no connections: none', connections: [], want: [] },
    { name: 'the first connect is an arrival', connections: [day('2026-11-23T09:00:00Z')], want: ['2026-11-23T09:00:00.000Z'] },
    {
      name: 'a reconnect 10 min after a drop is not; a return after a 90 min lunch is',
      connections: [
        { requestedAt: at('2026-11-23T09:00:00Z'), closedAt: at('2026-11-23T10:00:00Z') },
        { requestedAt: at('2026-11-23T10:10:00Z'), closedAt: at('2026-11-23T12:00:00Z') },
        { requestedAt: at('2026-11-23T13:30:00Z'), closedAt: at('2026-11-23T18:00:00Z') },
      ],
      want: ['2026-11-23T09:00:00.000Z', '2026-11-23T13:30:00.000Z'],
    },
    {
      name: 'a second connect while one is still open is not (order of the input does not matter)',
      connections: [{ requestedAt: at('2026-11-23T11:00:00Z'), closedAt: null }, { requestedAt: at('2026-11-23T09:00:00Z'), closedAt: null }],
      want: ['2026-11-23T09:00:00.000Z'],
    },
  ];
  for (const c of cases) it(c.name, () => expect(arrivalsOf(c.connections).map((d) => d.toISOString())).toEqual(c.want));
});

describe('prestartDecision: start the user\'s machine shortly before a likely arrival', () => {
  const tz = 'Europe/London';
  const monday = '2026-11-30T09:00:00Z'; // the Monday being decided; London is on GMT in winter
  /** The user's connections on the Mondays `weeksAgo` at `hhmm` UTC. */
  const mondays = (weeksAgo: number[], hhmm = '09:00') => weeksAgo.map((k) => day(new Date(Date.parse(`2026-11-30T${hhmm}:00Z`) - k * WEEK_MS).toISOString()));
  const since = at('2026-10-05T00:00:00Z'); // eight full weeks before
  const cases: { name: string; connections: UserConnection[]; now: string; since?: Date; tz?: string; last?: Date; start: boolean; reason: RegExp }[] = [
    { name: 'came at 09:00 every Monday: at 08:52 the machine is started', connections: mondays([1, 2, 3, 4]), now: '2026-11-30T08:52:00Z', start: true, reason: /^likely arrival: arrived mon 08:52–09:02 Europe\/London in 4 of the last 8 week\(s\)/ },
    { name: 'too early: 08:45 is more than one lead before 09:00', connections: mondays([1, 2, 3, 4]), now: '2026-11-30T08:45:00Z', start: false, reason: /^unlikely: .* in 0 of the last 8/ },
    { name: 'the recent weeks weigh more: came the last two of eight weeks (share 0.49) is not enough', connections: mondays([1, 2]), now: '2026-11-30T08:55:00Z', start: false, reason: /in 2 of the last 8 week\(s\) \(weighted 0\.49/ },
    { name: 'came the last three of eight weeks (share 0.64): started', connections: mondays([1, 2, 3]), now: '2026-11-30T08:55:00Z', start: true, reason: /in 3 of the last 8 week\(s\) \(weighted 0\.64/ },
    { name: 'a two-week history, came both: started (a share, not a count)', connections: mondays([1, 2]), since: at('2026-11-16T00:00:00Z'), now: '2026-11-30T08:55:00Z', start: true, reason: /in 2 of the last 2 week\(s\) \(weighted 1\.00/ },
    { name: 'a user who never came on Mondays: not started', connections: mondays([1, 2, 3, 4]).map((c) => ({ requestedAt: shift(c.requestedAt.toISOString(), 86_400_000), closedAt: null })), now: '2026-11-30T08:55:00Z', start: false, reason: /in 0 of/ },
    { name: 'no full week of history: cold start, not started', connections: [], since: at('2026-11-25T00:00:00Z'), now: '2026-11-30T08:55:00Z', start: false, reason: /no full week of the user's history yet/ },
    { name: 'pre-started an hour ago: not again (cool-down)', connections: mondays([1, 2, 3, 4]), now: '2026-11-30T08:55:00Z', last: at('2026-11-30T07:55:00Z'), start: false, reason: /none again within 3 h/ },
    { name: 'pre-started yesterday: the cool-down is over', connections: mondays([1, 2, 3, 4]), now: '2026-11-30T08:55:00Z', last: shift(monday, -86_400_000), start: true, reason: /^likely arrival/ },
    {
      // Los Angeles, spring forward on 2026-03-08: 09:00 PST = 17:00Z before, 09:00 PDT = 16:00Z after.
      name: 'DST: 09:00 local before the change is 09:00 local after it (an hour earlier in UTC)',
      connections: [1, 2, 3].map((k) => day(new Date(Date.parse('2026-03-02T17:00:00Z') - (k - 1) * WEEK_MS).toISOString())),
      since: at('2026-02-16T08:00:00Z'),
      tz: 'America/Los_Angeles',
      now: '2026-03-09T15:55:00Z',
      start: true,
      reason: /mon 08:55–09:05 America\/Los_Angeles in 3 of the last 3/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = prestartDecision({ demand: userDemand(c.connections, c.since ?? since, c.tz ?? tz), now: at(c.now), lastPrestartAt: c.last ?? null });
      expect(d.start).toBe(c.start);
      expect(d.reason).toMatch(c.reason);
    });
  }
});

describe('prestartUnused: a pre-started machine the user did not come to', () => {
  const t0 = at('2026-11-30T08:52:00Z');
  it.each([
    { what: 'within the allowance: kept', connectedSince: false, after: PRESTART_UNUSED_MS - 1, stop: false },
    { what: 'past it, nobody came: stopped', connectedSince: false, after: PRESTART_UNUSED_MS, stop: true },
    { what: 'the user came: never stopped by this rule', connectedSince: true, after: PRESTART_UNUSED_MS, stop: false },
    { what: 'past the cool-down (someone else runs it now): left alone', connectedSince: false, after: PRESTART_COOLDOWN_MS, stop: false },
  ])('$what', ({ connectedSince, after, stop }) => {
    expect(prestartUnused({ prestartedAt: t0, connectedSince, now: new Date(t0.getTime() + after) })).toBe(stop);
  });
});
