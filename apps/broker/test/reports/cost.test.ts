import { describe, expect, it } from 'vitest';
import { computeCostReport, priceMicros, type CostInput, type PowerInterval } from '../../src/domain/reports/cost.ts';
import { explainRunning } from '../../src/domain/reports/reports.service.ts';

const T = (s: string) => new Date(`2026-11-${s}Z`);
const iv = (state: string, from: string, to: string | null, o: Partial<PowerInterval> = {}): PowerInterval => ({
  workstationId: 'w1',
  state,
  instanceType: 'g5.xlarge',
  poolId: 'p1',
  region: 'us-east-1',
  fromAt: T(from),
  toAt: to ? T(to) : null,
  ...o,
});
const PRICES = [{ instanceType: 'g5.xlarge', region: 'us-east-1', hourlyPrice: '1.006000', currency: 'USD' }];
const base = (o: Partial<CostInput>): CostInput => ({ from: T('23T00:00:00'), to: T('24T00:00:00'), now: T('25T00:00:00'), groupBy: 'pool', intervals: [], prices: PRICES, ...o });

describe('cost report planner (pure)', () => {
  it.each([
    // name, intervals, expected [running, stopped, other, alwaysOn, saved]
    ['inside the window', [iv('running', '23T09:00:00', '23T17:00:00')], [8, 0, 0, 8, 0]],
    ['clipped at from (started the day before)', [iv('running', '22T20:00:00', '23T02:00:00')], [2, 0, 0, 2, 0]],
    ['clipped at to', [iv('stopped', '23T20:00:00', '24T06:00:00')], [0, 4, 0, 4, 4]],
    ['open interval ends at to when now is later', [iv('running', '23T22:30:00', null)], [1.5, 0, 0, 1.5, 0]],
    ['open interval ends at now when now is inside the window', [iv('running', '23T10:00:00', null)], [2, 0, 0, 2, 0], T('23T12:00:00')],
    ['pending and stopping count as other, not running', [iv('pending', '23T08:54:00', '23T09:00:00'), iv('stopping', '23T18:00:00', '23T18:03:00')], [0, 0, 0.15, 0.15, 0.15]],
    ['terminated time is not always-on', [iv('running', '23T00:00:00', '23T06:00:00'), iv('terminated', '23T06:00:00', null)], [6, 0, 0, 6, 0]],
    ['entirely outside the window', [iv('running', '22T00:00:00', '23T00:00:00'), iv('running', '24T00:00:00', '24T05:00:00')], [0, 0, 0, 0, 0]],
  ] as const)('%s', (_name, intervals, [running, stopped, other, alwaysOn, saved], now?: Date) => {
    const { total } = computeCostReport(base({ intervals: [...intervals], ...(now ? { now } : {}) }));
    expect([total.runningHours, total.stoppedHours, total.otherHours, total.alwaysOnHours, total.savedHours]).toEqual([running, stopped, other, alwaysOn, saved]);
  });

  it('prices running hours exactly and rounds to cents half up; no price → unknown, not 0', () => {
    const r = computeCostReport(
      base({
        intervals: [
          iv('running', '23T00:00:00', '23T17:30:00'), // 17.5 h × 1.006 = 17.605 → 17.61
          iv('running', '23T00:00:00', '23T03:00:00', { workstationId: 'w2', region: 'ap-south-1', poolId: 'p2' }), // no price there
        ],
      }),
    );
    expect(r.groups.map((g) => [g.key, g.runningHours, g.cost, g.unpricedRunningHours])).toEqual([
      ['p1', 17.5, [{ currency: 'USD', amount: 17.61 }], 0],
      ['p2', 3, [], 3],
    ]);
    expect(r.total.cost).toEqual([{ currency: 'USD', amount: 17.61 }]);
    expect(r.total.unpricedRunningHours).toBe(3);
    expect(priceMicros('1.006000')).toBe(1_006_000n);
    expect(priceMicros('0.5')).toBe(500_000n);
  });

  it('groupBy=user splits at assignment boundaries; the rest is (unassigned)', () => {
    const r = computeCostReport(
      base({
        groupBy: 'user',
        intervals: [iv('running', '23T08:00:00', '23T20:00:00')],
        assignments: [
          { workstationId: 'w1', userId: 'u-ana', since: T('23T07:00:00'), releasedAt: T('23T12:00:00') }, // 08–12: 4 h ana
          { workstationId: 'w1', userId: 'u-ben', since: T('23T13:00:00'), releasedAt: null }, // 13–20: 7 h ben (active: to now)
          { workstationId: 'other', userId: 'u-ana', since: T('23T00:00:00'), releasedAt: null }, // another machine: ignored here
        ],
        labels: { users: new Map([['u-ana', 'ana'], ['u-ben', 'ben']]) },
      }),
    );
    expect(r.groups.map((g) => [g.label, g.runningHours])).toEqual([
      ['ana', 4],
      ['ben', 7],
      ['(unassigned)', 1], // 12–13
    ]);
  });

  it('groupBy=instanceType and pool use what the interval recorded (a resized machine splits)', () => {
    const intervals = [iv('running', '23T00:00:00', '23T02:00:00'), iv('running', '23T02:00:00', '23T03:00:00', { instanceType: 'g5.2xlarge', poolId: null })];
    expect(computeCostReport(base({ groupBy: 'instanceType', intervals })).groups.map((g) => [g.label, g.runningHours])).toEqual([
      ['g5.2xlarge', 1],
      ['g5.xlarge', 2],
    ]);
    expect(computeCostReport(base({ intervals, labels: { pools: new Map([['p1', 'edit']]) } })).groups.map((g) => [g.label, g.machines])).toEqual([
      ['edit', 1],
      ['(no pool)', 1],
    ]);
  });
});

describe('why is it still running? (pure)', () => {
  const at = new Date('2026-11-23T10:00:00Z');
  const session = { connectionId: 'c', userId: 'u', username: 'ana', state: 'connected', protocol: 'rdp', requestedAt: at, connectedAt: at };
  const timer = { id: 't', kind: 'power.stop', dueAt: at, reason: 'disconnect' };
  const assignment = { userId: 'u', username: 'ana', mode: 'persistent', since: at };
  it.each([
    ['a live session wins over a timer', { sessions: [session], timers: [timer], assignment, poolId: 'p', poolName: 'edit' }, 'in-use'],
    ['a pending timer', { sessions: [], timers: [timer], assignment, poolId: 'p', poolName: 'edit' }, 'action-pending'],
    ['unassigned pool member', { sessions: [], timers: [], assignment: null, poolId: 'p', poolName: 'edit' }, 'standby'],
    ['assigned, idle, nothing pending', { sessions: [], timers: [], assignment, poolId: 'p', poolName: 'edit' }, 'no-plan'],
    ['not pooled, not assigned', { sessions: [], timers: [], assignment: null, poolId: null, poolName: null }, 'no-plan'],
  ] as const)('%s', (_n, w, verdict) => {
    expect(explainRunning({ ...w, sessions: [...w.sessions], timers: [...w.timers] }).verdict).toBe(verdict);
  });
});
