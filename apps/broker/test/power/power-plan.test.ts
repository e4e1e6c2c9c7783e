import { describe, expect, it } from 'vitest';
import { decideFire, planActivity, planForcedLogout, trustedSessionState, WORKSTATION_TIMER_KINDS, words, type FireSnapshot, type PlanContext, type TimerPayload } from '../../src/domain/power/power-plan.ts';
import { nextRuleTime, scheduleTargetOk } from '../../src/domain/power/power-schedule.ts';

const WS = '00000000-0000-4000-8000-000000000001';
const NOW = new Date('2026-03-02T18:00:00Z');
const plan = (over: Partial<NonNullable<PlanContext['power']>> = {}): NonNullable<PlanContext['power']> => ({
  onDisconnect: { action: 'stop', delaySeconds: 3600 },
  onLogout: { action: 'terminate', delaySeconds: 300 },
  onIdle: { action: 'hibernate', delaySeconds: 1800 },
  ...over,
});
const release = (over: Partial<NonNullable<PlanContext['release']>> = {}): NonNullable<PlanContext['release']> => ({
  releaseOnLogout: true,
  releaseAfterDisconnectSeconds: 900,
  releaseOnIdleSeconds: -1,
  forceLogout: false,
  warnSeconds: 0,
  warnMessage: null,
  ...over,
});
const floating = { id: 'a1', mode: 'floating' as const };
const persistent = { id: 'a1', mode: 'persistent' as const };
const at = (s: number) => new Date(NOW.getTime() + s * 1000);

describe('planActivity: event + plans → timers', () => {
  const cases: [string, Parameters<typeof planActivity>[0], PlanContext, { cancel: string[]; schedule: [string, Date, string][] }][] = [
    ['disconnect: stop after the delay, release after its own', 'disconnect', { power: plan(), release: release(), assignment: floating }, { cancel: [], schedule: [['power.disconnect', at(3600), 'disconnect + 60 min → stop'], ['release.disconnect', at(900), 'disconnect + 15 min → release']] }],
    ['disconnect with a persistent assignment: power only', 'disconnect', { power: plan(), release: release(), assignment: persistent }, { cancel: [], schedule: [['power.disconnect', at(3600), 'disconnect + 60 min → stop']] }],
    ['logout: terminate, release at once; idle timers end', 'logout', { power: plan(), release: release(), assignment: floating }, { cancel: ['power.idle', 'release.idle', 'release.forced-logout'], schedule: [['power.logout', at(300), 'logout + 5 min → terminate'], ['release.logout', at(0), 'logout + 0 s → release']] }],
    ['idle: hibernate after the delay (no idle release)', 'idle', { power: plan(), release: release(), assignment: floating }, { cancel: [], schedule: [['power.idle', at(1800), 'idle + 30 min → hibernate']] }],
    ['delay -1: never', 'disconnect', { power: plan({ onDisconnect: { action: 'stop', delaySeconds: -1 } }), release: null, assignment: null }, { cancel: [], schedule: [] }],
    ['action none: nothing', 'logout', { power: plan({ onLogout: { action: 'none', delaySeconds: 0 } }), release: null, assignment: null }, { cancel: ['power.idle', 'release.idle', 'release.forced-logout'], schedule: [] }],
    ['delay 0: due now', 'idle', { power: plan({ onIdle: { action: 'stop', delaySeconds: 0 } }), release: null, assignment: null }, { cancel: [], schedule: [['power.idle', at(0), 'idle + 0 s → stop']] }],
    ['no plans: nothing', 'disconnect', { power: null, release: null, assignment: floating }, { cancel: [], schedule: [] }],
    ['release on idle', 'idle', { power: null, release: release({ releaseOnIdleSeconds: 600 }), assignment: floating }, { cancel: [], schedule: [['release.idle', at(600), 'idle + 10 min → release']] }],
    ['no release without an active assignment', 'logout', { power: null, release: release(), assignment: null }, { cancel: ['power.idle', 'release.idle', 'release.forced-logout'], schedule: [] }],
    ['login cancels everything', 'login', { power: plan(), release: release(), assignment: floating }, { cancel: [...WORKSTATION_TIMER_KINDS], schedule: [] }],
    ['reconnect cancels everything', 'reconnect', { power: plan(), release: release(), assignment: floating }, { cancel: [...WORKSTATION_TIMER_KINDS], schedule: [] }],
    ['active cancels the idle timers', 'active', { power: plan(), release: release(), assignment: floating }, { cancel: ['power.idle', 'release.idle', 'release.forced-logout'], schedule: [] }],
    ['unlock cancels the idle timers', 'unlock', { power: plan(), release: release(), assignment: floating }, { cancel: ['power.idle', 'release.idle', 'release.forced-logout'], schedule: [] }],
    ['lock: nothing', 'lock', { power: plan(), release: release(), assignment: floating }, { cancel: [], schedule: [] }],
    ['heartbeat: nothing', 'heartbeat', { power: plan(), release: release(), assignment: floating }, { cancel: [], schedule: [] }],
  ];
  it.each(cases)('%s', (_name, event, ctx, want) => {
    const got = planActivity(event, ctx, WS, NOW);
    expect(got.cancel).toEqual(want.cancel);
    expect(got.schedule.map((t) => [t.kind, t.dueAt, t.payload.reason])).toEqual(want.schedule);
    for (const t of got.schedule) {
      expect(t.kind).toMatch(/^(power|release)\./);
      expect(t.payload).toMatchObject({ workstationId: WS, eventAt: NOW.toISOString() });
    }
  });
});

describe('decideFire: the last check under the row lock', () => {
  const snap = (over: Partial<FireSnapshot> = {}): FireSnapshot => ({ powerState: 'running', sessionState: 'unknown', connectedSessions: 0, newerConnections: 0, lastActivityAt: null, assignment: null, ...over });
  const p = (trigger: TimerPayload['trigger'], action: TimerPayload['action'] = 'stop', over: Partial<TimerPayload> = {}): TimerPayload => ({ workstationId: WS, trigger, action, eventAt: NOW.toISOString(), reason: 'r', ...over });
  const cases: [string, string, TimerPayload, FireSnapshot, boolean | string][] = [
    ['disconnect, nobody there: stop', 'power.disconnect', p('disconnect'), snap(), true],
    ['a connected session: never', 'power.disconnect', p('disconnect'), snap({ connectedSessions: 1 }), 'a session is connected'],
    ['a newer connection (the user came back): never', 'power.disconnect', p('disconnect'), snap({ newerConnections: 1 }), 'the user connected again after the event'],
    ['agent says active: never', 'power.disconnect', p('disconnect'), snap({ sessionState: 'active' }), 'the agent reports an active user session'],
    ['activity after the event', 'power.disconnect', p('disconnect'), snap({ lastActivityAt: at(60) }), 'activity after the event'],
    ['logout but the agent sees a locked session', 'power.logout', p('logout'), snap({ sessionState: 'locked' }), 'the agent reports a user session (locked)'],
    ['logout, nobody: terminate', 'power.logout', p('logout', 'terminate'), snap({ sessionState: 'none' }), true],
    ['terminate a terminated machine', 'power.logout', p('logout', 'terminate'), snap({ powerState: 'terminated' }), 'the machine is terminated already'],
    ['stop a stopped machine (a redelivery)', 'power.disconnect', p('disconnect'), snap({ powerState: 'stopping' }), 'the machine is stopping'],
    ['idle with the user idle: stop even with a connected transport', 'power.idle', p('idle'), snap({ sessionState: 'idle', connectedSessions: 1 }), true],
    ['idle but active again', 'power.idle', p('idle'), snap({ sessionState: 'active' }), 'the user is active again'],
    ['restart a running machine', 'power.idle', p('idle', 'restart'), snap({ sessionState: 'idle' }), true],
    ['release after disconnect', 'release.disconnect', p('disconnect', undefined, { assignmentId: 'a1' }), snap({ assignment: floating }), true],
    ['release of an assignment already released', 'release.disconnect', p('disconnect', undefined, { assignmentId: 'a1' }), snap({ assignment: { id: 'a2', mode: 'floating' } }), 'the assignment was already released'],
    ['release never touches a persistent assignment', 'release.logout', p('logout', undefined, { assignmentId: 'a1' }), snap({ assignment: persistent, sessionState: 'none' }), 'the assignment is persistent'],
    ['release on disconnect with a connected session', 'release.disconnect', p('disconnect', undefined, { assignmentId: 'a1' }), snap({ assignment: floating, connectedSessions: 2 }), 'a session is connected'],
  ];
  it.each(cases)('%s', (_name, kind, payload, s, want) => {
    const got = decideFire(kind, payload, s);
    expect(got).toEqual(want === true ? { act: true } : { act: false, skip: want });
  });
});

describe('forced logout, schedule rules, words', () => {
  it('a forced logout warns first when the plan says so, and only when someone is logged in', () => {
    expect(planForcedLogout(release({ forceLogout: true, warnSeconds: 120 }), 'idle', NOW)).toEqual({ warnUntil: at(120), logoutNow: false });
    expect(planForcedLogout(release({ forceLogout: true, warnSeconds: 0 }), 'disconnected', NOW)).toEqual({ warnUntil: null, logoutNow: true });
    expect(planForcedLogout(release({ forceLogout: true, warnSeconds: 120 }), 'none', NOW)).toEqual({ warnUntil: null, logoutNow: false });
    expect(planForcedLogout(release({ forceLogout: false }), 'active', NOW)).toEqual({ warnUntil: null, logoutNow: false });
  });

  it.each([
    ['weekdays 20:00 London, on a Monday afternoon', { days: ['mon', 'tue', 'wed', 'thu', 'fri'], at: '20:00' }, 'Europe/London', '2026-03-02T15:00:00Z', '2026-03-02T20:00:00.000Z'],
    ['weekdays 20:00 London, on Friday evening → Monday', { days: ['mon', 'tue', 'wed', 'thu', 'fri'], at: '20:00' }, 'Europe/London', '2026-03-06T20:00:00Z', '2026-03-09T20:00:00.000Z'],
    ['20:00 in Los Angeles (UTC−8 in winter)', { days: ['mon'], at: '20:00' }, 'America/Los_Angeles', '2026-03-02T12:00:00Z', '2026-03-03T04:00:00.000Z'],
    ['across the DST change (London, 29 March 2026)', { days: ['sun', 'mon'], at: '20:00' }, 'Europe/London', '2026-03-28T21:00:00Z', '2026-03-29T19:00:00.000Z'],
    ['a time skipped by DST that day is skipped (London 01:30, 29 March 2026)', { days: ['sun', 'mon'], at: '01:30' }, 'Europe/London', '2026-03-28T23:00:00Z', '2026-03-30T00:30:00.000Z'],
    ['autumn: 20:00 on the day clocks go back (London, 25 October 2026)', { days: ['sun'], at: '20:00' }, 'Europe/London', '2026-10-24T12:00:00Z', '2026-10-25T20:00:00.000Z'],
    ['strictly after: at the very minute → next week', { days: ['mon'], at: '09:30' }, 'UTC', '2026-03-02T09:30:00Z', '2026-03-09T09:30:00.000Z'],
    ['Kolkata half-hour offset', { days: ['tue'], at: '00:00' }, 'Asia/Kolkata', '2026-03-02T00:00:00Z', '2026-03-02T18:30:00.000Z'],
  ] as const)('nextRuleTime: %s', (_n, rule, tz, after, want) => {
    expect(nextRuleTime({ days: [...rule.days], at: rule.at }, tz, new Date(after))?.toISOString()).toBe(want);
  });

  it.each([
    ['running, unassigned, nobody → stop', { target: 'unassigned', action: 'stop' }, { powerState: 'running', assigned: false, liveSessions: 0, sessionState: 'none' }, true],
    ['assigned machine, target unassigned → skip', { target: 'unassigned', action: 'stop' }, { powerState: 'running', assigned: true, liveSessions: 0, sessionState: 'none' }, 'the machine is assigned'],
    ['assigned, no session, target no-session → stop', { target: 'no-session', action: 'stop' }, { powerState: 'running', assigned: true, liveSessions: 0, sessionState: 'unknown' }, true],
    ['a live session → skip', { target: 'no-session', action: 'stop' }, { powerState: 'running', assigned: true, liveSessions: 1, sessionState: 'unknown' }, 'a session is live'],
    ['a logged-in user (agent) → skip', { target: 'no-session', action: 'hibernate' }, { powerState: 'running', assigned: true, liveSessions: 0, sessionState: 'locked' }, 'the agent reports a user session (locked)'],
    ['stopped already → skip', { target: 'no-session', action: 'stop' }, { powerState: 'stopped', assigned: false, liveSessions: 0, sessionState: 'none' }, 'the machine is stopped'],
    ['terminate a stopped machine', { target: 'unassigned', action: 'terminate' }, { powerState: 'stopped', assigned: false, liveSessions: 0, sessionState: 'none' }, true],
  ] as const)('scheduleTargetOk: %s', (_n, rule, m, want) => {
    expect(scheduleTargetOk(rule, m)).toEqual(want === true ? { act: true } : { act: false, skip: want });
  });

  it('an agent that went quiet no longer vouches for the session', () => {
    expect(trustedSessionState('active', at(-60), NOW)).toBe('active');
    expect(trustedSessionState('active', at(-301), NOW)).toBe('unknown');
    expect(trustedSessionState('idle', null, NOW)).toBe('unknown');
  });

  it('words', () => {
    expect([0, 45, 60, 90, 3600, 5400, 86400, 172800].map(words)).toEqual(['0 s', '45 s', '1 min', '90 s', '60 min', '90 min', '24 h', '48 h']);
  });
});
